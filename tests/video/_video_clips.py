"""Synthetic clips for the video tests (not a test module), written with PyAV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def write_clip(path: Path, *, frames: int = 10, width: int = 40, height: int = 32,
               fps: int = 10, lossless: bool = True, audio: str | None = "pcm_s16le",
               seed: int = 0, smooth: bool = False) -> list[np.ndarray]:
    """A clip of random RGB frames (``smooth``: moving gradients) with a sine tone; returns the
    frames written.

    ``lossless``: FFV1 in RGB (the frames decode exactly as written) with PCM audio in
    Matroska; else H.264 (4:2:0) with AAC audio (for .mp4).
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    images = [np.stack([(x * 3 + y * 2 + i * 25) % 256, (x * 5 + 255 - i * 20) % 256,
                        (y * 6 + i * 40) % 256], axis=-1).astype(np.uint8) if smooth
              else (rng.random((height, width, 3)) * 255).astype(np.uint8)
              for i in range(frames)]
    with av.open(str(path), "w") as out:
        video = out.add_stream("ffv1" if lossless else "libx264", rate=fps)
        video.width, video.height = width, height
        video.pix_fmt = "bgr0" if lossless else "yuv420p"
        sound = None
        if audio is not None:
            rate = 8000 if audio == "pcm_s16le" else 44100
            sound = out.add_stream(audio, rate=rate)
            sound.layout = "mono"
        for i, image in enumerate(images):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            n = rate * frames // fps
            tone = np.sin(np.arange(n) / 5.0)
            fmt = "s16" if audio == "pcm_s16le" else "fltp"
            samples = ((tone * 8000).astype(np.int16) if fmt == "s16"
                       else (tone * 0.3).astype(np.float32))[None]
            step = 1024
            for k in range(0, n, step):
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, k:k + step]),
                                                   format=fmt, layout="mono")
                frame.sample_rate, frame.pts = rate, k
                out.mux(sound.encode(frame))
            out.mux(sound.encode(None))
    return images


def read_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def audio_packets(path: Path) -> list[tuple[bytes, int | None]]:
    """The encoded audio packets (bytes and timestamps, in seconds x 1e6)."""
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        return [(bytes(p), None if p.pts is None else round(p.pts * stream.time_base * 10**6))
                for p in c.demux(stream) if p.size]


def describe(path: Path) -> dict:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        return {"fps": v.average_rate, "width": v.codec_context.width,
                "height": v.codec_context.height, "codec": v.codec_context.name,
                "duration": c.duration, "audio": [s.codec_context.name for s in c.streams.audio],
                "frames": sum(1 for _ in c.decode(video=0))}
