"""Issue 12, items 2, 3 and 7: one run per run directory, the run-directory lock, and `--seed`
reproducing the weights."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from _toy import ToyImages, make_toy
from typer.testing import CliRunner

import gantransfer
from gantransfer.cli.app import app
from gantransfer.data.demo import make_single
from gantransfer.engine import (
    RunDirectoryInUseError,
    RunExistsError,
    TrainConfig,
    Trainer,
)
from gantransfer.engine.rundir import LOCK_NAME, RunLock

DCGAN = ["dcgan", "--set", "image_size=16", "--set", "ngf=4", "--set", "ndf=4",
         "--set", "data.load_size=16", "--set", "data.crop_size=16", "-b", "4",
         "--device", "cpu", "--progress", "none", "--set", "log_every=1"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rel_runs_data")
    make_single(root, n=8, size=16, seed=0)
    return root


def _train(data: Path, run: Path, *args: str):
    return CliRunner().invoke(app, ["train", *DCGAN, "--data", str(data), "-o", str(run),
                                    *args])


def _gtx(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="200", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "gantransfer", *args], capture_output=True,
                          text=True, env=env, timeout=timeout)


def _files(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*"))
            if p.is_file() and p.name != LOCK_NAME}


def _steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]


# -- item 2: a run directory holds one run ---------------------------------------------------------
def test_a_new_run_in_a_run_directory_is_refused_and_overwrite_moves_the_old_one_aside(data,
                                                                                      tmp_path):
    run = tmp_path / "run"
    assert _train(data, run, "--steps", "3").exit_code == 0
    before = _files(run)
    assert _steps(run) == [1, 2, 3]

    again = _train(data, run, "--steps", "2")
    assert again.exit_code == 1 and isinstance(again.exception, RunExistsError)
    message = str(again.exception)
    assert "already holds a run" in message and "step_0000003.pt" in message
    assert "--resume auto" in message and "--overwrite" in message
    assert _files(run) == before  # not a byte changed, config.toml included

    assert _train(data, run, "--steps", "2", "--overwrite").exit_code == 0
    aside = list(tmp_path.glob("run.replaced-*"))
    assert len(aside) == 1 and _files(aside[0]) == before  # the old run, whole
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step_0000002.pt"]
    assert _steps(run) == [1, 2]

    both = _train(data, run, "--steps", "4", "--resume", "auto", "--overwrite")
    assert both.exit_code == 2 and "give one of them" in both.output


def test_the_python_trainer_refuses_too_and_can_move_the_old_run_aside(tmp_path):
    def trainer(steps: int) -> Trainer:
        config = TrainConfig(steps=steps, batch_size=2, device="cpu", log_every=1,
                             sample_every=0, num_workers=0)
        return Trainer(make_toy(), ToyImages(8), config, tmp_path / "run", callbacks=())

    trainer(2).fit()
    with pytest.raises(RunExistsError, match=r"fit\(resume='auto'\)"):
        trainer(3).fit()
    assert trainer(3).fit(resume="auto") is not None  # continuing is fine
    assert _steps(tmp_path / "run") == [1, 2, 3]
    trainer(1).fit(overwrite=True)
    assert _steps(tmp_path / "run") == [1]
    (aside,) = tmp_path.glob("run.replaced-*")
    assert _steps(aside) == [1, 2, 3]
    with pytest.raises(ValueError, match="cannot be combined with resume"):
        trainer(1).fit(resume="auto", overwrite=True)


def test_resume_auto_without_a_checkpoint_does_not_mix_in_the_killed_runs_metrics(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    # A run killed before its first checkpoint left metrics for steps 1-4.
    (run / "metrics.jsonl").write_text("".join(json.dumps({"step": s}) + "\n" for s in range(1, 5)))
    config = TrainConfig(steps=2, batch_size=2, device="cpu", log_every=1, sample_every=0,
                         num_workers=0)
    Trainer(make_toy(), ToyImages(8), config, run, callbacks=()).fit(resume="auto")
    assert _steps(run) == [1, 2]


# -- item 3: the run-directory lock ----------------------------------------------------------------
def test_a_run_directory_in_use_is_refused_naming_the_holder(tmp_path):
    run = tmp_path / "run"
    config = TrainConfig(steps=1, batch_size=2, device="cpu", sample_every=0, num_workers=0)
    with RunLock(run):
        for resume in (None, "auto"):
            with pytest.raises(RunDirectoryInUseError) as err:
                Trainer(make_toy(), ToyImages(8), config, run, callbacks=()).fit(resume=resume)
            assert err.value.holder["pid"] == os.getpid()
            assert f"process {os.getpid()} on host {socket.gethostname()} since" in str(err.value)
    assert not (run / "checkpoints").exists()
    Trainer(make_toy(), ToyImages(8), config, run, callbacks=()).fit()  # free again
    assert (run / "checkpoints" / "step_0000001.pt").is_file()


HOLD = ("import sys, time\nfrom gantransfer.engine.rundir import RunLock\n"
        "lock = RunLock(sys.argv[1]).acquire()\nprint('locked', flush=True)\ntime.sleep(300)\n")


def test_a_second_process_is_refused_and_a_killed_holders_lock_is_recognised(data, tmp_path):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        second = _gtx("train", *DCGAN, "--data", str(data), "-o", str(run), "--steps", "1")
        assert second.returncode == 1, second.stderr
        text = " ".join(second.stderr.split())
        assert f"is in use by process {holder.pid} on host {socket.gethostname()}" in text
        assert "Traceback" not in second.stderr
        assert not (run / "config.toml").exists()  # refused before writing anything
    finally:
        holder.send_signal(signal.SIGKILL)  # dies without releasing: its details stay
        holder.wait()
    third = _gtx("train", *DCGAN, "--data", str(data), "-o", str(run), "--steps", "1")
    assert third.returncode == 0, third.stderr
    assert "ended without releasing its lock" in " ".join(third.stderr.split())
    assert (run / "checkpoints" / "step_0000001.pt").is_file()
    assert (run / LOCK_NAME).read_text() == ""  # released cleanly this time


def test_a_locked_run_directory_stops_every_rank_of_a_distributed_run(data, tmp_path):
    run = tmp_path / "run"
    with RunLock(run):
        t0 = time.monotonic()
        out = _gtx("train", *DCGAN, "--data", str(data), "-o", str(run), "--steps", "2",
                   "--nproc", "2", "--set", "num_workers=0")
        elapsed = time.monotonic() - t0
    assert out.returncode == 1 and elapsed < 90, (elapsed, out.stderr[-3000:])
    text = " ".join(out.stderr.split())
    assert "error: rank 0 failed: RunDirectoryInUseError: run directory" in text, text[-2000:]
    assert f"is in use by process {os.getpid()}" in text
    assert not (run / "checkpoints").exists()


# -- item 7: --seed seeds the weights too ----------------------------------------------------------
def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "step_0000002.pt", weights_only=True)["model"]


def test_the_same_gtx_train_command_gives_identical_weights(data, tmp_path):
    for name, seed in (("a", "5"), ("b", "5"), ("c", "6")):
        done = _gtx("train", *DCGAN, "--data", str(data), "-o", str(tmp_path / name),
                    "--steps", "2", "--seed", seed)
        assert done.returncode == 0, done.stderr
    a, b, c = (_weights(tmp_path / n) for n in "abc")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)  # bit-identical after training
    assert not all(torch.equal(a[k], c[k]) for k in a)  # and the seed matters


def test_get_with_a_seed_builds_the_same_weights_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    one = gantransfer.get("dcgan", ngf=4, ndf=4, seed=9).state_dict()
    two = gantransfer.get("dcgan", ngf=4, ndf=4, seed=9).state_dict()
    assert all(torch.equal(one[k], two[k]) for k in one)
    assert torch.equal(torch.rand(3), expected_next)
