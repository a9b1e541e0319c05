"""gantransfer_cyclegan.pretrained: official generator files convert into loadable checkpoints
(CycleGAN's resnet with instance norm, pix2pix's unet_256 with batch norm)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from gantransfer_cyclegan.pretrained import catalogue, convert_official_generator

import gantransfer


@pytest.mark.parametrize(("net_name", "norm"), [("resnet_9blocks", "instance"),
                                                 ("unet_256", "batch")])
def test_official_generator_converts_with_its_layout_and_weights(
        tmp_path: Path, net_name: str, norm: str) -> None:
    torch.manual_seed(0)
    net = gantransfer.get_network(net_name, ngf=2, norm=norm)
    with torch.no_grad():
        for name, buffer in net.named_buffers():  # batch norm statistics must survive too
            if name.endswith(("running_mean", "running_var")):
                buffer.uniform_(0.5, 1.5)
    src = tmp_path / "latest_net_G.pth"
    torch.save(net.state_dict(), src)
    out = tmp_path / "model.pt"
    convert_official_generator(src, out)
    model = gantransfer.load(out)
    assert model.arch_name == "cyclegan"
    assert (model.config.netG, model.config.ngf, model.config.norm) == (net_name, 2, norm)
    converted = model.nets["g_ab"].state_dict()
    for key, value in net.state_dict().items():
        assert torch.equal(converted[key], value), key


def test_a_file_that_is_no_generator_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    src = tmp_path / "latest_net_G.pth"
    torch.save({"weight": torch.zeros(3)}, src)
    with pytest.raises(ValueError, match="no official generator layout"):
        convert_official_generator(src, tmp_path / "model.pt")
    assert not (tmp_path / "model.pt").exists()


def test_catalogue_names_are_unique_and_namespaced() -> None:
    names = [e.name for e in catalogue()]
    assert len(names) == len(set(names)) == 23
    assert {n.split("/")[0] for n in names} == {"cyclegan", "pix2pix"}
