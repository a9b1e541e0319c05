"""The two-folder evaluation and its building blocks: features of a folder (cached), metrics from
features, one result object that serialises to JSON.

    from gantransfer.evaluation import evaluate_folders, load_inception
    net = load_inception(device="cuda")          # once, reused for every checkpoint
    result = evaluate_folders("data/testB", "out/ckpt_1000", extractor=net, device="cuda")
    result.to_dict()    # {"fid": {"value": ..., "n_real": ..., ...}, "kid": {...}, "psnr": ...}
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .cache import FeatureCache, folder_key
from .features import (
    DEFAULT_BATCH_SIZE,
    FeatureExtractor,
    Progress,
    extract_features,
    find_images,
)
from .inception import load_inception
from .paired import PAIRED_METRICS, PairedResult, paired_metrics
from .stats import DEFAULT_KID_SUBSETS, FID_BIASED_BELOW, FIDResult, KIDResult, fid, kid

__all__ = ["METRICS", "EvalResult", "evaluate_features", "evaluate_folders", "folder_features"]

log = logging.getLogger(__name__)

METRICS = ("fid", "kid", *PAIRED_METRICS)
_FEATURE_METRICS = ("fid", "kid")


@dataclass(frozen=True, kw_only=True)
class EvalResult:
    """What an evaluation computed; a metric not asked for is None. ``notes`` are caveats a
    reader of the numbers should see (small-set FID bias, a KID std of 0 ...)."""

    fid: FIDResult | None = None
    kid: KIDResult | None = None
    paired: PairedResult | None = None
    notes: tuple[str, ...] = ()
    sources: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (non-finite PSNR as the string "inf")."""
        out: dict[str, Any] = dict(self.sources)
        if self.fid is not None:
            out["fid"] = self.fid.to_dict()
        if self.kid is not None:
            out["kid"] = self.kid.to_dict()
        if self.paired is not None:
            for name in self.paired.metrics:
                out[name] = self.paired.to_dict(name)
        out["notes"] = list(self.notes)
        return out


def _check_metrics(metrics: Sequence[str]) -> tuple[str, ...]:
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown or not metrics:
        raise ValueError(f"unknown metric(s) {', '.join(unknown) or '(none given)'}; choose from "
                         f"{', '.join(METRICS)}")
    return tuple(dict.fromkeys(metrics))


def folder_features(folder: str | os.PathLike[str], extractor: FeatureExtractor, *,
                    device: str | torch.device = "cpu", batch_size: int = DEFAULT_BATCH_SIZE,
                    cache: FeatureCache | None = None, progress: Progress | None = None,
                    stage: str = "features") -> np.ndarray:
    """``N×D`` features of every image below ``folder``, from ``cache`` when it holds them
    for the folder's current files and this extractor (then the extractor is not run), else
    extracted and stored there.

    Raises:
        EvaluationError: a missing or empty folder, an unreadable image.
    """
    files = find_images(folder)
    key = folder_key(folder, files, extractor.cache_key) if cache is not None else None
    if cache is not None and key is not None:
        cached = cache.load(key)
        if cached is not None and len(cached) == len(files):
            if progress is not None:
                progress(stage, len(files), len(files))
            return cached
    features = extract_features(files, extractor, device=device, batch_size=batch_size,
                                progress=progress, stage=stage)
    if cache is not None and key is not None:
        cache.save(key, features, folder=folder)
    return features


