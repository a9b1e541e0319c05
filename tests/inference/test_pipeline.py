"""The folder pipeline (gantransfer.inference.pipeline) and `gtx translate` on folders."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import gantransfer
from gantransfer.cli.app import app
from gantransfer.config import to_plain
from gantransfer.data.folders import ImageReadError
from gantransfer.data.images import probe_image, read_image
from gantransfer.engine.checkpoint import save_checkpoint
from gantransfer.inference import pipeline, translate_files

SIZES = [(32, 48), (40, 40), (33, 50), (32, 48), (40, 40), (32, 48), (17, 9), (32, 48)]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return gantransfer.get("cyclegan", ngf=8, ndf=8, netG="resnet_6blocks").eval()


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline_in")
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(SIZES):
        sub = root / ("sub" if i % 3 == 0 else "")
        sub.mkdir(exist_ok=True)
        if i == 2:  # a grey image: read as RGB like the data layer does
            Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8), "L").save(sub / "g2.png")
        else:
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(sub / f"i{i}.png")
    return root


def _pairs(src: Path, out: Path) -> list[tuple[Path, Path]]:
    return [(f, out / f.relative_to(src).with_suffix(".png")) for f in sorted(src.rglob("*.png"))]


def _serial(model, pairs):
    """The reference: the library's translate() one image at a time."""
    return {dst: np.asarray(model.translate(read_image(src, channels=3))) for src, dst in pairs}


def test_pipeline_writes_every_file_like_serial_translation(model, images, tmp_path):
    pairs = _pairs(images, tmp_path / "out")
    stats = translate_files(model, pairs, batch_size=3, workers=2, max_in_memory=5)
    assert stats.images == len(SIZES) and stats.skipped == 0
    assert 0 < stats.model_seconds <= stats.wall_seconds
    assert stats.images_per_second == pytest.approx(stats.images / stats.wall_seconds)
    for (src, dst), want in zip(pairs, _serial(model, pairs).values(), strict=True):
        got = np.asarray(Image.open(dst))
        assert got.shape == want.shape == (*Image.open(src).size[::-1], 3)
        # batched (3 images) vs one at a time: at most float rounding in the convolutions
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1, dst
    assert not list((tmp_path / "out").rglob("*.tmp"))


def test_a_translator_runs_its_model_in_eval_mode_and_restores_the_mode(images, tmp_path):
    torch.manual_seed(0)
    model = gantransfer.get("cyclegan", ngf=8, ndf=8, netG="resnet_6blocks")  # training mode
    runner = gantransfer.inference.translator(model)
    modes, forward = [], runner.forward
    runner.forward = lambda x: (modes.append(model.nets["g_ab"].training), forward(x))[1]
    translate_files(runner, _pairs(images, tmp_path / "out"), batch_size=2)
    runner.translate([torch.zeros(3, 8, 8)])
    assert modes and not any(modes)  # every batch ran in eval mode (dropout, BatchNorm)
    assert model.training and model.nets["g_ab"].training  # and the mode is given back


def test_pipeline_holds_at_most_max_in_memory_images(model, images, tmp_path, monkeypatch):
    # Count, independently of the pipeline's own bookkeeping, images decoded but not yet saved.
    lock, live, peak = threading.Lock(), [0], [0]
    decode, encode = pipeline._decode, pipeline._encode

    def counting_decode(*args):
        item = decode(*args)
        with lock:
            live[0] += 1
            peak[0] = max(peak[0], live[0])
        return item

    def counting_encode(*args):
        encode(*args)
        with lock:
            live[0] -= 1

    monkeypatch.setattr(pipeline, "_decode", counting_decode)
    monkeypatch.setattr(pipeline, "_encode", counting_encode)
    src = sorted(images.rglob("i*.png"))[0]
    pairs = [(src, tmp_path / f"o{i}.png") for i in range(24)]
    stats = translate_files(model, pairs, batch_size=2, workers=2, max_in_memory=3)
    assert stats.images == 24 and all(dst.is_file() for _, dst in pairs)
    assert 2 <= peak[0] <= 3 and stats.peak_in_memory <= 3
    with pytest.raises(ValueError, match="at least batch_size"):
        translate_files(model, pairs, batch_size=4, max_in_memory=3)


