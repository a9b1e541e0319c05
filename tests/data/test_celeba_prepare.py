"""`gtx data prepare celeba` on a synthetic 178x218 CelebA: exact crops, labels, policies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from gantransfer.cli.app import app
from gantransfer.data import DataError
from gantransfer.data.celeba import crop_box, prepare_celeba, read_attributes
from gantransfer.data.labels import labelled_files, single_label

ATTRS = ["5_o_Clock_Shadow", "Black_Hair", "Blond_Hair", "Brown_Hair", "Male"]
# file: Black, Blond, Brown flags (the other two attributes vary to check column parsing)
ROWS = {
    "000001.jpg": (1, 0, 0),  # black
    "000002.jpg": (0, 1, 0),  # blond
    "000003.jpg": (0, 0, 0),  # none
    "000004.jpg": (1, 1, 0),  # several: black and blond
    "000005.jpg": (0, 0, 1),  # brown
}


@pytest.fixture
def celeba(tmp_path: Path) -> Path:
    """img_align_celeba/ with 5 noise JPEGs of 178x218 and a list_attr_celeba.txt."""
    src = tmp_path / "celeba"
    images = src / "img_align_celeba"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = [str(len(ROWS)), " ".join(ATTRS)]
    for i, (name, (black, blond, brown)) in enumerate(ROWS.items()):
        pixels = rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(images / name, quality=90)
        values = [i % 2, black, blond, brown, 1 - i % 2]
        lines.append(name + "".join(f" {'1' if v else '-1':>2}" for v in values))
    (src / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    return src


def _expected(src: Path, name: str, *, size: int, box: tuple[int, int, int, int]) -> np.ndarray:
    with Image.open(src / "img_align_celeba" / name) as img:
        out = img.convert("RGB").crop(box).resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(out)


def test_crop_box_is_the_centred_square() -> None:
    assert crop_box((178, 218)) == (0, 20, 178, 198)
    assert crop_box((178, 218), 108) == (35, 55, 143, 163)
    assert crop_box((300, 200)) == (50, 0, 250, 200)
    with pytest.raises(ValueError, match="does not fit"):
        crop_box((178, 218), 179)


def test_unlabelled_crops_are_pixel_exact(celeba: Path, tmp_path: Path) -> None:
    report = prepare_celeba(celeba, tmp_path / "out", size=64, workers=2)
    assert report.written == 5 and report.per_label == {}
    for name in ROWS:
        got = np.asarray(Image.open(tmp_path / "out" / name.replace(".jpg", ".png")))
        assert got.shape == (64, 64, 3)
        assert np.array_equal(got, _expected(celeba, name, size=64, box=(0, 20, 178, 198)))
    tight = prepare_celeba(celeba, tmp_path / "tight", size=32, crop=108, limit=2)
    assert tight.written == 2
    got = np.asarray(Image.open(tmp_path / "tight" / "000002.png"))
    assert np.array_equal(got, _expected(celeba, "000002.jpg", size=32, box=(35, 55, 143, 163)))
    # The crop really is the face square: not the squashed whole image.
    squashed = np.asarray(Image.open(celeba / "img_align_celeba" / "000001.jpg")
                          .resize((64, 64), Image.Resampling.BICUBIC))
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "out" / "000001.png")), squashed)


def test_attribute_labels_and_policies(celeba: Path, tmp_path: Path) -> None:
    hair = ["Black_Hair", "Blond_Hair", "Brown_Hair"]
    report = prepare_celeba(celeba, tmp_path / "skip", size=16, attributes=hair)
    assert report.per_label == {"Black_Hair": 1, "Blond_Hair": 1, "Brown_Hair": 1}
    assert (report.no_label, report.several_labels, report.written) == (1, 1, 3)
    files = labelled_files(tmp_path / "skip")
    assert {k: [p.name for p in v] for k, v in files.items()} == {
        "Black_Hair": ["000001.png"], "Blond_Hair": ["000002.png"], "Brown_Hair": ["000005.png"]}
    got = np.asarray(Image.open(tmp_path / "skip" / "Brown_Hair" / "000005.png"))
    assert np.array_equal(got, _expected(celeba, "000005.jpg", size=16, box=(0, 20, 178, 198)))

    report = prepare_celeba(celeba, tmp_path / "first", size=16, attributes=hair,
                            none_label="other", several="first")
    assert report.per_label == {"Black_Hair": 2, "Blond_Hair": 1, "Brown_Hair": 1, "other": 1}
    assert (tmp_path / "first" / "Black_Hair" / "000004.png").is_file()  # Black listed first
    assert (tmp_path / "first" / "other" / "000003.png").is_file()
    # the order of --attributes decides "first"
    report = prepare_celeba(celeba, tmp_path / "blond", size=16, several="first",
                            attributes=["Blond_Hair", "Black_Hair"])
    assert report.per_label == {"Black_Hair": 1, "Blond_Hair": 2}


def test_single_label_rule() -> None:
    flags = {"a": True, "b": True, "c": False}
    assert single_label(flags, ["c"]) is None
    assert single_label(flags, ["c"], none_label="none") == "none"
    assert single_label(flags, ["a", "b"]) is None
    assert single_label(flags, ["b", "a"], several="first") == "b"
    assert single_label(flags, ["a", "c"]) == "a"
    with pytest.raises(ValueError, match="several must be one of"):
        single_label(flags, ["a"], several="all")


def test_errors_name_what_to_fix(celeba: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"unknown CelebA attribute\(s\) Red_Hair"):
        prepare_celeba(celeba, tmp_path / "o", attributes=["Red_Hair"])
    (celeba / "list_attr_celeba.txt").write_text("2\na b\n000001.jpg 1\n")
    with pytest.raises(DataError, match=r"list_attr_celeba\.txt, line 3: expected a file name "
                                        r"and 2 values"):
        read_attributes(celeba / "list_attr_celeba.txt")
    with pytest.raises(DataError, match="exists; choose another folder or pass --force"):
        prepare_celeba(celeba, celeba)
    assert not (tmp_path / "o").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["celeba"]  # no temporary folder left


def test_cli_prepare_celeba(celeba: Path, tmp_path: Path) -> None:
    out = tmp_path / "labelled"
    result = CliRunner().invoke(app, ["data", "prepare", "celeba", str(celeba), "-o", str(out),
                                      "--size", "8", "--attributes", "Black_Hair,Blond_Hair",
                                      "--none-label", "neither"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "wrote 4 images of 8x8" in text and "left out 1 image(s) with several of them" in text
    assert sorted(p.name for p in out.iterdir()) == ["Black_Hair", "Blond_Hair", "neither"]
    bad = CliRunner().invoke(app, ["data", "prepare", "celeba", str(celeba), "-o", str(out),
                                   "--several", "all"])
    assert bad.exit_code == 2
