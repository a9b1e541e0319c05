"""Issue 12, "Also": property tests (hypothesis) over the image reader, the data-folder walker and
the checkpoint loader. Truncated, bit-flipped and random files, odd image modes and sizes, odd
folder trees and odd checkpoint contents: nothing but the documented errors comes out.

Deterministic by default (a fixed example sequence, no example database), so CI is stable and
quick; ``GTX_FUZZ_EXAMPLES=2000 pytest tests/reliability/test_rel_fuzz.py`` explores more
examples with fresh randomness.
"""

from __future__ import annotations

import functools
import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image

import gantransfer
from gantransfer.config import to_plain
from gantransfer.data.folders import (
    IMAGE_EXTENSIONS,
    DataError,
    DataLayoutError,
    ImageReadError,
    list_images,
    resolve_layout,
)
from gantransfer.data.images import probe_image, read_image
from gantransfer.engine.checkpoint import CheckpointError, save_checkpoint

_EXPLORE = int(os.environ.get("GTX_FUZZ_EXAMPLES", "0"))
# Pillow's TIFF reader warns about the damage it reads past; the damage is the point here.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")


def fuzz_settings(examples: int) -> settings:
    """``examples`` examples from a fixed sequence, or ``GTX_FUZZ_EXAMPLES`` random ones."""
    return settings(max_examples=_EXPLORE or examples, derandomize=not _EXPLORE, database=None,
                    deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _workdir() -> tempfile.TemporaryDirectory:
    # Hypothesis runs many examples per test: each gets its own folder (tmp_path is per test).
    return tempfile.TemporaryDirectory(prefix="gtx-fuzz-")


# -- mutations of a file's bytes ----------------------------------------------------------------
@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` as is, truncated, with a few bits flipped, with bytes overwritten, or replaced
    by random bytes."""
    kind = draw(st.sampled_from(["same", "truncate", "flip", "overwrite", "random"]))
    if kind == "same" or not data:
        return data
    if kind == "truncate":
        return data[: draw(st.integers(0, len(data) - 1))]
    if kind == "random":
        return draw(st.binary(max_size=512))
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 8))):
        i = draw(st.integers(0, len(out) - 1))
        if kind == "flip":
            out[i] ^= 1 << draw(st.integers(0, 7))
        else:
            out[i] = draw(st.integers(0, 255))
    return bytes(out)


# -- the image reader ---------------------------------------------------------------------------
# (mode, formats that can store it): odd modes included (1, P, PA, LA, I, I;16, F, CMYK).
MODES = {
    "1": ["png", "bmp", "tiff", "gif"], "L": ["png", "bmp", "tiff", "jpeg", "webp", "gif"],
    "LA": ["png", "tiff"], "P": ["png", "bmp", "tiff", "gif"], "RGB": ["png", "bmp", "tiff",
    "jpeg", "webp"], "RGBA": ["png", "tiff", "webp"], "CMYK": ["tiff", "jpeg"],
    "I;16": ["png", "tiff"], "I": ["png", "tiff"], "F": ["tiff"], "YCbCr": ["tiff", "jpeg"],
}
_FORMAT = {"jpeg": "JPEG", "tiff": "TIFF", "png": "PNG", "bmp": "BMP", "webp": "WEBP",
           "gif": "GIF"}


@st.composite
def image_files(draw: st.DrawFn) -> tuple[bytes, str, tuple[int, int]]:
    """(encoded bytes, extension, (width, height)) of a random image in a random mode."""
    mode = draw(st.sampled_from(sorted(MODES)))
    ext = draw(st.sampled_from(MODES[mode]))
    w, h = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    if mode in ("I", "I;16"):
        # uint16 arrays become "I;16", int32 ones "I" (16-bit PNG/TIFF files read back as "I").
        arr = rng.integers(0, 65536, (h, w)).astype(np.uint16 if mode == "I;16" else np.int32)
        img = Image.fromarray(arr)
    elif mode == "F":
        img = Image.fromarray(rng.random((h, w)).astype(np.float32) * 1.5 - 0.2)
    else:
        img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB").convert(mode)
    buffer = io.BytesIO()
    try:
        img.save(buffer, format=_FORMAT[ext])
    except (OSError, ValueError, KeyError):  # a mode this Pillow cannot write in that format
        assume(False)
    return buffer.getvalue(), ext, (w, h)


@fuzz_settings(120)
@given(image=image_files(), data=st.data(), channels=st.sampled_from([1, 3]))
def test_image_reader_gives_an_image_or_image_read_error(image, data, channels) -> None:
    raw, ext, size = image
    content = data.draw(mutated(raw))
    with _workdir() as tmp:
        path = Path(tmp) / f"x.{ext}"
        path.write_bytes(content)
        try:
            img = read_image(path, channels=channels)
        except ImageReadError as exc:
            assert exc.path == path and str(path) in str(exc)  # names the file
            assert content != raw  # an intact file always reads
            return
        assert img.mode == ("L" if channels == 1 else "RGB")
        assert img.size[0] >= 1 and img.size[1] >= 1
        if content == raw:
            assert img.size == size
            info = probe_image(path, full=True)
            assert info.size == size
        arr = np.asarray(img)
        assert arr.dtype == np.uint8 and arr.shape[:2] == (img.size[1], img.size[0])


@fuzz_settings(40)
@given(image=image_files(), data=st.data())
def test_header_probe_agrees_with_the_decoder(image, data) -> None:
    raw, ext, _ = image
    content = data.draw(mutated(raw))
    with _workdir() as tmp:
        path = Path(tmp) / f"x.{ext}"
        path.write_bytes(content)
        try:
            header = probe_image(path)
        except ImageReadError:
            header = None
        try:
            decoded = probe_image(path, full=True)
        except ImageReadError:
            decoded = None
        # A file whose header does not parse never decodes; one that decodes has that header.
        assert not (header is None and decoded is not None)
        assert decoded is None or decoded == header


# -- the data-folder walker ---------------------------------------------------------------------
_SEGMENT = st.text(alphabet="abcXYZ019 -_.é中", min_size=1, max_size=6).filter(
    lambda s: s not in (".", ".."))
_EXT = st.sampled_from([".png", ".PNG", ".jpg", ".JpEg", ".tif", ".tiff", ".webp", ".bmp",
                        ".txt", "", ".png.txt", ".gif"])


@st.composite
def trees(draw: st.DrawFn) -> list[tuple[str, ...]]:
    """Relative file paths (as segment tuples) of a random folder tree, no file under a file."""
    paths = draw(st.lists(st.tuples(st.lists(_SEGMENT, max_size=3), _SEGMENT, _EXT),
                          max_size=12))
    files: dict[tuple[str, ...], None] = {}
    for dirs, stem, ext in paths:
        candidate = (*dirs, stem + ext)
        prefixes = {candidate[:i] for i in range(1, len(candidate))}
        if prefixes & set(files) or any(f[: len(candidate)] == candidate for f in files):
            continue  # a file where a folder is needed, or the reverse
        files[candidate] = None
    return list(files)


def _expected_images(files: list[tuple[str, ...]]) -> list[str]:
    keep = [f for f in files if not any(part.startswith(".") for part in f)
            and os.path.splitext(f[-1])[1].lower() in IMAGE_EXTENSIONS]
    return sorted("/".join(f) for f in keep)


@fuzz_settings(60)
@given(files=trees(), prefix=st.sampled_from(["", "trainA", "trainB", "A", "B", "train/A"]))
def test_walker_lists_exactly_the_visible_image_files(files, prefix) -> None:
    with _workdir() as tmp:
        root = Path(tmp) / "data"
        base = root / prefix if prefix else root
        base.mkdir(parents=True)
        for rel in files:
            path = base.joinpath(*rel)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")
        found = list_images(base)
        assert [p.relative_to(base).as_posix() for p in found] == _expected_images(files)
        for kind in ("single", "unpaired", "paired"):
            try:
                layout = resolve_layout(kind, root)
            except DataLayoutError as exc:
                assert str(root) in str(exc)  # says where it looked
                continue
            assert all(layout.values())  # every domain has files
            if kind == "paired":
                assert len(layout["A"]) == len(layout["B"])


@fuzz_settings(25)
@given(image=image_files(), data=st.data(), count=st.integers(1, 3))
def test_dataset_over_damaged_files_raises_data_errors_only(image, data, count) -> None:
    from gantransfer.data import DataConfig, build_dataset

    raw, ext, _ = image
    with _workdir() as tmp:
        root = Path(tmp) / "data"
        root.mkdir()
        contents = [data.draw(mutated(raw)) for _ in range(count)]
        for i, content in enumerate(contents):
            (root / f"{i}.{ext}").write_bytes(content)
        skip = data.draw(st.booleans())
        config = DataConfig(root=root, preprocess="resize_and_crop", load_size=8, crop_size=8,
                            skip_bad_images=skip)
        try:
            dataset = build_dataset("single", config)
            items = [dataset[i] for i in range(len(dataset))]
        except DataError as exc:
            assert str(root) in str(exc)
            return
        for item in items:
            x = item["image"]
            assert x.shape == (3, 8, 8) and bool(torch.isfinite(x).all())
            assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0


# -- the checkpoint loader ----------------------------------------------------------------------
@functools.cache
def checkpoint_bytes() -> bytes:
    """A small intact checkpoint (a function, not a fixture: hypothesis would print a fixture's
    130 kB value with every failing example)."""
    torch.manual_seed(0)
    model = gantransfer.get("cyclegan", ngf=1, ndf=1, netG="resnet_6blocks", n_layers_D=1)
    buffer = io.BytesIO()
    torch.save({"format": "gantransfer.checkpoint", "format_version": 1,
                "architecture": "cyclegan", "config": to_plain(model.config),
                "model": model.state_dict(), "ema": None, "step": 1, "epoch": 0,
                "versions": {}}, buffer)
    return buffer.getvalue()


@fuzz_settings(60)
@given(data=st.data())
def test_checkpoint_loader_on_damaged_files_raises_checkpoint_error_only(data) -> None:
    content = data.draw(mutated(checkpoint_bytes()))
    with _workdir() as tmp:
        path = Path(tmp) / "step_0000001.pt"
        path.write_bytes(content)
        try:
            model = gantransfer.load(path)
        except CheckpointError as exc:
            assert str(path) in str(exc)
            return
        assert model.arch_name == "cyclegan"  # a flip inside tensor data can load


# Plain values a damaged or hand-made checkpoint may hold where a field should be.
_ODD = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=True),
                 st.text(max_size=8), st.lists(st.integers(), max_size=3),
                 st.dictionaries(st.text(max_size=6), st.integers(), max_size=3),
                 st.just(torch.zeros(2)))


@fuzz_settings(30)
@given(field=st.sampled_from(["format_version", "architecture", "config", "model", "ema", "step",
                              "versions", "config.ngf", "config.netG", "model.key"]),
       value=_ODD)
def test_checkpoint_loader_on_odd_contents_raises_checkpoint_error_only(field, value) -> None:
    data = torch.load(io.BytesIO(checkpoint_bytes()), weights_only=True)
    head, _, key = field.partition(".")
    if key == "key":  # one weight replaced
        key = next(iter(data["model"]))
    if key:
        data[head] = dict(data[head])
        data[head][key] = value
    else:
        data[head] = value
    with _workdir() as tmp:
        path = Path(tmp) / "c.pt"
        save_checkpoint({k: v for k, v in data.items() if k not in ("format",
                                                                     "format_version")}, path)
        if head == "format_version":  # save_checkpoint writes the current one: put it back
            torch.save({**data, "format": "gantransfer.checkpoint"}, path)
        try:
            gantransfer.load(path)
        except CheckpointError as exc:
            assert str(path) in str(exc)
