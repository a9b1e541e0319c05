"""Issue 12, item 4: checkpoint bit rot is detected on every load; resume falls back; rotation
never deletes the last verified checkpoint."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from _relb_models import save_model, tiny_cyclegan
from _toy import ToyImages, make_toy
from typer.testing import CliRunner

import gantransfer
from gantransfer.cli.app import app
from gantransfer.engine import TrainConfig, Trainer
from gantransfer.engine.checkpoint import (
    CheckpointCorruptError,
    CheckpointError,
    list_checkpoints,
    read_checkpoint,
)

KEY = "nets.g.body.4.weight"  # the toy generator's largest tensor (192x32 floats)


def train(run_dir: Path, *, steps: int, resume: str | Path | None = None, **train) -> Trainer:
    config = TrainConfig(**{"steps": steps, "batch_size": 2, "device": "cpu", "num_workers": 0,
                            "sample_every": 0, "sample_count": 2, "checkpoint_every": 1, **train})
    trainer = Trainer(make_toy(), ToyImages(8), config, run_dir, callbacks=())
    trainer.fit(resume=resume)
    return trainer


def flip_tensor_bytes(path: Path, tensor: torch.Tensor, count: int = 64) -> None:
    """Flip ``count`` bytes in the middle of ``tensor``'s stored bytes, as bit rot would."""
    raw = bytearray(path.read_bytes())
    stored = tensor.contiguous().numpy().tobytes()
    at = bytes(raw).find(stored)
    assert at > 0, "tensor bytes not found in the file"
    start = at + len(stored) // 2
    for i in range(start, start + count):
        raw[i] ^= 0xFF
    path.write_bytes(bytes(raw))


def test_flipped_tensor_bytes_are_detected_by_every_load(tmp_path: Path) -> None:
    train(tmp_path, steps=2)
    path = list_checkpoints(tmp_path)[-1]
    good = read_checkpoint(path)["model"][KEY]
    flip_tensor_bytes(path, good)
    # the damage is real: an unverified load gives a changed weight
    unverified = torch.load(path, weights_only=True)["model"][KEY]
    assert (unverified - good).abs().max() > 0
    with pytest.raises(CheckpointCorruptError, match=r"step_0000002\.pt is damaged"):
        read_checkpoint(path)
    with pytest.raises(CheckpointCorruptError,
                       match=r"step_0000002\.pt is damaged.*Older checkpoints.*step_0000001\.pt"):
        gantransfer.load(tmp_path)  # translate, export and generate load through this
    with pytest.raises(CheckpointCorruptError, match=r"step_0000002\.pt is damaged"):
        train(tmp_path, steps=3, resume=path)  # an explicit resume does not fall back


def test_changed_content_with_a_valid_zip_is_detected(tmp_path: Path) -> None:
    """Content edited and re-saved keeps the old checksum: detected, not only byte damage."""
    train(tmp_path, steps=1)
    path = list_checkpoints(tmp_path)[-1]
    data = torch.load(path, weights_only=True)
    data["step"] = 7
    torch.save(data, path)
    with pytest.raises(CheckpointCorruptError, match="does not match the checksum"):
        read_checkpoint(path)


def test_checkpoint_without_checksum_still_loads(tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    trainer = train(tmp_path, steps=1)
    path = list_checkpoints(tmp_path)[-1]
    data = torch.load(path, weights_only=True)
    del data["checksum"]  # as written by gantransfer before checksums
    torch.save(data, path)
    with caplog.at_level(logging.DEBUG, logger="gantransfer"):
        model = gantransfer.load(path)
    assert torch.equal(model.state_dict()[KEY], trainer.model.state_dict()[KEY])
    assert any("no content checksum" in r.getMessage() for r in caplog.records)


def test_resume_auto_falls_back_to_newest_intact_checkpoint(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    reference = train(tmp_path / "ref", steps=4)
    run = tmp_path / "run"
    train(run, steps=3, keep_checkpoints=None)
    bad = run / "checkpoints" / "step_0000003.pt"
    flip_tensor_bytes(bad, read_checkpoint(bad)["model"][KEY])
    with caplog.at_level(logging.WARNING, logger="gantransfer"):
        resumed = train(run, steps=4, resume="auto", keep_checkpoints=1)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("step_0000003.pt" in w and "damaged" in w for w in warnings), warnings
    assert resumed.start_step == 2
    # exact resume from step 2 gives the uninterrupted run's weights
    assert torch.equal(resumed.model.state_dict()[KEY], reference.model.state_dict()[KEY])
    # the damaged file is kept for inspection, out of the way of loads and rotation
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["step_0000003.pt.corrupt", "step_0000004.pt"]


def test_resume_auto_with_only_damaged_checkpoints_fails_clearly(tmp_path: Path) -> None:
    train(tmp_path, steps=1)
    path = list_checkpoints(tmp_path)[-1]
    flip_tensor_bytes(path, read_checkpoint(path)["model"][KEY])
    with pytest.raises(CheckpointCorruptError, match=r"every checkpoint of .* is damaged"):
        train(tmp_path, steps=2, resume="auto")


def test_rotation_never_deletes_the_checkpoint_just_written(tmp_path: Path) -> None:
    """Resuming from an older file while newer ones exist: keep=1 used to delete the new one."""
    train(tmp_path, steps=4, keep_checkpoints=None)
    older = tmp_path / "checkpoints" / "step_0000002.pt"
    resumed = train(tmp_path, steps=3, resume=older, keep_checkpoints=1)
    written = tmp_path / "checkpoints" / "step_0000003.pt"
    assert written.is_file()
    assert torch.equal(read_checkpoint(written)["model"][KEY], resumed.model.state_dict()[KEY])
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_0000003.pt", "step_0000004.pt"]


@pytest.mark.parametrize("command", ["translate", "export"])
def test_cli_names_the_damaged_checkpoint_and_fails(tmp_path: Path, command: str) -> None:
    from PIL import Image

    model = tiny_cyclegan()
    path = save_model(model, tmp_path / "model.pt")
    flip_tensor_bytes(path, model.state_dict()["nets.g_ab.model.10.conv_block.1.weight"])
    Image.new("RGB", (16, 16)).save(tmp_path / "in.png")
    args = {"translate": ["translate", path, tmp_path / "in.png", "-o", tmp_path / "out"],
            "export": ["export", path, "--onnx", tmp_path / "m.onnx", "--target", "a2b"]}[command]
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code != 0
    assert isinstance(result.exception, CheckpointError)
    assert "model.pt is damaged" in str(result.exception)
    assert not (tmp_path / "out").exists() and not (tmp_path / "m.onnx").exists()
