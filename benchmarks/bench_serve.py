"""Load on `gtx serve` against `gtx translate` on the same images, interleaved in one run.

    python benchmarks/bench_serve.py [--onnx model_int8.onnx] [--count 32] [--size 256]
                                     [--clients 4] [--seconds 20] [--rounds 2] [--overload 24]
                                     [--json PATH]

Without ``--onnx`` it builds a CycleGAN with a random ``--network`` generator and exports a
calibrated int8 file (the speed does not depend on the weights). It writes ``--count`` procedural
PNG scenes, then for each round, one after the other on the same machine:

* **gtx translate**: ``gtx translate MODEL images/ -o out/`` in a subprocess; its own images/s
  (the pipeline's wall time, without Python's start-up);
* **gtx serve**: ``gtx serve MODEL --port 0`` in a subprocess, loaded once, then ``--clients``
  client threads posting the same PNGs (raw body, PNG answers) back to back for ``--seconds``:
  requests/s, p50/p95 latency, errors, and the server's peak resident memory (VmHWM);
* with ``--overload N``: the same with N clients against a queue of ``--queue`` (default 4), to
  see the deliberate 503 + Retry-After refusals while throughput holds (clients wait the
  Retry-After they are given, at most 5 s).

The target: the server's requests/s within 15 % of ``gtx translate``'s images/s. Errors other
than deliberate 503s must be zero. Prints medians over rounds and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any


def make_int8(work: Path, *, network: str, ngf: int, size: int, calib: Path, count: int) -> Path:
    """A random-weight CycleGAN generator exported as a calibrated int8 ONNX file."""
    import torch

    import gantransfer

    torch.manual_seed(0)
    model = gantransfer.get("cyclegan", netG=network, ngf=ngf)
    return gantransfer.export_onnx(model, work / "model_int8.onnx", target="a2b",
                                   precision="int8", calib=calib, calib_count=min(count, 32),
                                   calib_size=size, min_psnr=0.0)[0].path


def write_images(folder: Path, *, count: int, size: int) -> list[Path]:
    from gantransfer.data.demo import make_single

    make_single(folder, n=count, size=size, seed=0)
    return sorted(folder.glob("*.png"))


def gtx(*args: str) -> list[str]:
    return [sys.executable, "-m", "gantransfer", *args]


def run_translate(model: Path, images: Path, out: Path) -> float:
    """``gtx translate``'s own images/s for the folder."""
    shutil.rmtree(out, ignore_errors=True)
    done = subprocess.run(gtx("translate", str(model), str(images), "-o", str(out)),
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "300"})
    if done.returncode != 0:
        raise SystemExit(f"gtx translate failed:\n{done.stdout}\n{done.stderr}")
    match = re.search(r"([0-9.]+) img/s", " ".join(done.stdout.split()))
    if match is None:
        raise SystemExit(f"no img/s in gtx translate's output:\n{done.stdout}")
    return float(match.group(1))


