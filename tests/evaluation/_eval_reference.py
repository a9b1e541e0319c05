"""Deterministic inputs shared by the evaluation tests and tests/data/make_inception_reference.py.

Everything is integer arithmetic on ``torch.Generator`` draws (bit-identical across torch
versions and machines), so the features torch-fidelity computed once from these inputs can be
recomputed here by our implementation and compared.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

FIXTURE = Path(__file__).resolve().parent.parent / "data" / "inception_reference.npz"
WEIGHTS_SEED = 0
# (height, width): a small upscale, a non-square one, and the network's own size (no resize).
FIXTURE_SIZES = ((32, 32), (64, 48), (299, 299))
FOLDER_IMAGES = 4  # images per folder in the folder-level comparison
NOISE_LEVELS = (16, 48, 128)  # uniform integer noise amplitude added to the fake folders


def fixture_images() -> list[torch.Tensor]:
    """One uint8 ``3×H×W`` noise image per size in :data:`FIXTURE_SIZES`."""
    gen = torch.Generator().manual_seed(1)
    return [torch.randint(0, 256, (3, h, w), generator=gen, dtype=torch.uint8)
            for h, w in FIXTURE_SIZES]


def block_images(n: int, *, size: int = 32, block: int = 8, seed: int = 2) -> torch.Tensor:
    """``n×3×size×size`` uint8 images of flat ``block×block`` squares (structure noise can hurt)."""
    gen = torch.Generator().manual_seed(seed)
    cells = torch.randint(0, 256, (n, 3, size // block, size // block), generator=gen)
    return cells.repeat_interleave(block, 2).repeat_interleave(block, 3).to(torch.uint8)


def add_noise(images: torch.Tensor, amplitude: int, *, seed: int = 3) -> torch.Tensor:
    """``images`` plus uniform integer noise in [-amplitude, amplitude], clipped to 0..255."""
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randint(-amplitude, amplitude + 1, images.shape, generator=gen)
    return (images.long() + noise).clamp(0, 255).to(torch.uint8)


def save_folder(images: torch.Tensor, folder: Path) -> Path:
    """Write ``N×3×H×W`` uint8 images as lossless PNGs ``00000.png`` ... into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray(image.permute(1, 2, 0).numpy(), "RGB").save(folder / f"{i:05d}.png")
    return folder


def write_folders(root: Path) -> tuple[Path, dict[int, Path]]:
    """The real folder and one fake folder per noise level, under ``root``."""
    real = block_images(FOLDER_IMAGES)
    fakes = {level: save_folder(add_noise(real, level), root / f"noise{level}")
             for level in NOISE_LEVELS}
    return save_folder(real, root / "real"), fakes


def random_features(n: int, dim: int, *, seed: int, shift: float = 0.0) -> torch.Tensor:
    """``n×dim`` float64 features, nonnegative like ReLU/avg-pool outputs, for statistic checks."""
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, dim, generator=gen, dtype=torch.float64) * 2.0 + shift
