"""Data layer: layouts, preprocessing, seeding, alignment, errors and configuration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gantransfer.data import (
    DataConfig,
    DataError,
    DataLayoutError,
    ImageReadError,
    build_dataset,
    list_images,
    loader_kwargs,
    recommended_workers,
)


def _rand_image(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")


def _folder(path: Path, n: int, *, w: int = 20, h: int = 16, seed: int = 0) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        _rand_image(w, h, seed + i).save(path / f"{i:03d}.png")
    return path


def _single(tmp_path: Path, **options) -> object:
    return build_dataset("single", DataConfig(root=tmp_path, **options))


# -- preprocess modes --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("mode", "shape"),
    [
        ("resize_and_crop", (3, 24, 24)),
        ("crop", (3, 24, 24)),
        # width 40 -> 36, height 30 * 36/40 = 27 -> multiple of 4 -> 28
        ("scale_width", (3, 28, 36)),
        ("scale_width_and_crop", (3, 24, 24)),
        # only rounded to multiples of 4 (official __make_power_2): 40x30 -> 40x32
        ("none", (3, 32, 40)),
    ],
)
def test_preprocess_mode_output_shape(tmp_path: Path, mode: str, shape: tuple) -> None:
    _rand_image(40, 30).save(tmp_path / "a.png")
    ds = _single(tmp_path, preprocess=mode, load_size=36, crop_size=24)
    image = ds[0]["image"]
    assert tuple(image.shape) == shape
    assert image.dtype == torch.float32
    assert float(image.min()) >= -1.0 and float(image.max()) <= 1.0


def test_scale_width_keeps_min_height_of_crop_size(tmp_path: Path) -> None:
    _rand_image(64, 16).save(tmp_path / "wide.png")  # 32 wide -> 8 high, raised to crop_size 20
    ds = _single(tmp_path, preprocess="scale_width", load_size=32, crop_size=20, flip=False)
    assert tuple(ds[0]["image"].shape) == (3, 20, 32)


def test_values_are_normalised_to_minus_one_one(tmp_path: Path) -> None:
    Image.new("RGB", (8, 8), (0, 255, 0)).save(tmp_path / "g.png")
    img = _single(tmp_path, preprocess="none", flip=False)[0]["image"]
    assert img[0].eq(-1).all() and img[1].eq(1).all() and img[2].eq(-1).all()


# -- seeding -----------------------------------------------------------------------------------
def test_sample_is_a_pure_function_of_index_and_seed(tmp_path: Path) -> None:
    _folder(tmp_path, 3, w=40, h=40)
    ds = _single(tmp_path, load_size=40, crop_size=16, preprocess="crop")
    torch.manual_seed(0)
    first = ds[(1, 99)]["image"]
    torch.manual_seed(1)  # the global RNG must not matter
    np.random.seed(1)
    assert torch.equal(first, ds[(1, 99)]["image"])
    assert torch.equal(ds[2]["image"], ds[(2, 2)]["image"])  # int key -> seed = index
    variants = {ds[(1, s)]["image"].numpy().tobytes() for s in range(8)}
    assert len(variants) > 4  # different seeds give different crops/flips


def test_flip_happens_for_some_seeds_and_only_when_enabled(tmp_path: Path) -> None:
    _rand_image(16, 12).save(tmp_path / "a.png")
    plain = _single(tmp_path, preprocess="none", flip=False)
    base = plain[0]["image"]
    assert all(torch.equal(plain[(0, s)]["image"], base) for s in range(10))
    flipping = _single(tmp_path, preprocess="none", flip=True)
    outs = [flipping[(0, s)]["image"] for s in range(20)]
    flipped = [torch.equal(o, base.flip(-1)) for o in outs]
    assert all(f or torch.equal(o, base) for f, o in zip(flipped, outs, strict=True))
    assert 0 < sum(flipped) < 20


def test_unpaired_b_partner_comes_from_the_seed(tmp_path: Path) -> None:
    _folder(tmp_path / "trainA", 2, seed=0)
    _folder(tmp_path / "trainB", 5, seed=100)
    ds = build_dataset("unpaired", DataConfig(root=tmp_path, preprocess="none", flip=False))
    assert len(ds) == 5  # the larger domain, like the official code
    assert torch.equal(ds[(3, 11)]["B"], ds[(3, 11)]["B"])
    partners = {ds[(0, s)]["B"].numpy().tobytes() for s in range(20)}
    assert len(partners) > 2
    assert torch.equal(ds[(0, 1)]["A"], ds[(2, 5)]["A"])  # A is index % len(A)


def test_paired_crops_and_flips_are_aligned(tmp_path: Path) -> None:
    for d in ("A", "B"):
        (tmp_path / d).mkdir()
    for i in range(2):
        img = _rand_image(40, 36, seed=i)
        img.save(tmp_path / "A" / f"{i}.png")
        img.save(tmp_path / "B" / f"{i}.png")
    for mode in ("crop", "resize_and_crop", "scale_width_and_crop"):
        ds = build_dataset("paired", DataConfig(root=tmp_path, preprocess=mode, load_size=38,
                                                crop_size=16, flip=True))
        for seed in range(12):
            item = ds[(seed % 2, seed)]
            assert torch.equal(item["A"], item["B"]), (mode, seed)


def test_paired_phase_subfolders_and_unmatched_names(tmp_path: Path) -> None:
    _folder(tmp_path / "test" / "A", 2)
    _folder(tmp_path / "test" / "B", 2)
    ds = build_dataset("paired", DataConfig(root=tmp_path, phase="test", preprocess="none"))
    assert len(ds) == 2
    _rand_image(20, 16).save(tmp_path / "test" / "A" / "extra.png")
    with pytest.raises(DataLayoutError, match=r"extra\.png has no partner"):
        build_dataset("paired", DataConfig(root=tmp_path, phase="test", preprocess="none"))


def test_paired_sizes_must_match_without_resize(tmp_path: Path) -> None:
    _rand_image(20, 16).save(_folder(tmp_path / "A", 0) / "x.png")
    _rand_image(24, 16).save(_folder(tmp_path / "B", 0) / "x.png")
    with pytest.raises(DataError, match=r"differ in size.*x\.png"):
        build_dataset("paired", DataConfig(root=tmp_path, preprocess="crop", crop_size=8))
    ds = build_dataset("paired", DataConfig(root=tmp_path, load_size=12, crop_size=8))
    assert ds[0]["A"].shape == ds[0]["B"].shape == (3, 8, 8)


# -- discovery and layout errors ---------------------------------------------------------------
def test_extensions_any_case_recursive_sorted_hidden_ignored(tmp_path: Path) -> None:
    img = _rand_image(8, 8)
    (tmp_path / "sub").mkdir()
    (tmp_path / ".cache").mkdir()
    img.save(tmp_path / "b.PNG", format="PNG")
    img.save(tmp_path / "a.JpEg", format="JPEG")
    img.save(tmp_path / "sub" / "c.Tif", format="TIFF")
    img.save(tmp_path / "d.webp", format="WEBP")
    img.save(tmp_path / "e.BMP", format="BMP")
    img.save(tmp_path / ".hidden.png", format="PNG")
    img.save(tmp_path / ".cache" / "f.png", format="PNG")
    (tmp_path / "notes.txt").write_text("not an image")
    names = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    assert names == ["a.JpEg", "b.PNG", "d.webp", "e.BMP", "sub/c.Tif"]
    assert len(_single(tmp_path, preprocess="none")) == 5


def test_missing_unpaired_folder_shows_expected_tree(tmp_path: Path) -> None:
    _folder(tmp_path / "trainA", 1)
    with pytest.raises(DataLayoutError) as info:
        build_dataset("unpaired", DataConfig(root=tmp_path))
    message = str(info.value)
    assert "trainB does not exist" in message
    assert "trainA/" in message and "trainB/" in message  # the expected tree


def test_empty_folder_and_test_phase(tmp_path: Path) -> None:
    (tmp_path / "testA").mkdir()
    _folder(tmp_path / "testB", 1)
    with pytest.raises(DataLayoutError, match=r"testA contains no images"):
        build_dataset("unpaired", DataConfig(root=tmp_path, phase="test"))
    with pytest.raises(DataLayoutError, match=r"single data expects:\n.*testA/\n +0001\.png"):
        _single(tmp_path / "testA")


def test_crop_larger_than_smallest_image_names_it(tmp_path: Path) -> None:
    _rand_image(40, 40).save(tmp_path / "big.png")
    _rand_image(30, 12).save(tmp_path / "small.png")
    with pytest.raises(DataError, match=r"small\.png \(30x12\).*crop_size=12"):
        _single(tmp_path, preprocess="crop", crop_size=16)
    with pytest.raises(DataError, match=r"crop_size 40 is larger than load_size 32"):
        _single(tmp_path, preprocess="resize_and_crop", load_size=32, crop_size=40)
    assert len(_single(tmp_path, preprocess="crop", crop_size=12)) == 2


# -- bad images --------------------------------------------------------------------------------
def _bad_files(folder: Path) -> tuple[Path, Path]:
    text = folder / "text.png"
    text.write_text("this is not a png")
    buffer = folder / "trunc.jpg"
    _rand_image(64, 64).save(buffer, format="JPEG", quality=95)
    data = buffer.read_bytes()
    buffer.write_bytes(data[: len(data) // 2])  # header intact, pixel data cut off
    return text, buffer


def test_non_image_file_error_names_it_and_suggests_fix(tmp_path: Path) -> None:
    _folder(tmp_path, 2)
    (tmp_path / "text.png").write_text("this is not a png")
    with pytest.raises(ImageReadError) as info:
        _single(tmp_path, preprocess="none")
    assert "text.png" in str(info.value) and "--skip-bad-images" in str(info.value)


def test_truncated_jpeg_error_names_it_when_loaded(tmp_path: Path) -> None:
    _, trunc = _bad_files(tmp_path)
    (tmp_path / "text.png").unlink()
    ds = _single(tmp_path, preprocess="none")  # the header alone looks fine
    with pytest.raises(ImageReadError) as info:
        ds[0]
    assert str(trunc) in str(info.value) and "truncated" in str(info.value)


def test_skip_bad_images_skips_and_counts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _folder(tmp_path, 3)
    text, trunc = _bad_files(tmp_path)
    with caplog.at_level("WARNING", logger="gantransfer.data"):
        ds = _single(tmp_path, preprocess="none", skip_bad_images=True)
    assert len(ds) == 3
    assert sorted(p.name for p, _ in ds.skipped) == [text.name, trunc.name]
    warnings = [r for r in caplog.records if "skipped 2 unreadable" in r.getMessage()]
    assert len(warnings) == 1  # one summary, not one line per file
    assert all(ds[i]["image"].shape == (3, 16, 20) for i in range(3))


def test_skip_bad_images_drops_the_partner_of_a_bad_paired_file(tmp_path: Path) -> None:
    _folder(tmp_path / "A", 3)
    _folder(tmp_path / "B", 3)
    (tmp_path / "B" / "001.png").write_text("broken")
    ds = build_dataset("paired", DataConfig(root=tmp_path, preprocess="none",
                                            skip_bad_images=True))
    assert [p.name for p in ds.files["A"]] == ["000.png", "002.png"]
    assert [p.name for p in ds.files["B"]] == ["000.png", "002.png"]
    assert len(ds.skipped) == 1


# -- configuration -----------------------------------------------------------------------------
def test_resolved_prefers_user_then_model_then_library() -> None:
    cfg = DataConfig(root="x", crop_size=64).resolved({"crop_size": 128, "load_size": 72,
                                                       "channels": 1})
    assert (cfg.crop_size, cfg.load_size, cfg.channels, cfg.channels_b) == (64, 72, 1, 1)
    assert (cfg.preprocess, cfg.flip) == ("resize_and_crop", True)
    assert DataConfig(root="x").resolved().load_size == 286
    assert DataConfig(root="x", channels_b=1).resolved({"channels": 3}).channels_b == 1
    with pytest.raises(KeyError, match="bogus"):
        DataConfig(root="x").resolved({"bogus": 1})


def test_invalid_options_are_rejected_with_the_allowed_values() -> None:
    with pytest.raises(ValueError, match="resize_and_crop"):
        DataConfig(root="x", preprocess="stretch")
    with pytest.raises(ValueError, match="1 or 3"):
        DataConfig(root="x", channels=4)
    with pytest.raises(ValueError, match="single, unpaired, paired"):
        build_dataset("triplets", DataConfig(root="x"))


def test_model_defaults_reach_the_dataset(tmp_path: Path) -> None:
    _folder(tmp_path, 1, w=40, h=40)
    ds = build_dataset("single", DataConfig(root=tmp_path),
                       defaults={"channels": 1, "load_size": 20, "crop_size": 16})
    assert ds[0]["image"].shape == (1, 16, 16)


def test_loader_kwargs_for_cpu_and_cuda() -> None:
    assert loader_kwargs(torch.device("cpu"), 0) == {
        "num_workers": 0, "persistent_workers": False, "pin_memory": False}
    assert loader_kwargs("cuda", 2) == {
        "num_workers": 2, "persistent_workers": True, "pin_memory": True}
    assert 0 <= recommended_workers() <= 4
    assert loader_kwargs("cpu")["num_workers"] == recommended_workers()
    with pytest.raises(ValueError, match="num_workers"):
        loader_kwargs("cpu", -1)


def test_dataset_works_in_a_dataloader(tmp_path: Path) -> None:
    _folder(tmp_path / "trainA", 3)
    _folder(tmp_path / "trainB", 2, seed=9)
    ds = build_dataset("unpaired", DataConfig(root=tmp_path, load_size=18, crop_size=16))
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=3)))
    assert batch["A"].shape == batch["B"].shape == (3, 3, 16, 16)
