"""`gtx` with conditional models: labels from the data folders, --style (one subfolder per
style), --label and the per-class grid, ONNX files with a style input, and one clear error
listing the valid names for unknown or missing labels."""

from __future__ import annotations

import re
import tomllib

import numpy as np
import pytest
from PIL import Image

from gantransfer.cli import main
from gantransfer.data import demo as demo_data

COMMON = ["--device", "cpu", "--progress", "none", "--set", "sample_every=0",
          "--set", "num_workers=0", "--steps", "2", "-b", "2"]
STAR = ["--set", "ngf=4", "--set", "ndf=4", "--set", "n_layers_D=2", "--set", "load_size=16",
        "--set", "crop_size=16"]
DCGAN = ["--set", "image_size=16", "--set", "ngf=4", "--set", "ndf=4", "--set", "nz=8"]


def gtx(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str]:
    """`gtx ARGS` in this process: (exit code, output with whitespace collapsed)."""
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, " ".join(re.sub("[\u2500-\u257f]", " ", captured.out + captured.err).split())


@pytest.fixture(scope="module")
def styles(tmp_path_factory):
    return demo_data.make_styles(tmp_path_factory.mktemp("styles"), n_train=4, n_test=2,
                                 size=16, styles=3)


def _pixels(path):
    return np.asarray(Image.open(path), dtype=np.int16)


def test_stargan_from_label_folders_to_styled_folders_and_onnx(tmp_path, styles, capsys):
    run = tmp_path / "run"
    code, text = gtx(capsys, "train", "stargan", "--data", styles / "train", "-o", run,
                     *STAR, *COMMON)
    assert code == 0, text
    labels = tomllib.loads((run / "config.toml").read_text())["model"]["labels"]
    assert labels == ["invert", "photo", "sepia"]  # the sorted folder names

    out = tmp_path / "out"
    code, text = gtx(capsys, "translate", run, styles / "test" / "photo", "-o", out,
                     "--style", "sepia", "--style", "0")
    assert code == 0, text
    assert sorted(p.name for p in (out / "sepia").glob("*.png")) == ["00000.png", "00001.png"]
    assert sorted(p.name for p in (out / "invert").glob("*.png")) == ["00000.png", "00001.png"]

    code, text = gtx(capsys, "translate", run, styles / "test" / "photo", "-o",
                     tmp_path / "bad", "--style", "monet")
    assert code == 1 and "unknown style 'monet'" in text
    assert "0=invert, 1=photo, 2=sepia" in text and "Traceback" not in text
    code, text = gtx(capsys, "translate", run, styles / "test" / "photo", "-o",
                     tmp_path / "bad")
    assert code == 1 and "name a style with --style" in text

    onnx = tmp_path / "star.onnx"
    code, text = gtx(capsys, "export", run, "--onnx", onnx)
    assert code == 0, text
    code, text = gtx(capsys, "translate", onnx, styles / "test" / "photo", "-o",
                     tmp_path / "onnx_out", "--style", "sepia")
    assert code == 0, text
    for path in (out / "sepia").glob("*.png"):  # the file gives the model's pixels
        assert np.abs(_pixels(path) - _pixels(tmp_path / "onnx_out" / path.name)).max() <= 1
    code, text = gtx(capsys, "translate", onnx, styles / "test" / "photo", "-o",
                     tmp_path / "bad2", "--style", "7")
    assert code == 1 and "style index 7 is out of range" in text


def test_conditional_dcgan_generates_a_class_or_a_row_per_class(tmp_path, capsys):
    data = demo_data.make_classes(tmp_path / "classes", n_per_class=2, size=16, classes=3)
    code, text = gtx(capsys, "data", "check", data, "--kind", "labelled")
    assert code == 0, text
    assert "3 classes (label = index): 0=blue_ring (2), 1=green_box (2), 2=red_disc (2)" in text
    assert "warning: 3 of 3 classes have fewer than 100 images" in text

    run = tmp_path / "run"
    code, text = gtx(capsys, "train", "dcgan", "--data", data, "-o", run, "--set",
                     "n_classes=3", *DCGAN, *COMMON)
    assert code == 0, text

    code, text = gtx(capsys, "generate", run, "--label", "green_box", "-n", "4", "-o",
                     tmp_path / "one.png")
    assert code == 0, text
    assert Image.open(tmp_path / "one.png").size[1] == 2 * 16  # a 2x2 grid
    code, text = gtx(capsys, "generate", run, "-n", "5", "-o", tmp_path / "all.png")
    assert code == 0 and "one row per class" in text, text
    grid = Image.open(tmp_path / "all.png")
    assert grid.size == (5 * 16, 3 * 16)  # 3 rows (classes) of 5
    code, text = gtx(capsys, "generate", run, "-n", "2", "-o", tmp_path / "folder")
    assert code == 0, text
    assert sorted(p.name for p in (tmp_path / "folder").iterdir()) == [
        "blue_ring", "green_box", "red_disc"]
    code, text = gtx(capsys, "generate", run, "--label", "purple", "-o", tmp_path / "x.png")
    assert code == 1 and "unknown label 'purple'" in text
    assert "0=blue_ring, 1=green_box, 2=red_disc" in text

    code, text = gtx(capsys, "train", "dcgan", "--data", data, "-o", tmp_path / "run2",
                     "--set", "n_classes=2", *DCGAN, *COMMON)
    assert code == 1 and "2 classes but 3 label names" in text


def test_a_label_for_an_unconditional_model_is_refused(tmp_path, capsys):
    data = demo_data.make_single(tmp_path / "single", n=4, size=16)
    run = tmp_path / "run"
    assert gtx(capsys, "train", "dcgan", "--data", data, "-o", run, *DCGAN, *COMMON)[0] == 0
    code, text = gtx(capsys, "generate", run, "--label", "cat", "-o", tmp_path / "x.png")
    assert code == 1 and "takes no label: it is not conditional" in text


def test_demo_shows_stargan_per_style_against_identity(tmp_path, capsys):
    code, text = gtx(capsys, "demo", "--arch", "stargan", "-o", tmp_path / "demo", "--steps",
                     "2", "--progress", "none")
    assert code == 0, text
    assert re.search(r"style invert: translated [\d.]+ dB vs identity [\d.]+ dB", text)
    assert re.search(r"style sepia: translated [\d.]+ dB vs identity [\d.]+ dB", text)
    assert (tmp_path / "demo" / "comparison.png").is_file()
    assert (tmp_path / "demo" / "demo_styles.onnx").is_file()
