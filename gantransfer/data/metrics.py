"""Image quality metrics (numpy only): PSNR against ground truth, and a cheap distribution
distance for generators (:func:`statistics_distance`) that needs no pretrained network."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["frechet_distance", "image_statistics", "psnr", "statistics_distance"]


def _to_unit(x: Any) -> np.ndarray:
    """uint8 arrays -> [0, 1]; float arrays/tensors are taken as [-1, 1] and mapped to [0, 1]."""
    if hasattr(x, "detach"):  # a torch tensor, without importing torch here
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return x.astype(np.float64) / 255.0
    if np.issubdtype(x.dtype, np.floating):
        return (x.astype(np.float64) + 1.0) / 2.0
    raise TypeError(f"psnr expects uint8 images or float images in [-1, 1], got dtype {x.dtype}")


def psnr(a: Any, b: Any) -> float:
    """Peak signal-to-noise ratio in dB between two images (or batches) of the same shape.

    Inputs are uint8 (0..255) or floating point in [-1, 1] (numpy arrays or torch tensors; the two
    may differ in type). PSNR = 10 log10(1 / MSE) on the [0, 1] scale; identical inputs give
    ``inf``.

    Raises:
        ValueError: when the shapes differ.
        TypeError: for other dtypes.
    """
    ua, ub = _to_unit(a), _to_unit(b)
    if ua.shape != ub.shape:
        raise ValueError(f"psnr needs equal shapes, got {ua.shape} and {ub.shape}")
    mse = float(np.mean((ua - ub) ** 2))
    return float("inf") if mse == 0.0 else 10.0 * float(np.log10(1.0 / mse))


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray,
                     cov2: np.ndarray) -> float:
    """Fréchet (2-Wasserstein) distance between N(mu1, cov1) and N(mu2, cov2):
    ``‖mu1 − mu2‖² + tr(cov1 + cov2 − 2 (cov1^½ cov2 cov1^½)^½)`` (Dowson & Landau 1982; the
    formula behind FID, Heusel et al. 2017).

    The cross term uses the symmetric form ``cov1^½ cov2 cov1^½`` (positive semi-definite, so an
    eigendecomposition suffices and no complex square root appears); its trace equals that of
    ``(cov1 cov2)^½``. Negative eigenvalues from round-off are clipped to 0.

    Raises:
        ValueError: shapes that do not describe two Gaussians of the same dimension.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    cov1, cov2 = np.atleast_2d(np.asarray(cov1, np.float64)), np.atleast_2d(np.asarray(cov2, np.float64))
    d = mu1.shape[0]
    if mu2.shape != (d,) or cov1.shape != (d, d) or cov2.shape != (d, d):
        raise ValueError(f"frechet_distance needs means of shape (d,) and covariances (d, d); got "
                         f"{mu1.shape}, {cov1.shape}, {mu2.shape}, {cov2.shape}")
    w, v = np.linalg.eigh((cov1 + cov1.T) / 2)
    root1 = (v * np.sqrt(w.clip(0))) @ v.T
    cross = np.sqrt(np.linalg.eigvalsh(root1 @ cov2 @ root1).clip(0)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(cov1) + np.trace(cov2) - 2.0 * cross)


def image_statistics(images: Any) -> np.ndarray:
    """Nine numbers per image that tell the built-in shape data from noise, blur and flat colour.

    ``images``: ``N×3×H×W`` (float in [-1, 1] or uint8; numpy or torch) with H, W multiples of 4.
    Per image: mean R, G, B; the standard deviation of each channel after 4×4 block averaging
    (coarse layout: shapes and gradients); mean absolute difference of horizontal and vertical
    neighbours (edges and noise); mean saturation (max − min over channels). Returns ``N×9``.
    """
    x = _to_unit(images)
    if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] % 4 or x.shape[3] % 4:
        raise ValueError(f"image_statistics expects N×3×H×W images with H and W multiples of 4; "
                         f"got shape {x.shape}")
    n, c, h, w = x.shape
    low = x.reshape(n, c, 4, h // 4, 4, w // 4).mean((3, 5))
    edges = (np.abs(np.diff(x, axis=3)).mean((1, 2, 3)) + np.abs(np.diff(x, axis=2)).mean((1, 2, 3)))
    saturation = (x.max(1) - x.min(1)).mean((1, 2))
    return np.concatenate([x.mean((2, 3)), low.std((2, 3)), edges[:, None], saturation[:, None]], 1)


def statistics_distance(real: Any, fake: Any) -> float:
    """Fréchet distance between Gaussians fitted to :func:`image_statistics` of two image sets,
    every statistic divided by its standard deviation over ``real`` so each counts alike.

    A cheap, weights-free stand-in for FID on the built-in procedural data (what the DCGAN
    learning test and benchmark use): two independent draws of the shape data score about 0.03
    at 1,000 images each, an untrained DCGAN about 45, grey-noise collapse about 47. It compares
    colour and layout statistics, not content, so it is no substitute for FID on real photos.

    Raises:
        ValueError: fewer than 2 images in a set, or shapes :func:`image_statistics` refuses.
    """
    fr, ff = image_statistics(real), image_statistics(fake)
    if len(fr) < 2 or len(ff) < 2:
        raise ValueError(f"statistics_distance needs at least 2 images per set; got {len(fr)} "
                         f"real and {len(ff)} fake")
    scale = fr.std(0)
    scale[scale == 0] = 1.0
    fr, ff = fr / scale, ff / scale
    return frechet_distance(fr.mean(0), np.cov(fr, rowvar=False), ff.mean(0),
                            np.cov(ff, rowvar=False))
