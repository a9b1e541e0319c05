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

__all__ = [
    "CLASSES",
    "GAMMA",
    "STYLES",
    "make_classes",
    "make_single",
    "make_styles",
    "make_two_domain",
    "render_scene",
    "restyle",
    "stylize",
]

logger = logging.getLogger(__name__)

GAMMA = 0.7  # contrast curve of the A->B restyling: y = x ** GAMMA on [0, 1] (lifts dark tones)

# Stream ids mixed into the seed so that each folder gets independent images.
_STREAM = {"single": 0, "trainA": 1, "trainB": 2, "testA": 3, "classes": 4, "styles": 5,
           "styles_test": 6}


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


# -- labelled sets (conditional models) ---------------------------------------------------------
# The K-class set: class = (shape kind, hue band). Each image is one shape of its class's kind in
# a hue from its class's band, on a dark gradient: a small classifier separates the classes on
# colour alone, and the shape kind makes them differ in form too.
CLASSES: dict[str, tuple[int, float]] = {  # name -> (shape kind: 0 disc, 1 box, 2 ring; hue)
    "red_disc": (0, 0.0),
    "green_box": (1, 1 / 3),
    "blue_ring": (2, 2 / 3),
    "yellow_box": (1, 1 / 6),
}


def _class_image(rng: np.random.Generator, size: int, kind: int, hue: float) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    bg = _hsv_to_rgb(rng.uniform(0, 1, 2), rng.uniform(0.1, 0.4, 2), rng.uniform(0.08, 0.3, 2))
    angle = rng.uniform(0, 2 * np.pi)
    proj = (xx - size / 2) * np.cos(angle) + (yy - size / 2) * np.sin(angle)
    t = (proj / (size * 0.75) + 0.5).clip(0, 1)[..., None]
    img = bg[0] * (1 - t) + bg[1] * t
    fill = _hsv_to_rgb(np.array([(hue + rng.uniform(-0.03, 0.03)) % 1.0]),
                       rng.uniform(0.7, 1.0, 1), rng.uniform(0.8, 1.0, 1))[0]
    cx, cy = rng.uniform(0.35, 0.65, 2) * size
    r = rng.uniform(0.22, 0.32) * size
    dx, dy = xx - cx, yy - cy
    if kind == 0:
        dist = np.hypot(dx, dy) - r
    elif kind == 1:
        theta = rng.uniform(0, np.pi / 2)
        u = np.abs(dx * np.cos(theta) + dy * np.sin(theta)) - r * 0.85
        v = np.abs(-dx * np.sin(theta) + dy * np.cos(theta)) - r * 0.85
        dist = np.maximum(u, v)
    else:
        dist = np.abs(np.hypot(dx, dy) - r) - max(1.0, r * 0.3)
    alpha = (0.5 - dist).clip(0, 1)[..., None]
    img = img * (1 - alpha) + fill * alpha
    return np.rint(img.clip(0, 1) * 255).astype(np.uint8)


def make_classes(root: str | os.PathLike[str], *, n_per_class: int = 128, size: int = 32,
                 classes: int = 3, seed: int = 0) -> Path:
    """Write the K-class set for class-conditional generation: ``root/<class>/00000.png``.

    The first ``classes`` entries of :data:`CLASSES` (``red_disc``, ``green_box``,
    ``blue_ring``, ``yellow_box``): one shape of the class's kind in the class's hue band on a
    dark gradient.

    Raises:
        ValueError: ``n_per_class < 1``, ``size < 8`` or ``classes`` outside 2..4.
    """
    _check("n_per_class", n_per_class, 1)
    _check("size", size, 8)
    if not 2 <= classes <= len(CLASSES):
        raise ValueError(f"classes must be 2..{len(CLASSES)}, got {classes}")
    root = Path(root)
    for k, (name, (kind, hue)) in enumerate(list(CLASSES.items())[:classes]):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            rng = np.random.default_rng([int(seed), _STREAM["classes"], k, i])
            _write(folder, i, _class_image(rng, size, kind, hue))
    logger.info("wrote %d-class demo set (%d per class, %dx%d) to %s", classes, n_per_class,
                size, size, root)
    return root


