"""Issue 12, item 11: `gtx export --opset N` writes opset N or refuses before exporting."""

from __future__ import annotations

import re
from pathlib import Path

import onnx
import pytest
from _relb_models import save_model, tiny_cyclegan
from typer.testing import CliRunner

from gantransfer.cli.app import app
from gantransfer.export import export_onnx
from gantransfer.export.exporter import supported_opsets


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_model(tiny_cyclegan(), tmp_path_factory.mktemp("export") / "m.pt")


@pytest.mark.parametrize("opset", [13, 17, 99])
def test_unsupported_opset_is_refused_before_exporting(checkpoint: Path, tmp_path: Path,
                                                       opset: int) -> None:
    out = tmp_path / "m.onnx"
    result = CliRunner().invoke(app, ["export", str(checkpoint), "--onnx", str(out),
                                      "--opset", str(opset)])
    text = " ".join(re.sub("[│╭╮╰╯─]", " ", result.output).split())  # rich's error box
    assert result.exit_code == 2, text  # before: exit 0, an opset-18 file and a traceback
    ok = supported_opsets()
    assert f"ONNX opset {opset} is not supported here; choose one from 18 to {ok.stop - 1}" in text
    assert "Traceback" not in text and not out.exists()


def test_supported_opset_is_honoured(checkpoint: Path, tmp_path: Path) -> None:
    opset = 20
    assert opset in supported_opsets()
    [result] = export_onnx(checkpoint, tmp_path / "m.onnx", opset=opset)
    written = {o.domain: o.version for o in onnx.load(result.path).opset_import}
    assert written[""] == opset
    assert result.worst_error is not None and result.worst_error < 1e-4


def test_library_refuses_too_before_loading_anything(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="opset 17 is not supported here"):
        export_onnx(tmp_path / "no-such-checkpoint.pt", tmp_path / "m.onnx", opset=17)
