"""Local HTTP servers on 127.0.0.1 for download tests (no network needed).

``local_server(handler_class)`` runs any ``BaseHTTPRequestHandler`` subclass in a thread and
yields its base URL. :class:`FileServer` is a ready handler serving ``files`` with ETag and
Range support, recording every request, and able to cut a transfer short once.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import ClassVar


@contextlib.contextmanager
def local_server(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on a free port of 127.0.0.1 until the block ends; yields the base URL."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def unused_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (for offline errors)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FileServer(http.server.BaseHTTPRequestHandler):
    """Serves ``files`` (URL path -> bytes) with a strong ETag (the content's SHA-256) and
    single-range requests (``Range: bytes=N-``, honouring ``If-Range``).

    ``cut[path] = n`` makes the next full or ranged response for ``path`` send its headers for
    the whole body, then only ``n`` body bytes, and hang up (the entry is then removed);
    ``stall[path] = n`` sends ``n`` bytes, then nothing for ``STALL_SECONDS``, then hangs up;
    a path in ``slow`` is sent in 1 KiB pieces every 50 ms (20 KiB/s).
    ``requests`` records ``(path, {header: value})`` of every request. Subclass it (class
    attributes are per class) or call :meth:`reset` between tests.
    """

    files: ClassVar[dict[str, bytes]] = {}
    cut: ClassVar[dict[str, int]] = {}
    stall: ClassVar[dict[str, int]] = {}
    slow: ClassVar[set[str]] = set()
    STALL_SECONDS: ClassVar[float] = 3.0
    requests: ClassVar[list[tuple[str, dict[str, str]]]] = []
    etags: ClassVar[bool] = True

    @classmethod
    def reset(cls, files: dict[str, bytes] | None = None) -> None:
        cls.files = dict(files or {})
        cls.cut = {}
        cls.stall = {}
        cls.slow = set()
        cls.requests = []

    def do_GET(self) -> None:
        type(self).requests.append((self.path, dict(self.headers.items())))
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
        start = 0
        wanted = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if_range = self.headers.get("If-Range")
        if wanted and (if_range is None or if_range == etag):
            start = int(wanted[1])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        if self.etags:
            self.send_header("ETag", etag)
        self.end_headers()
        n = type(self).cut.pop(self.path, None)
        pause = type(self).stall.pop(self.path, None)
        if self.path in self.slow:
            with contextlib.suppress(OSError):  # the client gives up: that is the point
                for i in range(start, len(body), 1024):
                    self.wfile.write(body[i:i + 1024])
                    self.wfile.flush()
                    time.sleep(0.05)
            return
        if n is None and pause is None:
            self.wfile.write(body[start:])
            return
        self.wfile.write(body[start:start + (n if pause is None else pause)])
        self.wfile.flush()
        if pause is not None:
            time.sleep(self.STALL_SECONDS)
        self.connection.shutdown(socket.SHUT_RDWR)
        self.close_connection = True

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass
