"""mypy runs clean on gantransfer/ (configured in pyproject.toml, [tool.mypy]), and the public
entry points have the types tests/static/api_types.py asserts.

mypy keeps its cache in the temporary folder (one per checkout): the first run analyses torch's
stubs (a minute or two on a busy machine), later runs take seconds.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("mypy", reason="mypy is in the dev extra: pip install -e '.[dev]'")

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(tempfile.gettempdir()) / (
    "gantransfer-mypy-" + hashlib.sha256(str(ROOT).encode()).hexdigest()[:12])


def _mypy(*paths: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
         "--cache-dir", str(CACHE), "--no-error-summary", "--hide-error-context",
         *map(str, paths)],
        cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_mypy_is_clean_on_the_package_and_the_entry_point_types():
    result = _mypy("gantransfer", "tests/static/api_types.py")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_catches_a_wrong_entry_point_type(tmp_path):
    wrong = tmp_path / "wrong_types.py"
    wrong.write_text(
        "from typing import assert_type\n"
        "import gantransfer\n"
        "assert_type(gantransfer.load('run'), int)\n"
        "gantransfer.export_onnx(gantransfer.get('dcgan'), 'x.onnx', precision='bf16')\n")
    result = _mypy(wrong)
    assert result.returncode == 1
    assert "wrong_types.py:3: error: Expression is of type \"GANModel\", not \"int\"" in result.stdout
    assert "wrong_types.py:4: error: Argument \"precision\" to \"export_onnx\"" in result.stdout
