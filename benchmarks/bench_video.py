"""Video translation against the same frames as images, interleaved in one run.

    python benchmarks/bench_video.py [--onnx model_int8.onnx] [--frames 48] [--size 256]
                                     [--fps 24] [--rounds 2] [--codec libx264] [--json PATH]

Writes a ``--size`` x ``--size`` H.264 + AAC clip of ``--frames`` procedural scenes (the built-in
demo data, one per frame) and the same decoded frames as PNG files; without ``--onnx`` builds a
random-weight CycleGAN int8 file (``bench_serve.make_int8``). Each round runs, one after the
other, ``gtx translate MODEL clip.mp4 -o out/`` (its frames/s: decoding, the model and encoding
overlapped, audio copied) and ``gtx translate MODEL frames/ -o out/`` (its img/s). Prints medians
and the ratio video / images (1.0: a frame costs what an image file does).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

from bench_serve import gtx, make_int8, run_translate


def write_clip(path: Path, frames_dir: Path, *, frames: int, size: int, fps: int) -> None:
    import av
    import numpy as np
    from PIL import Image

    from gantransfer.data.demo import make_single

    scenes = frames_dir.parent / "scenes"
    make_single(scenes, n=frames, size=size, seed=1)
    images = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(scenes.glob("*.png"))]
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps, options={"crf": "18"})
        video.width = video.height = size
        video.pix_fmt = "yuv420p"
        sound = out.add_stream("aac", rate=44100)
        sound.layout = "mono"
        for i, image in enumerate(images):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        n = 44100 * frames // fps
        tone = (np.sin(np.arange(n) / 7.0) * 0.2).astype(np.float32)[None]
        for k in range(0, n, 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, k:k + 1024]),
                                               format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 44100, k
            out.mux(sound.encode(frame))
        out.mux(sound.encode(None))
    frames_dir.mkdir(parents=True, exist_ok=True)
    with av.open(str(path)) as clip:  # the frames exactly as the video path decodes them
        for i, frame in enumerate(clip.decode(video=0)):
            frame.to_image().save(frames_dir / f"{i:05d}.png")


def run_video(model: Path, clip: Path, out: Path, codec: str | None) -> float:
    shutil.rmtree(out, ignore_errors=True)
    args = ["translate", str(model), str(clip), "-o", str(out)]
    if codec:
        args += ["--video-codec", codec]
    done = subprocess.run(gtx(*args), capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "300"})
    if done.returncode != 0:
        raise SystemExit(f"gtx translate (video) failed:\n{done.stdout}\n{done.stderr}")
    match = re.search(r"([0-9.]+) frames/s", " ".join(done.stdout.split()))
    if match is None:
        raise SystemExit(f"no frames/s in the output:\n{done.stdout}")
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnx", type=Path, default=None)
    parser.add_argument("--network", default="resnet_9blocks")
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--fps", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--codec", default=None, help="output codec (default: the CLI's)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_video_") as tmp:
        work = Path(tmp)
        clip, frames = work / "clip.mp4", work / "frames"
        write_clip(clip, frames, frames=args.frames, size=args.size, fps=args.fps)
        model = args.onnx or make_int8(work, network=args.network, ngf=args.ngf, size=args.size,
                                       calib=frames, count=args.frames)
        video_fps, image_ips = [], []
        for r in range(args.rounds):
            video_fps.append(run_video(model, clip, work / "vout", args.codec))
            image_ips.append(run_translate(model, frames, work / "iout"))
            print(f"round {r + 1}: video {video_fps[-1]:.2f} frames/s, images "
                  f"{image_ips[-1]:.2f} img/s", flush=True)
    v, i = statistics.median(video_fps), statistics.median(image_ips)
    print()
    print(f"model: {args.onnx or f'{args.network} ngf {args.ngf}, random weights, int8'}; "
          f"{args.frames} frames {args.size}x{args.size} at {args.fps} fps (H.264 + AAC in, "
          f"{args.codec or 'the default codec'} out); {os.cpu_count()} CPUs; {args.rounds} "
          "interleaved round(s), medians")
    print("| path | frames/s |")
    print("|---|---|")
    print(f"| gtx translate clip.mp4 | {v:.2f} |")
    print(f"| gtx translate frames/ (PNG) | {i:.2f} |")
    print(f"\nvideo / images: {v / i:.3f}")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(x) for k, x in vars(args).items()},
                                         "video_fps": video_fps, "images_per_s": image_ips},
                                        indent=2))


if __name__ == "__main__":
    main()
