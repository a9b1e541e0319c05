"""Helpers for the server tests (not a test module): a real server in a thread, toy models,
images, and a model whose runs wait for the test's go-ahead."""

from __future__ import annotations

import contextlib
import io
import signal
import struct
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import torch
from PIL import Image

import gantransfer
from gantransfer.inference import Translator
from gantransfer.serve import ServeConfig
from gantransfer.serve._server import build_server, open_served

TOKEN = "a-test-token-of-enough-length"


def export_toy_onnx(folder: Path) -> Path:
    """The toy image generator (tests/_export_toy.py) as an fp32 ONNX file."""
    from _export_toy import make

    return gantransfer.export_onnx(make(), folder / "toy.onnx", target="a2b")[0].path


def png_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()


def noise_image(w: int = 37, h: int = 29, *, mode: str = "RGB", seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    arr = (rng.random((h, w, channels)) * 255).astype(np.uint8)
    return Image.fromarray(arr[:, :, 0] if channels == 1 else arr, mode)


def bomb_png(width: int, height: int) -> bytes:
    """A valid little PNG whose header claims ``width x height`` pixels (a decompression bomb's
    header: decoding it would need width*height bytes)."""
    data = png_bytes(Image.new("L", (8, 8)))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    patched = struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return data[:8] + patched + data[8 + 25:]


def decode(body: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(body)))


class Gate:
    """A model (a Translator) whose runs block until :meth:`open`; counts runs and says when
    one has started."""

    def __init__(self) -> None:
        self.go = threading.Event()
        self.started = threading.Semaphore(0)
        self.runs = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.runs += 1
        self.started.release()
        assert self.go.wait(30), "the test never opened the gate"
        return -x

    def translator(self) -> Translator:
        return Translator(self.forward, channels=3, divisor=1, min_size=1, description="gated")

    def wait_started(self, timeout: float = 10) -> None:
        assert self.started.acquire(timeout=timeout), "no model run started"

    def open(self) -> None:
        self.go.set()


def named(source: object, name: str) -> list:
    """``source`` (a path or a loaded model/Translator) opened under the id ``name``."""
    from gantransfer.serve._models import open_models

    return open_models(source, name=name)


@contextlib.contextmanager
def running(sources: list, **config: object) -> Iterator[tuple[httpx.Client, object]]:
    """Serve ``sources`` (paths, or models from :func:`named`) on a free loopback port in a
    thread; yields (an HTTP client for it, the server)."""
    models = [s for s in sources if not isinstance(s, (str, Path))]
    models += open_served([s for s in sources if isinstance(s, (str, Path))])
    ready = threading.Event()
    box: dict[str, str] = {}

    def on_ready(url: str) -> None:
        box["url"] = url.rstrip("/")
        ready.set()

    server = build_server(models, ServeConfig(port=0, **config), on_ready=on_ready)
    thread = threading.Thread(target=server.run, name="test-server", daemon=True)
    thread.start()
    try:
        assert ready.wait(60), "the server did not start"
        with httpx.Client(base_url=box["url"], timeout=60) as client:
            yield client, server
    finally:
        server.handle_exit(signal.SIGTERM, None)
        thread.join(60)
        assert not thread.is_alive(), "the server did not stop"
