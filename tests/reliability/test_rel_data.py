"""Issue 12, item 8: symlink loops in a data folder neither hang nor multiply the dataset."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _relb_models import save_model, tiny_cyclegan
from PIL import Image
from typer.testing import CliRunner

from gantransfer.cli.app import app
from gantransfer.data.check import check_folder
from gantransfer.data.folders import list_images, resolve_layout, scan_folder

pytestmark = pytest.mark.skipif(not hasattr(os, "symlink") or sys.platform == "win32",
                                reason="needs POSIX symlinks")


def _image(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((12, 12, 3), value, np.uint8)).save(path)


@pytest.fixture
def looped(tmp_path: Path) -> Path:
    """Two images, two links to `.` (exponential walk before) and a link from sub/ to its parent."""
    root = tmp_path / "data"
    _image(root / "a.png", 10)
    _image(root / "sub" / "b.png", 200)
    os.symlink(".", root / "again")
    os.symlink(".", root / "more")
    os.symlink("..", root / "sub" / "up")
    return root


def test_data_check_reports_loops_and_finishes(looped: Path) -> None:
    env = dict(os.environ, COLUMNS="200", OMP_NUM_THREADS="1")
    try:  # before the fix this walk never ended (and grew memory): bound it
        result = subprocess.run([sys.executable, "-m", "gantransfer", "data", "check", str(looped)],
                                capture_output=True, text=True, env=env, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("gtx data check did not finish on a folder with symlink loops")
    out = " ".join(result.stdout.split())  # rich wraps long problem lines
    assert result.returncode == 1, out
    assert "3 problem(s)" in out
    for link in ("again", "more", "sub/up"):
        assert f"symlink loop: {looped / link} ->" in out
    assert "│ . │ 2 │" in out  # the table counts each real image once


def test_a_loop_does_not_multiply_the_dataset(looped: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    (looped / "again").unlink()
    (looped / "more").unlink()  # one loop left: before, it listed b.png ~40 times
    with caplog.at_level(logging.WARNING, logger="gantransfer"):
        files = resolve_layout("single", looped)["image"]
    assert files == [looped / "a.png", looped / "sub" / "b.png"]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and str(looped / "sub" / "up") in warnings[0]


def test_real_folders_win_over_links_to_them(tmp_path: Path) -> None:
    root = tmp_path / "data"
    _image(root / "zz_real" / "x.png", 1)
    _image(tmp_path / "outside" / "y.png", 2)
    os.symlink(root / "zz_real", root / "aa_alias")  # sorts first, but is only an alias
    os.symlink(tmp_path / "outside", root / "linked")  # a linked folder from elsewhere is followed
    scan = scan_folder(root)
    assert scan.images == [root / "linked" / "y.png", root / "zz_real" / "x.png"]
    [skipped] = scan.skipped_links
    assert (skipped.link, skipped.loop, skipped.listed_as) == (
        root / "aa_alias", False, root / "zz_real")
    assert "already listed" in check_folder(root).problems[0]


def test_translate_lists_each_image_once(looped: Path, tmp_path: Path) -> None:
    ckpt = save_model(tiny_cyclegan(), tmp_path / "m.pt")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["translate", str(ckpt), str(looped), "-o", str(out),
                                      "--compile", "off", "-b", "1"])
    assert result.exit_code == 0, (result.output, result.exception)
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["a.png", "sub/b.png"]
    assert list_images(looped) == [looped / "a.png", looped / "sub" / "b.png"]
