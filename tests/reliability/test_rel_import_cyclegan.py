"""Issue 12, item 12: `gtx import-cyclegan` fills only the biases official norm='none' files
really omit; any other missing key is listed and the import fails."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import gantransfer
from gantransfer.cli.app import app

# Official resnet_6blocks, norm='none': convs followed by a norm slot have bias=use_bias=False;
# the output conv (model.23) always has its bias.
NONE_OMITS = ["model.1.bias", "model.4.bias", "model.7.bias", "model.16.bias", "model.19.bias",
              *(f"model.{b}.conv_block.{i}.bias" for b in range(10, 16) for i in (1, 5))]


def _official(norm: str, *, drop: list[str]) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    net = gantransfer.get_network("resnet_6blocks", ngf=4, norm=norm)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    for key in drop:
        del state[key]
    return state


def _import(tmp_path: Path, state: dict[str, torch.Tensor]):
    src, out = tmp_path / "latest_net_G_A.pth", tmp_path / "imported.pt"
    torch.save(state, src)
    return CliRunner().invoke(app, ["import-cyclegan", str(src), "-o", str(out)]), out


def test_instance_norm_generator_missing_a_bias_is_refused(tmp_path: Path) -> None:
    result, out = _import(tmp_path, _official("instance", drop=["model.7.bias"]))
    assert result.exit_code == 1 and isinstance(result.exception, ValueError)  # before: exit 0
    assert "missing keys model.7.bias" in str(result.exception)
    assert not out.exists()


def test_norm_none_file_imports_with_exactly_the_official_gaps_filled(tmp_path: Path) -> None:
    state = _official("none", drop=NONE_OMITS)
    result, out = _import(tmp_path, state)
    assert result.exit_code == 0, (result.output, result.exception)
    model = gantransfer.load(out)
    assert model.config.norm == "none"
    g = model.nets["g_ab"].state_dict()
    assert all(float(g[k].abs().max()) == 0.0 for k in NONE_OMITS)
    assert torch.equal(g["model.23.bias"], state["model.23.bias"])


def test_norm_none_file_missing_the_output_conv_bias_is_refused(tmp_path: Path) -> None:
    result, out = _import(tmp_path, _official("none", drop=[*NONE_OMITS, "model.23.bias"]))
    assert result.exit_code == 1
    assert "missing keys model.23.bias" in str(result.exception) and not out.exists()


@pytest.mark.parametrize(("drop", "ok"), [(["model.2.bias", "model.5.bias"], True),
                                          (["model.0.bias"], False), (["model.8.bias"], False)])
def test_patchgan_norm_none_gaps(drop: list[str], ok: bool) -> None:
    """Official PatchGAN, norm='none': inner convs lack biases; the first and last always have
    them."""
    from gantransfer_cyclegan import CycleGAN

    torch.manual_seed(0)
    d = gantransfer.get_network("patchgan", ndf=4, n_layers=2, norm="none").state_dict()
    g = _official("none", drop=NONE_OMITS)
    state = {k: v for k, v in d.items() if k not in drop}
    if ok:
        model = CycleGAN.load_official(g_a=g, d_a=state)
        assert float(model.nets["d_b"].state_dict()["model.2.bias"].abs().max()) == 0.0
    else:
        with pytest.raises(ValueError, match=f"missing keys {drop[0]}"):
            CycleGAN.load_official(g_a=g, d_a=state)
