"""Issue 12, items 1, 6 and 10 (generate): outputs never replace inputs or existing files without
being told, atomic writes keep file modes, killed writes leave no litter, `gtx generate` stays in
bounded memory."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import gantransfer
from gantransfer import _io
from gantransfer._outputs import OutputExistsError, OutputIsInputError
from gantransfer.cli.app import app
from gantransfer.config import to_plain
from gantransfer.engine.checkpoint import save_checkpoint

runner = CliRunner()


def _checkpoint(path: Path, name: str, **overrides) -> Path:
    model = gantransfer.get(name, seed=0, **overrides)
    save_checkpoint({"architecture": name, "config": to_plain(model.config),
                     "model": model.state_dict(), "ema": None, "step": 0, "epoch": 0,
                     "versions": {}}, path)
    return path


@pytest.fixture(scope="module")
def cyclegan(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rel_cyclegan")
    return _checkpoint(root / "cyclegan.pt", "cyclegan", ngf=4, ndf=4, netG="resnet_6blocks")


@pytest.fixture(scope="module")
def dcgan(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rel_dcgan")
    return _checkpoint(root / "dcgan.pt", "dcgan", ngf=4, ndf=4, nz=8, image_size=16)


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("a.png", "sub/b.png", "c.jpg"):
        Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(folder / name)
    return folder


def _invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Content and inode of every file: a replaced file gets a new inode (os.replace)."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_ino)
            for p in sorted(folder.rglob("*")) if p.is_file()}


# -- item 1: translate --------------------------------------------------------------------------
def test_translate_into_its_input_folder_is_refused_and_inputs_stay(cyclegan, photos):
    before = _snapshot(photos)
    result = _invoke("translate", cyclegan, photos, "-o", photos)
    assert result.exit_code == 1
    assert "inside the input folder" in str(result.exception)
    assert _snapshot(photos) == before
    # Into a folder inside it too: the next run would read the outputs as inputs.
    inner = _invoke("translate", cyclegan, photos, "-o", photos / "out")
    assert inner.exit_code == 1 and not (photos / "out").exists()


def test_translate_never_replaces_an_input_file_even_with_overwrite(cyclegan, photos, tmp_path):
    before = _snapshot(photos)
    # A single file whose output name is the file itself (same folder, same .png name).
    result = _invoke("translate", cyclegan, photos / "a.png", "-o", photos, "--overwrite")
    assert result.exit_code == 1 and isinstance(result.exception, OutputIsInputError)
    assert "outputs never overwrite inputs" in str(result.exception)
    assert _snapshot(photos) == before
    # The library's folder pipeline refuses it too.
    from gantransfer.inference import translate_files

    with pytest.raises(OutputIsInputError):
        translate_files(gantransfer.load(cyclegan), [(photos / "a.png", photos / "a.png")])
    assert _snapshot(photos) == before


def test_translate_keeps_existing_outputs_unless_told(cyclegan, photos, tmp_path):
    out = tmp_path / "out"
    assert _invoke("translate", cyclegan, photos, "-o", out).exit_code == 0
    first = _snapshot(out)
    assert sorted(first) == ["a.png", "c.png", "sub/b.png"]

    again = _invoke("translate", cyclegan, photos, "-o", out)
    assert again.exit_code == 1 and isinstance(again.exception, OutputExistsError)
    message = str(again.exception)
    assert "3 output(s) exist already" in message and "--overwrite" in message
    assert "--skip-existing" in message
    assert _snapshot(out) == first  # nothing replaced

    # --skip-existing finishes an interrupted job: only the missing file is written.
    (out / "sub" / "b.png").unlink()
    resumed = _invoke("translate", cyclegan, photos, "-o", out, "--skip-existing")
    assert resumed.exit_code == 0, resumed.output
    text = " ".join(resumed.output.split())
    assert "wrote 1 image(s)" in text and "kept 2 existing" in text
    now = _snapshot(out)
    assert now["a.png"] == first["a.png"] and now["c.png"] == first["c.png"]  # same inodes
    assert now["sub/b.png"][0] == first["sub/b.png"][0]
    done = _invoke("translate", cyclegan, photos, "-o", out, "--skip-existing")
    assert done.exit_code == 0 and "nothing to do" in done.output

    replaced = _invoke("translate", cyclegan, photos, "-o", out, "--overwrite")
    assert replaced.exit_code == 0
    after = _snapshot(out)
    assert all(after[k][1] != now[k][1] for k in now)  # every file written again


def test_overwrite_and_skip_existing_together_are_a_usage_error(cyclegan, photos, tmp_path):
    result = _invoke("translate", cyclegan, photos, "-o", tmp_path / "o", "--overwrite",
                     "--skip-existing")
    assert result.exit_code == 2 and "exclude each other" in result.output


# -- item 1: generate, export, demo -------------------------------------------------------------
def test_generate_keeps_an_existing_grid_and_never_writes_over_its_source(dcgan, tmp_path):
    grid = tmp_path / "grid.png"
    grid.write_bytes(b"precious")
    result = _invoke("generate", dcgan, "-n", "4", "-o", grid)
    assert result.exit_code == 1 and isinstance(result.exception, OutputExistsError)
    assert grid.read_bytes() == b"precious"
    assert _invoke("generate", dcgan, "-n", "4", "-o", grid, "--overwrite").exit_code == 0
    assert Image.open(grid).size == (2 * 16, 2 * 16)

    source = tmp_path / "model.pt"
    source.write_bytes(dcgan.read_bytes())
    clash = _invoke("generate", source, "-n", "4", "-o", source, "--overwrite")
    assert clash.exit_code == 1 and isinstance(clash.exception, OutputIsInputError)
    assert source.read_bytes() == dcgan.read_bytes()


def test_export_refuses_an_existing_file_before_exporting(dcgan, tmp_path):
    target = tmp_path / "g.onnx"
    target.write_bytes(b"an older export")
    result = _invoke("export", dcgan, "--onnx", target)
    assert result.exit_code == 1 and isinstance(result.exception, OutputExistsError)
    assert "ONNX file(s) exist already" in str(result.exception)
    assert target.read_bytes() == b"an older export"
    skipped = _invoke("export", dcgan, "--onnx", target, "--skip-existing")
    assert skipped.exit_code == 0 and "nothing to do" in skipped.output
    assert target.read_bytes() == b"an older export"
    assert _invoke("export", dcgan, "--onnx", target, "--overwrite", "--no-verify").exit_code == 0
    assert target.read_bytes()[:16] != b"an older export"[:16]


def test_demo_keeps_an_earlier_demo_unless_overwrite(tmp_path):
    out = tmp_path / "demo"
    (out / "run" / "checkpoints").mkdir(parents=True)
    (out / "comparison.png").write_bytes(b"earlier result")
    result = _invoke("demo", "-o", out, "--steps", "1", "--progress", "none")
    assert result.exit_code == 1 and isinstance(result.exception, OutputExistsError)
    assert "demo output(s) exist already" in str(result.exception)
    assert not (out / "data").exists()  # refused before anything was written
    assert (out / "comparison.png").read_bytes() == b"earlier result"


# -- item 6: file modes and temporary files ------------------------------------------------------
@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_writes_get_the_umask_mode_and_keep_a_replaced_files_mode(tmp_path, umask_022):
    new = tmp_path / "new.bin"
    _io.atomic_write_bytes(new, b"x")
    assert _mode(new) == 0o644  # 0o666 & ~022, like open(); mkstemp gave 0600
    kept = tmp_path / "kept.bin"
    kept.write_bytes(b"old")
    kept.chmod(0o640)
    _io.atomic_write_bytes(kept, b"new")
    assert kept.read_bytes() == b"new" and _mode(kept) == 0o640
    os.umask(0o077)
    private = tmp_path / "private.bin"
    _io.atomic_write_bytes(private, b"x")
    assert _mode(private) == 0o600


def test_checkpoints_translations_and_grids_are_readable_by_the_group(cyclegan, dcgan, photos,
                                                                    tmp_path, umask_022):
    assert _mode(_checkpoint(tmp_path / "c.pt", "dcgan", ngf=4, ndf=4, nz=8, image_size=16)
                 ) == 0o644
    assert _invoke("translate", cyclegan, photos / "a.png", "-o", tmp_path / "t").exit_code == 0
    assert _mode(tmp_path / "t" / "a.png") == 0o644
    assert _invoke("generate", dcgan, "-n", "2", "-o", tmp_path / "g.png").exit_code == 0
    assert _mode(tmp_path / "g.png") == 0o644


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _leftover(folder: Path, name: str, pid: int) -> Path:
    path = folder / f".{name}.{_io._host()}.{pid}.0a1b2c3d.tmp"
    path.write_bytes(b"partial")
    return path


def test_stale_temporary_files_are_removed_live_ones_kept(tmp_path):
    dead, live = _dead_pid(), os.getppid()
    stale = _leftover(tmp_path, "model.onnx", dead)
    running = _leftover(tmp_path, "model.onnx", live)
    other_host = tmp_path / f".model.onnx.elsewhere.{dead}.0a1b2c3d.tmp"
    other_host.write_bytes(b"a write on another machine of a shared filesystem")
    legacy_old = tmp_path / ".model.onnx.k3j9_xab.tmp"  # what mkstemp-based versions left
    legacy_old.write_bytes(b"old")
    os.utime(legacy_old, (1, 1))
    legacy_new = tmp_path / ".model.onnx.q8w7_e6r.tmp"
    legacy_new.write_bytes(b"maybe being written")
    removed = _io.remove_stale_temps(tmp_path, name="model.onnx")
    assert sorted(removed) == sorted([stale, legacy_old])
    assert running.exists() and other_host.exists() and legacy_new.exists()


def test_a_killed_export_leaves_nothing_behind_after_the_next_export(dcgan, tmp_path):
    target = tmp_path / "g.onnx"
    stale = _leftover(tmp_path, "g.onnx", _dead_pid())
    assert _invoke("export", dcgan, "--onnx", target, "--no-verify").exit_code == 0
    assert target.is_file() and not stale.exists()
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_killed_download_leaves_nothing_behind_after_the_next_download(tmp_path):
    from gantransfer.hub import download, sha256_file

    source = tmp_path / "weights.bin"
    source.write_bytes(b"w" * 1000)
    cache = tmp_path / "cache"
    cache.mkdir()
    stale = _leftover(cache, "weights.bin", _dead_pid())
    path = download(source.as_uri(), cache / "weights.bin", sha256=sha256_file(source))
    assert path.read_bytes() == source.read_bytes()
    assert not stale.exists() and not list(cache.glob(".*.tmp"))


# -- item 10: gtx generate in bounded memory ------------------------------------------------------
def test_generate_streams_a_large_n_into_files_in_bounded_batches(dcgan, tmp_path, monkeypatch):
    from gantransfer.inference import dispatch

    sizes: list[int] = []
    real = dispatch.generate  # what `gtx generate` runs per chunk (through latent_generator)

    def recording(model, n, **kwargs):
        out = real(model, n, **kwargs)
        sizes.append(len(out))
        return out

    monkeypatch.setattr(dispatch, "generate", recording)
    out = tmp_path / "many"
    result = _invoke("generate", dcgan, "-n", "150", "-o", out, "--seed", "3")
    assert result.exit_code == 0, (result.output, result.exception)
    files = sorted(out.glob("*.png"))
    assert [f.name for f in files[:2]] == ["000000.png", "000001.png"] and len(files) == 150
    assert max(sizes) <= 64 and sum(sizes) == 150  # never more than one batch in memory
    # The same seed gives the same images as the grid (image 5 = row 1, column 2 of a 3-wide
    # grid of 9) and as the library.
    assert _invoke("generate", dcgan, "-n", "9", "-o", tmp_path / "g.png", "--seed", "3"
                   ).exit_code == 0
    grid = np.asarray(Image.open(tmp_path / "g.png"))
    np.testing.assert_array_equal(np.asarray(Image.open(out / "000005.png")),
                                  grid[16:32, 32:48])
    model = gantransfer.load(dcgan)
    want = real(model, 150, generator=torch.Generator().manual_seed(3))[149]
    pixels = ((want.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(np.asarray(Image.open(files[-1])), pixels)

    # Re-running finishes a partial folder: only missing files are drawn and written.
    for f in files[70:]:
        f.unlink()
    sizes.clear()
    again = _invoke("generate", dcgan, "-n", "150", "-o", out, "--seed", "3", "--skip-existing")
    assert again.exit_code == 0 and "wrote 80 image(s)" in " ".join(again.output.split())
    assert sizes == [64, 22]  # the first batch (images 0-63) was not run again
    np.testing.assert_array_equal(np.asarray(Image.open(files[-1])), pixels)


def test_generate_refuses_a_grid_too_large_to_build(dcgan, tmp_path):
    out = tmp_path / "huge.png"
    result = _invoke("generate", dcgan, "-n", "70000", "-o", out)
    assert result.exit_code == 1 and not out.exists()
    message = str(result.exception)
    assert "a grid of 70000 images of 16x16" in message and "megapixels" in message
    assert "-o DIR" in message
