"""Issue 12, item 5: SIGTERM (what SLURM, Kubernetes and systemd send before killing a job) stops
training at a step boundary with a checkpoint, exit code 143, in one process and under DDP.

Run in subprocesses only: on a trainer without a SIGTERM handler the signal would kill pytest.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from test_distributed_failures import COMMON, _env, data, site  # noqa: F401 (fixtures)


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gantransfer", "train", *args], env=env,
                            start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _stop_after_two_steps(proc: subprocess.Popen, run: Path, *, group: bool
                          ) -> tuple[int, str, float]:
    """Wait until two steps are logged, send SIGTERM (to the process group: what SLURM and
    systemd do; or to the process alone: what Kubernetes does to PID 1), wait for the end."""
    metrics = run / "metrics.jsonl"
    try:
        deadline = time.monotonic() + 90
        while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 2):
            assert time.monotonic() < deadline and proc.poll() is None, "training never started"
            time.sleep(0.1)
        t0 = time.monotonic()
        if group:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        return proc.returncode, out, time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _saved_step(run: Path, out: str) -> int:
    saved = sorted((run / "checkpoints").glob("step_*.pt"))
    assert len(saved) == 1, out[-3000:]
    step = torch.load(saved[0], weights_only=True)["step"]
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["step"] == step
    assert f"stoppedbySIGTERMatstep{step}:latestcheckpoint{saved[0]}" in "".join(out.split()) \
        or f"stoppedbySIGTERM:latestcheckpoint{saved[0]}" in "".join(out.split()), out[-2000:]
    assert "Traceback" not in out
    return step


def test_sigterm_stops_at_a_step_boundary_saves_and_exits_143(site, data, tmp_path):  # noqa: F811
    run = tmp_path / "run"
    args = ["flaky", "--data", str(data), "-o", str(run), "--set", "step_sleep=0.05", *COMMON,
            "--set", "checkpoint_every=1000"]
    code, out, elapsed = _stop_after_two_steps(_start([*args, "--steps", "10000"], _env(site)),
                                               run, group=False)
    assert code == 143 and elapsed < 30, (code, elapsed, out[-3000:])
    step = _saved_step(run, out)
    assert "SIGTERM: stopping after the current step" in out

    resumed = subprocess.run([sys.executable, "-m", "gantransfer", "train", "-o", str(run),
                              "--resume", "auto", "--steps", str(step + 2), "--progress",
                              "none"], env=_env(site), capture_output=True, text=True,
                             timeout=120)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    steps = [json.loads(ln)["step"] for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps[-3:] == [step, step + 1, step + 2] and len(steps) == len(set(steps))


@pytest.mark.parametrize("group", [True, False], ids=["to-the-group", "to-the-launcher"])
def test_sigterm_stops_every_rank_of_gtx_nproc_and_saves(site, data, tmp_path,  # noqa: F811
                                                         group):
    run = tmp_path / "run"
    args = ["flaky", "--data", str(data), "-o", str(run), "--set", "step_sleep=0.05", *COMMON,
            "--set", "checkpoint_every=1000", "--nproc", "2", "--steps", "10000"]
    code, out, elapsed = _stop_after_two_steps(_start(args, _env(site)), run, group=group)
    assert code == 143 and elapsed < 40, (code, elapsed, out[-3000:])
    step = _saved_step(run, out)
    state = torch.load(run / "checkpoints" / f"step_{step:07d}.pt", weights_only=True)
    assert state["world_size"] == 2 and len(state["rng_ranks"]) == 2  # both ranks agreed
