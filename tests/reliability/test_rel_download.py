"""Issue 12, item 9: a slow server cannot hold `gtx weights download` past its limits."""

from __future__ import annotations

import hashlib
import http.server
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from _local_http import local_server
from typer.testing import CliRunner

from gantransfer import hub
from gantransfer.cli.app import app

SIZE = 64 * 1024
PAYLOAD = bytes(range(256)) * (SIZE // 256)
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()
GIVE_UP = 25.0  # the server hangs up after this long, so the code before the fix fails, not hangs


class _Slow(http.server.BaseHTTPRequestHandler):
    """/trickle: 16 bytes every 0.1 s (160 B/s: every read well within any per-read timeout).
    /steady: 4 KiB every 0.1 s (40 KiB/s: fast enough, but 1.6 s for the whole file).
    /silent: headers, then nothing."""

    pieces: ClassVar[dict[str, int]] = {"/trickle": 16, "/steady": 4096, "/silent": 0}

    def do_GET(self) -> None:
        if self.path not in self.pieces:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(SIZE))
        self.end_headers()
        self.wfile.flush()
        piece, sent, start = self.pieces[self.path], 0, time.monotonic()
        try:
            while sent < SIZE and time.monotonic() - start < GIVE_UP:
                time.sleep(0.1)
                if piece:
                    self.wfile.write(PAYLOAD[sent:sent + piece])
                    self.wfile.flush()
                    sent += piece
        except OSError:  # the client gave up: that is the point
            pass
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with local_server(_Slow) as url:
        yield url


def _timed(fn, *args, **kwargs) -> tuple[Exception | None, float]:
    start = time.monotonic()
    try:
        fn(*args, **kwargs)
    except Exception as exc:
        return exc, time.monotonic() - start
    return None, time.monotonic() - start


def test_trickling_server_is_stopped_as_stalled(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "w.pth"
    error, seconds = _timed(hub.download, f"{server}/trickle", dest, sha256=DIGEST, timeout=1)
    assert isinstance(error, hub.DownloadError), error
    assert seconds < 5, seconds  # one 1 s window, plus a read; before: ~25 s, then "cut short"
    message = str(error)
    assert f"{server}/trickle stalled" in message and "below the minimum of 10.0 KiB/s" in message
    assert "of 64.0 KiB" in message and "copy it to" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_deadline_bounds_a_fast_enough_download(server: str, tmp_path: Path) -> None:
    error, seconds = _timed(hub.download, f"{server}/steady", tmp_path / "w.pth", sha256=DIGEST,
                            timeout=5, deadline=0.6)
    assert isinstance(error, hub.DownloadError), error
    assert 0.5 < seconds < 2, seconds
    assert "did not finish within the deadline of 0.6 s" in str(error)
    # without the deadline the same server delivers, and min_speed 0 turns the stall rule off
    assert hub.download(f"{server}/steady", tmp_path / "w.pth", sha256=DIGEST, timeout=5,
                        deadline=None, min_speed=0).read_bytes() == PAYLOAD


def test_deadline_cuts_a_read_that_waits(server: str, tmp_path: Path) -> None:
    """The silent server: the read waits min(timeout, time left), not the whole timeout."""
    error, seconds = _timed(hub.download, f"{server}/silent", tmp_path / "w.pth", sha256=DIGEST,
                            timeout=30, deadline=1)
    assert isinstance(error, hub.DownloadError) and seconds < 3, (error, seconds)
    assert "deadline of 1 s" in str(error)
    error, seconds = _timed(hub.download, f"{server}/silent", tmp_path / "w.pth", sha256=DIGEST,
                            timeout=0.5)
    assert isinstance(error, hub.DownloadError) and seconds < 3, (error, seconds)
    assert "stalled: no data for 0.5 s" in str(error)


def test_cli_timeout_is_not_only_per_read(server: str, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import gantransfer_vgg.networks as nets

    monkeypatch.setattr(nets.vgg16, "pretrained_weights", hub.WeightsFile(
        url=f"{server}/trickle", filename="vgg16-slow.pth", sha256=DIGEST))
    start = time.monotonic()
    result = CliRunner().invoke(app, ["weights", "download", "vgg16", "--timeout", "1",
                                      "--dest", str(tmp_path)])
    assert time.monotonic() - start < 5
    assert result.exit_code == 1 and isinstance(result.exception, hub.DownloadError)
    assert "stalled" in str(result.exception)
    assert list(tmp_path.iterdir()) == []
