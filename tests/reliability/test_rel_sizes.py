"""Issue 12, item 15: training sizes are checked against the networks' declared size contracts
before anything is written, with a message that names sizes that work."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from _rel_cli import run_gtx
from PIL import Image
from torch import nn

import gantransfer
from gantransfer.data import DataConfig, build_dataset
from gantransfer.data.folders import DataError
from gantransfer.nn import SizeContract, size_contract
from gantransfer.testing import make_fake_data


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_fake_data("unpaired", tmp_path_factory.mktemp("sizes") / "data", size=16, n=2)


def _suggested(out: str) -> list[int]:
    return [int(v) for v in re.findall(r"crop_size=(\d+)", out)]


@pytest.mark.parametrize(("net", "crop", "problem"), [
    ("resnet_6blocks", 1, "1 px is below the minimum of 24 px"),
    ("resnet_6blocks", 6, "6 px is below the minimum of 24 px"),
    ("resnet_6blocks", 30, "30 px is not a multiple of 4"),
    ("unet_256", 32, "32 px is below the minimum of 256 px"),
])
def test_bad_crop_fails_before_the_run_directory_exists(tmp_path: Path, data: Path, capsys,
                                                        net: str, crop: int, problem: str):
    run = tmp_path / "run"
    code, out = run_gtx(capsys, "train", "cyclegan", "-d", data, "-o", run, "--steps", "1",
                        "--set", "ngf=2", "--set", "ndf=2", "--set", f"netG={net}",
                        "--set", f"crop_size={crop}", "--set", "load_size=32", "--progress",
                        "none")
    assert code == 1
    assert not run.exists()  # nothing written
    assert f"crop_size {crop} does not fit this model: {problem}" in out
    assert "Padding size" not in out and "Expected more than 1 spatial" not in out
    contract = gantransfer.get("cyclegan", ngf=2, ndf=2, netG=net).training_size_contract()
    suggested = _suggested(out)
    assert suggested and all(contract.accepts(v) for v in suggested)  # what it says works


def test_suggested_crop_really_trains(tmp_path: Path, data: Path, capsys) -> None:
    code, out = run_gtx(capsys, "train", "cyclegan", "-d", data, "-o", tmp_path / "bad",
                        "--steps", "1", "--set", "ngf=2", "--set", "ndf=2", "--set",
                        "netG=resnet_6blocks", "--set", "crop_size=26", "--set", "load_size=32",
                        "--progress", "none")
    assert code == 1
    fix = _suggested(out)[0]
    code, out = run_gtx(capsys, "train", "cyclegan", "-d", data, "-o", tmp_path / "good",
                        "--steps", "1", "--set", "ngf=2", "--set", "ndf=2", "--set",
                        "netG=resnet_6blocks", "--set", f"crop_size={fix}", "--set",
                        "load_size=32", "--progress", "none")
    assert code == 0, out


def test_tiny_image_with_preprocess_crop_never_suggests_a_tiny_crop(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for domain, side in (("trainA", 1), ("trainB", 32)):
        (root / domain).mkdir(parents=True)
        Image.new("RGB", (side, side), (9, 99, 199)).save(root / domain / "x.png")
    model = gantransfer.get("cyclegan", ngf=2, ndf=2, netG="resnet_6blocks")
    with pytest.raises(DataError) as info:
        build_dataset("unpaired", DataConfig(root=root, preprocess="crop"),
                      defaults=model.data_defaults(), size_contract=model.training_size_contract())
    text = str(info.value)
    assert "crop_size=1" not in text
    assert "x.png (1x1) is smaller than the smallest crop this model takes (24 px" in text


def test_images_kept_at_their_size_are_checked_too(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for domain in ("trainA", "trainB"):
        (root / domain).mkdir(parents=True)
        Image.new("RGB", (40, 16), (9, 99, 199)).save(root / domain / "wide.png")
    model = gantransfer.get("cyclegan", ngf=2, ndf=2, netG="resnet_6blocks")
    with pytest.raises(DataError, match=r"wide\.png comes out 40x16 with preprocess 'none', "
                       r"which this model cannot take: 16 px is below the minimum of 24 px"):
        build_dataset("unpaired", DataConfig(root=root, preprocess="none"),
                      size_contract=model.training_size_contract())


# -- the contracts are true: every accepted size runs, the smallest one is tight ---------------
NETS = [
    ("resnet_6blocks", {"ngf": 2}, "generator"),
    ("unet_128", {"ngf": 1}, "generator"),
    ("patchgan", {"ndf": 2, "n_layers": 1}, "discriminator"),
    ("patchgan", {"ndf": 2, "n_layers": 2}, "discriminator"),
    ("patchgan", {"ndf": 2, "n_layers": 3}, "discriminator"),
    ("pixel", {"ndf": 2}, "discriminator"),
    ("vgg16", {"weights": None, "tap_block": 3, "head": "patch", "head_width": 4},
     "discriminator"),
]


@pytest.mark.parametrize(("name", "kwargs", "role"), NETS, ids=lambda v: str(v))
def test_declared_contract_is_what_the_network_runs(name: str, kwargs: dict, role: str) -> None:
    net = gantransfer.get_network(name, **kwargs).train()  # train mode: norms are strictest
    contract = size_contract(net)
    assert contract is not None and contract.smallest >= 1
    for side in (contract.smallest, contract.smallest + contract.divisor):
        with torch.no_grad():
            y = net(torch.randn(2, 3, side, side))
        if role == "generator":  # image in, same-size image out
            assert y.shape == (2, 3, side, side)
        else:
            assert y.numel() >= 2
    below = contract.smallest - contract.divisor
    if below >= 1:
        with pytest.raises((RuntimeError, ValueError)), torch.no_grad():
            net(torch.randn(2, 3, below, below))


def test_models_combine_their_nets_contracts() -> None:
    model = gantransfer.get("cyclegan", ngf=2, ndf=2, netG="unet_128")
    contract = model.training_size_contract()
    assert (contract.divisor, contract.min_size) == (128, 128)
    assert "g_ab, g_ba: U-Net generator" in contract.reason and "d_a, d_b: PatchGAN" in contract.reason
    # ExportSpec still carries the generator's rule (what inference pads to), not the D's.
    spec = gantransfer.get("cyclegan", ngf=2, ndf=2).export_targets()["a2b"]
    assert (spec.size_divisor, spec.min_size) == (4, 8)


def test_networks_written_before_contracts_are_read_from_their_attributes() -> None:
    class Old(nn.Module):
        size_divisor, min_size = 8, 16

    assert size_contract(Old()) == SizeContract(divisor=8, min_size=16)
    assert size_contract(nn.Conv2d(1, 1, 1)) is None


def test_contract_arithmetic() -> None:
    c = SizeContract(divisor=4, min_size=24)
    assert (c.below(30), c.above(30), c.below(20), c.above(1), c.smallest) == (28, 32, None, 24, 24)
    assert c.problem(32, 28) is None and c.problem(32, 30) == "30 px is not a multiple of 4"
    assert c.describe() == "multiples of 4 px, at least 24 px"
    assert SizeContract().describe() == "any size"
    both = c.combine(SizeContract(divisor=6, min_size=8))
    assert (both.divisor, both.min_size, both.smallest) == (12, 24, 24)
    with pytest.raises(ValueError, match="divisor must be a positive integer"):
        SizeContract(divisor=0)
