"""Mode conversions (every Pillow mode -> 1 or 3 channels) and reading files of each kind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gantransfer.data import DataConfig, build_dataset, convert_mode


def _values(img: Image.Image, channels: int) -> np.ndarray:
    out = np.asarray(convert_mode(img, channels))
    assert out.dtype == np.uint8
    return out.reshape(out.shape[0], out.shape[1], -1)


@pytest.mark.parametrize(
    ("img", "rgb"),
    [
        (Image.new("L", (4, 4), 100), (100, 100, 100)),  # gray repeated in R, G, B
        (Image.new("RGB", (4, 4), (10, 20, 30)), (10, 20, 30)),
        (Image.new("1", (4, 4), 1), (255, 255, 255)),
        (Image.new("LA", (4, 4), (100, 255)), (100, 100, 100)),
        (Image.new("LA", (4, 4), (100, 0)), (255, 255, 255)),  # transparent -> white
        (Image.new("RGBA", (4, 4), (255, 0, 0, 255)), (255, 0, 0)),
        (Image.new("RGBA", (4, 4), (0, 0, 0, 0)), (255, 255, 255)),
        (Image.new("RGBA", (4, 4), (0, 0, 0, 128)), (127, 127, 127)),  # half over white
        (Image.new("CMYK", (4, 4), (0, 0, 0, 0)), (255, 255, 255)),
        (Image.new("CMYK", (4, 4), (255, 0, 0, 0)), (0, 255, 255)),
        # 16-bit: scaled by 255/65535, not clipped at 255
        (Image.fromarray(np.full((4, 4), 65535, np.uint16)), (255, 255, 255)),
        (Image.fromarray(np.full((4, 4), 32896, np.uint16)), (128, 128, 128)),
        (Image.new("I", (4, 4), 65535), (255, 255, 255)),
        (Image.new("I", (4, 4), 257 * 64), (64, 64, 64)),
        (Image.new("F", (4, 4), 1.0), (255, 255, 255)),
        (Image.new("F", (4, 4), 0.25), (64, 64, 64)),
    ],
    ids=lambda v: getattr(v, "mode", None) if isinstance(v, Image.Image) else str(v),
)
def test_every_mode_converts_to_three_and_one_channels(img: Image.Image, rgb: tuple) -> None:
    three = _values(img, 3)
    assert three.shape == (4, 4, 3)
    np.testing.assert_allclose(three[0, 0], rgb, atol=1)
    one = _values(img, 1)
    assert one.shape == (4, 4, 1)
    luma = (299 * rgb[0] + 587 * rgb[1] + 114 * rgb[2]) / 1000  # ITU-R 601
    assert abs(int(one[0, 0, 0]) - luma) <= 1


def test_palette_with_transparency_is_composited_over_white(tmp_path: Path) -> None:
    img = Image.new("P", (4, 2), 1)
    img.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    img.paste(0, (0, 0, 2, 2))  # left half uses the transparent index 0
    img.save(tmp_path / "p.png", transparency=0)
    with Image.open(tmp_path / "p.png") as loaded:
        assert loaded.mode == "P"
        out = _values(loaded, 3)
    np.testing.assert_array_equal(out[0, 0], (255, 255, 255))
    np.testing.assert_array_equal(out[0, 3], (0, 0, 255))
    plain = Image.new("P", (2, 2), 1)
    plain.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    np.testing.assert_array_equal(_values(plain, 3)[0, 0], (0, 255, 0))


def test_channels_other_than_one_or_three_are_rejected() -> None:
    with pytest.raises(ValueError, match="1 or 3"):
        convert_mode(Image.new("RGB", (2, 2)), 4)


def test_files_of_each_kind_load_with_model_channels(tmp_path: Path) -> None:
    Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(tmp_path / "a_white16.png")
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(tmp_path / "b_clear.png")
    Image.new("L", (8, 8), 0).save(tmp_path / "c_black.tif")
    Image.new("CMYK", (8, 8), (0, 0, 0, 255)).save(tmp_path / "d_cmyk.jpg", quality=100)
    for channels in (1, 3):
        ds = build_dataset("single", DataConfig(root=tmp_path, preprocess="none", flip=False,
                                                channels=channels))
        images = [ds[i]["image"] for i in range(len(ds))]
        assert all(im.shape == (channels, 8, 8) for im in images)
        assert images[0].eq(1.0).all()  # 16-bit white -> 1.0
        assert images[1].eq(1.0).all()  # transparent over white -> 1.0
        assert images[2].eq(-1.0).all()
        assert images[3].max() < -0.95  # CMYK full black ink -> black


def test_two_domains_can_have_different_channel_counts(tmp_path: Path) -> None:
    for d in ("trainA", "trainB"):
        (tmp_path / d).mkdir()
        Image.new("RGB", (8, 8), (255, 0, 0)).save(tmp_path / d / "x.png")
    ds = build_dataset("unpaired", DataConfig(root=tmp_path, preprocess="none", flip=False,
                                              channels=3, channels_b=1))
    item = ds[0]
    assert item["A"].shape == (3, 8, 8) and item["B"].shape == (1, 8, 8)
    assert abs(float(item["B"][0, 0, 0]) - (76 / 127.5 - 1)) < 1e-6  # luma of pure red
