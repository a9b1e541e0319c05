"""Paired metrics: PSNR and SSIM of each fake image against the real image of the same relative
path (extension aside, as paired training data is matched), averaged over the pairs.

They need ground truth: a translation with no known target (horse -> zebra) has none, and the
result then says "not applicable" instead of a number. Both compare pixels at the images' own
size and channel count, so a pair whose sizes or channels differ is an error, not a silent resize.

* PSNR: ``10·log10(1 / MSE)`` on [0, 1] (:func:`gantransfer.data.metrics.psnr`); an identical pair
  is ``inf`` and so is then the mean.
* SSIM (Wang et al. 2004): torchmetrics' ``structural_similarity_index_measure`` with its
  defaults, an 11×11 Gaussian window with σ = 1.5, K1 = 0.01, K2 = 0.03, on [0, 1], averaged over
  pixels and channels.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.folders import ImageReadError
from ..data.images import probe_image, read_image
from ..data.metrics import psnr
from .features import EvaluationError, Progress, find_images, read_rgb
from .stats import require_torchmetrics

__all__ = ["PAIRED_METRICS", "PairedResult", "paired_metrics"]

PAIRED_METRICS = ("psnr", "ssim")
_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


@dataclass(frozen=True, kw_only=True)
class PairedResult:
    """Mean PSNR (dB) and SSIM over ``n_pairs`` pairs, or None for "not applicable" (then
    ``reason`` says why). ``per_image`` maps each fake image's relative path to its values;
    ``n_unmatched`` fake images had no ground truth and were left out."""

    psnr: float | None
    ssim: float | None
    n_pairs: int
    n_unmatched: int
    metrics: tuple[str, ...] = PAIRED_METRICS
    reason: str | None = None
    per_image: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def applicable(self) -> bool:
        return self.n_pairs > 0

    def to_dict(self, name: str) -> dict[str, Any]:
        """The entry for metric ``name`` ("psnr" or "ssim") in a JSON report."""
        if not self.applicable:
            return {"value": None, "status": "not applicable", "reason": self.reason}
        value = getattr(self, name)
        return {"value": value if np.isfinite(value) else str(value), "status": "ok",
                "n_pairs": self.n_pairs, "n_unmatched": self.n_unmatched}


def _key(path: Path, folder: Path) -> str:
    return path.relative_to(folder).with_suffix("").as_posix()


def _channels(path: Path) -> int:
    try:
        return 1 if probe_image(path).mode in _GRAY_MODES else 3
    except ImageReadError as exc:
        raise EvaluationError(f"cannot read image {exc.path}: {exc.reason}") from exc


def _read(path: Path, channels: int) -> np.ndarray:
    if channels == 3:
        return read_rgb(path).numpy()
    try:
        return np.asarray(read_image(path, channels=1))[None]
    except ImageReadError as exc:
        raise EvaluationError(f"cannot read image {exc.path}: {exc.reason}") from exc


def _ssim_function() -> Callable[..., Any]:  # one tensor, with the default return_* flags
    require_torchmetrics()
    from torchmetrics.functional.image import structural_similarity_index_measure

    return structural_similarity_index_measure


def paired_metrics(real: str | os.PathLike[str], fake: str | os.PathLike[str], *,
                   metrics: Sequence[str] = PAIRED_METRICS,
                   progress: Progress | None = None) -> PairedResult:
    """PSNR and/or SSIM of every image in ``fake`` that has a ground truth in ``real``.

    Pairs are matched by relative path without extension (``fake/sub/x.png`` with
    ``real/sub/x.jpg``). Metrics not in ``metrics`` are None.

    Raises:
        EvaluationError: a missing or empty folder, an unreadable file, or a pair whose sizes
            or channel counts differ (the message names both files).
        ValueError: an unknown metric name.
        ImportError: SSIM requested without torchmetrics.
    """
    unknown = sorted(set(metrics) - set(PAIRED_METRICS))
    if unknown:
        raise ValueError(f"unknown paired metric(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(PAIRED_METRICS)}")
    metrics = tuple(dict.fromkeys(metrics))
    real, fake = Path(real), Path(fake)
    truth: dict[str, Path] = {}
    for path in find_images(real):
        truth.setdefault(_key(path, real), path)
    fakes = find_images(fake)
    pairs = [(path, truth[_key(path, fake)]) for path in fakes if _key(path, fake) in truth]
    if not pairs:
        return PairedResult(psnr=None, ssim=None, n_pairs=0, n_unmatched=len(fakes),
                            metrics=metrics, reason=f"no image in {fake} has a ground truth of the same relative "
                                   f"path in {real}")
    ssim_fn = _ssim_function() if "ssim" in metrics else None
    per_image: dict[str, dict[str, float]] = {}
    for done, (fake_path, real_path) in enumerate(pairs, 1):
        channels, real_channels = _channels(fake_path), _channels(real_path)
        if real_channels != channels:
            raise EvaluationError(
                f"{fake_path} has {channels} channel(s) but its ground truth {real_path} has "
                f"{real_channels}: paired metrics compare like with like; convert one of them "
                "(e.g. save the outputs as RGB)")
        a, b = _read(fake_path, channels), _read(real_path, channels)
        if a.shape != b.shape:
            raise EvaluationError(
                f"{fake_path} is {a.shape[2]}×{a.shape[1]} but its ground truth {real_path} is "
                f"{b.shape[2]}×{b.shape[1]}: paired metrics need equal sizes; produce the "
                "outputs at the ground truth's size")
        values: dict[str, float] = {}
        if "psnr" in metrics:
            values["psnr"] = psnr(a, b)
        if ssim_fn is not None:
            ta, tb = (torch.from_numpy(x).unsqueeze(0).double() / 255.0 for x in (a, b))
            values["ssim"] = float(ssim_fn(ta, tb, data_range=1.0))
        per_image[fake_path.relative_to(fake).as_posix()] = values
        if progress is not None:
            progress("paired metrics", done, len(pairs))

    def mean(name: str) -> float | None:
        return float(np.mean([v[name] for v in per_image.values()])) if name in metrics else None

    return PairedResult(psnr=mean("psnr"), ssim=mean("ssim"), n_pairs=len(pairs),
                        n_unmatched=len(fakes) - len(pairs), metrics=metrics,
                        per_image=per_image)
