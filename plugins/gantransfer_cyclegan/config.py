"""The ``cyclegan`` architecture's configuration (config == constructor arguments)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gantransfer.config import check_tables, field
from gantransfer.nn import INITS, NORMS

from .losses import GAN_MODES

__all__ = ["CycleGANConfig"]



@dataclass(kw_only=True)
class CycleGANConfig:
    """Hyperparameters of CycleGAN (Zhu et al. 2017); defaults are the paper's / official code's."""

    # Networks
    netG: str = field("resnet_9blocks", help="generator network (registry name), e.g. "
                      "resnet_9blocks, resnet_6blocks, unet_256, unet_128")
    ngf: int = field(64, help="generator filters in the first conv layer")
    generator_kwargs: dict[str, Any] = field(  # noqa: RUF009  (a default_factory field)
        default_factory=dict, help="extra keyword arguments for the generator factory, e.g. "
        "{n_downsampling = 0} for a full-resolution ResNet generator on small images")
    discriminator: str = field("patchgan", help="discriminator network (registry name): "
                               "patchgan, pixel, or a plugin's, e.g. vgg16 (official --netD)")
    ndf: int = field(64, help="discriminator filters in the first conv layer")
    n_layers_D: int = field(3, help="patchgan stride-2 layers (3 = 70x70 receptive field)")
    discriminator_kwargs: dict[str, Any] = field(  # noqa: RUF009  (a default_factory field)
        default_factory=dict, help="extra keyword arguments for the discriminator factory")
    norm: str = field("instance", help="normalisation layer", choices=NORMS)
    dropout: bool = field(False, help="dropout in the generator (official CycleGAN: --no_dropout)")
    init: str = field("normal", help="weight initialisation", choices=INITS)
    init_gain: float = field(0.02, help="scale of the weight initialisation")
    in_channels: int = field(3, help="channels of domain A images")
    out_channels: int = field(3, help="channels of domain B images")
    # Objective (Zhu et al. 2017, Eq. 3: L = L_GAN(G,D_Y) + L_GAN(F,D_X) + λ L_cyc)
    gan_mode: str = field("lsgan", help="adversarial loss", choices=GAN_MODES)
    lambda_A: float = field(10.0, help="λ for the cycle loss A->B->A (Eq. 2)")
    lambda_B: float = field(10.0, help="λ for the cycle loss B->A->B (Eq. 2)")
    lambda_identity: float = field(0.5, help="identity loss weight as a fraction of λ "
                                   "(0 disables it; needs in_channels == out_channels)")
    lambda_gp: float = field(10.0, help="WGAN-GP gradient-penalty weight (gan_mode=wgangp)")
    d_spectral_norm: bool = field(False, help="spectral normalisation on the discriminators' "
                                  "conv layers (Miyato et al. 2018)")
    pool_size: int = field(50, help="image history buffer per direction (0 = no buffer)")
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
                raise ValueError(f"cyclegan {name} must be a positive integer, got {value!r}")
        for name in ("lambda_A", "lambda_B", "lambda_identity", "lambda_gp", "init_gain"):
            if getattr(self, name) < 0:
                raise ValueError(f"cyclegan {name} must be >= 0, got {getattr(self, name)!r}")
        if self.pool_size < 0:
            raise ValueError(f"cyclegan pool_size must be >= 0 (0 disables the pool), "
                             f"got {self.pool_size}")
        if not self.lr > 0:
            raise ValueError(f"cyclegan lr must be > 0, got {self.lr!r}")
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"cyclegan {name} must be in [0, 1), got {getattr(self, name)!r}")
        if self.n_epochs < 0 or self.n_epochs_decay < 0:
            raise ValueError("cyclegan n_epochs and n_epochs_decay must be >= 0, got "
                             f"{self.n_epochs} and {self.n_epochs_decay}")
        if self.crop_size > self.load_size:
            raise ValueError(f"cyclegan crop_size {self.crop_size} is larger than load_size "
                             f"{self.load_size}; set load_size >= crop_size")
        check_tables(self, "generator_kwargs", "discriminator_kwargs", owner="cyclegan")
        for name in ("netG", "discriminator"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"cyclegan {name} must be a registry name such as "
                                 "'resnet_9blocks' or 'patchgan' (see `gtx list --networks`)")
