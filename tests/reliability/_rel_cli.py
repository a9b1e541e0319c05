"""Running `gtx` in the test process for the reliability tests (not a test module)."""

from __future__ import annotations

import re

import pytest

from gantransfer.cli.app import main


def run_gtx(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str]:
    """Run `gtx ARGS` as a user would, in this process (fast; the same error handling and exit
    codes as the script); returns (exit code, stdout + stderr with rich's frames removed and
    whitespace collapsed, so long lines wrapped by rich still match)."""
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    text = re.sub("[\u2500-\u257f]", " ", out.out + out.err)  # rich's box-drawing frames
    return code, " ".join(text.split())
