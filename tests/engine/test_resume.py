"""Exact resume: K steps straight == K/2 steps, a fresh process-like restart, K/2 more (CPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from _toy import ToyImages, make_toy

from gantransfer.engine import CheckpointError, TrainConfig, Trainer

K = 10  # 8 images, batch 2: 4 steps per epoch, so K/2 = 5 stops mid-epoch 1


def assert_same(a: Any, b: Any, where: str = "") -> None:
    """Recursive bit-equality over tensors and plain containers."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype, where
        assert torch.equal(a, b), f"tensors differ at {where}"
    elif isinstance(a, dict):
        assert sorted(a, key=str) == sorted(b, key=str), f"keys differ at {where}"
        for k in a:
            assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{a!r} != {b!r} at {where}"


def run(run_dir: Path, steps: int, *, data: Any = None, resume: str | None = None,
        **train: Any) -> Trainer:
    model = make_toy(decay_steps=12)  # a brand-new model each time, as a new process would build
    config = TrainConfig(steps=steps, batch_size=2, device="cpu", seed=7, log_every=1,
                         sample_every=3, sample_count=2, checkpoint_every=100, **train)
    trainer = Trainer(model, data if data is not None else ToyImages(8), config, run_dir,
                      callbacks=())
    trainer.fit(resume=resume)
    return trainer


def assert_runs_identical(a: Trainer, b: Trainer) -> None:
    assert a.step == b.step == K
    assert (a.epoch, a.position) == (b.epoch, b.position)
    assert_same(a.model.state_dict(), b.model.state_dict(), "model")
    for g in a.optimizers:
        assert_same(a.optimizers[g].state_dict(), b.optimizers[g].state_dict(), f"optim.{g}")
        assert_same(a.schedulers[g].state_dict(), b.schedulers[g].state_dict(), f"sched.{g}")
    if a.ema is not None:
        assert_same(a.ema.state_dict(), b.ema.state_dict(), "ema")


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_gives_identical_weights_and_optimizer_state(tmp_path: Path, workers: int) -> None:
    straight = run(tmp_path / "straight", K, num_workers=workers)
    first = run(tmp_path / "split", K // 2, num_workers=workers)
    assert (first.epoch, first.position) == (1, 2)  # stopped mid-epoch
    resumed = run(tmp_path / "split", K, resume="auto", num_workers=workers)
    assert resumed.start_step == K // 2
    assert_runs_identical(straight, resumed)
    # The schedule advanced across the restart: lr = 1e-3 * (1 - 10/12).
    assert resumed.optimizers["g"].param_groups[0]["lr"] == pytest.approx(1e-3 * 2 / 12)


def test_resume_with_ema_keeps_average_identical(tmp_path: Path) -> None:
    straight = run(tmp_path / "a", K, num_workers=0, ema_decay=0.9)
    run(tmp_path / "b", K // 2, num_workers=0, ema_decay=0.9)
    resumed = run(tmp_path / "b", K, resume=str(tmp_path / "b"), num_workers=0, ema_decay=0.9)
    assert_runs_identical(straight, resumed)
    live = straight.model.nets["g"].state_dict()["body.0.weight"]
    assert not torch.equal(straight.ema.state["g"]["body.0.weight"], live)


def test_resume_with_real_image_folder(tmp_path: Path) -> None:
    from gantransfer.data import DataConfig
    from gantransfer.data.demo import make_single

    make_single(tmp_path / "images", n=8, size=16, seed=3)
    data = DataConfig(root=str(tmp_path / "images"), preprocess="resize_and_crop", load_size=12,
                      crop_size=8, flip=True, channels=3)
    straight = run(tmp_path / "a", K, data=data, num_workers=0)
    run(tmp_path / "b", K // 2, data=data, num_workers=0)
    resumed = run(tmp_path / "b", K, data=data, resume="auto", num_workers=0)
    assert_runs_identical(straight, resumed)
    assert "data" in (tmp_path / "b" / "config.toml").read_text()


def test_resume_auto_without_checkpoint_starts_fresh(tmp_path: Path) -> None:
    fresh = run(tmp_path / "a", 3, resume="auto", num_workers=0)
    plain = run(tmp_path / "b", 3, num_workers=0)
    assert fresh.start_step == 0
    assert_same(fresh.model.state_dict(), plain.model.state_dict(), "model")


def test_resume_into_model_with_other_config_is_refused(tmp_path: Path) -> None:
    run(tmp_path, 2, num_workers=0)
    other = make_toy(nz=4)
    trainer = Trainer(other, ToyImages(8), TrainConfig(steps=4, batch_size=2, device="cpu"),
                      tmp_path, callbacks=())
    with pytest.raises(CheckpointError, match="nz"):
        trainer.fit(resume="auto")


def test_ctrl_c_saves_checkpoint_then_reraises(tmp_path: Path) -> None:
    from gantransfer.engine import Callback

    class Interrupt(Callback):
        def on_step_end(self, trainer, metrics):
            if trainer.step == 3:
                raise KeyboardInterrupt

    model = make_toy()
    trainer = Trainer(model, ToyImages(8), TrainConfig(steps=10, batch_size=2, device="cpu",
                                                       num_workers=0), tmp_path,
                      callbacks=[Interrupt()])
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    saved = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert saved == ["step_0000003.pt"]
