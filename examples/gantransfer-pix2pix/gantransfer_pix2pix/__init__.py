"""pix2pix (Isola et al. 2017) as a gantransfer architecture plugin.

Installed with ``pip install ./examples/gantransfer-pix2pix``; gantransfer finds it through the
``gantransfer.architectures`` entry point ``pix2pix``. Only gantransfer's public API is used; the
U-Net/ResNet generators and the PatchGAN discriminator come from the network registry by name.
"""

from __future__ import annotations

from .config import Pix2PixConfig
from .model import Pix2Pix
from .networks import MultiScalePatchGAN, multiscale_patchgan

__all__ = ["MultiScalePatchGAN", "Pix2Pix", "Pix2PixConfig", "multiscale_patchgan"]
