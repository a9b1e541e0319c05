"""Checkpoint files: rotation, atomic writes, safe and explained failures, gantransfer.load."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from _toy import ToyImages, make_toy

import gantransfer
from gantransfer.engine import TrainConfig, Trainer
from gantransfer.engine.checkpoint import (
    FORMAT,
    CheckpointError,
    find_latest,
    read_checkpoint,
    save_checkpoint,
)


def train(run_dir: Path, steps: int = 4, **train) -> Trainer:
    config = TrainConfig(**{"steps": steps, "batch_size": 2, "device": "cpu", "num_workers": 0,
                            "sample_every": 0, "sample_count": 2, **train})
    trainer = Trainer(make_toy(), ToyImages(8), config, run_dir, callbacks=())
    trainer.fit()
    return trainer


def test_rotation_keeps_last_n(tmp_path: Path) -> None:
    train(tmp_path, steps=6, checkpoint_every=1, keep_checkpoints=2)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["step_0000005.pt", "step_0000006.pt"]  # no temporary files either
    assert find_latest(tmp_path).name == "step_0000006.pt"


@pytest.mark.parametrize("keep", [2, None])
def test_partial_files_of_killed_writes_are_removed(tmp_path: Path, keep: int | None) -> None:
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    stale = folder / ".step_0000002.pt.k3j9_x.tmp"  # as left by a writer killed mid-save
    stale.write_bytes(b"half a checkpoint")
    other = folder / "notes.txt"  # anything else in the folder is the user's
    other.write_text("keep me")
    train(tmp_path, steps=2, checkpoint_every=1, keep_checkpoints=keep)
    assert not stale.exists() and other.read_text() == "keep me"
    assert find_latest(tmp_path).name == "step_0000002.pt"


def test_checkpoint_holds_everything_to_continue(tmp_path: Path) -> None:
    trainer = train(tmp_path, steps=3)
    data = read_checkpoint(find_latest(tmp_path))
    assert data["format"] == FORMAT and data["format_version"] == 1
    assert data["architecture"] == "toy" and data["config"]["nz"] == 8
    assert data["train_config"]["steps"] == 3 and data["data_config"] is None
    assert (data["step"], data["epoch"], data["data_position"]) == (3, 0, 6)
    assert set(data["optimizers"]) == set(data["schedulers"]) == {"g", "d"}
    assert data["scalers"] == {} and data["ema"] is None
    assert set(data["rng"]) == {"torch", "cuda", "numpy", "python"}
    assert data["sample_inputs"]["z"].shape == (2, 8)
    assert data["versions"]["torch"] == str(torch.__version__)
    assert torch.equal(data["model"]["nets.g.body.0.weight"],
                       trainer.model.state_dict()["nets.g.body.0.weight"])


def test_failed_write_leaves_no_temp_file_and_keeps_old(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    save_checkpoint({"architecture": "toy", "config": {}, "model": {}, "step": 1}, path)
    before = path.read_bytes()
    with pytest.raises(Exception):  # noqa: B017 - any pickling failure will do
        save_checkpoint({"step": 2, "bad": lambda: None}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_truncated_checkpoint_names_the_file(tmp_path: Path) -> None:
    train(tmp_path, steps=2)
    path = find_latest(tmp_path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"step_0000002\.pt.*truncated"):
        gantransfer.load(tmp_path)


class _Payload:
    """Unpickling this would create a marker file: a stand-in for malicious code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_foreign_pickle_is_refused_without_running_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for name, save in (("zip.pt", lambda o, p: torch.save(o, p)),
                       ("raw.pkl", lambda o, p: p.write_bytes(pickle.dumps(o, protocol=2)))):
        path = tmp_path / name
        save({"format": FORMAT, "x": _Payload(marker)}, path)
        with pytest.raises(CheckpointError, match=name.replace(".", r"\.")):
            read_checkpoint(path)
        assert not marker.exists()


def test_plain_state_dict_is_explained(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    torch.save(make_toy().state_dict(), path)
    with pytest.raises(CheckpointError, match="bare state_dict"):
        gantransfer.load(path)


def test_unknown_architecture_names_the_plugin_it_came_from(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    save_checkpoint({"architecture": "nope_gan", "config": {}, "model": {}, "step": 1,
                     "versions": {"plugin": "gantransfer-nope", "plugin_version": "2.0"}}, path)
    # Named as the file's claim, never as an install command (tests/reliability).
    with pytest.raises(CheckpointError, match=r"'gantransfer-nope' version '2\.0'"):
        gantransfer.load(path)


def test_empty_run_dir_is_explained(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no checkpoints"):
        gantransfer.load(tmp_path)


def test_load_gives_model_with_same_generator_output(tmp_path: Path) -> None:
    trainer = train(tmp_path, steps=4)
    loaded = gantransfer.load(tmp_path)
    assert isinstance(loaded, type(trainer.model)) and loaded.arch_name == "toy"
    assert not loaded.training
    z = torch.randn(3, 8, generator=torch.Generator().manual_seed(1))
    trainer.model.eval()
    with torch.no_grad():
        assert torch.equal(loaded.nets["g"](z), trainer.model.nets["g"](z))


def test_load_uses_ema_weights_unless_asked_not_to(tmp_path: Path) -> None:
    trainer = train(tmp_path, steps=4, ema_decay=0.5)
    key = "body.0.weight"
    averaged = trainer.ema.state["g"][key]
    live = trainer.model.nets["g"].state_dict()[key]
    assert not torch.equal(averaged, live)
    assert torch.equal(gantransfer.load(tmp_path).nets["g"].state_dict()[key], averaged)
    assert torch.equal(gantransfer.load(tmp_path, ema=False).nets["g"].state_dict()[key], live)


def test_load_ema_true_without_ema_is_an_error(tmp_path: Path) -> None:
    train(tmp_path, steps=2)
    with pytest.raises(CheckpointError, match="no EMA"):
        gantransfer.load(tmp_path, ema=True)
