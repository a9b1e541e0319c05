"""Issue 12, item 14: int8 export with 1-4 calibration images holds nothing out and says so
(before: "need at least one array to concatenate" after the whole export); a folder without a
readable image fails before the fp32 export."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from _relb_models import save_model, tiny_cyclegan
from typer.testing import CliRunner

from gantransfer.cli.app import app
from gantransfer.data import demo
from gantransfer.export import exporter
from gantransfer.export.quantize import CalibrationError

SIZE = 32


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("int8few")
    data = demo.make_two_domain(root / "data", n_train=1, n_test=4, size=SIZE, seed=0)
    return {"root": root, "ckpt": save_model(tiny_cyclegan(), root / "m.pt"),
            "images": data / "testA"}


@pytest.mark.parametrize("count", [1, 4])
def test_few_calibration_images_hold_nothing_out_and_say_so(
        setup: dict[str, Path], tmp_path: Path, count: int) -> None:
    calib = tmp_path / "calib"
    calib.mkdir()
    for src in sorted(setup["images"].iterdir())[:count]:
        shutil.copy(src, calib / src.name)
    out = tmp_path / "a2b_int8.onnx"
    result = CliRunner().invoke(app, [
        "export", str(setup["ckpt"]), "--onnx", str(out), "--target", "a2b", "--int8",
        "--calib", str(calib), "--calib-size", str(SIZE), "--min-psnr", "0"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert out.is_file()
    text = " ".join(result.output.split())
    assert "on calibration images, none held out (fewer than 5 images)" in text
    assert f"no image held out of {calib}" in text  # the warning, on stderr


def test_unreadable_calibration_folder_fails_before_exporting(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setup: dict[str, Path]) -> None:
    calib = tmp_path / "calib"
    calib.mkdir()
    (calib / "a.png").write_bytes(b"not an image")
    exported = []
    monkeypatch.setattr(exporter, "export_network", lambda *a, **k: exported.append(a))
    result = CliRunner().invoke(app, [
        "export", str(setup["ckpt"]), "--onnx", str(tmp_path / "x.onnx"), "--int8", "--calib",
        str(calib)])
    assert result.exit_code == 1 and isinstance(result.exception, CalibrationError)
    assert "has no readable images" in str(result.exception) and exported == []
