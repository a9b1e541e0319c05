"""check_folder and `gtx data check`: layout detection, statistics, problems and exit codes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from gantransfer.cli.app import app
from gantransfer.data import check_folder
from gantransfer.data.check import detect_kind

runner = CliRunner()


def _squash(text: str) -> str:
    return "".join(text.split())  # rich wraps long paths; compare without whitespace


def _save(path: Path, w: int, h: int, mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (w, h)).save(path)


def _unpaired(root: Path) -> Path:
    _save(root / "trainA" / "a1.png", 10, 20)
    _save(root / "trainA" / "a2.png", 30, 40, "L")
    _save(root / "trainA" / "a3.png", 20, 30)
    _save(root / "trainB" / "b1.jpg", 16, 16)
    return root


def test_check_folder_reports_layout_counts_sizes_modes(tmp_path: Path) -> None:
    report = check_folder(_unpaired(tmp_path))
    assert (report.kind, report.detected, report.ok) == ("unpaired", True, True)
    assert report.counts == {"trainA": 3, "trainB": 1}
    a = report.folders[0]
    assert (a.min_size, a.median_size, a.max_size) == ((10, 20), (20, 30), (30, 40))
    assert report.modes == {"L": 1, "RGB": 3}


def test_check_folder_lists_problems_with_file_names(tmp_path: Path) -> None:
    _unpaired(tmp_path)
    (tmp_path / "trainA" / "broken.png").write_text("not an image")
    (tmp_path / "trainA" / "notes.txt").write_text("ignored")
    report = check_folder(tmp_path)
    assert not report.ok
    assert report.counts["trainA"] == 3 and report.folders[0].unreadable == 1
    assert report.folders[0].ignored == 1
    assert len(report.problems) == 1 and "broken.png" in report.problems[0]


def test_detect_kind_from_layout(tmp_path: Path) -> None:
    _save(tmp_path / "single" / "x.png", 8, 8)
    _save(tmp_path / "paired" / "train" / "A" / "x.png", 8, 8)
    _save(tmp_path / "unpaired" / "testA" / "x.png", 8, 8)
    assert [detect_kind(tmp_path / k) for k in ("single", "paired", "unpaired")] == [
        "single", "paired", "unpaired"]


def test_paired_check_reports_missing_folder_and_unmatched_names(tmp_path: Path) -> None:
    _save(tmp_path / "A" / "x.png", 8, 8)
    report = check_folder(tmp_path, kind="paired")
    assert any("B does not exist" in p for p in report.problems)
    _save(tmp_path / "B" / "y.png", 8, 8)
    report = check_folder(tmp_path, kind="paired")
    assert any("x.png has no partner" in p for p in report.problems)


def test_cli_check_prints_table_and_exits_zero(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "check", str(_unpaired(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "unpairedlayout(detected)" in _squash(result.output)
    assert "trainA" in result.output and "10x20" in result.output and "30x40" in result.output
    assert "no problems found" in result.output


def test_cli_check_exits_one_and_names_bad_file(tmp_path: Path) -> None:
    _unpaired(tmp_path)
    bad = tmp_path / "trainB" / "cut.jpg"
    data = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(data).save(bad, quality=95)
    bad.write_bytes(bad.read_bytes()[:2000])
    result = runner.invoke(app, ["data", "check", str(tmp_path)])
    assert result.exit_code == 1
    assert "1 problem(s)" in result.output
    assert _squash(str(bad)) in _squash(result.output)


def test_cli_check_with_kind_shows_expected_tree(tmp_path: Path) -> None:
    _save(tmp_path / "x.png", 8, 8)
    result = runner.invoke(app, ["data", "check", str(tmp_path), "--kind", "unpaired"])
    assert result.exit_code == 1
    out = _squash(result.output)
    assert "trainAdoesnotexist" in out and "trainB/" in out  # the expected tree is shown
    assert runner.invoke(app, ["data", "check", str(tmp_path), "--kind", "pairs"]).exit_code == 2
    assert runner.invoke(app, ["data", "check", str(tmp_path), "--kind", "single"]).exit_code == 0
