"""How a distributed run ends when a rank fails or the user presses Ctrl-C (2 gloo processes).

A tiny third-party architecture, installed through a fake dist-info folder on the workers'
PYTHONPATH, raises on a chosen rank and step, or sleeps a little per step so that a run can be
interrupted while it trains.
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

import gantransfer
from gantransfer.data import DataConfig
from gantransfer.data.demo import make_single
from gantransfer.engine import Callback, TrainConfig, Trainer

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]

FLAKY_PLUGIN = '''
import time
from dataclasses import dataclass

import torch
from torch import nn

from gantransfer.config import field
from gantransfer.model import ExportSpec, GANModel


class Flaky(GANModel):
    """One 1x1 conv trained to output zeros; can fail on purpose or train slowly."""

    @dataclass(kw_only=True)
    class Config:
        fail_rank: int = field(-1, help="rank whose train_step raises (-1: none)")
        fail_step: int = field(0, help="the 1-based step at which it raises")
        step_sleep: float = field(0.0, help="seconds each step sleeps")

    data_kind = "single"

    def __init__(self, config):
        super().__init__(config)
        self.nets["g"] = nn.Conv2d(3, 3, 1)

    def optimizer_groups(self):
        return {"g": ["g"]}

    def make_optimizers(self):
        return {"g": torch.optim.SGD(self.nets["g"].parameters(), lr=0.01)}

    def train_step(self, batch, ctx):
        if ctx.rank == self.config.fail_rank and ctx.step + 1 == self.config.fail_step:
            raise RuntimeError("boom")
        time.sleep(self.config.step_sleep)
        loss = self.nets["g"](batch["image"]).square().mean()
        ctx.optimize("g", loss)
        return {"loss": loss.detach()}

    def sample(self, inputs):
        return {"out": self.nets["g"](inputs["image"]).clamp(-1, 1)}

    def export_targets(self):
        return {"generator": ExportSpec(net="g")}
'''

COMMON = ["--device", "cpu", "--progress", "none", "--set", "sample_every=0",
          "--set", "num_workers=0", "--set", "log_every=1", "-b", "1"]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """A folder holding the fake distribution 'fake-flaky' (architecture 'flaky')."""
    root = tmp_path_factory.mktemp("site")
    dist = root / "fake_flaky-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-flaky\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[gantransfer.architectures]\nflaky = fake_flaky_mod:Flaky\n")
    (root / "fake_flaky_mod.py").write_text(FLAKY_PLUGIN)
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    make_single(root, n=8, size=16, seed=0)
    return root


def _env(site: Path) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return dict(os.environ, PYTHONPATH=path, OMP_NUM_THREADS="1")


def _assert_checkpoints_whole(run: Path) -> None:
    """Every checkpoint under its real name loads (writes are atomic: temp file, then rename)."""
    for path in sorted((run / "checkpoints").glob("step_*.pt")):
        torch.load(path, weights_only=True)


FAIL = ["flaky", "--steps", "50", "--set", "fail_rank=1", "--set", "fail_step=2",
        "--set", "checkpoint_every=1"]


def test_failing_rank_under_torchrun_stops_all_ranks_and_is_named_root_cause(tmp_path, site,
                                                                             data):
    run = tmp_path / "run"
    t0 = time.monotonic()
    proc = subprocess.run([*TORCHRUN, "-m", "gantransfer", "train", *FAIL, "--data", str(data),
                           "-o", str(run), *COMMON], env=_env(site), capture_output=True,
                          text=True, timeout=120)
    elapsed = time.monotonic() - t0
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and elapsed < 60, (elapsed, out[-3000:])
    assert "error: rank 1 failed: boom" in out, out[-3000:]
    # Rank 0 only lost its peer: it says so, and torchrun's summary blames rank 1 with its
    # message (from the error file), not rank 0's "connection closed".
    assert "rank 0 of 2 stopped at step 1: lost contact with another rank" in out
    root_cause = out[out.index("Root Cause"):]
    assert "rank      : 1 (local_rank: 1)" in root_cause, root_cause
    assert "RuntimeError: boom" in root_cause, root_cause
    _assert_checkpoints_whole(run)


def test_failing_rank_under_gtx_nproc_ends_with_one_line_naming_it(tmp_path, site, data):
    run = tmp_path / "run"
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "gantransfer", "train", *FAIL, "--data",
                           str(data), "-o", str(run), "--nproc", "2", *COMMON], env=_env(site),
                          capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 1 and elapsed < 60, (elapsed, proc.stderr[-3000:])
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines[-2:] == ["error: rank 1 failed: RuntimeError: boom",
                          "(run with --debug for the full traceback)"], lines[-6:]
    assert "Traceback" not in proc.stdout + proc.stderr
    # Rank 0 checkpointed step 1 before rank 1 failed in step 2; nothing half-written.
    assert sorted(p.name for p in (run / "checkpoints").glob("step_*.pt")) == ["step_0000001.pt"]
    _assert_checkpoints_whole(run)


def test_ctrl_c_stops_both_ranks_saves_every_rank_state_and_resumes(tmp_path, site, data):
    run = tmp_path / "run"
    args = ["flaky", "--data", str(data), "-o", str(run), "--set", "step_sleep=0.05", *COMMON]
    proc = subprocess.Popen([sys.executable, "-m", "gantransfer", "train", *args, "--steps",
                             "10000", "--nproc", "2"], env=_env(site), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    metrics = run / "metrics.jsonl"
    try:
        deadline = time.monotonic() + 60
        while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 2):
            assert time.monotonic() < deadline and proc.poll() is None, "training never started"
            time.sleep(0.1)
        t0 = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        out, _ = proc.communicate(timeout=40)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130 and elapsed < 30, (elapsed, out[-3000:])
    saved = sorted((run / "checkpoints").glob("step_*.pt"))
    assert len(saved) == 1, out[-3000:]
    state = torch.load(saved[0], weights_only=True)
    step = state["step"]
    # Both ranks stopped at the same step boundary and agreed on the checkpoint: it holds
    # both ranks' RNG states, and the metrics log ends at that step.
    assert state["world_size"] == 2 and len(state["rng_ranks"]) == 2
    assert json.loads(metrics.read_text().splitlines()[-1])["step"] == step
    # (rich wraps the line at the terminal width: compare without whitespace)
    assert f"interrupted:latestcheckpoint{saved[0]}" in "".join(out.split()), out[-2000:]
    assert "Traceback" not in out

    resumed = subprocess.run([sys.executable, "-m", "gantransfer", "train", "-o", str(run),
                              "--resume", "auto", "--steps", str(step + 2), "--nproc", "2",
                              "--progress", "none"], env=_env(site), capture_output=True,
                             text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    steps = [json.loads(ln)["step"] for ln in metrics.read_text().splitlines()]
    assert steps[-3:] == [step, step + 1, step + 2] and len(steps) == len(set(steps))


def test_ctrl_c_in_one_process_stops_at_the_step_boundary_and_saves(tmp_path, site, data,
                                                                    monkeypatch):
    monkeypatch.syspath_prepend(str(site))
    gantransfer.refresh()
    # Python's own Ctrl-C handler, as in a terminal: a process started in the background by a
    # non-interactive shell (`cmd &`) inherits SIGINT ignored, and the trainer then rightly
    # leaves SIGINT alone (seen: this test failed with "DID NOT RAISE" in such a CI run).
    original = signal.signal(signal.SIGINT, signal.default_int_handler)

    class CtrlC(Callback):
        """Sends this process a real SIGINT in the middle of step 3's bookkeeping."""

        def on_step_end(self, trainer, metrics):
            if trainer.step == 3:
                os.kill(os.getpid(), signal.SIGINT)

    try:
        model = gantransfer.get("flaky")
        config = TrainConfig(steps=50, batch_size=2, device="cpu", num_workers=0,
                             sample_every=0)
        trainer = Trainer(model, DataConfig(root=str(data), load_size=16, crop_size=16),
                          config, tmp_path, callbacks=[CtrlC()])
        with pytest.raises(KeyboardInterrupt):
            trainer.fit()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    finally:
        signal.signal(signal.SIGINT, original)
        sys.modules.pop("fake_flaky_mod", None)
        monkeypatch.undo()
        gantransfer.refresh()
    assert trainer.step == 3
    assert [p.name for p in (tmp_path / "checkpoints").glob("step_*.pt")] == ["step_0000003.pt"]



