"""The center_crop preprocess mode, and DCGAN's default no longer squashing non-square images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import gantransfer
from gantransfer.data import DataConfig, DataError, build_dataset
from gantransfer.data.transforms import center_crop_xy, resized_size, to_tensor


def _image(path: Path, w: int, h: int, seed: int = 0) -> np.ndarray:
    pixels = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return pixels


def _resize_then_centre_crop(pixels: np.ndarray, load: int, crop: int) -> Image.Image:
    """torchvision's Resize(load) + CenterCrop(crop), written out with Pillow."""
    h, w = pixels.shape[:2]
    size = (load, int(load * h / w)) if w <= h else (int(load * w / h), load)
    img = Image.fromarray(pixels).resize(size, Image.Resampling.BICUBIC)
    left, top = round((size[0] - crop) / 2), round((size[1] - crop) / 2)
    return img.crop((left, top, left + crop, top + crop))


def test_sizes_follow_torchvision() -> None:
    assert resized_size((178, 218), preprocess="center_crop", load_size=64, crop_size=64) == (64, 78)
    assert resized_size((300, 100), preprocess="center_crop", load_size=32, crop_size=32) == (96, 32)
    assert center_crop_xy((64, 78), 64) == (0, 7)
    assert center_crop_xy((96, 32), 32) == (32, 0)


@pytest.mark.parametrize(("w", "h"), [(40, 20), (17, 30), (24, 24)])
def test_center_crop_is_resize_shorter_side_then_centre(tmp_path: Path, w: int, h: int) -> None:
    pixels = _image(tmp_path / "x.png", w, h)
    ds = build_dataset("single", DataConfig(root=tmp_path, preprocess="center_crop",
                                            load_size=16, crop_size=12, flip=False))
    for seed in (0, 1):  # deterministic: no random corner
        got = ds[(0, seed)]["image"]
        assert got.shape == (3, 12, 12)
        assert np.array_equal(got.numpy(), to_tensor(_resize_then_centre_crop(pixels, 16, 12))
                              .numpy())


def test_crop_larger_than_load_size_is_refused(tmp_path: Path) -> None:
    _image(tmp_path / "x.png", 20, 10)
    with pytest.raises(DataError, match="crop_size 16 is larger than load_size 8"):
        build_dataset("single", DataConfig(root=tmp_path, preprocess="center_crop",
                                           load_size=8, crop_size=16))


def test_dcgan_default_keeps_proportions_of_non_square_images(tmp_path: Path) -> None:
    pixels = _image(tmp_path / "wide.png", 32, 16)
    model = gantransfer.get("dcgan", image_size=16, channels=3)
    ds = build_dataset("single", DataConfig(root=tmp_path), defaults=model.data_defaults())
    got = ds[0]["image"]
    # the centre 16x16 of the (already 16 px high) image: columns 8..24, untouched
    assert np.array_equal(got.numpy(), to_tensor(Image.fromarray(pixels[:, 8:24])).numpy())
    squashed = to_tensor(Image.fromarray(pixels).resize((16, 16), Image.Resampling.BICUBIC))
    assert not np.allclose(got.numpy(), squashed.numpy())
