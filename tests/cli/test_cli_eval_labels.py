"""`gtx eval --label/--style` for conditional models: one result per label, each compared with
that label's real folder (DIR/<label>, DIR/test/<label>), and one clear error listing the valid
names for an unknown label or an index out of range.

FID runs with a randomly initialised Inception network saved in the real file format (as in
test_cli_eval.py), passed with --weights: offline, and enough to tell folders apart.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_conditional_cli import gtx  # `gtx ARGS` in this process: (code, output)

import gantransfer
from gantransfer.data import demo
from gantransfer.engine.checkpoint import save_model
from gantransfer.evaluation import random_inception_weights

pytest.importorskip("torchmetrics")

DCGAN = {"image_size": 16, "ngf": 4, "ndf": 4, "nz": 8, "labels": ["cat", "dog"], "seed": 0}
STARGAN = {"ngf": 4, "ndf": 4, "n_layers_D": 2, "load_size": 16, "crop_size": 16, "seed": 0}


@pytest.fixture(autouse=True)
def _cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # the feature cache


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("inception") / "inception.pth"
    torch.save(random_inception_weights(seed=3), path)
    return path


@pytest.fixture(scope="module")
def cdcgan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A class-conditional DCGAN whose classes look clearly different: its generator's first
    layer (noise and one-hot label channels in) weighs the label channels 20 times up."""
    model = gantransfer.get("dcgan", **DCGAN)
    first = model.nets["g"].main[0]
    assert first.in_channels == DCGAN["nz"] + len(DCGAN["labels"])
    with torch.no_grad():
        first.weight[DCGAN["nz"]:] *= 20
    return save_model(model, tmp_path_factory.mktemp("cdcgan") / "cdcgan.pt")


def _stargan(labels: list[str]) -> gantransfer.GANModel:
    """A tiny StarGAN whose styles differ untrained: the conditional norms' per-style scales and
    shifts (ones and zeros at initialisation) get seeded noise."""
    model = gantransfer.get("stargan", labels=labels, **STARGAN)
    noise = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in model.nets["g"].named_parameters():
            if name.endswith("embedding.weight"):
                param.add_(torch.randn(param.shape, generator=noise))
    return model


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path), dtype=np.int16)


def _eval(capsys: pytest.CaptureFixture[str], out: Path, *args: object) -> dict:
    code, text = gtx(capsys, "eval", *args, "--device", "cpu", "-o", out)
    assert code == 0, text
    return json.loads(out.read_text())


