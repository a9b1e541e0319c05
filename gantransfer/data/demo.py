"""Procedural built-in datasets: the demo and the tests need no download.

Two generators, both deterministic in ``seed`` and vectorised in numpy (no per-pixel loops):

* :func:`make_single` writes ``n`` images of anti-aliased coloured shapes (discs, rotated boxes,
  rings) on smooth two-colour gradient backgrounds: an unconditional dataset that a small DCGAN
  visibly learns in minutes.
* :func:`make_two_domain` writes an unpaired translation task. Domain A is the same kind of scene
  in a *warm, light* palette; domain B is A after the fixed restyling :func:`restyle` (colour
  inversion, swap of the red and green channels, then a gamma-0.7 contrast curve), which turns
  light warm scenes into dark blue/violet ones. ``trainA`` and ``trainB`` are independent draws
  (unpaired); ``testB/x.png`` is exactly ``restyle(testA/x.png)``, so a trained A->B generator can
  be scored against ground truth with :func:`gantransfer.data.metrics.psnr`.

Why this restyling: it is a smooth pointwise bijection (a tiny ResNet generator can represent it
and its inverse, so the cycle loss can be satisfied), and A's warm palette is not symmetric under
it (inverted warm colours are cool), so the identity map does not fool a discriminator and the
identity baseline scores a low PSNR (about 5-7 dB at 32 px).

Example::

    from gantransfer.data import demo
    demo.make_two_domain("data/demo", n_train=200, n_test=16, size=32, seed=0)
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["GAMMA", "make_single", "make_two_domain", "render_scene", "restyle"]

logger = logging.getLogger(__name__)

GAMMA = 0.7  # contrast curve of the A->B restyling: y = x ** GAMMA on [0, 1] (lifts dark tones)

# Stream ids mixed into the seed so that each folder gets independent images.
_STREAM = {"single": 0, "trainA": 1, "trainB": 2, "testA": 3}


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV -> RGB for arrays of equal shape, all in [0, 1]; returns shape + (3,)."""
    i = np.floor(h * 6.0).astype(int) % 6
    f = h * 6.0 - np.floor(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    table = np.stack([
        np.stack([v, t, p], -1), np.stack([q, v, p], -1), np.stack([p, v, t], -1),
        np.stack([p, q, v], -1), np.stack([t, p, v], -1), np.stack([v, p, q], -1),
    ])
    return np.take_along_axis(table, i[None, ..., None].repeat(3, -1), 0)[0]


def _colours(rng: np.random.Generator, n: int, palette: str, *, background: bool) -> np.ndarray:
    """``n`` RGB colours in [0, 1] from the named palette ("any" or "warm")."""
    if palette == "warm":
        # Reds, oranges and yellows; backgrounds light and pale, shapes saturated.
        h = rng.uniform(-0.03, 0.16, n) % 1.0
        s = rng.uniform(0.05, 0.3, n) if background else rng.uniform(0.55, 1.0, n)
        v = rng.uniform(0.85, 1.0, n) if background else rng.uniform(0.55, 1.0, n)
    elif palette == "any":
        h = rng.uniform(0.0, 1.0, n)
        s = rng.uniform(0.1, 0.5, n) if background else rng.uniform(0.6, 1.0, n)
        v = rng.uniform(0.15, 0.5, n) if background else rng.uniform(0.7, 1.0, n)
    else:
        raise ValueError(f"unknown palette {palette!r}; expected 'any' or 'warm'")
    return _hsv_to_rgb(h, s, v)


def render_scene(rng: np.random.Generator, size: int, *, palette: str = "any",
                 shapes: tuple[int, int] = (1, 3)) -> np.ndarray:
    """Render one scene: a gradient background with a few anti-aliased shapes.

    Args:
        rng: source of every random choice (the scene is a pure function of its state).
        size: width and height in pixels.
        palette: ``"any"`` (all hues, darker backgrounds) or ``"warm"`` (domain A of the demo).
        shapes: inclusive range of the number of shapes.

    Returns:
        ``size×size×3`` uint8 array.
    """
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    bg = _colours(rng, 2, palette, background=True)
    angle = rng.uniform(0, 2 * np.pi)
    # Linear gradient along a random direction, t in [0, 1] over the image.
    proj = (xx - size / 2) * np.cos(angle) + (yy - size / 2) * np.sin(angle)
    t = (proj / (size * 0.75) + 0.5).clip(0, 1)[..., None]
    img = bg[0] * (1 - t) + bg[1] * t

    count = int(rng.integers(shapes[0], shapes[1] + 1))
    fills = _colours(rng, count, palette, background=False)
    for k in range(count):
        cx, cy = rng.uniform(0.2, 0.8, 2) * size
        r = rng.uniform(0.12, 0.3) * size
        kind = rng.integers(0, 3)
        dx, dy = xx - cx, yy - cy
        if kind == 0:  # disc
            dist = np.hypot(dx, dy) - r
        elif kind == 1:  # rotated box: signed distance in the box's own frame
            theta = rng.uniform(0, np.pi)
            u = np.abs(dx * np.cos(theta) + dy * np.sin(theta)) - r
            v = np.abs(-dx * np.sin(theta) + dy * np.cos(theta)) - r * rng.uniform(0.4, 1.0)
            dist = np.maximum(u, v)
        else:  # ring
            dist = np.abs(np.hypot(dx, dy) - r) - max(1.0, r * 0.3)
        # One-pixel soft edge: anti-aliasing without supersampling.
        alpha = (0.5 - dist).clip(0, 1)[..., None]
        img = img * (1 - alpha) + fills[k] * alpha
    return np.rint(img.clip(0, 1) * 255).astype(np.uint8)


def restyle(images: np.ndarray) -> np.ndarray:
    """The demo's ground-truth A->B translation, applied pointwise.

    ``y = (1 - x[..., (G, R, B)]) ** GAMMA`` on values in [0, 1]: invert, swap red and green, and
    lift dark tones with a contrast curve (so dark B backgrounds keep their gradients).

    Args:
        images: uint8 array ``...×H×W×3`` (RGB, channels last).

    Returns:
        uint8 array of the same shape.
    """
    if images.dtype != np.uint8 or images.shape[-1] != 3:
        raise ValueError(f"restyle expects uint8 RGB arrays (...×H×W×3), got {images.dtype} "
                         f"{images.shape}")
    # A 256-entry lookup table makes the map exact and identical everywhere it is applied.
    lut = np.rint(((255 - np.arange(256)) / 255.0) ** GAMMA * 255).astype(np.uint8)
    return lut[images[..., [1, 0, 2]]]


def _rng(seed: int, stream: str, index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), _STREAM[stream], int(index)])


