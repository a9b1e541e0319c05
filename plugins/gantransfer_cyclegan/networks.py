"""Registered network factories (entry points in ``gantransfer.networks``).

Generators: ``resnet_6blocks``, ``resnet_9blocks``, ``unet_32``, ``unet_128``, ``unet_256``.
Discriminators: ``patchgan`` (``n_layers=3`` is the 70×70 PatchGAN), ``pixel`` (1×1) and
``stargan_discriminator`` (a PatchGAN trunk with a real/fake head and a style classifier).

Every factory is keyword-only, initialises the weights (``init`` in
``normal|xavier|kaiming|orthogonal`` with ``init_gain``, 0.02 as in the official code) and accepts
``image_size`` (ignored) so architectures can pass it uniformly. Any architecture can use them::

    g = gantransfer.get_network("resnet_9blocks", ngf=32)
    d = gantransfer.get_network("patchgan", in_channels=1, n_layers=2)
"""

from __future__ import annotations

from torch import nn

from gantransfer.nn import init_weights

from .patchgan import NLayerDiscriminator, PixelDiscriminator, StyleDiscriminator
from .resnet import ResnetGenerator
from .unet import UnetGenerator

__all__ = ["patchgan", "pixel", "resnet_6blocks", "resnet_9blocks", "stargan_discriminator",
           "unet_32", "unet_128", "unet_256"]


def _init(net: nn.Module, init: str, init_gain: float) -> nn.Module:
    return init_weights(net, kind=init, gain=init_gain)


def resnet_9blocks(*, in_channels: int = 3, out_channels: int = 3, ngf: int = 64,
                   norm: str = "instance", dropout: bool = False, init: str = "normal",
                   init_gain: float = 0.02, image_size: int | None = None,
                   n_labels: int | None = None, n_downsampling: int = 2,
                   upsample: str = "transpose") -> ResnetGenerator:
    """ResNet generator with 9 residual blocks (the CycleGAN default for 256 px images).

    Inputs: H, W multiples of 4, at least 8. 11,378,179 parameters at ``ngf=64``. With
    ``norm="conditional_instance"`` and ``n_labels`` it is a multi-style generator ``g(x, s)``.
    ``n_downsampling`` (default 2, the official layout) of 1 or 0 keeps the residual blocks at
    1/2 or full resolution, for small images (the built-in demo uses 0 at 32 px).
    """
    del image_size  # any size works
    net = ResnetGenerator(in_channels, out_channels, ngf=ngf, n_blocks=9, norm=norm,
                          dropout=dropout, n_labels=n_labels,
                          n_downsampling=n_downsampling, upsample=upsample)
    return _init(net, init, init_gain)


def resnet_6blocks(*, in_channels: int = 3, out_channels: int = 3, ngf: int = 64,
                   norm: str = "instance", dropout: bool = False, init: str = "normal",
                   init_gain: float = 0.02, image_size: int | None = None,
                   n_labels: int | None = None, n_downsampling: int = 2,
                   upsample: str = "transpose") -> ResnetGenerator:
    """ResNet generator with 6 residual blocks (the CycleGAN choice for 128 px images)."""
    del image_size
    net = ResnetGenerator(in_channels, out_channels, ngf=ngf, n_blocks=6, norm=norm,
                          dropout=dropout, n_labels=n_labels,
                          n_downsampling=n_downsampling, upsample=upsample)
    return _init(net, init, init_gain)


def unet_32(*, in_channels: int = 3, out_channels: int = 3, ngf: int = 64,
            norm: str = "instance", dropout: bool = False, init: str = "normal",
            init_gain: float = 0.02, image_size: int | None = None,
            upsample: str = "transpose") -> UnetGenerator:
    """U-Net with 5 downsamplings (the fewest the U-Net takes): H, W multiples of 32.

    For small images. (The built-in demo used it at 32 px until a full-resolution ResNet
    generator, ``resnet_6blocks(n_downsampling=0)``, measured better: docs/cyclegan.md.)
    """
    del image_size
    net = UnetGenerator(in_channels, out_channels, num_downs=5, ngf=ngf, norm=norm,
                        dropout=dropout, upsample=upsample)
    return _init(net, init, init_gain)


def unet_128(*, in_channels: int = 3, out_channels: int = 3, ngf: int = 64,
             norm: str = "instance", dropout: bool = False, init: str = "normal",
             init_gain: float = 0.02, image_size: int | None = None,
            upsample: str = "transpose") -> UnetGenerator:
    """U-Net with 7 downsamplings: H, W multiples of 128."""
    del image_size
    net = UnetGenerator(in_channels, out_channels, num_downs=7, ngf=ngf, norm=norm,
                        dropout=dropout, upsample=upsample)
    return _init(net, init, init_gain)


def unet_256(*, in_channels: int = 3, out_channels: int = 3, ngf: int = 64,
             norm: str = "instance", dropout: bool = False, init: str = "normal",
             init_gain: float = 0.02, image_size: int | None = None,
            upsample: str = "transpose") -> UnetGenerator:
    """U-Net with 8 downsamplings: H, W multiples of 256."""
    del image_size
    net = UnetGenerator(in_channels, out_channels, num_downs=8, ngf=ngf, norm=norm,
                        dropout=dropout, upsample=upsample)
    return _init(net, init, init_gain)


def patchgan(*, in_channels: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "instance",
             init: str = "normal", init_gain: float = 0.02,
             image_size: int | None = None) -> NLayerDiscriminator:
    """PatchGAN discriminator returning a map of raw logits (70×70 receptive field at 3 layers).

    2,764,737 parameters at ``ndf=64, n_layers=3`` with instance norm.
    """
    del image_size
    return _init(NLayerDiscriminator(in_channels, ndf=ndf, n_layers=n_layers, norm=norm), init,
                 init_gain)


def pixel(*, in_channels: int = 3, ndf: int = 64, norm: str = "instance", init: str = "normal",
          init_gain: float = 0.02, image_size: int | None = None) -> PixelDiscriminator:
    """1×1 PixelGAN discriminator: one raw logit per pixel."""
    del image_size
    return _init(PixelDiscriminator(in_channels, ndf=ndf, norm=norm), init, init_gain)


def stargan_discriminator(*, in_channels: int = 3, n_labels: int = 2, ndf: int = 64,
                          n_layers: int = 3, norm: str = "none", init: str = "normal",
                          init_gain: float = 0.02, image_size: int | None = None
                          ) -> StyleDiscriminator:
    """StarGAN discriminator: a PatchGAN trunk, a real/fake logit map and ``n_labels`` style
    logits per image (returns both). No norm by default, as in StarGAN."""
    del image_size
    return _init(StyleDiscriminator(in_channels, n_labels=n_labels, ndf=ndf, n_layers=n_layers,
                                    norm=norm), init, init_gain)
