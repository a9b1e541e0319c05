"""The server's limits: upload bytes, decoded pixels, tokens, a full queue, request timeouts and
shutdown. After each refusal the same server must go on translating."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from _serve_helpers import (
    TOKEN,
    Gate,
    bomb_png,
    decode,
    named,
    noise_image,
    png_bytes,
    running,
)

URL = "/api/v1/models/{}/translate"


@pytest.fixture(scope="module")
def toy():
    """The toy generator's a2b translator (served as one model, "toy")."""
    from _export_toy import make

    from gantransfer.inference import translator

    return translator(make().eval(), target="a2b")


def _still_serves(client: httpx.Client, model: str = "toy", **kw: object) -> None:
    image = noise_image(20, 20, seed=9)
    r = client.post(URL.format(model), content=png_bytes(image), **kw)
    assert r.status_code == 200, r.text
    assert decode(r.content).shape == (20, 20, 3)


def test_oversized_uploads_are_refused_before_they_are_read(toy):
    data = png_bytes(noise_image(64, 64))
    with running(named(toy, "toy"), max_upload_bytes=len(data) - 1) as (client, _):
        r = client.post(URL.format("toy"), content=data)  # Content-Length says too much
        assert (r.status_code, r.json()["error"]) == (413, "upload_too_large")
        assert "limit" in r.json()["message"]

        def chunks():  # no Content-Length: the limit applies while reading
            yield data[:1000]
            yield data[1000:]

        r = client.post(URL.format("toy"), content=chunks())
        assert (r.status_code, r.json()["error"]) == (413, "upload_too_large")
        r = client.post(URL.format("toy"), files={"image": ("a.png", data)})
        assert (r.status_code, r.json()["error"]) == (413, "upload_too_large")
        small = png_bytes(noise_image(8, 8))
        assert client.post(URL.format("toy"), content=small).status_code == 200


def test_a_decompression_bomb_is_refused_from_its_header(toy, monkeypatch):
    # ~100-byte files claiming 25 million pixels (above the default limit of 16.7 million)
    # and 10^10 (above Pillow's own guard too, on here as in a library user's process; the
    # gtx command turns it off and the server's check answers alone)
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 89_478_485)
    with running(named(toy, "toy")) as (client, _):
        for side, words in ((5000, "5000x5000 = 25.0 million pixels, above this server's "
                                   "limit of 16.8 million"),
                            (100_000, "decompression-bomb guard")):
            bomb = bomb_png(side, side)
            assert len(bomb) < 200
            start = time.perf_counter()
            r = client.post(URL.format("toy"), content=bomb)
            assert (r.status_code, r.json()["error"]) == (413, "too_many_pixels")
            assert words in r.json()["message"]
            assert time.perf_counter() - start < 5  # refused, not decoded
        _still_serves(client)


def test_the_pixel_limit_is_the_servers_setting(toy):
    with running(named(toy, "toy"), max_pixels=30 * 30) as (client, _):
        r = client.post(URL.format("toy"), content=png_bytes(noise_image(31, 30)))
        assert (r.status_code, r.json()["error"]) == (413, "too_many_pixels")
        _still_serves(client)  # 20x20


def test_formats_outside_the_list_are_refused(toy):
    with running(named(toy, "toy")) as (client, _):
        for fmt in ("TIFF", "GIF"):
            r = client.post(URL.format("toy"), content=png_bytes(noise_image(), fmt))
            assert (r.status_code, r.json()["error"]) == (415, "unsupported_image"), fmt
        for fmt in ("WEBP", "BMP"):
            assert client.post(URL.format("toy"),
                               content=png_bytes(noise_image(), fmt)).status_code == 200


def test_wrong_tokens_are_refused_and_the_server_goes_on(toy):
    with running(named(toy, "toy"), token=TOKEN) as (client, _):
        for _ in range(3):
            r = client.post(URL.format("toy"), content=png_bytes(noise_image()),
                            headers={"Authorization": f"Bearer {TOKEN[:-1]}x"})
            assert r.status_code == 401
        _still_serves(client, headers={"Authorization": f"Bearer {TOKEN}"})


