"""Issue 12, item 10: large images are estimated and refused clearly, `--max-side` downscales, and
Pillow's raw DecompressionBombWarning becomes our own message with a `--max-pixels` option."""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from _relb_models import save_model, tiny_cyclegan
from PIL import Image
from typer.testing import CliRunner

import gantransfer
from gantransfer.cli.app import app
from gantransfer.data import images
from gantransfer.data.images import ImageTooLargeError, read_image
from gantransfer.inference import TranslationMemoryError, memory, pipeline, translate_files

GIB = 1 << 30


@pytest.fixture(autouse=True)
def _pillow_and_limits():
    """The CLI turns Pillow's own check off and --max-pixels sets ours: undo both."""
    before = Image.MAX_IMAGE_PIXELS
    yield
    Image.MAX_IMAGE_PIXELS = before
    images.set_max_pixels(None)


def _png_header(path: Path, width: int, height: int) -> Path:
    """A PNG that claims ``width x height`` (only the header: Pillow opens it lazily)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


def _photo(path: Path, width: int, height: int) -> Path:
    """A real JPEG of ``width x height`` (a smooth gradient: small and quick to write)."""
    ramp = np.linspace(0, 255, width, dtype=np.uint8)
    Image.fromarray(np.broadcast_to(ramp[None, :, None], (height, width, 3)).copy()).save(
        path, quality=80)
    return path


def test_default_generator_estimate_matches_the_measured_need() -> None:
    """Measured: ~910 B/px peak for resnet_9blocks (11 GB for 4000x3000); the estimate must
    cover it without being absurd."""
    from gantransfer.inference.torch_backend import torch_translator

    per_pixel = torch_translator(gantransfer.get("cyclegan")).bytes_per_pixel()
    assert 910 < per_pixel < 2000
    assert 11 * GIB * 0.95 < per_pixel * 4000 * 3000 < 24 * GIB


def test_large_photo_is_refused_before_running_with_a_max_side_hint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "available_memory", lambda device: 1 * GIB)
    photo = _photo(tmp_path / "big.jpg", 4000, 3000)
    model = gantransfer.get("cyclegan")  # the default generator: ~16 GiB estimated
    called = []  # never run the real thing here: it would need ~11 GB
    monkeypatch.setattr(pipeline._Run, "execute", lambda run: called.append(run))
    with pytest.raises(TranslationMemoryError) as info:
        translate_files(model, [(photo, tmp_path / "out.png")])
    message = str(info.value)
    assert "big.jpg (4000x3000)" in message and "1.0 GiB is available" in message
    need = float(message.split("need about ")[1].split(" GiB")[0])
    assert 11 < need < 24
    side = int(message.split("--max-side ")[1].split()[0])
    assert 64 <= side < 1000 and side % 64 == 0
    assert called == [] and not (tmp_path / "out.png").exists()


def test_max_side_downscales_and_then_fits(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "available_memory", lambda device: 200 << 20)
    photo = _photo(tmp_path / "big.jpg", 4000, 3000)
    ckpt = save_model(tiny_cyclegan(), tmp_path / "m.pt")
    out = tmp_path / "out"
    args = ["translate", str(ckpt), str(photo), "-o", str(out), "--compile", "off"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0 and isinstance(result.exception, TranslationMemoryError)
    result = CliRunner().invoke(app, [*args, "--max-side", "256"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert Image.open(out / "big.png").size == (256, 192)


def test_read_image_max_side_keeps_aspect_and_content(tmp_path: Path) -> None:
    photo = _photo(tmp_path / "p.jpg", 1600, 900)
    small = read_image(photo, channels=3, max_side=160)
    assert small.size == (160, 90)
    ref = read_image(photo, channels=3).resize((160, 90), Image.Resampling.LANCZOS)
    diff = np.abs(np.asarray(small, dtype=int) - np.asarray(ref, dtype=int))
    assert diff.mean() < 2  # JPEG draft decoding at 1/8 scale, then Lanczos: the same picture
    assert read_image(photo, channels=1, max_side=5000).size == (1600, 900)  # never upscaled


def test_decompression_bomb_is_our_message_not_pillows_warning(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    bomb = _png_header(tmp_path / "in" / "huge.png", 10000, 10000)
    ckpt = save_model(tiny_cyclegan(), tmp_path / "m.pt")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = CliRunner().invoke(app, ["translate", str(ckpt), str(tmp_path / "in"),
                                          "-o", str(tmp_path / "out")])
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    assert result.exit_code == 1 and isinstance(result.exception, ImageTooLargeError)
    message = str(result.exception)
    assert f"image {bomb} is 10000x10000 = 100.0 million pixels" in message
    assert "above the limit of 89.5 million" in message and "--max-pixels 100000000" in message


def test_max_pixels_option_sets_the_limit(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    Image.new("RGB", (40, 30)).save(folder / "a.png")
    runner = CliRunner()
    result = runner.invoke(app, ["data", "check", str(folder), "--max-pixels", "1000"])
    assert result.exit_code == 1
    assert "40x30 = 0.0 million pixels, above the limit of 0.0 million" in " ".join(
        result.output.split())
    result = runner.invoke(app, ["data", "check", str(folder), "--max-pixels", "1200"])
    assert result.exit_code == 0, result.output


def test_library_limit_follows_the_environment(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.png"
    Image.new("L", (50, 50)).save(path)
    monkeypatch.setenv("GANTRANSFER_MAX_PIXELS", "2000")
    with pytest.raises(ImageTooLargeError, match="GANTRANSFER_MAX_PIXELS=2500"):
        read_image(path, channels=1)
    monkeypatch.setenv("GANTRANSFER_MAX_PIXELS", "0")  # no limit
    assert read_image(path, channels=1).size == (50, 50)