# The K-style set: every style is a fixed, smooth pointwise restyling of the same kind of scene
# (the warm scenes of the two-domain demo), distinct from each other and from the identity.
def _lut(f: np.ndarray) -> np.ndarray:
    return np.rint(f.clip(0, 1) * 255).astype(np.uint8)


_X = np.arange(256) / 255.0
_LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601 luma weights
_SEPIA_TINT = np.array([0.8, 0.55, 0.3])  # the brown that white turns into
STYLES: tuple[str, ...] = ("photo", "invert", "sepia", "cool")


def stylize(images: np.ndarray, style: str) -> np.ndarray:
    """Apply demo style ``style`` (one of :data:`STYLES`) to uint8 RGB ``...×H×W×3`` arrays.

    * ``photo``: the identity (the source domain).
    * ``invert``: :func:`restyle` (inverted, red and green swapped, gamma 0.7): dark blue/violet.
    * ``sepia``: luma (BT.601) with a darkening curve (power 1.5), tinted brown.
    * ``cool``: channels rotated (R, G, B) -> (B, R, G), darkened with gamma 1.6: cold tones.

    Raises:
        ValueError: an unknown style or non-uint8-RGB input.
    """
    if images.dtype != np.uint8 or images.shape[-1] != 3:
        raise ValueError(f"stylize expects uint8 RGB arrays (...×H×W×3), got {images.dtype} "
                         f"{images.shape}")
    if style == "photo":
        return images.copy()
    if style == "invert":
        return restyle(images)
    if style == "sepia":
        x = images.astype(np.float64) / 255.0
        luma = x @ _LUMA
        return np.rint((luma[..., None] ** 1.5) * _SEPIA_TINT * 255).astype(np.uint8)
    if style == "cool":
        return _lut(_X**1.6)[images[..., [2, 0, 1]]]
    raise ValueError(f"unknown demo style {style!r}; styles: {', '.join(STYLES)}")


def make_styles(root: str | os.PathLike[str], *, n_train: int = 200, n_test: int = 16,
                size: int = 32, styles: int = 4, seed: int = 0) -> Path:
    """Write the K-style translation set: ``root/train/<style>/`` and ``root/test/<style>/``.

    ``train/<style>/`` holds ``n_train`` independent warm scenes restyled with that style (no
    training scene appears in two styles: the set is unpaired). ``test/<style>/x.png ==
    stylize(test/photo/x.png, style)`` for every test name: the ground truth of every style.
    The styles are the first ``styles`` of :data:`STYLES` (``photo`` first).

    Raises:
        ValueError: counts < 1, ``size < 8`` or ``styles`` outside 2..4.
    """
    _check("n_train", n_train, 1)
    _check("n_test", n_test, 1)
    _check("size", size, 8)
    if not 2 <= styles <= len(STYLES):
        raise ValueError(f"styles must be 2..{len(STYLES)}, got {styles}")
    root = Path(root)
    chosen = STYLES[:styles]
    for phase in ("train", "test"):
        for name in chosen:
            (root / phase / name).mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(chosen):
        for i in range(n_train):
            rng = np.random.default_rng([int(seed), _STREAM["styles"], k, i])
            scene = render_scene(rng, size, palette="warm", shapes=(1, 3))
            _write(root / "train" / name, i, stylize(scene, name))
    for i in range(n_test):
        scene = render_scene(_rng(seed, "styles_test", i), size, palette="warm", shapes=(1, 3))
        for name in chosen:
            _write(root / "test" / name, i, stylize(scene, name))
    logger.info("wrote %d-style demo set (%d train / %d test per style, %dx%d) to %s", styles,
                n_train, n_test, size, size, root)
    return root
