"""Trainer behaviour: config validation, precision, divergence, schedules, outputs, sampler."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from _toy import ToyImages, make_toy
from PIL import Image

import gantransfer
from gantransfer.engine import (
    Callback,
    EngineContext,
    ResumableSampler,
    TrainConfig,
    Trainer,
    TrainingDivergedError,
    find_latest,
    make_grid,
)


def config(**overrides) -> TrainConfig:
    values = {"steps": 4, "batch_size": 2, "device": "cpu", "num_workers": 0, "sample_every": 0,
              "sample_count": 4, "log_every": 2}
    return TrainConfig(**{**values, **overrides})


def test_train_config_needs_exactly_one_length() -> None:
    with pytest.raises(ValueError, match="exactly one of steps and epochs"):
        TrainConfig(batch_size=2)
    with pytest.raises(ValueError, match="exactly one of steps and epochs"):
        TrainConfig(steps=3, epochs=1)
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(steps=3, precision="fp8")


def test_epochs_count_whole_batches(tmp_path: Path) -> None:
    trainer = Trainer(make_toy(), ToyImages(9), config(steps=None, epochs=2), tmp_path,
                      callbacks=())
    assert (trainer.steps_per_epoch, trainer.total_steps) == (4, 8)
    trainer.fit()
    assert (trainer.step, trainer.epoch, trainer.position) == (8, 2, 0)


def test_fp16_on_cpu_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"fp16.*CUDA.*bf16"):
        Trainer(make_toy(), ToyImages(8), config(precision="fp16"), tmp_path)


def test_bf16_on_cpu_trains(tmp_path: Path) -> None:
    model = make_toy()
    before = model.nets["g"].body[0].weight.detach().clone()
    Trainer(model, ToyImages(8), config(precision="bf16"), tmp_path, callbacks=()).fit()
    after = model.nets["g"].body[0].weight
    assert after.dtype == torch.float32 and torch.isfinite(after).all()
    assert not torch.equal(before, after)


def test_nan_losses_stop_training_and_keep_last_good_checkpoint(tmp_path: Path) -> None:
    model = make_toy(nan_from_step=3)
    trainer = Trainer(model, ToyImages(8), config(steps=20, checkpoint_every=2,
                                                  max_nonfinite_steps=3), tmp_path, callbacks=())
    with pytest.raises(TrainingDivergedError, match="3 consecutive steps"):
        trainer.fit()
    assert trainer.step == 6 and trainer.ctx.nonfinite_total == 6  # two groups per step
    assert find_latest(tmp_path).name == "step_0000002.pt"
    loaded = gantransfer.load(tmp_path)
    assert all(torch.isfinite(t).all() for t in loaded.state_dict().values()
               if torch.is_tensor(t) and t.is_floating_point())


def test_scheduler_waits_for_first_optimizer_step(tmp_path: Path) -> None:
    # Every step is skipped: stepping LambdaLR would warn (an error under our pytest config).
    model = make_toy(nan_from_step=0)
    trainer = Trainer(model, ToyImages(8), config(steps=3, max_nonfinite_steps=10), tmp_path,
                      callbacks=())
    trainer.fit()
    assert trainer.optimizers["g"].param_groups[0]["lr"] == 1e-3
    assert trainer.ctx.optimizer_steps == {"g": 0, "d": 0}


def test_metrics_lines_parse_and_hold_losses(tmp_path: Path) -> None:
    Trainer(make_toy(), ToyImages(8), config(steps=5), tmp_path, callbacks=()).fit()
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4, 5]
    for r in records:
        assert set(r["losses"]) == {"loss_d", "loss_g"}
        assert all(v == v and v > 0 for v in r["losses"].values())  # finite softplus losses
        assert set(r["lr"]) == {"g", "d"} and r["its"] > 0 and r["nonfinite"] == 0
    assert records[-1]["lr"]["g"] == pytest.approx(1e-3 * (1 - 5 / 50))


def test_sample_grid_has_one_row_per_output(tmp_path: Path) -> None:
    Trainer(make_toy(), ToyImages(8), config(steps=4, sample_every=2), tmp_path,
            callbacks=()).fit()
    names = sorted(p.name for p in (tmp_path / "samples").iterdir())
    assert names == ["step_0000000.png", "step_0000002.png", "step_0000004.png"]  # step 0 too
    with Image.open(tmp_path / "samples" / names[-1]) as image:
        assert image.size == (4 * 8, 2 * 8) and image.mode == "RGB"  # rows: real, fake


def test_make_grid_mixes_gray_and_rgb_rows() -> None:
    grid = make_grid({"a": torch.full((2, 1, 4, 4), 1.0), "b": -torch.ones(1, 3, 4, 4)})
    assert grid.shape == (8, 8, 3) and grid.dtype == torch.uint8
    assert grid[:4].eq(255).all() and grid[4:].eq(0).all()


def test_callbacks_see_progress(tmp_path: Path) -> None:
    seen = []

    class Recorder(Callback):
        def on_step_end(self, trainer, metrics):
            seen.append((trainer.step, trainer.total_steps, sorted(metrics)))

    Trainer(make_toy(), ToyImages(8), config(steps=2), tmp_path, callbacks=[Recorder()]).fit()
    assert seen == [(1, 2, ["loss_d", "loss_g"]), (2, 2, ["loss_d", "loss_g"])]


def _context() -> EngineContext:
    model = make_toy()
    opts = model.make_optimizers()
    return EngineContext(model, optimizers=opts, groups=model.optimizer_groups(), scalers={},
                         precision="fp32", device=torch.device("cpu"), grad_clip=None, ema=None)


def test_frozen_restores_previous_flags() -> None:
    ctx = _context()
    d = ctx.model.nets["d"]
    d[1].bias.requires_grad_(False)
    with ctx.frozen("d"):
        assert not any(p.requires_grad for p in d.parameters())
    assert not d[1].bias.requires_grad and d[1].weight.requires_grad


def test_optimize_zeroes_only_its_group_and_clips() -> None:
    ctx = _context()
    ctx.grad_clip = 1e-3
    g, d = ctx.model.nets["g"], ctx.model.nets["d"]
    loss = d(g(torch.randn(4, 8))).mean() * 1e3
    assert ctx.optimize("g", loss)
    d_grads = [p.grad for p in d.parameters()]
    assert all(x is not None for x in d_grads)  # D's grads are left for D's own step to clear
    assert torch.nn.utils.get_total_norm([p.grad for p in g.parameters()]) <= 1e-3 * 1.001
    assert not ctx.optimize("d", torch.tensor(float("inf")))
    assert all(p.grad is x for p, x in zip(d.parameters(), d_grads, strict=True))  # no backward


def test_sampler_shards_and_resumes_mid_epoch() -> None:
    full = list(ResumableSampler(10, seed=1))
    assert sorted(i for i, _ in full) == list(range(10))
    shards = [list(ResumableSampler(10, seed=1, rank=r, world_size=3)) for r in range(3)]
    assert [len(s) for s in shards] == [3, 3, 3]
    assert sorted(k for s in shards for k in s) == sorted(full[:9])
    tail = ResumableSampler(10, seed=1)
    tail.set_position(4)
    assert list(tail) == full[4:]
    other = ResumableSampler(10, seed=1)
    other.set_epoch(1)
    assert list(other) != full


def test_iterating_the_loader_keeps_global_rng(tmp_path: Path) -> None:
    trainer = Trainer(make_toy(), ToyImages(8), config(), tmp_path, callbacks=())
    trainer._setup()
    state = torch.get_rng_state()
    next(iter(trainer.loader))
    assert torch.equal(torch.get_rng_state(), state)


def test_engine_context_satisfies_step_context_protocol() -> None:
    assert isinstance(_context(), gantransfer.StepContext)
    assert gantransfer.Trainer is Trainer and gantransfer.TrainConfig is TrainConfig
