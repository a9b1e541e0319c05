"""Sync-free logging (issue 18): train_step's losses stay tensors and are read once per log line,
with the same training and the same metrics.jsonl numbers as reading every step with float()."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from _toy import ToyImages, make_toy

from gantransfer.engine import Callback, TrainConfig, Trainer
from gantransfer.engine import trainer as trainer_module


def _config(**overrides) -> TrainConfig:
    values = {"steps": 7, "batch_size": 2, "device": "cpu", "num_workers": 0, "sample_every": 0,
              "sample_count": 2, "checkpoint_every": 0}
    return TrainConfig(**{**values, **overrides})


class FloatEveryStep(Callback):
    """Today's reading: every step's losses converted with float() as the step ends."""

    def __init__(self) -> None:
        self.steps: list[dict[str, float]] = []

    def on_step_end(self, trainer, metrics) -> None:
        self.steps.append({k: float(v) for k, v in trainer._unread[-1].items()})


def _old_means(steps: list[dict[str, float]], *, log_every: int) -> dict[int, dict[str, float]]:
    """metrics.jsonl's losses as the loop computed them before: a Python float sum per key,
    step by step, divided by the count at each log step (and at the last step)."""
    means, sums, count = {}, {}, 0
    for step, losses in enumerate(steps, start=1):
        for k, v in losses.items():
            sums[k] = sums.get(k, 0.0) + v
        count += 1
        if step % log_every == 0 or step == len(steps):
            means[step] = {k: v / count for k, v in sums.items()}
            sums, count = {}, 0
    return means


def _train(tmp_path: Path, log_every: int) -> tuple[Trainer, FloatEveryStep, list[dict]]:
    recorder = FloatEveryStep()
    trainer = Trainer(make_toy(), ToyImages(12), _config(log_every=log_every), tmp_path,
                      callbacks=[recorder])
    trainer.fit()
    lines = [json.loads(ln) for ln in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    return trainer, recorder, [ln for ln in lines if "losses" in ln]


@pytest.mark.parametrize("log_every", [1, 5])
def test_metrics_are_todays_means(tmp_path: Path, log_every: int) -> None:
    _, recorder, lines = _train(tmp_path, log_every)
    assert len(recorder.steps) == 7 and all(len(s) == 2 for s in recorder.steps)
    expected = _old_means(recorder.steps, log_every=log_every)
    assert {ln["step"]: ln["losses"] for ln in lines} == expected  # exact float equality
    assert sorted(expected) == ([1, 2, 3, 4, 5, 6, 7] if log_every == 1 else [5, 7])


def test_log_interval_does_not_change_training(tmp_path: Path) -> None:
    a, steps_a, _ = _train(tmp_path / "a", 1)
    b, steps_b, _ = _train(tmp_path / "b", 5)
    assert steps_a.steps == steps_b.steps
    for name in ("g", "d"):
        sa, sb = a.model.nets[name].state_dict(), b.model.nets[name].state_dict()
        assert sa.keys() == sb.keys()
        for k in sa:
            assert torch.equal(sa[k], sb[k]), (name, k)


def test_losses_are_read_once_per_log_line(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = trainer_module.read_losses

    def counting(steps):
        calls.append(len(steps))
        return real(steps)

    monkeypatch.setattr(trainer_module, "read_losses", counting)
    seen_keys = []

    class Names(Callback):  # names only: no read
        def on_step_end(self, trainer, metrics):
            seen_keys.append(sorted(metrics))

    from gantransfer.cli._progress import RichProgress

    bar = RichProgress()  # gtx train's progress bar: it must not read losses every step either
    shown = []
    monkeypatch.setattr(bar, "on_log", lambda trainer, record: (
        shown.append(dict(record["losses"])), RichProgress.on_log(bar, trainer, record)))
    Trainer(make_toy(), ToyImages(12), _config(log_every=3), tmp_path,
            callbacks=[Names(), bar]).fit()
    assert calls == [3, 3, 1]  # steps 3, 6 and the last (7): one read each, no read per step
    assert seen_keys == [["loss_d", "loss_g"]] * 7
    assert len(shown) == 3 and all(sorted(s) == ["loss_d", "loss_g"] for s in shown)


def test_a_callback_reading_values_gets_that_steps_floats(tmp_path: Path) -> None:
    got: list[tuple[dict[str, float], dict[str, float]]] = []

    class Reader(Callback):
        def on_step_end(self, trainer, metrics):
            raw = trainer._unread[-1]
            got.append((dict(metrics), {k: float(v) for k, v in raw.items()}))

    trainer = Trainer(make_toy(), ToyImages(8), _config(steps=3, log_every=2), tmp_path,
                      callbacks=[Reader()])
    trainer.fit()
    assert len(got) == 3 and all(a == b for a, b in got)
    assert dict(trainer.latest_losses) == got[-1][0]


def test_read_losses_mixes_dtypes_and_numbers_exactly() -> None:
    steps = [{"a": torch.tensor(0.1), "b": 2, "c": torch.tensor(1 / 3, dtype=torch.bfloat16)},
             {"a": torch.tensor([1e-8]), "c": torch.tensor(7.0, dtype=torch.float16), "b": 0.5}]
    out = trainer_module.read_losses(steps)
    assert out == [{k: float(v) for k, v in s.items()} for s in steps]
    assert [list(o) for o in out] == [["a", "b", "c"], ["a", "c", "b"]]  # returned order
    with pytest.raises(ValueError, match="'x' with shape"):
        trainer_module.read_losses([{"x": torch.zeros(2)}])
