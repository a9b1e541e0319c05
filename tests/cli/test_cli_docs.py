"""docs/cli.md is generated from the typer app; this fails when it is stale."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
REGENERATE = "python -m typer gantransfer.cli.app utils docs --name gtx --output docs/cli.md"


def _normalised(text: str) -> str:
    """The text without metavars (``<str>``, ``{path}``), which typer versions render differently
    (seen: ``pattern`` vs ``pattern <str>``); names, help texts and defaults must still match."""
    return re.sub(r" ?(<[^>\n]*>|\{[a-z_]+\})", "", text)


def test_cli_reference_is_current(tmp_path):
    out = tmp_path / "cli.md"
    subprocess.run([sys.executable, "-m", "typer", "gantransfer.cli.app", "utils", "docs",
                    "--name", "gtx", "--output", str(out)], check=True, capture_output=True)
    assert _normalised(DOC.read_text()) == _normalised(out.read_text()), (
        f"docs/cli.md is stale; regenerate: {REGENERATE}")


def test_normalisation_keeps_help_changes_visible():
    assert _normalised("* `pattern <str>`: filter") == _normalised("* `pattern`: filter")
    assert _normalised("* `--size <int>`: side") != _normalised("* `--size <int>`: width")