def _folder_with(tmp_path, images, name: str, data: bytes) -> Path:
    src = tmp_path / "in"
    src.mkdir()
    for f in sorted(images.rglob("i*.png"))[:3]:
        (src / f.name).write_bytes(f.read_bytes())
    (src / name).write_bytes(data)
    return src


def test_a_file_that_is_not_an_image_fails_before_anything_is_written(model, images, tmp_path):
    src = _folder_with(tmp_path, images, "j_text.png", b"hello, not an image\n" * 10)
    with pytest.raises(ImageReadError, match=r"j_text\.png") as info:
        translate_files(model, _pairs(src, tmp_path / "out"))
    assert "--skip-bad-images" in str(info.value)
    assert not (tmp_path / "out").exists()  # found by the header check, before any work


def test_corrupt_pixel_data_names_the_file_and_leaves_no_partial_output(model, images, tmp_path):
    whole = sorted(images.rglob("i*.png"))[0].read_bytes()
    src = _folder_with(tmp_path, images, "j_truncated.png", whole[: len(whole) // 2])
    probe_image(src / "j_truncated.png")  # the header is fine: this fails while decoding
    pairs = _pairs(src, tmp_path / "out")
    with pytest.raises(ImageReadError, match=r"j_truncated\.png"):
        translate_files(model, pairs, batch_size=1, workers=1)
    written = [p.name for p in (tmp_path / "out").rglob("*")] if (tmp_path / "out").exists() else []
    assert "j_truncated.png" not in written and not [n for n in written if n.endswith(".tmp")]
    for name in written:  # whatever was written before the error is a whole image
        Image.open(tmp_path / "out" / name).load()

    stats = translate_files(model, pairs, batch_size=2, skip_bad_images=True)
    assert (stats.images, stats.skipped) == (3, 1)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        f.name for f in src.iterdir() if f.name != "j_truncated.png")


def test_onnx_model_runs_through_the_pipeline(model, images, tmp_path):
    onnx_file = gantransfer.export_onnx(model, tmp_path / "a2b.onnx", target="a2b")[0].path
    runtime = gantransfer.onnx.load(onnx_file)
    pairs = _pairs(images, tmp_path / "out")
    stats = translate_files(runtime, pairs, batch_size=2)
    assert stats.images == len(SIZES) and stats.model_seconds > 0
    assert "onnxruntime" in stats.description
    for dst, want in _serial(model, pairs).items():
        got = np.asarray(Image.open(dst))
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1, dst
    with pytest.raises(ValueError, match="apply to PyTorch models"):
        translate_files(runtime, pairs, precision="bf16")


def test_cli_translates_a_folder_and_reports_images_per_second(model, images, tmp_path):
    ckpt = tmp_path / "cyclegan.pt"
    save_checkpoint({"architecture": "cyclegan", "config": to_plain(model.config),
                     "model": model.state_dict(), "ema": None, "step": 0, "epoch": 0,
                     "versions": {}}, ckpt)
    result = CliRunner().invoke(app, ["translate", str(ckpt), str(images), "-o",
                                      str(tmp_path / "out"), "--precision", "fp32", "-b", "2"])
    assert result.exit_code == 0, (result.output, result.exception)
    text = " ".join(result.output.split())
    assert f"wrote {len(SIZES)} image(s)" in text and "img/s" in text
    assert "time in the model" in text and "fp32, eager" in text
    for src, dst in _pairs(images, tmp_path / "out"):
        assert Image.open(dst).size == Image.open(src).size

    bad = CliRunner().invoke(app, ["translate", str(ckpt), str(images), "-o",
                                   str(tmp_path / "o2"), "--precision", "fp16"])
    assert bad.exit_code != 0 and "precision must be one of" in str(bad.exception)
