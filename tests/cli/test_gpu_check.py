"""benchmarks/gpu_check.sh reports failed steps: its step helpers, run in bash without a GPU."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIB = ROOT / "benchmarks" / "gpu_check_lib.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _bash(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", f'set -uo pipefail; . "{LIB}"; {script}'],
                          capture_output=True, text=True, cwd=tmp_path, timeout=30, check=False)


@pytest.mark.parametrize("helper", ["step", "step_logged out.log 5"])
def test_a_failed_step_sets_status(helper: str, tmp_path: Path) -> None:
    # The shape of gpu_check.sh: steps, then `exit $status`.
    done = _bash(f"{helper} true; {helper} bash -c 'echo boom; exit 3'; {helper} true; "
                 "echo status=$status; exit $status", tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "status=1" in done.stdout
    assert "!! FAILED" in done.stdout and "boom" in done.stdout


@pytest.mark.parametrize("helper", ["step", "step_logged out.log 5"])
def test_passing_steps_keep_status_zero(helper: str, tmp_path: Path) -> None:
    done = _bash(f"{helper} true; {helper} echo hi; echo status=$status; exit $status", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "status=0" in done.stdout and "FAILED" not in done.stdout


def test_step_logged_saves_the_whole_output_and_shows_the_tail(tmp_path: Path) -> None:
    done = _bash("step_logged out.log 2 seq 1 10; exit $status", tmp_path)
    assert done.returncode == 0
    assert (tmp_path / "out.log").read_text().split() == [str(i) for i in range(1, 11)]
    assert done.stdout.split()[-2:] == ["9", "10"] and "\n5\n" not in done.stdout


def test_gpu_check_pipes_no_step_into_tee() -> None:
    """The bug: `step CMD | tee LOG | tail` ran step in a subshell, so its status=1 was lost
    and the script printed `gpu_check status: 0` after a failed test suite."""
    text = (ROOT / "benchmarks" / "gpu_check.sh").read_text()
    assert "gpu_check_lib.sh" in text and "exit $status" in text
    for line in text.splitlines():
        if line.lstrip().startswith("step"):
            assert "| tee" not in line, line