def _write(folder: Path, index: int, array: np.ndarray) -> None:
    Image.fromarray(array, "RGB").save(folder / f"{index:05d}.png")


def _check(name: str, value: int, minimum: int) -> None:
    if int(value) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def make_single(root: str | os.PathLike[str], *, n: int = 512, size: int = 32,
                seed: int = 0) -> Path:
    """Write ``n`` shape images (``root/00000.png`` ...) for unconditional models such as DCGAN.

    Args:
        root: output folder (created; existing files with the same names are overwritten).
        n: number of images.
        size: width and height in pixels (at least 8).
        seed: the same seed always writes the same pixels.

    Returns:
        ``root`` as a Path.

    Raises:
        ValueError: for ``n < 1`` or ``size < 8``.
    """
    _check("n", n, 1)
    _check("size", size, 8)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        _write(root, i, render_scene(_rng(seed, "single", i), size, palette="any", shapes=(1, 2)))
    logger.info("wrote %d demo images of %dx%d to %s", n, size, size, root)
    return root


def make_two_domain(root: str | os.PathLike[str], *, n_train: int = 400, n_test: int = 16,
                    size: int = 32, seed: int = 0) -> Path:
    """Write the unpaired demo task: ``trainA/ trainB/ testA/ testB/`` under ``root``.

    ``trainA`` and ``trainB`` hold ``n_train`` independent images each (B scenes are drawn
    separately and then restyled, so no trainB image is the translation of a trainA image).
    ``testB/x.png == restyle(testA/x.png)`` for every one of the ``n_test`` test names.

    Args:
        root: output folder (created; files with the same names are overwritten).
        n_train: images per training domain.
        n_test: test pairs (at least 1).
        size: width and height in pixels (at least 8).
        seed: the same seed always writes the same pixels.

    Returns:
        ``root`` as a Path.

    Raises:
        ValueError: for counts < 1 or ``size < 8``.
    """
    _check("n_train", n_train, 1)
    _check("n_test", n_test, 1)
    _check("size", size, 8)
    root = Path(root)
    folders = {name: root / name for name in ("trainA", "trainB", "testA", "testB")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)

    def scene(stream: str, i: int) -> np.ndarray:
        return render_scene(_rng(seed, stream, i), size, palette="warm", shapes=(1, 3))

    for i in range(n_train):
        _write(folders["trainA"], i, scene("trainA", i))
        _write(folders["trainB"], i, restyle(scene("trainB", i)))
    for i in range(n_test):
        a = scene("testA", i)
        _write(folders["testA"], i, a)
        _write(folders["testB"], i, restyle(a))
    logger.info("wrote demo translation task (%d train / %d test per domain, %dx%d) to %s",
                n_train, n_test, size, size, root)
    return root