def evaluate_features(real: np.ndarray, fake: np.ndarray, *, metrics: Sequence[str] = ("fid", "kid"),
                      kid_subsets: int = DEFAULT_KID_SUBSETS, kid_subset_size: int | None = None,
                      seed: int = 0) -> EvalResult:
    """FID and/or KID from two ``N×D`` feature sets (e.g. cached real features and features of
    images a model translated in memory). See :func:`~.stats.fid` and :func:`~.stats.kid`.

    Raises:
        EvaluationError: too few images for a metric, a KID subset larger than a set.
        ValueError: an unknown or paired metric name.
    """
    metrics = _check_metrics(metrics)
    paired = sorted(set(metrics) - set(_FEATURE_METRICS))
    if paired:
        raise ValueError(f"{', '.join(paired)} compare image pairs, not features: use "
                         "evaluate_folders or paired_metrics")
    notes = []
    fid_result = fid(real, fake) if "fid" in metrics else None
    if fid_result is not None and fid_result.biased:
        notes.append(f"FID from {fid_result.n_real} real and {fid_result.n_fake} fake images "
                     f"(fewer than {FID_BIASED_BELOW}) is biased upwards: compare it only with "
                     "FID from the same numbers of images; KID is unbiased")
    kid_result = None
    if "kid" in metrics:
        kid_result = kid(real, fake, subsets=kid_subsets, subset_size=kid_subset_size, seed=seed)
        if kid_result.subset_size == kid_result.n_real == kid_result.n_fake:
            notes.append("every KID subset was the whole of both sets, so its std (0) says "
                         "nothing about its spread; use a smaller subset size for one")
    return EvalResult(fid=fid_result, kid=kid_result, notes=tuple(notes))


def evaluate_folders(real: str | os.PathLike[str], fake: str | os.PathLike[str], *,
                     metrics: Sequence[str] = METRICS, extractor: FeatureExtractor | None = None,
                     weights: str | os.PathLike[str] | None = None,
                     device: str | torch.device = "cpu", batch_size: int = DEFAULT_BATCH_SIZE,
                     kid_subsets: int = DEFAULT_KID_SUBSETS, kid_subset_size: int | None = None,
                     seed: int = 0, cache: FeatureCache | bool = True,
                     progress: Progress | None = None) -> EvalResult:
    """Compare a folder of generated images with a folder of real ones, from any tool.

    Folders are searched recursively; sizes may differ (every image is resized to 299×299 for
    FID/KID as the reference does) and grayscale is repeated to RGB. PSNR/SSIM are computed for
    fake images with a real image of the same relative path and are "not applicable" when there
    is none.

    Args:
        real, fake: image folders.
        metrics: any of ``fid``, ``kid``, ``psnr``, ``ssim``.
        extractor: the feature network, e.g. ``load_inception(device=...)``; default: loaded
            from ``weights`` (default: the downloaded file). Pass it when evaluating many
            folders so it is loaded once.
        device: where features are computed.
        batch_size: images per network call.
        kid_subsets, kid_subset_size, seed: see :func:`~.stats.kid`.
        cache: where the *real* folder's features are cached (True: the default location,
            False: no cache); the fake folder is always extracted.
        progress: called as ``progress(stage, done, total)``.

    Raises:
        EvaluationError: missing or empty folders, too few images, mismatched pairs.
        WeightsNotFoundError: FID/KID asked for and no weights file (the message says how to get
            it).
        ImportError: torchmetrics is missing.
    """
    metrics = _check_metrics(metrics)
    real, fake = Path(real), Path(fake)
    for folder in (real, fake):  # fail on a missing or empty folder before loading anything
        find_images(folder)
    feature_metrics = [m for m in metrics if m in _FEATURE_METRICS]
    result = EvalResult()
    if feature_metrics:
        if extractor is None:
            extractor = load_inception(weights, device=device)
        store = FeatureCache() if cache is True else (cache or None)
        real_features = folder_features(real, extractor, device=device, batch_size=batch_size,
                                        cache=store, progress=progress, stage="real features")
        fake_features = folder_features(fake, extractor, device=device, batch_size=batch_size,
                                        progress=progress, stage="fake features")
        result = evaluate_features(real_features, fake_features, metrics=feature_metrics,
                                   kid_subsets=kid_subsets, kid_subset_size=kid_subset_size,
                                   seed=seed)
    paired = None
    paired_names = [m for m in metrics if m in PAIRED_METRICS]
    if paired_names:
        paired = paired_metrics(real, fake, metrics=paired_names, progress=progress)
    return EvalResult(fid=result.fid, kid=result.kid, paired=paired, notes=result.notes,
                      sources={"real": str(real), "fake": str(fake)})
