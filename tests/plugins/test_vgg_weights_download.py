"""gantransfer.hub and `gtx weights download`: verified, atomic downloads from a local server."""

from __future__ import annotations

import hashlib
import http.server
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from _local_http import local_server, unused_port
from typer.testing import CliRunner

from gantransfer import hub
from gantransfer.cli.app import app

PAYLOAD = bytes(range(256)) * 64  # 16 KiB
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        if self.path == "/good.pth":
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)
        elif self.path == "/broken.pth":
            # Promise the whole file, send a tenth of it, then hang up.
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 10])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        else:
            self.send_error(404)

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with local_server(_Handler) as url:
        yield url


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_good_file_is_downloaded_and_verified(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "cache" / "w.pth"
    assert hub.download(f"{server}/good.pth", dest, sha256=DIGEST, timeout=10) == dest
    assert dest.read_bytes() == PAYLOAD
    assert _leftovers(dest.parent) == ["w.pth"]  # no temporary file left
    # torchvision's 8-hex-digit file-name prefix is accepted when the full hash is unknown.
    hub.download(f"{server}/good.pth", dest, sha256_prefix=DIGEST[:8], timeout=10)


def test_wrong_hash_leaves_no_file_behind(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "w.pth"
    with pytest.raises(hub.DownloadError, match=f"SHA-256 {DIGEST}, expected 0+$"):
        hub.download(f"{server}/good.pth", dest, sha256="0" * 64, timeout=10)
    with pytest.raises(hub.DownloadError, match="does not start with the expected 397923af"):
        hub.download(f"{server}/good.pth", dest, sha256_prefix="397923af", timeout=10)
    assert _leftovers(tmp_path) == []


def test_broken_connection_fails_clearly_and_leaves_nothing(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "w.pth"
    with pytest.raises(hub.DownloadError, match=rf"{server}/broken\.pth.*copy it to {dest}"):
        hub.download(f"{server}/broken.pth", dest, sha256=DIGEST, timeout=10)
    assert _leftovers(tmp_path) == []


def test_offline_error_names_url_and_manual_copy(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{unused_port()}/vgg16.pth"
    with pytest.raises(hub.DownloadError, match=rf"could not download {url}.*elsewhere and copy"):
        hub.download(url, tmp_path / "w.pth", sha256=DIGEST, timeout=5)
    assert _leftovers(tmp_path) == []


def test_cache_dir_follows_torch_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    assert hub.cache_dir() == tmp_path / "th" / "hub" / "checkpoints"
    monkeypatch.delenv("TORCH_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hub.cache_dir() == tmp_path / "xdg" / "torch" / "hub" / "checkpoints"


def test_weights_file_is_found_through_the_registry() -> None:
    spec = hub.weights_file_for("vgg16")
    assert spec.url == "https://download.pytorch.org/models/vgg16-397923af.pth"
    assert spec.filename == "vgg16-397923af.pth" and spec.sha256_prefix == "397923af"
    assert hub.weights_file_for("vgg19").filename == "vgg19-dcbb9e9d.pth"
    with pytest.raises(LookupError, match=r"'patchgan' has no downloadable weights.*vgg16, vgg19"):
        hub.weights_file_for("patchgan")


def test_cli_download_uses_mirror_verifies_and_skips_a_verified_copy(
        server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gantransfer_vgg.networks as nets

    monkeypatch.setattr(nets.vgg16, "pretrained_weights", hub.WeightsFile(
        url=f"{server}/good.pth", filename="vgg16-test.pth", sha256=DIGEST))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    runner = CliRunner()
    _Handler.hits.clear()
    result = runner.invoke(app, ["weights", "download", "vgg16"])
    assert result.exit_code == 0, result.output
    cached = tmp_path / "th" / "hub" / "checkpoints" / "vgg16-test.pth"
    assert cached.read_bytes() == PAYLOAD and "verified" in result.output
    result = runner.invoke(app, ["weights", "download", "vgg16"])  # already there: no request
    assert result.exit_code == 0 and _Handler.hits == ["/good.pth"]

    result = runner.invoke(app, ["weights", "download", "vgg16", "--url", f"{server}/broken.pth",
                                 "--dest", str(tmp_path / "other")])
    assert result.exit_code == 1 and isinstance(result.exception, hub.DownloadError)
    assert _leftovers(tmp_path / "other") == []
