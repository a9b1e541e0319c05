"""Issue 12, item 13: NaN weights or non-finite outputs are an error naming the checkpoint,
never garbage images with exit 0."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from _relb_models import save_model, tiny_cyclegan
from PIL import Image
from typer.testing import CliRunner

import gantransfer
from gantransfer.cli.app import app
from gantransfer.engine.checkpoint import CheckpointError
from gantransfer.inference import NonFiniteOutputError, generate


def _images(folder: Path) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 256, (16, 20, 3), dtype=np.uint8)).save(folder / name)
    return folder


def _translate(ckpt: Path, tmp_path: Path):
    images = _images(tmp_path / "in")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["translate", str(ckpt), str(images), "-o", str(out),
                                      "--compile", "off"])
    return result, out


def test_nan_generator_weights_are_refused_naming_the_checkpoint(tmp_path: Path) -> None:
    model = tiny_cyclegan()
    with torch.no_grad():
        model.nets["g_ab"].model[1].weight[0, 0, 0, :3] = float("nan")
    ckpt = save_model(model, tmp_path / "diverged.pt")
    with pytest.raises(CheckpointError, match=r"diverged\.pt: the weights of g_ab hold NaN or "
                       r"infinite values \(model\.1\.weight \(3 values\)\)"):
        gantransfer.load(ckpt)
    result, out = _translate(ckpt, tmp_path)
    assert result.exit_code == 1 and "diverged.pt" in str(result.exception)  # before: exit 0
    assert not out.exists()


def test_nan_in_a_discriminator_only_warns(tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    model = tiny_cyclegan()
    with torch.no_grad():
        model.nets["d_a"].model[0].weight.fill_(float("inf"))
    ckpt = save_model(model, tmp_path / "m.pt")
    with caplog.at_level(logging.WARNING, logger="gantransfer"):
        loaded = gantransfer.load(ckpt)
    assert "d_a holds NaN or infinite values" in caplog.text
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    assert torch.isfinite(loaded.translate(x)).all()


def test_non_finite_outputs_are_an_error_naming_the_checkpoint(tmp_path: Path) -> None:
    """Finite but huge weights overflow to inf inside the net: only the output check sees it."""
    model = tiny_cyclegan()
    with torch.no_grad():
        model.nets["g_ab"].model[1].weight.fill_(3e38)
    ckpt = save_model(model, tmp_path / "huge.pt")
    result, out = _translate(ckpt, tmp_path)
    assert result.exit_code == 1 and isinstance(result.exception, NonFiniteOutputError)
    message = str(result.exception)
    assert f"checkpoint {ckpt} produced NaN or infinite values" in message
    assert not out.exists() or not list(out.rglob("*.png"))


def test_generate_checks_its_output() -> None:
    torch.manual_seed(0)
    model = gantransfer.get("dcgan", nz=8, ngf=4, ndf=4, image_size=16)
    with torch.no_grad():
        next(model.nets["g"].parameters()).fill_(float("nan"))
    with pytest.raises(NonFiniteOutputError, match="the dcgan model produced NaN"):
        generate(model, 2)