def test_a_full_queue_answers_503_with_retry_after(toy):
    gate = Gate()
    models = named(gate.translator(), "slow") + named(toy, "toy")
    with running(models, workers=1, queue=1) as (client, _), ThreadPoolExecutor(2) as pool:
        data = png_bytes(noise_image(16, 16))
        first = pool.submit(client.post, URL.format("slow"), content=data)
        gate.wait_started()  # the worker is busy with the first request
        second = pool.submit(client.post, URL.format("slow"), content=data)
        deadline = time.monotonic() + 10
        while client.get("/api/v1/health").json()["queue"]["pending"] < 1:
            assert time.monotonic() < deadline, "the second request never queued"
            time.sleep(0.02)
        third = client.post(URL.format("slow"), content=data)
        assert third.status_code == 503, third.text
        assert third.json()["error"] == "queue_full"
        assert int(third.headers["Retry-After"]) >= 1
        gate.open()
        for fut in (first, second):
            r = fut.result(30)
            assert r.status_code == 200, r.text
            expected = 255 - np.asarray(noise_image(16, 16))  # the gated model negates
            np.testing.assert_array_equal(decode(r.content), expected)
        assert gate.runs == 2  # the refused request never ran
        _still_serves(client)


def test_a_request_past_its_timeout_gets_504_and_its_job_never_runs(toy):
    gate = Gate()
    models = named(gate.translator(), "slow") + named(toy, "toy")
    with (running(models, workers=1, queue=4, timeout=0.5) as (client, _),
          ThreadPoolExecutor(1) as pool):
        data = png_bytes(noise_image(16, 16))
        first = pool.submit(client.post, URL.format("slow"), content=data)
        gate.wait_started()
        queued = client.post(URL.format("slow"), content=data)  # waits behind it
        assert (queued.status_code, queued.json()["error"]) == (504, "timeout")
        assert "0.5 s" in queued.json()["message"]
        assert first.result(30).status_code == 504  # running: answered, result dropped
        gate.open()
        time.sleep(0.3)
        assert gate.runs == 1  # the timed-out queued job was not run afterwards
        health = client.get("/api/v1/health").json()
        assert health["queue"]["pending"] == 0
        _still_serves(client)


def test_shutdown_finishes_running_and_queued_requests_then_refuses(toy):
    gate = Gate()
    with running(named(gate.translator(), "slow"), workers=1, queue=4,
                 shutdown_grace=30) as (client, server), ThreadPoolExecutor(2) as pool:
        data = png_bytes(noise_image(16, 16))
        running_one = pool.submit(client.post, URL.format("slow"), content=data)
        gate.wait_started()
        queued_one = pool.submit(client.post, URL.format("slow"), content=data)
        while client.get("/api/v1/health").json()["queue"]["pending"] < 1:
            time.sleep(0.02)
        server.handle_exit(signal.SIGTERM, None)  # as the signal would
        time.sleep(0.2)
        with pytest.raises(httpx.TransportError):  # no new connections
            httpx.get(f"{client.base_url}/api/v1/health", timeout=5)
        gate.open()
        assert running_one.result(30).status_code == 200
        assert queued_one.result(30).status_code == 200  # finished within the grace


def test_shutdown_refuses_what_is_still_queued_after_the_grace(toy):
    gate = Gate()
    with running(named(gate.translator(), "slow"), workers=1, queue=4,
                 shutdown_grace=0.3) as (client, server), ThreadPoolExecutor(2) as pool:
        data = png_bytes(noise_image(16, 16))
        running_one = pool.submit(client.post, URL.format("slow"), content=data)
        gate.wait_started()
        queued_one = pool.submit(client.post, URL.format("slow"), content=data)
        while client.get("/api/v1/health").json()["queue"]["pending"] < 1:
            time.sleep(0.02)
        server.handle_exit(signal.SIGTERM, None)
        refused = queued_one.result(30)
        assert refused.status_code == 503
        assert refused.json()["error"] == "shutting_down"
        gate.open()
        assert running_one.result(30).status_code == 200
        assert gate.runs == 1


def test_gtx_serve_stops_cleanly_on_sigterm(tmp_path):
    import gantransfer
    from gantransfer.config import to_plain
    from gantransfer.engine.checkpoint import save_checkpoint

    model = gantransfer.get("cyclegan", ngf=4, ndf=4, netG="resnet_6blocks")
    ckpt = tmp_path / "tiny.pt"
    save_checkpoint({"architecture": "cyclegan", "config": to_plain(model.config),
                     "model": model.state_dict(), "ema": None, "step": 0, "epoch": 0,
                     "versions": {}}, ckpt)
    proc = subprocess.Popen([sys.executable, "-m", "gantransfer", "serve", str(ckpt), "--port",
                             "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "serving on" in line:
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert ready.wait(120), "".join(lines)
        url = next(w for line in lines for w in line.split() if w.startswith("http://"))
        r = httpx.post(f"{url}api/v1/models/tiny-b2a/translate", content=png_bytes(noise_image()),
                       timeout=30)
        assert r.status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, "".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(10)
    text = "".join(lines)
    assert "stopped (SIGTERM)" in text
    assert "Traceback" not in text