def test_conditional_dcgan_is_scored_per_class_against_that_class(
        tmp_path: Path, cdcgan: Path, weights: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The real folder of each class holds the generator's own seeded samples of that class:
    # drawn with the right label (and the same seed) they give FID ~0; a class compared with
    # the other class's folder does clearly worse.
    right, swapped = tmp_path / "right", tmp_path / "swapped"
    for name in ("cat", "dog"):
        code, text = gtx(capsys, "generate", cdcgan, "--label", name, "-n", 6, "-o",
                         right / name, "--seed", 0, "--device", "cpu")
        assert code == 0, text
    for name, other in (("cat", "dog"), ("dog", "cat")):  # DIR/cat holds the dog samples ...
        (swapped / name).mkdir(parents=True)
        for path in (right / other).iterdir():
            (swapped / name / path.name).write_bytes(path.read_bytes())

    common = ["--metrics", "fid", "--weights", weights, "--save-fakes"]
    good = _eval(capsys, tmp_path / "good.json", cdcgan, "--data", right, *common,
                 tmp_path / "fakes")
    assert sorted(good["targets"]) == ["generator/cat", "generator/dog"]
    for name in ("cat", "dog"):
        entry = good["targets"][f"generator/{name}"]
        assert entry["label"] == name and entry["kind"] == "latent"
        assert entry["real"] == str(right / name)
        assert entry["generated"] == 6 and entry["fid"]["n_real"] == 6
        assert entry["fid"]["value"] == pytest.approx(0.0, abs=1e-3)
        drawn = sorted((tmp_path / "fakes" / "generator" / name).iterdir())
        assert len(drawn) == 6
        # the drawn images are the samples of that class (gtx generate --label, same seed)
        assert all(np.array_equal(_pixels(a), _pixels(b)) for a, b in
                   zip(drawn, sorted((right / name).iterdir()), strict=True))
    bad = _eval(capsys, tmp_path / "bad.json", cdcgan, "--data", swapped, *common,
                tmp_path / "fakes2")
    for name in ("cat", "dog"):
        # measured: ~1e-10 with the right folders, 0.0115 with the swapped ones
        assert bad["targets"][f"generator/{name}"]["fid"]["value"] > 1e-3

    # --label picks classes, by name or index, in the held-out layout DIR/test/<label> too.
    test_layout = tmp_path / "split" / "test"
    test_layout.mkdir(parents=True)
    (right / "dog").rename(test_layout / "dog")
    one = _eval(capsys, tmp_path / "one.json", cdcgan, "--data", tmp_path / "split", "--label",
                "1", "--metrics", "fid", "--weights", weights)
    assert list(one["targets"]) == ["generator/dog"]
    assert one["targets"]["generator/dog"]["real"] == str(test_layout / "dog")
    assert one["targets"]["generator/dog"]["fid"]["value"] == pytest.approx(0.0, abs=1e-3)


def test_stargan_translates_the_inputs_into_each_style(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    styles = demo.make_styles(tmp_path / "styles", n_train=2, n_test=3, size=16, styles=3)
    ckpt = save_model(_stargan(["invert", "photo", "sepia"]), tmp_path / "star.pt")
    photos = styles / "test" / "photo"

    report = _eval(capsys, tmp_path / "two.json", ckpt, "--data", styles, "--inputs", photos,
                   "--style", "sepia", "--style", "invert", "--metrics", "psnr",
                   "--save-fakes", tmp_path / "fakes")
    assert sorted(report["targets"]) == ["translate/invert", "translate/sepia"]
    code, text = gtx(capsys, "translate", ckpt, photos, "-o", tmp_path / "ref", "--style",
                     "sepia", "--style", "invert", "--device", "cpu")
    assert code == 0, text
    for style in ("invert", "sepia"):
        entry = report["targets"][f"translate/{style}"]
        assert entry["label"] == style and entry["inputs"] == str(photos)
        assert entry["real"] == str(styles / "test" / style)
        assert entry["generated"] == 3 and entry["psnr"]["n_pairs"] == 3
        # the fakes are the model's translation into that style (gtx translate --style)
        for path in (tmp_path / "fakes" / "translate" / style).iterdir():
            assert np.abs(_pixels(path) - _pixels(tmp_path / "ref" / style / path.name)
                          ).max() <= 1
    # The two styles' outputs differ: the style really reached the generator.
    first = sorted(p.name for p in photos.iterdir())[0].replace(".jpg", ".png")
    assert not np.array_equal(_pixels(tmp_path / "fakes" / "translate" / "invert" / first),
                              _pixels(tmp_path / "fakes" / "translate" / "sepia" / first))

    # Without --inputs the photo style's held-out images are translated, into every style.
    every = _eval(capsys, tmp_path / "all.json", ckpt, "--data", styles, "--metrics", "psnr")
    assert sorted(every["targets"]) == ["translate/invert", "translate/photo", "translate/sepia"]
    assert {e["inputs"] for e in every["targets"].values()} == {str(photos)}
    assert every["targets"]["translate/sepia"]["psnr"] == report["targets"]["translate/sepia"][
        "psnr"]

    # The exported file (the style as its second input) gives the same numbers per style.
    pytest.importorskip("onnxruntime")
    from gantransfer.export import export_onnx

    export_onnx(ckpt, tmp_path / "star.onnx")
    onnx = _eval(capsys, tmp_path / "onnx.json", tmp_path / "star.onnx", "--data", styles,
                 "--style", "sepia", "--metrics", "psnr")
    assert list(onnx["targets"]) == ["translate/sepia"]
    assert onnx["targets"]["translate/sepia"]["psnr"]["value"] == pytest.approx(
        report["targets"]["translate/sepia"]["psnr"]["value"], abs=0.05)


def test_label_errors_list_the_valid_names(tmp_path: Path, cdcgan: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    data = demo.make_two_domain(tmp_path / "d", n_train=1, n_test=2, size=16, seed=0)
    cyclegan = save_model(gantransfer.get("cyclegan", netG="resnet_6blocks", ngf=4, ndf=4),
                          tmp_path / "cyclegan.pt")
    classes = tmp_path / "classes"
    for name in ("cat", "dog"):
        demo.make_single(classes / name, n=2, size=16, seed=0)
    paintings = tmp_path / "paintings"
    for name in ("monet", "cezanne"):
        demo.make_single(paintings / "test" / name, n=2, size=16, seed=0)
    star = save_model(_stargan(["cezanne", "monet"]), tmp_path / "star.pt")
    psnr = ["--metrics", "psnr", "--device", "cpu"]
    cases = [
        ([cyclegan, "--data", data, "--label", "3"], "is not conditional"),
        ([cdcgan, "--data", classes, "--label", "zebra"], "unknown label 'zebra'"),
        ([cdcgan, "--data", classes, "--label", "5"], "label index 5 is out of range"),
        ([star, "--data", paintings, "--style", "photo"], "unknown style 'photo'"),
        ([star, "--data", paintings], "give the images to translate with --inputs DIR"),
        ([cdcgan, "--data", tmp_path / "nothing", "--label", "cat"], "test/cat"),
        ([cdcgan, "--real", classes / "cat", "--metrics", "psnr"], "pick one with --label"),
    ]
    for args, text in cases:
        code, output = gtx(capsys, "eval", *args, *psnr)
        assert code == 1, (args, output)
        assert text in output and "Traceback" not in output, (args, output)
    for args in cases[1:3]:
        assert "0=cat, 1=dog" in gtx(capsys, "eval", *args[0], *psnr)[1]
    assert "0=cezanne, 1=monet" in gtx(capsys, "eval", *cases[3][0], *psnr)[1]
