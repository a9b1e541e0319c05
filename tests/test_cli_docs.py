"""docs/cli.md is generated from the typer app; this fails when it is stale."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
REGENERATE = "python -m typer gantransfer.cli.app utils docs --name gtx --output docs/cli.md"


def test_cli_reference_is_current(tmp_path):
    out = tmp_path / "cli.md"
    subprocess.run([sys.executable, "-m", "typer", "gantransfer.cli.app", "utils", "docs",
                    "--name", "gtx", "--output", str(out)], check=True, capture_output=True)
    assert DOC.read_text() == out.read_text(), f"docs/cli.md is stale; regenerate: {REGENERATE}"
