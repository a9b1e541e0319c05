"""FID and KID from two sets of features, computed by torchmetrics.

torchmetrics owns the statistics (its ``FrechetInceptionDistance`` and ``KernelInceptionDistance``);
we hand it features we extracted ourselves (batched, cached, on any device) through a pass-through
``feature=`` module, so it never needs its own Inception (which would need torch-fidelity and
torchvision). Both metrics run in float64.

* FID (Heusel et al. 2017): ``‖μ_r − μ_f‖² + tr(Σ_r + Σ_f − 2 (Σ_r Σ_f)^½)`` between Gaussians
  fitted to the two feature sets (unbiased covariances).
* KID (Bińkowski et al. 2018): the unbiased estimate of the squared MMD with the cubic polynomial
  kernel ``k(x, y) = (xᵀy / d + 1)³``, averaged over ``subsets`` random subsets of
  ``subset_size`` features from each set; the standard deviation over those subsets is reported
  with it. Subsets are drawn from a seeded generator, so the same inputs give the same numbers.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .features import EvaluationError

__all__ = [
    "DEFAULT_KID_SUBSETS",
    "FID_BIASED_BELOW",
    "KID_MAX_SUBSET_SIZE",
    "MIN_FID_IMAGES",
    "FIDResult",
    "KIDResult",
    "fid",
    "kid",
    "require_torchmetrics",
]

log = logging.getLogger(__name__)

MIN_FID_IMAGES = 2  # a covariance needs two samples
# Below the feature dimension the 2048×2048 covariance is singular and FID's bias (which falls
# like 1/N; Chong & Forsyth 2020) is large: values are comparable only at equal N.
FID_BIASED_BELOW = 2048
DEFAULT_KID_SUBSETS = 100  # torch-fidelity's and StyleGAN2-ADA's defaults
KID_MAX_SUBSET_SIZE = 1000


def require_torchmetrics() -> None:
    """Raise an ImportError that says how to install torchmetrics when it is missing."""
    try:
        import torchmetrics  # noqa: F401
    except ImportError as exc:
        raise ImportError("FID, KID and SSIM need torchmetrics, which is not installed: "
                          "pip install 'gantransfer[eval]'") from exc


@dataclass(frozen=True, kw_only=True)
class FIDResult:
    """A Fréchet Inception Distance and the number of images behind each side."""

    value: float
    n_real: int
    n_fake: int

    @property
    def biased(self) -> bool:
        """True when a set is smaller than :data:`FID_BIASED_BELOW` images."""
        return min(self.n_real, self.n_fake) < FID_BIASED_BELOW

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "n_real": self.n_real, "n_fake": self.n_fake}


@dataclass(frozen=True, kw_only=True)
class KIDResult:
    """A Kernel Inception Distance: mean and standard deviation over ``subsets`` subsets of
    ``subset_size`` features from each side, and the set sizes they were drawn from."""

    mean: float
    std: float
    subsets: int
    subset_size: int
    n_real: int
    n_fake: int

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "subsets": self.subsets,
                "subset_size": self.subset_size, "n_real": self.n_real, "n_fake": self.n_fake}


class _Given(nn.Module):
    """torchmetrics' ``feature=`` module for features computed beforehand: returns its input."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.num_features = dim  # read by torchmetrics instead of probing with a dummy image

    def forward(self, features: Tensor) -> Tensor:
        return features


def _as_features(features: Any, name: str) -> Tensor:
    array = torch.as_tensor(np.asarray(features), dtype=torch.float64)
    if array.dim() != 2:
        raise ValueError(f"{name} features must be an N×D array, got shape {tuple(array.shape)}")
    return array


def _pair(real: Any, fake: Any) -> tuple[Tensor, Tensor]:
    r, f = _as_features(real, "real"), _as_features(fake, "fake")
    if len(r) and len(f) and r.shape[1] != f.shape[1]:
        raise ValueError(f"real and fake features differ in dimension ({r.shape[1]} and "
                         f"{f.shape[1]}): were they made by the same extractor?")
    return r, f


def fid(real: Any, fake: Any) -> FIDResult:
    """FID between two ``N×D`` feature sets (numpy arrays or tensors).

    Logs a warning when a set has fewer than :data:`FID_BIASED_BELOW` images.

    Raises:
        EvaluationError: a set has fewer than :data:`MIN_FID_IMAGES` images.
        ImportError: torchmetrics is not installed.
    """
    r, f = _pair(real, fake)
    if min(len(r), len(f)) < MIN_FID_IMAGES:
        raise EvaluationError(f"FID needs at least {MIN_FID_IMAGES} images per set (several "
                              f"thousand for a stable value); got {len(r)} real and {len(f)} fake")
    if min(len(r), len(f)) < FID_BIASED_BELOW:
        log.warning("FID from %d real and %d fake images is biased upwards (fewer than %d): "
                    "compare it only with values from the same numbers of images, and look at "
                    "KID, which is unbiased", len(r), len(f), FID_BIASED_BELOW)
    require_torchmetrics()
    # From its module: torchmetrics.image lists it only when torch-fidelity is installed.
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=_Given(r.shape[1]))
    metric.update(r, real=True)
    metric.update(f, real=False)
    return FIDResult(value=float(metric.compute()), n_real=len(r), n_fake=len(f))


def kid(real: Any, fake: Any, *, subsets: int = DEFAULT_KID_SUBSETS,
        subset_size: int | None = None, seed: int = 0) -> KIDResult:
    """KID between two ``N×D`` feature sets: unbiased MMD² with the cubic polynomial kernel,
    mean and standard deviation over ``subsets`` random subsets.

    ``subset_size`` defaults to ``min(1000, n_real, n_fake)`` (StyleGAN2-ADA's rule). When it
    equals both set sizes every subset is the whole set and the standard deviation is 0: it
    then says nothing about the estimate's spread.

    Raises:
        EvaluationError: ``subset_size`` larger than a set, or smaller than 2.
        ImportError: torchmetrics is not installed.
    """
    r, f = _pair(real, fake)
    largest = min(len(r), len(f))
    size = min(KID_MAX_SUBSET_SIZE, largest) if subset_size is None else subset_size
    if size > largest:
        raise EvaluationError(f"KID subset size {size} is larger than the smaller set ({len(r)} "
                              f"real, {len(f)} fake images); use a subset size of at most "
                              f"{largest}")
    if size < 2 or subsets < 1:
        raise EvaluationError(f"KID needs subsets of at least 2 images from each set and at "
                              f"least one subset; got subset size {size} ({len(r)} real, "
                              f"{len(f)} fake images) and {subsets} subsets")
    require_torchmetrics()
    from torchmetrics.image.kid import KernelInceptionDistance

    with warnings.catch_warnings():
        # "will save all extracted features in buffer": we hand it the features ourselves.
        warnings.simplefilter("ignore", UserWarning)
        metric = KernelInceptionDistance(feature=_Given(r.shape[1]), subsets=subsets,
                                               subset_size=size)
    metric.update(r, real=True)
    metric.update(f, real=False)
    # torchmetrics draws subsets with torch.randperm on the global generator: seed a fork of it
    # so results repeat and the caller's random state is left alone.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return KIDResult(mean=float(mean), std=float(std), subsets=subsets, subset_size=size,
                     n_real=len(r), n_fake=len(f))