class Server:
    """``gtx serve MODEL`` in a subprocess on a free port."""

    def __init__(self, model: Path, *, queue: int) -> None:
        self.proc = subprocess.Popen(
            gtx("-q", "serve", str(model), "--port", "0", "--queue", str(queue)),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "COLUMNS": "300"})
        self.url = ""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if "serving on" in line:
                self.url = next(w for w in line.split() if w.startswith("http://")).rstrip("/")
                break
        if not self.url:
            raise SystemExit("gtx serve did not start")
        self.model = Path(model).stem
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()  # drain

    def peak_rss_mb(self) -> float:
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", text).group(1)) / 1024  # type: ignore[union-attr]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def load(server: Server, payloads: list[bytes], *, clients: int, seconds: float
         ) -> dict[str, Any]:
    """``clients`` threads posting ``payloads`` round-robin for ``seconds``."""
    import httpx

    url = f"{server.url}/api/v1/models/{server.model}/translate"
    for payload in payloads[:2]:  # warm-up: first runs allocate
        httpx.post(url, content=payload, timeout=120).raise_for_status()
    latencies: list[float] = []
    refused = errors = 0
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client(k: int) -> None:
        nonlocal refused, errors
        with httpx.Client(timeout=120) as http:
            i = k
            while time.perf_counter() < stop_at:
                start = time.perf_counter()
                wait = 0.0
                try:
                    r = http.post(url, content=payloads[i % len(payloads)])
                    status = r.status_code
                    if status == 503:  # a well-behaved client waits as told (capped here)
                        wait = min(float(r.headers.get("Retry-After", "1")), 5.0)
                except httpx.HTTPError:
                    status = -1
                took = time.perf_counter() - start
                with lock:
                    if status == 200:
                        latencies.append(took)
                    elif status == 503:
                        refused += 1
                    else:
                        errors += 1
                if wait:
                    time.sleep(min(wait, max(0.0, stop_at - time.perf_counter())))
                i += clients

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start  # includes the requests in flight at the deadline
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else 0.0

    return {"requests_per_s": len(latencies) / wall, "ok": len(latencies), "p50_s": pct(0.5),
            "p95_s": pct(0.95), "refused_503": refused, "errors": errors,
            "peak_rss_mb": server.peak_rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnx", type=Path, default=None, help="an int8 (or any) ONNX file")
    parser.add_argument("--network", default="resnet_9blocks")
    parser.add_argument("--ngf", type=int, default=64, help="generator width (small: smoke runs)")
    parser.add_argument("--count", type=int, default=32, help="images")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=20.0, help="load time per round")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (medians)")
    parser.add_argument("--overload", type=int, default=0,
                        help="also run this many clients against --queue (deliberate 503s)")
    parser.add_argument("--queue", type=int, default=4, help="server queue for --overload")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_serve_") as tmp:
        work = Path(tmp)
        images = write_images(work / "images", count=args.count, size=args.size)
        model = args.onnx or make_int8(work, network=args.network, ngf=args.ngf, size=args.size,
                                       calib=work / "images", count=args.count)
        payloads = [p.read_bytes() for p in images]
        rows: dict[str, list[dict[str, Any]]] = {"translate": [], "serve": [], "overload": []}
        for r in range(args.rounds):
            ips = run_translate(model, work / "images", work / "out")
            rows["translate"].append({"images_per_s": ips})
            print(f"round {r + 1}: gtx translate {ips:.2f} img/s", flush=True)
            server = Server(model, queue=16)
            try:
                result = load(server, payloads, clients=args.clients, seconds=args.seconds)
            finally:
                server.stop()
            rows["serve"].append(result)
            print(f"round {r + 1}: gtx serve {result}", flush=True)
            if args.overload:
                server = Server(model, queue=args.queue)
                try:
                    result = load(server, payloads, clients=args.overload, seconds=args.seconds)
                finally:
                    server.stop()
                rows["overload"].append(result)
                print(f"round {r + 1}: overload {result}", flush=True)

    def med(name: str, key: str) -> float:
        return statistics.median(x[key] for x in rows[name]) if rows[name] else float("nan")

    translate = med("translate", "images_per_s")
    served = med("serve", "requests_per_s")
    print()
    print(f"model: {args.onnx or f'{args.network} ngf {args.ngf}, random weights, int8'}; "
          f"{args.count} PNG images {args.size}x{args.size}; {os.cpu_count()} CPUs; "
          f"{args.rounds} interleaved round(s), medians")
    print("| path | clients | images/s | p50 s | p95 s | 503s | errors | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| gtx translate | - | {translate:.2f} | - | - | - | - | - |")
    for name, clients in (("serve", args.clients), ("overload", args.overload)):
        if rows[name]:
            queue = f" (queue {args.queue})" if name == "overload" else ""
            print(f"| gtx serve{queue} | "
                  f"{clients} | {med(name, 'requests_per_s'):.2f} | {med(name, 'p50_s'):.3f} | "
                  f"{med(name, 'p95_s'):.3f} | {sum(x['refused_503'] for x in rows[name])} | "
                  f"{sum(x['errors'] for x in rows[name])} | {med(name, 'peak_rss_mb'):.0f} |")
    print(f"\nserver / translate throughput: {served / translate:.3f} (target >= 0.85)")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                         "rounds": rows}, indent=2))


if __name__ == "__main__":
    main()
