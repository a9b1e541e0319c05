"""The ``pix2pix`` architecture's configuration (config == constructor arguments)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gantransfer.config import field
from gantransfer.nn import INITS, NORMS

__all__ = ["Pix2PixConfig"]



@dataclass(kw_only=True)
class Pix2PixConfig:
    """Hyperparameters of pix2pix (Isola et al. 2017); defaults follow the paper/official code."""

    # Networks (registry names: any registered generator works, e.g. a ResNet for small images)
    netG: str = field("unet_256", help="generator network (registry name), e.g. unet_256, "
                      "unet_128, resnet_9blocks, resnet_6blocks")
    ngf: int = field(64, help="generator filters in the first conv layer")
    discriminator: str = field("patchgan", help="conditional discriminator (registry name); it "
                               "sees in_channels + out_channels channels: input and output")
    ndf: int = field(64, help="discriminator filters in the first conv layer")
    n_layers_D: int = field(3, help="patchgan stride-2 layers (3 = 70x70 receptive field)")
    discriminator_kwargs: dict[str, Any] = field(  # noqa: RUF009  (a default_factory field)
        default_factory=dict, help="extra keyword arguments for the discriminator factory")
    norm: str = field("batch", help="normalisation layer (pix2pix uses batch norm)",
                      choices=NORMS)
    dropout: bool = field(True, help="dropout in the generator (the paper's noise source)")
    init: str = field("normal", help="weight initialisation", choices=INITS)
    init_gain: float = field(0.02, help="scale of the weight initialisation")
    in_channels: int = field(3, help="channels of the input images (folder A)")
    out_channels: int = field(3, help="channels of the target images (folder B)")
    # Objective (Eq. 4: G* = arg min_G max_D L_cGAN(G, D) + λ L_L1(G))
    lambda_L1: float = field(100.0, help="λ, weight of the L1 loss to the target (Eq. 4)")
    # Optimisation
    lr: float = field(2e-4, help="Adam learning rate")
    beta1: float = field(0.5, help="Adam β1")
    beta2: float = field(0.999, help="Adam β2")
    n_epochs: int = field(100, help="epochs at the initial learning rate")
    n_epochs_decay: int = field(100, help="epochs of linear decay of the learning rate to 0")
    # Data defaults (the user's data options win)
    load_size: int = field(286, help="images are resized to this before cropping")
    crop_size: int = field(256, help="training crop size")

    def __post_init__(self) -> None:
        positive = {"ngf": self.ngf, "ndf": self.ndf, "n_layers_D": self.n_layers_D,
                    "in_channels": self.in_channels, "out_channels": self.out_channels,
                    "load_size": self.load_size, "crop_size": self.crop_size}
        for name, value in positive.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"pix2pix {name} must be a positive integer, got {value!r}")
        if self.lambda_L1 < 0 or self.init_gain < 0:
            raise ValueError(f"pix2pix lambda_L1 and init_gain must be >= 0, got "
                             f"{self.lambda_L1!r} and {self.init_gain!r}")
        if not self.lr > 0:
            raise ValueError(f"pix2pix lr must be > 0, got {self.lr!r}")
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"pix2pix {name} must be in [0, 1), got {getattr(self, name)!r}")
        if self.n_epochs < 0 or self.n_epochs_decay < 0:
            raise ValueError("pix2pix n_epochs and n_epochs_decay must be >= 0, got "
                             f"{self.n_epochs} and {self.n_epochs_decay}")
        if self.crop_size > self.load_size:
            raise ValueError(f"pix2pix crop_size {self.crop_size} is larger than load_size "
                             f"{self.load_size}; set load_size >= crop_size")
        if not isinstance(self.discriminator_kwargs, dict):
            raise ValueError("pix2pix discriminator_kwargs must be a table/dict, got "
                             f"{type(self.discriminator_kwargs).__name__}")
