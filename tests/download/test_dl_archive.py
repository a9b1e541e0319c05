"""gantransfer._archive: only plain files inside the target, caps, nothing left on failure."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from gantransfer._archive import ArchiveError, ExtractLimits, extract, extract_to


def _zip(path: Path, entries: dict[str, bytes], *, symlinks: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3  # Unix, as `zip --symlinks` writes it
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def _tar(path: Path, members: list[tarfile.TarInfo], data: dict[str, bytes] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for member in members:
            body = (data or {}).get(member.name)
            if body is not None:
                member.size = len(body)
            tf.addfile(member, io.BytesIO(body) if body is not None else None)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


def _left(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_good_zip_and_tar_unpack_exactly(tmp_path: Path) -> None:
    entries = {"set/trainA/a.png": b"A" * 100, "set/testB/b.png": b"B" * 7, "set/empty/": b""}
    z = _zip(tmp_path / "a.zip", entries)
    target = extract_to(z, tmp_path / "out_zip")
    assert (target / "set/trainA/a.png").read_bytes() == b"A" * 100
    assert (target / "set/empty").is_dir()
    t = _tar(tmp_path / "a.tar.gz", [_member("./set/x.png"), _member("set/d", tarfile.DIRTYPE)],
             {"./set/x.png": b"xyz"})
    (tmp_path / "out_tar").mkdir()
    files = extract(t, tmp_path / "out_tar")
    assert [str(f) for f in files] == ["set/x.png"]
    assert (tmp_path / "out_tar/set/x.png").read_bytes() == b"xyz"
    assert _left(tmp_path) == sorted(["a.zip", "a.tar.gz", "out_zip", "out_zip/set",
                                      "out_zip/set/trainA", "out_zip/set/trainA/a.png",
                                      "out_zip/set/testB", "out_zip/set/testB/b.png",
                                      "out_zip/set/empty", "out_tar", "out_tar/set",
                                      "out_tar/set/x.png", "out_tar/set/d"])


@pytest.mark.parametrize("name", ["../evil.txt", "set/../../evil.txt", "/etc/evil",
                                  "C:/evil.txt", "set\\..\\evil.txt"])
def test_zip_entries_that_could_escape_are_refused(tmp_path: Path, name: str) -> None:
    z = _zip(tmp_path / "bad.zip", {"set/ok.png": b"ok", name: b"evil"})
    with pytest.raises(ArchiveError, match="refusing the archive"):
        extract_to(z, tmp_path / "out")
    assert _left(tmp_path) == ["bad.zip"]  # no target, no temporary folder
    assert not (tmp_path.parent / "evil.txt").exists()


def test_zip_symlink_entry_is_refused(tmp_path: Path) -> None:
    z = _zip(tmp_path / "link.zip", {"set/ok.png": b"ok"}, symlinks={"set/passwd": "/etc/passwd"})
    with pytest.raises(ArchiveError, match="'set/passwd' is a symlink"):
        extract_to(z, tmp_path / "out")
    assert _left(tmp_path) == ["link.zip"]


@pytest.mark.parametrize(("kind", "linkname", "what"), [
    (tarfile.SYMTYPE, "/etc/passwd", "a symlink"),
    (tarfile.SYMTYPE, "inside.png", "a symlink"),  # even one pointing inside
    (tarfile.LNKTYPE, "../../etc/passwd", "a hardlink"),
    (tarfile.CHRTYPE, "", "a device or FIFO"),
    (tarfile.BLKTYPE, "", "a device or FIFO"),
    (tarfile.FIFOTYPE, "", "a device or FIFO"),
])
def test_tar_links_and_special_files_are_refused(tmp_path: Path, kind: bytes, linkname: str,
                                                 what: str) -> None:
    t = _tar(tmp_path / "bad.tar.gz", [_member("set/inside.png"), _member("set/x", kind, linkname)],
             {"set/inside.png": b"png"})
    with pytest.raises(ArchiveError, match=f"'set/x' is {what}"):
        extract_to(t, tmp_path / "out")
    assert _left(tmp_path) == ["bad.tar.gz"]


def test_tar_path_escape_is_refused(tmp_path: Path) -> None:
    t = _tar(tmp_path / "bad.tar.gz", [_member("../../evil.png")], {"../../evil.png": b"x"})
    with pytest.raises(ArchiveError, match="outside the target folder"):
        extract_to(t, tmp_path / "out")
    assert _left(tmp_path) == ["bad.tar.gz"]


def test_zip_bomb_over_the_default_cap_is_refused_before_writing(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("zeros.bin", "w") as fh:
        for _ in range(40):
            fh.write(bytes(1 << 20))  # 40 MiB of zeros: about 40 KiB compressed
    assert bomb.stat().st_size < 100_000
    with pytest.raises(ArchiveError, match=r"unpacks to more than 16\.0 MiB.*zip bomb"):
        extract_to(bomb, tmp_path / "out")
    assert _left(tmp_path) == ["bomb.zip"]
    # With a raised cap the same archive unpacks: the cap, not something else, refused it.
    out = extract_to(bomb, tmp_path / "out", limits=ExtractLimits(max_bytes=64 << 20))
    assert (out / "zeros.bin").stat().st_size == 40 << 20


def test_tar_bomb_is_stopped_while_streaming(tmp_path: Path) -> None:
    big = bytes(2 << 20)
    t = _tar(tmp_path / "bomb.tar.gz", [_member(f"z{i}") for i in range(4)],
             {f"z{i}": big for i in range(4)})
    with pytest.raises(ArchiveError, match=r"more than 5\.0 MiB"):
        extract_to(t, tmp_path / "out", limits=ExtractLimits(max_bytes=5 << 20))
    assert _left(tmp_path) == ["bomb.tar.gz"]


def test_entry_count_cap_and_duplicates(tmp_path: Path) -> None:
    z = _zip(tmp_path / "many.zip", {f"f{i}.png": b"x" for i in range(11)})
    with pytest.raises(ArchiveError, match="11 entries, more than the extraction limit of 10"):
        extract_to(z, tmp_path / "out", limits=ExtractLimits(max_entries=10))
    t = _tar(tmp_path / "dup.tar.gz", [_member("a.png"), _member("./a.png")],
             {"a.png": b"1", "./a.png": b"2"})
    with pytest.raises(ArchiveError, match="appears twice"):
        extract_to(t, tmp_path / "out")
    assert _left(tmp_path) == ["dup.tar.gz", "many.zip"]


def test_not_an_archive_and_truncated_archive(tmp_path: Path) -> None:
    page = tmp_path / "set.zip"
    page.write_text("<html>503 Service Unavailable</html>")
    with pytest.raises(ArchiveError, match="neither a zip nor a tar archive"):
        extract_to(page, tmp_path / "out")
    t = _tar(tmp_path / "cut.tar.gz", [_member("a.png")], {"a.png": bytes(range(256)) * 400})
    t.write_bytes(t.read_bytes()[:-200])
    with pytest.raises(ArchiveError, match="corrupt or truncated"):
        extract_to(t, tmp_path / "out")
    assert _left(tmp_path) == ["cut.tar.gz", "set.zip"]
