"""The labelled data kind: DIR/<label>/*.png and CelebA's attribute table, class counts, the
min_per_class warning and the explicit drop option; the procedural K-class and K-style sets."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image

from gantransfer.data import DataConfig, DataLayoutError, build_dataset, check_folder
from gantransfer.data import demo as demo_data
from gantransfer.data.datasets import label_names
from gantransfer.data.metrics import psnr


def _config(root, **kw):
    return DataConfig(root=str(root), load_size=16, crop_size=16, flip=False, **kw)


def _folders(root, counts):
    for name, n in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            value = 40 * len(name) % 256
            Image.new("RGB", (16, 16), (value, i * 10, 0)).save(root / name / f"{i}.png")
    return root


def test_labelled_items_carry_the_index_of_their_sorted_class_folder(tmp_path):
    root = _folders(tmp_path / "d", {"zebra": 2, "cat": 3, "dog": 1})
    ds = build_dataset("labelled", _config(root))
    assert ds.classes == ("cat", "dog", "zebra")
    assert ds.class_counts() == {"cat": 3, "dog": 1, "zebra": 2}
    for i in range(len(ds)):
        item = ds[i]
        folder = ds.files["image"][i].parent.name
        assert item["label"].dtype.is_floating_point is False
        assert int(item["label"]) == ds.classes.index(folder)
        assert item["image"].shape == (3, 16, 16)


def test_small_classes_warn_and_are_dropped_only_when_asked(tmp_path, caplog):
    root = _folders(tmp_path / "d", {"big": 4, "small": 1})
    with caplog.at_level(logging.WARNING):
        ds = build_dataset("labelled", _config(root, min_per_class=3))
    assert ds.classes == ("big", "small") and ds.small_classes == ["small"]
    assert "small (1); kept (set drop_small_classes=true" in caplog.text
    dropped = build_dataset("labelled", _config(root, min_per_class=3, drop_small_classes=True))
    assert dropped.classes == ("big",) and len(dropped) == 4
    assert label_names(_config(root, min_per_class=3, drop_small_classes=True)) == ("big",)
    with pytest.raises(DataLayoutError, match="leaves none"):
        build_dataset("labelled", _config(root, min_per_class=10, drop_small_classes=True))


def test_a_folder_without_class_folders_shows_the_expected_tree(tmp_path):
    Image.new("RGB", (16, 16)).save(tmp_path / "x.png")
    with pytest.raises(DataLayoutError, match="<label>/"):
        build_dataset("labelled", _config(tmp_path))


def test_celeba_attribute_table_is_read_in_place_as_labels(tmp_path):
    images = tmp_path / "celeba" / "img_align_celeba"
    images.mkdir(parents=True)
    rows = {"1.jpg": (1, -1), "2.jpg": (-1, 1), "3.jpg": (1, 1), "4.jpg": (-1, -1),
            "5.jpg": (-1, 1)}
    for name in rows:
        Image.new("RGB", (20, 24), (200, 10, 10)).save(images / name)
    lines = ["5", "Black_Hair Blond_Hair"] + [f"{n} {a} {b}" for n, (a, b) in rows.items()]
    (tmp_path / "celeba" / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    config = _config(tmp_path / "celeba", attributes="Black_Hair,Blond_Hair", min_per_class=1)
    assert config.attributes == ["Black_Hair", "Blond_Hair"]
    ds = build_dataset("labelled", config)
    assert ds.classes == ("Black_Hair", "Blond_Hair")
    # 3.jpg has both (left out), 4.jpg neither (left out).
    assert sorted((p.name, int(ds[i]["label"])) for i, p in enumerate(ds.files["image"])) == [
        ("1.jpg", 0), ("2.jpg", 1), ("5.jpg", 1)]


def test_data_check_lists_classes_and_warns_about_small_ones(tmp_path):
    root = _folders(tmp_path / "d", {"a": 3, "b": 1})
    report = check_folder(root, kind="labelled", min_per_class=2)
    assert report.ok and report.classes == {"a": 3, "b": 1}
    assert len(report.warnings) == 1 and "b (1)" in report.warnings[0]
    assert "drop_small_classes" in report.warnings[0]


def test_class_set_is_deterministic_and_separable_by_hue(tmp_path):
    a = demo_data.make_classes(tmp_path / "a", n_per_class=4, size=16, classes=3, seed=0)
    b = demo_data.make_classes(tmp_path / "b", n_per_class=4, size=16, classes=3, seed=0)
    names = sorted(p.name for p in a.iterdir())
    assert names == ["blue_ring", "green_box", "red_disc"]
    means = {}
    for name in names:
        arrays = [np.asarray(Image.open(p)) for p in sorted((a / name).glob("*.png"))]
        assert all(np.array_equal(x, np.asarray(Image.open(b / name / p.name)))
                   for x, p in zip(arrays, sorted((a / name).glob("*.png")), strict=True))
        means[name] = np.mean([x.reshape(-1, 3).max(0) for x in arrays], axis=0)
    assert np.argmax(means["red_disc"]) == 0 and np.argmax(means["green_box"]) == 1
    assert np.argmax(means["blue_ring"]) == 2


def test_style_set_has_ground_truth_for_every_style(tmp_path):
    root = demo_data.make_styles(tmp_path, n_train=2, n_test=6, size=16, styles=4)
    assert sorted(p.name for p in (root / "train").iterdir()) == sorted(demo_data.STYLES)
    photos = [np.asarray(Image.open(p)) for p in sorted((root / "test" / "photo").glob("*.png"))]
    for style in demo_data.STYLES:
        truths = [np.asarray(Image.open(p))
                  for p in sorted((root / "test" / style).glob("*.png"))]
        for photo, truth in zip(photos, truths, strict=True):
            assert np.array_equal(truth, demo_data.stylize(photo, style))
        if style != "photo":  # every style is far from the identity (about 5-11 dB)
            assert psnr(np.stack(photos), np.stack(truths)) < 12.5
    photo = photos[0]
    with pytest.raises(ValueError, match="unknown demo style"):
        demo_data.stylize(photo, "monet")
