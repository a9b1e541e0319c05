"""CycleGAN's adversarial losses: the shared ones of :mod:`gantransfer.nn` (re-exported here).

``lsgan`` is the CycleGAN default (Zhu et al. 2017, Sec. 4 "Training details"); see
:class:`gantransfer.nn.GANLoss` for every mode and :func:`gantransfer.nn.gradient_penalty`.
"""

from __future__ import annotations

from gantransfer.nn import GAN_MODES, GANLoss, gradient_penalty

__all__ = ["GAN_MODES", "GANLoss", "gradient_penalty"]
