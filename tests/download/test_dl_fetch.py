"""gantransfer._download.fetch and the pins: resume with Range, integrity, nothing left behind."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from _local_http import FileServer, local_server

from gantransfer import hub

BODY = bytes(range(256)) * 256  # 64 KiB
DIGEST = hashlib.sha256(BODY).hexdigest()


class _Server(FileServer):
    pass


class _NoEtag(FileServer):
    etags = False


@pytest.fixture
def server() -> Iterator[str]:
    _Server.reset({"/f.bin": BODY})
    with local_server(_Server) as url:
        yield url


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_interrupted_transfer_is_resumed_with_range(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "f.bin"
    _Server.cut["/f.bin"] = 40_000
    with pytest.raises(hub.DownloadError, match=r"cut short: got 40000 of 65536 bytes.*"
                                                r"same command resumes"):
        hub.fetch(f"{server}/f.bin", dest, sha256=DIGEST, resume=True, timeout=10)
    # Only the partial file and its validators are there; no dest.
    assert _names(tmp_path) == ["f.bin.part", "f.bin.part.json"]
    assert (tmp_path / "f.bin.part").read_bytes() == BODY[:40_000]

    seen: list[tuple[int, int | None]] = []
    got = hub.fetch(f"{server}/f.bin", dest, sha256=DIGEST, resume=True, timeout=10,
                    progress=lambda done, total: seen.append((done, total)))
    headers = _Server.requests[-1][1]
    assert headers["Range"] == "bytes=40000-" and headers["If-Range"].startswith('"')
    assert dest.read_bytes() == BODY and got.sha256 == DIGEST and got.resumed_from == 40_000
    assert _names(tmp_path) == ["f.bin"]
    assert seen[0][0] > 40_000 and seen[-1] == (len(BODY), len(BODY))  # counts resumed bytes


def test_a_stalled_transfer_is_kept_for_resuming(server: str, tmp_path: Path) -> None:
    _Server.stall["/f.bin"] = 20_000
    with pytest.raises(hub.DownloadError, match=r"stalled: no data for 0\.5 s.*same command resumes"):
        hub.fetch(f"{server}/f.bin", tmp_path / "f.bin", resume=True, timeout=0.5)
    assert (tmp_path / "f.bin.part").read_bytes() == BODY[:20_000]
    got = hub.fetch(f"{server}/f.bin", tmp_path / "f.bin", sha256=DIGEST, resume=True, timeout=5)
    assert got.resumed_from == 20_000 and got.path.read_bytes() == BODY


def test_a_too_slow_transfer_is_kept_for_resuming(server: str, tmp_path: Path) -> None:
    _Server.slow.add("/f.bin")  # 20 KiB/s, below the 100 KiB/s asked for
    with pytest.raises(hub.DownloadError, match=r"stalled: .* below the minimum of 100\.0 KiB/s"
                                                r".*same command resumes"):
        hub.fetch(f"{server}/f.bin", tmp_path / "f.bin", resume=True, timeout=0.5,
                  min_speed=100 * 1024)
    kept = (tmp_path / "f.bin.part").read_bytes()
    assert 0 < len(kept) < len(BODY) and kept == BODY[:len(kept)]
    _Server.slow.clear()
    got = hub.fetch(f"{server}/f.bin", tmp_path / "f.bin", sha256=DIGEST, resume=True, timeout=5)
    assert got.resumed_from == len(kept) and got.path.read_bytes() == BODY


def test_a_changed_file_restarts_instead_of_resuming(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "f.bin"
    _Server.cut["/f.bin"] = 30_000
    with pytest.raises(hub.DownloadError):
        hub.fetch(f"{server}/f.bin", dest, resume=True, timeout=10)
    new = b"x" * 50_000  # the server now has another file: its ETag differs, If-Range fails
    _Server.files["/f.bin"] = new
    got = hub.fetch(f"{server}/f.bin", dest, resume=True, timeout=10)
    assert _Server.requests[-1][1]["Range"] == "bytes=30000-"  # asked, but got a 200
    assert dest.read_bytes() == new and got.resumed_from == 0
    assert got.sha256 == hashlib.sha256(new).hexdigest()


def test_without_etag_the_recorded_size_validates_the_resume(tmp_path: Path) -> None:
    _NoEtag.reset({"/f.bin": BODY})
    _NoEtag.cut["/f.bin"] = 1000
    with local_server(_NoEtag) as url:
        with pytest.raises(hub.DownloadError):
            hub.fetch(f"{url}/f.bin", tmp_path / "f.bin", resume=True, timeout=10)
        meta = json.loads((tmp_path / "f.bin.part.json").read_text())
        assert meta["validator"] is None and meta["total"] == len(BODY)
        # Same size: resumed (no If-Range to send)
        got = hub.fetch(f"{url}/f.bin", tmp_path / "f.bin", resume=True, timeout=10)
        assert "If-Range" not in _NoEtag.requests[-1][1] and got.resumed_from == 1000
        assert (tmp_path / "f.bin").read_bytes() == BODY
        # Another size behind the same URL: the 206's total differs, so it starts over.
        (tmp_path / "f.bin").unlink()
        _NoEtag.cut["/f.bin"] = 1000
        with pytest.raises(hub.DownloadError):
            hub.fetch(f"{url}/f.bin", tmp_path / "f.bin", resume=True, timeout=10)
        _NoEtag.files["/f.bin"] = BODY + b"more"
        got = hub.fetch(f"{url}/f.bin", tmp_path / "f.bin", resume=True, timeout=10)
        assert got.resumed_from == 0 and (tmp_path / "f.bin").read_bytes() == BODY + b"more"


def test_kept_part_longer_than_the_file_gets_416_and_starts_over(server: str,
                                                                 tmp_path: Path) -> None:
    part = tmp_path / "f.bin.part"
    part.write_bytes(BODY + b"junk")
    (tmp_path / "f.bin.part.json").write_text(json.dumps(
        {"url": f"{server}/f.bin", "validator": None, "total": None}))
    got = hub.fetch(f"{server}/f.bin", tmp_path / "f.bin", sha256=DIGEST, resume=True, timeout=10)
    assert got.resumed_from == 0 and got.path.read_bytes() == BODY
    assert [r[1].get("Range") for r in _Server.requests] == [f"bytes={len(BODY) + 4}-", None]


def test_hash_mismatch_and_truncation_leave_nothing_behind(server: str, tmp_path: Path) -> None:
    with pytest.raises(hub.IntegrityError, match=f"SHA-256 {DIGEST}, expected 0+$"):
        hub.fetch(f"{server}/f.bin", tmp_path / "f.bin", sha256="0" * 64, resume=True, timeout=10)
    with pytest.raises(hub.IntegrityError, match="has 65536 bytes, expected 10"):
        hub.fetch(f"{server}/f.bin", tmp_path / "f.bin", size=10, resume=True, timeout=10)
    _Server.cut["/f.bin"] = 5000
    with pytest.raises(hub.DownloadError, match="cut short") as info:
        hub.fetch(f"{server}/f.bin", tmp_path / "f.bin", sha256=DIGEST, timeout=10)  # no resume
    assert "resumes" not in str(info.value)
    assert _names(tmp_path) == []


def test_fetch_pinned_records_first_use_and_refuses_a_changed_file(server: str,
                                                                   tmp_path: Path) -> None:
    dest = tmp_path / "f.bin"
    got, pin = hub.fetch_pinned(f"{server}/f.bin", dest, timeout=10)
    assert got.path.read_bytes() == BODY
    assert (pin.sha256, pin.size, pin.verified) == (DIGEST, len(BODY), False)
    hub.write_pin(tmp_path / "f.lock.json", pin)
    assert hub.read_pin(tmp_path / "f.lock.json") == pin
    dest.unlink()
    # Same file again: accepted, the first record is kept.
    assert hub.fetch_pinned(f"{server}/f.bin", dest, pin=pin, timeout=10)[1] == pin
    dest.write_bytes(b"old copy")
    _Server.files["/f.bin"] = BODY[::-1]
    with pytest.raises(hub.ChangedFileError, match=rf"changed since it was first downloaded on "
                                                   rf"{re.escape(pin.date)}.*delete f\.lock"):
        hub.fetch_pinned(f"{server}/f.bin", dest, pin=pin, record="f.lock", timeout=10)
    assert dest.read_bytes() == b"old copy"  # nothing replaced
    assert _names(tmp_path) == ["f.bin", "f.lock.json"]
    # A published hash is checked and makes the record verified.
    _Server.files["/f.bin"] = BODY
    dest.unlink()
    assert hub.fetch_pinned(f"{server}/f.bin", dest, sha256=DIGEST, timeout=10)[1].verified


def test_pin_file_checks_a_copy_made_by_hand(tmp_path: Path) -> None:
    copy = tmp_path / "f.bin"
    copy.write_bytes(BODY)
    pin = hub.pin_file(copy, url="https://example.invalid/f.bin")
    assert (pin.sha256, pin.verified) == (DIGEST, False)
    assert hub.pin_file(copy, url=pin.url, pin=pin) == pin
    copy.write_bytes(BODY[:-1] + b"?")
    with pytest.raises(hub.ChangedFileError, match="is not the file recorded"):
        hub.pin_file(copy, url=pin.url, pin=pin, record="lock.json")
