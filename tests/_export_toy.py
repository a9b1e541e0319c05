"""A tiny two-generator architecture for inference/export/runtime tests (not a test module).

``image`` targets mimic CycleGAN's resnet generator (ReflectionPad2d, stride-2 convs,
InstanceNorm2d, ConvTranspose2d: size divisor 4); ``latent`` mimics DCGAN's generator (Linear
to a 4x4 map, BatchNorm2d, ConvTranspose2d to 16x16).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

import gantransfer
from gantransfer.config import field
from gantransfer.model import ExportSpec, GANModel

NAME = "toy_export"


class ImageGen(nn.Module):
    def __init__(self, cin: int, cout: int, ngf: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(3), nn.Conv2d(cin, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(True),
            nn.Conv2d(ngf, ngf * 2, 3, 2, 1), nn.InstanceNorm2d(ngf * 2), nn.ReLU(True),
            nn.Conv2d(ngf * 2, ngf * 4, 3, 2, 1), nn.InstanceNorm2d(ngf * 4), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(ngf * 4, ngf * 4, 3),
            nn.InstanceNorm2d(ngf * 4, affine=True), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 3, 2, 1, output_padding=1),
            nn.InstanceNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 3, 2, 1, output_padding=1),
            nn.InstanceNorm2d(ngf), nn.ReLU(True),
            nn.ReflectionPad2d(3), nn.Conv2d(ngf, cout, 7), nn.Tanh(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class LatentGen(nn.Module):
    def __init__(self, nz: int, ngf: int) -> None:
        super().__init__()
        self.ngf = ngf
        self.fc = nn.Linear(nz, ngf * 4 * 16)
        self.body = nn.Sequential(
            nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, 3, 4, 2, 1), nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.fc(z).view(-1, self.ngf * 4, 4, 4))


class ToyModel(GANModel):
    """Toy architecture for export tests."""

    @dataclass(kw_only=True)
    class Config:
        ngf: int = field(4, help="generator width")
        nz: int = field(8, help="latent size")
        channels_b: int = field(3, help="channels of domain B")

    data_kind = "unpaired"

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        c = config
        self.nets["g_ab"] = ImageGen(3, c.channels_b, c.ngf)
        self.nets["g_ba"] = ImageGen(c.channels_b, 3, c.ngf)
        self.nets["g_z"] = LatentGen(c.nz, c.ngf)
        with torch.no_grad():  # non-trivial BatchNorm statistics, so eval mode matters
            for m in self.nets["g_z"].modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.5, 0.5)
                    m.running_var.uniform_(0.5, 2.0)

    def export_targets(self) -> dict[str, ExportSpec]:
        c = self.config
        return {
            "a2b": ExportSpec(net="g_ab", in_channels=3, out_channels=c.channels_b,
                              size_divisor=4, min_size=8, direction="a2b"),
            "b2a": ExportSpec(net="g_ba", in_channels=c.channels_b, out_channels=3,
                              size_divisor=4, min_size=8, direction="b2a"),
            "generator": ExportSpec(net="g_z", input="latent", latent_dim=c.nz, image_size=16),
        }


def ensure_registered() -> None:
    """Register the toy architecture once per process."""
    if NAME not in gantransfer.list():
        gantransfer.register(NAME, ToyModel)


def make(**overrides) -> ToyModel:
    ensure_registered()
    torch.manual_seed(0)
    return gantransfer.get(NAME, **overrides)
