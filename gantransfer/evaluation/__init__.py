"""Measure generated images: FID and KID on the FID Inception-v3, PSNR and SSIM against ground
truth (docs/evaluation.md).

The statistics come from torchmetrics, an optional dependency (``pip install
'gantransfer[eval]'``); importing this package does not import it, using FID, KID or SSIM does.
The Inception weights come only from a local file (``gtx weights download inception``).

    from gantransfer.evaluation import evaluate_folders
    result = evaluate_folders("data/testB", "outputs/", device="cuda")
    print(result.fid.value, result.kid.mean, result.kid.std, result.fid.n_real)
"""

from __future__ import annotations

from .cache import FeatureCache, default_cache_dir, folder_key
from .evaluate import METRICS, EvalResult, evaluate_features, evaluate_folders, folder_features
from .features import EvaluationError, FeatureExtractor, Progress, extract_features, find_images
from .heldout import held_out_folder
from .inception import (
    INCEPTION_WEIGHTS,
    InceptionV3Features,
    WeightsFormatError,
    WeightsNotFoundError,
    default_weights_path,
    load_inception,
    random_inception_weights,
    resize_tf1_bilinear,
)
from .paired import PairedResult, paired_metrics
from .stats import FIDResult, KIDResult, fid, kid

__all__ = [
    "INCEPTION_WEIGHTS",
    "METRICS",
    "EvalResult",
    "EvaluationError",
    "FIDResult",
    "FeatureCache",
    "FeatureExtractor",
    "InceptionV3Features",
    "KIDResult",
    "PairedResult",
    "Progress",
    "WeightsFormatError",
    "WeightsNotFoundError",
    "default_cache_dir",
    "default_weights_path",
    "evaluate_features",
    "evaluate_folders",
    "extract_features",
    "fid",
    "find_images",
    "folder_features",
    "folder_key",
    "held_out_folder",
    "kid",
    "load_inception",
    "paired_metrics",
    "random_inception_weights",
    "resize_tf1_bilinear",
]
