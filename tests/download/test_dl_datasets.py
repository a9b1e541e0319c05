"""`gtx data download` end to end against a local server: layouts, lock, resume, refusals."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from _local_http import FileServer, local_server, unused_port
from PIL import Image
from typer.testing import CliRunner

from gantransfer import hub
from gantransfer._archive import ArchiveError
from gantransfer.cli.app import app
from gantransfer.data import DataConfig, DataError, build_dataset
from gantransfer.data import catalogue as cat

RNG = np.random.default_rng(0)


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


def _pixels(w: int, h: int) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


H2Z_FILES = {f"horse2zebra/{d}/{d}_{i}.png": _png(_pixels(8, 6)) for d in
             ("trainA", "trainB", "testA", "testB") for i in range(2)}
PAIRS = {f"facades/{split}/{i}.png": _pixels(17, 6) for split in ("train", "val")
         for i in range(1, 3)}  # odd width: B is one column wider, as officially


def _zip_bytes(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _tar_gz_bytes(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _jpeg(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "JPEG", quality=85)
    return buf.getvalue()


JPEG_PAIR = _jpeg(_pixels(32, 16))  # as the official files are: the split keeps decoded pixels
H2Z_ZIP = _zip_bytes(H2Z_FILES)
FACADES_TGZ = _tar_gz_bytes({**{name: _png(a) for name, a in PAIRS.items()},
                             "facades/test/9.jpg": JPEG_PAIR})


class _Server(FileServer):
    pass


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Long temporary paths must not be wrapped mid-word in the captured output."""
    from gantransfer.cli._console import console

    monkeypatch.setattr(console, "_width", 1000)


@pytest.fixture
def server() -> Iterator[str]:
    _Server.reset({"/horse2zebra.zip": H2Z_ZIP, "/facades.tar.gz": FACADES_TGZ})
    with local_server(_Server) as url:
        yield url


def _gtx(*args: str):
    result = CliRunner().invoke(app, ["data", "download", *args])
    return result, " ".join(result.output.split())