def test_a_lost_connection_is_told_apart_from_the_error_that_caused_it():
    from gantransfer.engine.distributed import is_peer_failure

    gloo = RuntimeError("[/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:553] Connection "
                        "closed by peer [127.0.0.1]:42211")
    assert is_peer_failure(gloo)
    assert is_peer_failure(RuntimeError("Timed out waiting 600000ms for recv operation"))
    assert not is_peer_failure(RuntimeError("boom"))
    assert not is_peer_failure(ValueError("connection closed by peer"))  # not from a backend


def test_gtx_nproc_names_the_rank_that_failed_first_not_one_that_lost_contact():
    from types import SimpleNamespace

    from gantransfer.engine.launch import first_failure

    def failure(message: str, *, rank: int, peer_lost: bool, at: float, exitcode: int = 1):
        extra = {"gantransfer": {"rank": rank, "peer_lost": peer_lost, "time": at}}
        return SimpleNamespace(message={"message": message, "extraInfo": extra},
                               timestamp=int(at), exitcode=exitcode)

    # Rank 0's "connection closed" is recorded in the same second, even earlier: still rank 1.
    failures = {0: failure("RuntimeError: Connection closed by peer", rank=0, peer_lost=True,
                           at=100.1),
                1: failure("RuntimeError: boom", rank=1, peer_lost=False, at=100.2)}
    assert first_failure(failures) == "rank 1 failed: RuntimeError: boom"
    # Two real errors: the earlier one.
    failures[0] = failure("ValueError: bad", rank=0, peer_lost=False, at=100.3)
    assert first_failure(failures) == "rank 1 failed: RuntimeError: boom"
    # A rank killed by a signal leaves no error file.
    killed = SimpleNamespace(message="Signal 9 (SIGKILL) received by PID 1", timestamp=100,
                             exitcode=-9, signal_name=lambda: "SIGKILL")
    assert first_failure({1: killed}).startswith("rank 1 was killed by SIGKILL")


FAILING_SCRIPT = '''
import os
from gantransfer.engine import report_failures

with report_failures():
    if os.environ["RANK"] == "1":
        raise ValueError("boom on rank 1")
'''


def test_launch_from_python_names_the_failing_rank_of_a_script(tmp_path, monkeypatch):
    """The Python API launches what `gtx train --nproc` launches, without the CLI."""
    from gantransfer.engine import DistributedRunError, launch

    script = tmp_path / "train.py"
    script.write_text(FAILING_SCRIPT)
    monkeypatch.delenv("GANTRANSFER_PROBE", raising=False)
    with pytest.raises(DistributedRunError, match=r"^rank 1 failed: ValueError: boom on rank 1$"):
        launch(2, [], script=script, env={"GANTRANSFER_PROBE": "1"})
    assert "GANTRANSFER_PROBE" not in os.environ  # the workers' variables are not left behind


def test_launch_refuses_an_unclear_target():
    from gantransfer.engine import launch

    with pytest.raises(ValueError, match="exactly one of module= and script="):
        launch(2, [], module="gantransfer", script="train.py")
    with pytest.raises(ValueError, match="nproc must be >= 1"):
        launch(0, [], module="gantransfer")
