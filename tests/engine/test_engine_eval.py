"""Evaluation during training (eval_every), the best checkpoint, exact resume with both, the
step-0 sample grid, held-out splits, and the TensorBoard logger read back with tensorboard's
own reader."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from test_resume import assert_same

import gantransfer
from gantransfer.data import DataConfig, demo
from gantransfer.engine import TrainConfig, Trainer
from gantransfer.engine.checkpoint import read_checkpoint
from gantransfer.evaluation import random_inception_weights


@pytest.fixture(autouse=True)
def _no_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub cache: no Inception weights unless a test puts them there."""
    home = tmp_path / "torch-home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


@pytest.fixture
def data(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    demo.make_two_domain(root, n_train=6, n_test=3, size=32, seed=0)
    return root


def _train(run_dir: Path, data: Path, steps: int, *, resume: str | None = None,
           **train: Any) -> Trainer:
    model = gantransfer.get("cyclegan", netG="resnet_6blocks", ngf=4, ndf=4, seed=0)
    options: dict[str, Any] = {"eval_every": 2, "log_every": 1, "sample_every": 3,
                               "sample_count": 2, "checkpoint_every": 2, "keep_checkpoints": 1}
    options.update(train)
    config = TrainConfig(steps=steps, device="cpu", seed=3, **options)
    trainer = Trainer(model, DataConfig(root=data, load_size=32, crop_size=32), config, run_dir,
                      callbacks=())
    trainer.fit(resume=resume)
    return trainer


def _evals(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if "eval" in r]


def test_eval_every_best_checkpoint_and_exact_resume(tmp_path: Path, data: Path) -> None:
    straight = _train(tmp_path / "straight", data, 6)
    records = _evals(tmp_path / "straight")
    assert [r["step"] for r in records] == [2, 4, 6]
    a2b = records[0]["eval"]["a2b"]
    # No Inception weights: the weights-free metrics ran, and the record says why FID/KID did not.
    assert sorted(records[0]["eval"]) == ["a2b", "b2a"]
    assert a2b["n_real"] == a2b["n_fake"] == 3 and a2b["n_pairs"] == 3  # demo testB = truth
    assert isinstance(a2b["psnr"], float) and isinstance(a2b["stats"], float)
    assert 0 < a2b["ssim"] <= 1
    # testA is the ground truth of testB too (the restyling is a bijection, same names).
    assert records[0]["eval"]["b2a"]["n_pairs"] == 3
    assert "gtx weights download inception" in records[0]["skipped"]["fid"]
    # auto picks a2b/psnr (fid did not run); best.pt holds the best step; rotation keeps it.
    values = [r["eval"]["a2b"]["psnr"] for r in records]
    best_step = records[max(range(3), key=lambda i: (values[i], -i))]["step"]
    assert records[-1]["best"] == {"metric": "a2b/psnr", "value": max(values), "step": best_step}
    names = sorted(p.name for p in (tmp_path / "straight" / "checkpoints").iterdir())
    assert names == ["best.pt", "step_0000006.pt"]
    best = read_checkpoint(tmp_path / "straight" / "checkpoints" / "best.pt")
    assert best["step"] == best_step and best["best"]["value"] == max(values)
    # gantransfer.load (and so gtx eval/translate/export) takes it like any checkpoint.
    model = gantransfer.load(tmp_path / "straight" / "checkpoints" / "best.pt", device="cpu")
    assert_same(model.state_dict(), best["model"], "loaded best")
    # The first sample grid is written at step 0, before training.
    assert (tmp_path / "straight" / "samples" / "step_0000000.png").is_file()

    # Exact resume: 4 steps, then a new process continues to 6.
    _train(tmp_path / "split", data, 4)
    resumed = _train(tmp_path / "split", data, 6, resume="auto")
    assert_same(straight.model.state_dict(), resumed.model.state_dict(), "model")
    for g in straight.optimizers:
        assert_same(straight.optimizers[g].state_dict(), resumed.optimizers[g].state_dict(), g)
    split = _evals(tmp_path / "split")
    assert [r["eval"] for r in split] == [r["eval"] for r in records]
    assert split[-1]["best"] == records[-1]["best"]
    assert_same(read_checkpoint(tmp_path / "split" / "checkpoints" / "best.pt")["model"],
                best["model"], "best")


def test_evaluation_does_not_change_training(tmp_path: Path, data: Path) -> None:
    with_eval = _train(tmp_path / "a", data, 4)
    without = _train(tmp_path / "b", data, 4, eval_every=0)
    assert_same(with_eval.model.state_dict(), without.model.state_dict(), "model")
    assert not _evals(tmp_path / "b")
    assert not (tmp_path / "b" / "checkpoints" / "best.pt").exists()


def test_eval_with_inception_weights_runs_fid_and_kid(tmp_path: Path, data: Path,
                                                      _no_weights: Path) -> None:
    from gantransfer.evaluation import INCEPTION_WEIGHTS

    folder = _no_weights / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    buffer = io.BytesIO()
    torch.save(random_inception_weights(seed=1), buffer)
    (folder / INCEPTION_WEIGHTS.filename).write_bytes(buffer.getvalue())
    _train(tmp_path / "run", data, 2, eval_metrics="fid,kid,psnr", eval_best="auto")
    (record,) = _evals(tmp_path / "run")
    a2b = record["eval"]["a2b"]
    assert a2b["fid"] > 0 and isinstance(a2b["kid"], float) and a2b["n_real"] == 3
    assert "stats" not in a2b and record["skipped"] == {}
    assert record["best"]["metric"] == "a2b/fid"


def test_explicit_fid_without_weights_fails_before_training(tmp_path: Path, data: Path) -> None:
    from gantransfer.evaluation import WeightsNotFoundError

    with pytest.raises(WeightsNotFoundError, match="gtx weights download inception"):
        _train(tmp_path / "run", data, 2, eval_metrics="fid")
    assert not (tmp_path / "run" / "checkpoints").exists()
    with pytest.raises(ValueError, match="eval_best"):
        TrainConfig(steps=1, eval_every=1, eval_best="a2b/bogus")


def test_holdout_fraction_is_never_trained_on(tmp_path: Path) -> None:
    root = tmp_path / "single"
    demo.make_single(root, n=20, size=32, seed=0)
    model = gantransfer.get("dcgan", image_size=32, ngf=4, ndf=4, nz=8, seed=0)
    config = TrainConfig(steps=2, device="cpu", eval_every=2, eval_holdout=0.25, batch_size=2,
                         sample_count=2)
    trainer = Trainer(model, DataConfig(root=root), config, tmp_path / "run", callbacks=())
    held = trainer.evaluator.targets[0].real  # type: ignore[union-attr]
    assert len(held) == 5 and len(trainer.dataset) == 15
    assert not set(held) & set(trainer.dataset.files["image"])
    # The same seed holds out the same images.
    again = Trainer(gantransfer.get("dcgan", image_size=32, ngf=4, ndf=4, nz=8, seed=0),
                    DataConfig(root=root), config, tmp_path / "run2", callbacks=())
    assert again.evaluator.targets[0].real == held  # type: ignore[union-attr]
    trainer.fit()
    (record,) = _evals(tmp_path / "run")
    assert record["eval"]["generator"]["n_fake"] == 5
    assert isinstance(record["eval"]["generator"]["stats"], float)
    assert record["best"]["metric"] == "generator/stats"


def test_tensorboard_events_hold_every_loss_at_every_step_and_the_samples(
        tmp_path: Path, data: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trainer = _train(tmp_path / "run", data, 4, loggers=("tensorboard",))
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text()
              .splitlines()]
    loss_lines = [r for r in logged if "losses" in r]
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"),
                              size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    events.Reload()
    tags = events.Tags()
    loss_names = sorted(loss_lines[0]["losses"])
    assert len(loss_names) >= 4
    for name in loss_names:
        scalars = events.Scalars(f"loss/{name}")
        assert [s.step for s in scalars] == [r["step"] for r in loss_lines] == [1, 2, 3, 4]
        assert [s.value for s in scalars] == pytest.approx(
            [r["losses"][name] for r in loss_lines], rel=1e-6)
    for group in trainer.optimizers:
        assert len(events.Scalars(f"lr/{group}")) == 4
    assert [s.step for s in events.Scalars("eval/a2b/psnr")] == [2, 4]
    images = events.Images("samples")
    assert [i.step for i in images] == [0, 3, 4]  # step 0, sample_every=3, the end
    assert images[0].width > 0 and images[0].encoded_image_string.startswith(b"\x89PNG")
    assert "config" in " ".join(tags.get("tensors", []))


def test_distributed_run_evaluates_and_logs_once_and_reports(tmp_path: Path, data: Path) -> None:
    """Two gloo processes (`gtx train --nproc 2`): rank 0 alone evaluates, writes best.pt and
    the TensorBoard events; the other rank takes part in the best checkpoint's RNG gather."""
    import os
    import subprocess
    import sys

    pytest.importorskip("tensorboard")
    pytest.importorskip("matplotlib")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    sets = {"netG": "resnet_6blocks", "ngf": 4, "ndf": 4, "n_layers_D": 2, "load_size": 32,
            "crop_size": 32, "log_every": 1, "sample_every": 2, "eval_every": 2,
            "eval_metrics": "psnr,stats", "num_workers": 0}
    args = [a for k, v in sets.items() for a in ("--set", f"{k}={v}")]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "gantransfer", "train", "cyclegan", "--data",
                           str(data), "-o", str(run), "--steps", "4", "--device", "cpu",
                           "--progress", "none", "--nproc", "2", "--logger", "tensorboard",
                           *args], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    evals = _evals(run)
    assert [r["step"] for r in evals] == [2, 4]  # once each: rank 0 alone writes
    assert (run / "checkpoints" / "best.pt").is_file()
    events = list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 2  # rank 0's scalars/images file and its hparams file
    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    assert [s.step for s in acc.Scalars("eval/a2b/psnr")] == [2, 4]
    assert [s.step for s in acc.Scalars("loss/loss_G_A")] == [1, 2, 3, 4]
    assert [i.step for i in acc.Images("samples")] == [0, 2, 4]
    out = tmp_path / "report.html"
    report = subprocess.run([sys.executable, "-m", "gantransfer", "report", str(run), "-o",
                             str(out)], capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr[-2000:]
    assert "id='eval'" in out.read_text()
