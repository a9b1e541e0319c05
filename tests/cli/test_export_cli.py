"""`gtx export`, `gtx translate`, `gtx generate` end to end: ONNX and PyTorch give the same images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import gantransfer
from gantransfer.cli.app import app
from gantransfer.config import to_plain
from gantransfer.engine.checkpoint import save_checkpoint
from gantransfer.onnx import OnnxLoadError

runner = CliRunner()


def _checkpoint(path, name: str, **overrides):
    torch.manual_seed(0)
    model = gantransfer.get(name, **overrides)
    save_checkpoint({"architecture": name, "config": to_plain(model.config),
                     "model": model.state_dict(), "ema": None, "step": 0, "epoch": 0,
                     "versions": {}}, path)
    return path


def _invoke(*args: str):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result


@pytest.fixture(scope="module")
def cyclegan_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    ckpt = _checkpoint(root / "cyclegan.pt", "cyclegan", ngf=4, ndf=4, netG="resnet_6blocks")
    images = root / "in"
    (images / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)).save(images / "a.png")
    Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(images / "sub/b.jpg")
    Image.fromarray(rng.integers(0, 256, (16, 9), dtype=np.uint8), "L").save(images / "sub/c.png")
    result = _invoke("export", ckpt, "--onnx", root / "a2b.onnx", "--target", "a2b")
    assert "max abs error" in result.output
    return {"root": root, "ckpt": ckpt, "images": images, "onnx": root / "a2b.onnx"}


def test_translate_onnx_reproduces_checkpoint_translation(cyclegan_run):
    r = cyclegan_run
    _invoke("translate", r["ckpt"], r["images"], "-o", r["root"] / "out_t", "--target", "a2b")
    _invoke("translate", r["onnx"], r["images"], "-o", r["root"] / "out_o", "--batch-size", "2")
    for rel, size in (("a.png", (53, 37)), ("sub/b.png", (30, 20)), ("sub/c.png", (9, 16))):
        t = Image.open(r["root"] / "out_t" / rel)
        o = Image.open(r["root"] / "out_o" / rel)
        assert t.size == o.size == size and t.mode == "RGB"
        diff = np.abs(np.asarray(t, dtype=int) - np.asarray(o, dtype=int)).max()
        assert diff <= 1  # fp32 export error < 1e-4, so at most one uint8 rounding step
    # the checkpoint path is the library's translate, exactly
    model = gantransfer.load(r["ckpt"])
    want = model.translate(Image.open(r["images"] / "a.png").convert("RGB"), direction="a2b")
    np.testing.assert_array_equal(np.asarray(Image.open(r["root"] / "out_t" / "a.png")),
                                  np.asarray(want))


def test_translate_keep_ext_and_single_file(cyclegan_run):
    r = cyclegan_run
    _invoke("translate", r["onnx"], r["images"] / "sub" / "b.jpg", "-o", r["root"] / "one",
            "--keep-ext")
    assert [p.name for p in (r["root"] / "one").iterdir()] == ["b.jpg"]


def test_translate_rejects_a_file_that_is_not_onnx(cyclegan_run, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00not onnx")
    result = runner.invoke(app, ["translate", str(bad), str(cyclegan_run["images"]),
                                 "-o", str(tmp_path / "o")])
    assert result.exit_code == 1 and isinstance(result.exception, OnnxLoadError)
    assert "not a valid ONNX model" in str(result.exception)


def test_generate_grid_from_checkpoint_and_onnx_agree(tmp_path):
    ckpt = _checkpoint(tmp_path / "dcgan.pt", "dcgan", ngf=4, ndf=4, nz=8, image_size=32)
    _invoke("export", ckpt, "--onnx", tmp_path / "g.onnx")
    _invoke("generate", ckpt, "-n", "5", "-o", tmp_path / "t.png", "--seed", "1")
    _invoke("generate", tmp_path / "g.onnx", "-n", "5", "-o", tmp_path / "o.png", "--seed", "1")
    t, o = Image.open(tmp_path / "t.png"), Image.open(tmp_path / "o.png")
    assert t.size == o.size == (3 * 32, 2 * 32)  # 5 images: 3 columns, 2 rows
    assert np.abs(np.asarray(t, dtype=int) - np.asarray(o, dtype=int)).max() <= 1
