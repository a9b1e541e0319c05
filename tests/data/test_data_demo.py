"""Built-in procedural demo data: deterministic, unpaired, with exact ground truth for testB."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gantransfer.data import demo
from gantransfer.data.metrics import psnr


def _load(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.png"))}


def test_two_domain_layout_and_counts(tmp_path: Path) -> None:
    demo.make_two_domain(tmp_path, n_train=5, n_test=3, size=16, seed=0)
    counts = {d: len(list((tmp_path / d).glob("*.png"))) for d in ("trainA", "trainB", "testA", "testB")}
    assert counts == {"trainA": 5, "trainB": 5, "testA": 3, "testB": 3}
    assert _load(tmp_path / "trainA" / "00000.png").shape == (16, 16, 3)


def test_demo_data_is_deterministic_in_seed(tmp_path: Path) -> None:
    demo.make_two_domain(tmp_path / "a", n_train=4, n_test=2, size=16, seed=7)
    demo.make_two_domain(tmp_path / "b", n_train=4, n_test=2, size=16, seed=7)
    demo.make_two_domain(tmp_path / "c", n_train=4, n_test=2, size=16, seed=8)
    for sub in ("trainA", "trainB", "testA", "testB"):
        assert _folder_bytes(tmp_path / "a" / sub) == _folder_bytes(tmp_path / "b" / sub)
    assert _folder_bytes(tmp_path / "a" / "trainA") != _folder_bytes(tmp_path / "c" / "trainA")
    demo.make_single(tmp_path / "s1", n=3, size=16, seed=1)
    demo.make_single(tmp_path / "s2", n=3, size=16, seed=1)
    assert _folder_bytes(tmp_path / "s1") == _folder_bytes(tmp_path / "s2")


def test_test_pairs_are_exact_restylings_and_identity_psnr_is_low(tmp_path: Path) -> None:
    demo.make_two_domain(tmp_path, n_train=1, n_test=8, size=32, seed=0)
    scores = []
    for path in sorted((tmp_path / "testA").glob("*.png")):
        a, b = _load(path), _load(tmp_path / "testB" / path.name)
        np.testing.assert_array_equal(demo.restyle(a), b)
        scores.append(psnr(a, b))
    assert max(scores) < 12.0  # copying the input is a bad translation
    assert psnr(a, demo.restyle(a)) == psnr(a, b)


def test_train_domains_are_unpaired(tmp_path: Path) -> None:
    demo.make_two_domain(tmp_path, n_train=3, n_test=1, size=16, seed=0)
    for i in range(3):
        a = _load(tmp_path / "trainA" / f"{i:05d}.png")
        b = _load(tmp_path / "trainB" / f"{i:05d}.png")
        assert not np.array_equal(demo.restyle(a), b)


def test_single_images_have_structure(tmp_path: Path) -> None:
    demo.make_single(tmp_path, n=4, size=32, seed=0)
    images = [_load(p) for p in sorted(tmp_path.glob("*.png"))]
    assert len(images) == 4
    for img in images:
        assert img.std() > 5  # not flat
    assert not np.array_equal(images[0], images[1])


def test_restyle_rejects_non_rgb_uint8() -> None:
    with pytest.raises(ValueError, match="uint8 RGB"):
        demo.restyle(np.zeros((4, 4), np.uint8))


def test_psnr_accepts_uint8_and_unit_range_floats() -> None:
    a = np.zeros((4, 4, 3), np.uint8)
    assert psnr(a, a) == float("inf")
    b = np.full((4, 4, 3), 255, np.uint8)
    assert psnr(a, b) == pytest.approx(0.0)
    # float images are in [-1, 1]: -1 is black, so comparing with uint8 black is exact
    assert psnr(a.astype(np.float32) - 1.0, a) == float("inf")
    assert psnr(np.full((2, 2), 0.0), np.full((2, 2), -1.0)) == pytest.approx(10 * np.log10(4))
    with pytest.raises(ValueError, match="equal shapes"):
        psnr(a, a[:2])