def _everything(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_cyclegan_zip_gives_the_unpaired_layout_and_an_unverified_lock(server: str,
                                                                       tmp_path: Path) -> None:
    result, out = _gtx("horse2zebra", "-o", str(tmp_path), "--mirror", server)
    assert result.exit_code == 0, result.output
    digest = hashlib.sha256(H2Z_ZIP).hexdigest()
    assert f"SHA-256 {digest}" in out and "UNVERIFIED: the source publishes no checksum" in out
    assert "no problems found" in out  # the gtx data check summary
    folder = tmp_path / "horse2zebra"
    for name, data in H2Z_FILES.items():
        assert (tmp_path / name).read_bytes() == data
    lock = json.loads((folder / ".gantransfer-lock.json").read_text())
    assert lock["source"] == {**lock["source"], "url": f"{server}/horse2zebra.zip",
                              "sha256": digest, "size": len(H2Z_ZIP), "verified": False}
    assert lock["files"]["trainA/trainA_0.png"] == [
        len(H2Z_FILES["horse2zebra/trainA/trainA_0.png"]),
        hashlib.sha256(H2Z_FILES["horse2zebra/trainA/trainA_0.png"]).hexdigest()]
    assert [p.name for p in tmp_path.iterdir()] == ["horse2zebra"]  # archive removed
    assert build_dataset("unpaired", DataConfig(root=folder, crop_size=4, load_size=8))[0]["A"] \
        .shape == (3, 4, 4)

    # Again: present and matching its lock, so nothing is fetched.
    before = len(_Server.requests)
    result, out = _gtx("horse2zebra", "-o", str(tmp_path), "--mirror", server, "--no-check")
    assert result.exit_code == 0 and "present and matches its lock" in out
    assert len(_Server.requests) == before
    result, out = _gtx("--list", "-o", str(tmp_path))
    assert result.exit_code == 0 and "│ horse2zebra │ unpaired │ ~111.0 MiB │ horses -> zebras │ present │" in out


def test_changed_files_are_found_by_check_and_by_training(server: str, tmp_path: Path) -> None:
    assert _gtx("horse2zebra", "-o", str(tmp_path), "--mirror", server, "--no-check")[0] \
        .exit_code == 0
    folder = tmp_path / "horse2zebra"
    victim = folder / "testB" / "testB_1.png"
    data = bytearray(victim.read_bytes())
    data[-5] ^= 0xFF  # same size, other bytes (in the PNG trailer: still decodes)
    victim.write_bytes(bytes(data))
    result = CliRunner().invoke(app, ["data", "check", str(folder)])
    out = " ".join(result.output.split())
    assert result.exit_code == 1 and f"{victim} changed since it was downloaded (SHA-256" in out
    assert "gtx data download horse2zebra --force" in out
    (folder / "trainA" / "trainA_0.png").write_bytes(_png(_pixels(9, 6)))  # another size
    with pytest.raises(DataError, match=r"1 file\(s\) of .* changed since the download.*"
                                        r"trainA_0\.png"):
        build_dataset("unpaired", DataConfig(root=folder))


def test_pix2pix_side_by_side_pairs_are_split_pixel_exactly(server: str, tmp_path: Path) -> None:
    result, out = _gtx("pix2pix/facades", "-o", str(tmp_path), "--mirror", server)
    assert result.exit_code == 0, result.output
    assert "train: 2 side-by-side pairs split into train/A and train/B" in out
    folder = tmp_path / "pix2pix" / "facades"
    for name, pixels in PAIRS.items():
        split, file = name.split("/")[1:]
        a = np.asarray(Image.open(folder / split / "A" / file))
        b = np.asarray(Image.open(folder / split / "B" / file))
        assert np.array_equal(a, pixels[:, :8]) and np.array_equal(b, pixels[:, 8:])
    decoded = np.asarray(Image.open(io.BytesIO(JPEG_PAIR)))
    assert np.array_equal(np.asarray(Image.open(folder / "test/A/9.png")), decoded[:, :16])
    assert np.array_equal(np.asarray(Image.open(folder / "test/B/9.png")), decoded[:, 16:])
    assert _everything(folder) == [".gantransfer-lock.json", "test", "test/A", "test/A/9.png",
                                   "test/B", "test/B/9.png", "train", "train/A", "train/A/1.png",
                                   "train/A/2.png", "train/B", "train/B/1.png", "train/B/2.png",
                                   "val", "val/A", "val/A/1.png", "val/A/2.png", "val/B",
                                   "val/B/1.png", "val/B/2.png"]
    ds = build_dataset("paired", DataConfig(root=folder, phase="val", preprocess="none"))
    assert ds.files["A"][0] == folder / "val/A/1.png"


def test_interrupted_download_is_resumed_by_the_same_command(server: str, tmp_path: Path) -> None:
    _Server.cut["/horse2zebra.zip"] = 700
    result, out = _gtx("horse2zebra", "-o", str(tmp_path), "--mirror", server)
    assert result.exit_code == 1 and isinstance(result.exception, hub.DownloadError)
    assert "the same command resumes" in str(result.exception)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["horse2zebra.zip.part",
                                                          "horse2zebra.zip.part.json"]
    result, out = _gtx("horse2zebra", "-o", str(tmp_path), "--mirror", server, "--no-check")
    assert result.exit_code == 0, result.output
    assert _Server.requests[-1][1]["Range"] == "bytes=700-" and "resumed at 700 B" in out
    for name, data in H2Z_FILES.items():
        assert (tmp_path / name).read_bytes() == data
    assert [p.name for p in tmp_path.iterdir()] == ["horse2zebra"]


def test_a_changed_upstream_archive_is_refused_and_the_data_kept(server: str,
                                                                tmp_path: Path) -> None:
    assert _gtx("horse2zebra", "-o", str(tmp_path), "--mirror", server, "--no-check")[0] \
        .exit_code == 0
    before = _everything(tmp_path)
    _Server.files["/horse2zebra.zip"] = _zip_bytes({**H2Z_FILES, "horse2zebra/trainA/new.png":
                                                   b"not in the first download"})
    result, _ = _gtx("horse2zebra", "-o", str(tmp_path), "--mirror", server, "--force")
    assert result.exit_code == 1 and isinstance(result.exception, hub.ChangedFileError)
    message = " ".join(str(result.exception).split())
    assert "changed since it was first downloaded" in message
    assert f"delete {tmp_path / 'horse2zebra' / '.gantransfer-lock.json'}" in message
    assert _everything(tmp_path) == before  # old data, lock and nothing else


def test_published_hash_mismatch_leaves_nothing(server: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    entry = cat.CATALOGUE["horse2zebra"]
    monkeypatch.setitem(cat.CATALOGUE, "horse2zebra",
                        cat.DatasetSource(**{**entry.__dict__, "sha256": "0" * 64}))
    result, _ = _gtx("horse2zebra", "-o", str(tmp_path), "--mirror", server)
    assert result.exit_code == 1 and isinstance(result.exception, hub.IntegrityError)
    assert list(tmp_path.iterdir()) == []
    good = hashlib.sha256(H2Z_ZIP).hexdigest()
    monkeypatch.setitem(cat.CATALOGUE, "horse2zebra",
                        cat.DatasetSource(**{**entry.__dict__, "sha256": good}))
    result, out = _gtx("horse2zebra", "-o", str(tmp_path), "--mirror", server, "--no-check")
    assert result.exit_code == 0 and "verified against the published SHA-256" in out


def test_unsafe_archive_leaves_nothing_behind(server: str, tmp_path: Path) -> None:
    _Server.files["/horse2zebra.zip"] = _zip_bytes({**H2Z_FILES, "../../escaped.png": b"x"})
    result, _ = _gtx("horse2zebra", "-o", str(tmp_path / "ds"), "--mirror", server)
    assert result.exit_code == 1 and isinstance(result.exception, ArchiveError)
    assert _everything(tmp_path) == ["ds"]
    assert not (tmp_path / "escaped.png").exists()


def test_offline_error_names_the_url_and_the_manual_path(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{unused_port()}/horse2zebra.zip"
    result, _ = _gtx("horse2zebra", "-o", str(tmp_path), "--url", url)
    assert result.exit_code == 1 and isinstance(result.exception, hub.DownloadError)
    message = " ".join(str(result.exception).split())
    archive = tmp_path / "horse2zebra.zip"
    assert f"could not download {url}" in message
    assert f"download {url} elsewhere and copy it to {archive}" in message
    assert list(tmp_path.iterdir()) == []
    archive.write_bytes(H2Z_ZIP)  # the manual path: the same command then uses the copy
    result, out = _gtx("horse2zebra", "-o", str(tmp_path), "--url", url, "--no-check")
    assert result.exit_code == 0 and "used the archive already on disk" in out
    assert "UNVERIFIED" in out and (tmp_path / "horse2zebra/trainB/trainB_1.png").is_file()


def test_usage_errors(tmp_path: Path) -> None:
    assert _gtx()[0].exit_code == 2
    assert _gtx("horse2zebra", "--url", "http://a/x.zip", "--mirror", "http://b")[0].exit_code == 2
    (tmp_path / "horse2zebra").mkdir()
    result, _ = _gtx("horse2zebra", "-o", str(tmp_path))
    assert result.exit_code == 1 and "was not made by gtx data download" in str(result.exception)
    with pytest.raises(LookupError, match="Did you mean pix2pix/edges2shoes"):
        cat.find_dataset("edges2shoe")
    assert cat.find_dataset("night2day").name == "pix2pix/night2day"
    assert cat.find_dataset("facades").name == "facades"  # the CycleGAN one
