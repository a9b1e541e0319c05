"""Translate a video frame by frame, with decoding and encoding overlapped with the model.

A decoder thread demuxes and decodes the input (PyAV/FFmpeg) and prepares each kept frame as the
folder pipeline prepares an image (numpy only, padded for the generator); the caller's thread
runs batches of frames through the translator (:func:`gantransfer.inference.translator`: the
same Translator as ``gtx translate``, so ONNX, int8, bf16 and compiled models all work); an encoder thread crops
the outputs back, encodes them and muxes them together with the audio packets, which are copied
unchanged (no re-encoding). Frames keep their timestamps, so the frame rate, size and duration
are the input's. The output is written to a temporary file and renamed into place at the end:
a failure leaves no partial file.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["VideoError", "VideoStats", "frame_count", "translate_video"]

log = logging.getLogger(__name__)

_END = object()


class VideoError(ValueError):
    """A video that cannot be read (damaged, unsupported, no video stream) or written."""


@dataclass(frozen=True)
class VideoStats:
    """What :func:`translate_video` did: frames decoded (all of them) and written (every
    N-th), the video's size and the output's frame rate, the audio streams copied, the
    encoder, and the times spent."""

    frames_read: int
    frames: int
    width: int
    height: int
    fps: float
    audio_streams: int
    codec: str
    wall_seconds: float
    model_seconds: float

    @property
    def frames_per_second(self) -> float:
        """Translated frames per second of wall time."""
        return self.frames / self.wall_seconds if self.wall_seconds > 0 else 0.0


@dataclass
class _Frame:
    x: torch.Tensor  # 1xCxHxW padded
    size: tuple[int, int]
    pts: int  # never None: frames without one get index * step
    duration: int = 0  # until the next kept frame (or the input's end), in the input time base


def _describe(exc: BaseException) -> str:
    """FFmpeg's own words for an error (``strerror``), without errno numbers or paths."""
    text = getattr(exc, "strerror", None) or str(exc).strip()
    return text or type(exc).__name__


def frame_count(path: str | Path) -> int | None:
    """The number of video frames ``path``'s header announces (or its duration times its frame
    rate); None when it says neither or cannot be read (:func:`translate_video` then reports
    the error)."""
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as inp:
            if not inp.streams.video:
                return None
            v = inp.streams.video[0]
            rate = v.average_rate or v.guessed_rate
            if v.frames:
                return int(v.frames)
            if inp.duration and rate:
                return int(float(inp.duration / av.time_base * rate))
    except (av.FFmpegError, OSError, UnicodeDecodeError):
        return None
    return None


def translate_video(model: Any, src: str | Path, dst: str | Path, *, target: str | None = None,
                    every: int = 1, codec: str | None = None, batch_size: int | None = None,
                    precision: str = "fp32", compile: str | bool = "off",
                    bucket: int | None = None, existing: str = "error",
                    progress: Callable[[int, int | None], None] | None = None) -> VideoStats:
    """Translate every ``every``-th frame of the video ``src`` into the video ``dst``.

    Args:
        model: a GANModel, an OnnxModel (``gantransfer.onnx.load``) or a Translator.
        src: a video file FFmpeg reads (mp4, mov, mkv, webm, avi...).
        dst: the output; its suffix picks the container (see ``CONTAINERS``).
        target, precision, compile, bucket: as for :func:`gantransfer.inference.translate_files`
            (``compile="auto"`` counts the frames to translate).
        every: keep every N-th frame (1: all); kept frames keep their timestamps, so a preview
            lasts as long as the input, at 1/N of its frame rate.
        codec: the video encoder (default: H.264 for mp4/mov/mkv/avi, VP9 for webm; ``ffv1``
            is lossless); audio streams are always copied as they are.
        batch_size: frames per model run (default: the translator's, 1 on CPUs, 8 on CUDA).
        existing: ``error`` (default), ``overwrite`` or ``skip`` for an existing ``dst``
            (``gantransfer._outputs``); ``dst`` is never ``src``.
        progress: called as ``progress(frames_done, frames_expected_or_None)``.

    Returns:
        :class:`VideoStats` (with ``frames == 0`` when ``existing="skip"`` kept ``dst``).

    Raises:
        VideoError: ``src`` is not a readable video (the message names it and the cause), has no
            video stream or no decodable frame, or the output cannot be written (e.g. an audio
            codec the chosen container does not hold). Nothing is left at ``dst``.
        MissingExtraError: PyAV (the ``video`` extra) is not installed.
        OutputExistsError, OutputIsInputError, ValueError: bad outputs or options.
    """
    from .._extras import require

    require("video")
    import av

    from .._io import atomic_path, remove_stale_temps
    from .._outputs import select_outputs
    from ..inference import translator as make_translator
    from ._codecs import choose_codec, container_for

    src, dst = Path(src), Path(dst)
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    muxer = container_for(dst)
    if not src.is_file():
        raise FileNotFoundError(f"video {src} does not exist")
    if not select_outputs([dst], inputs=[src], existing=existing)[0]:  # type: ignore[arg-type]
        return VideoStats(0, 0, 0, 0, 0.0, 0, "", 0.0, 0.0)
    start = time.perf_counter()
    try:
        inp = av.open(str(src), metadata_errors="ignore")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise VideoError(f"{src} is not a video FFmpeg can read ({_describe(exc)}); is it "
                         "damaged or of an unsupported format?") from None
    with inp:
        if not inp.streams.video:
            raise VideoError(f"{src} has no video stream")
        vin = inp.streams.video[0]
        vin.thread_type = "AUTO"
        audio = list(inp.streams.audio)
        rate = vin.average_rate or vin.guessed_rate or vin.base_rate
        expected = vin.frames or (int(float(inp.duration / av.time_base * rate))
                                  if inp.duration and rate else 0)
        total = -(-expected // every) if expected else None
        translator = make_translator(model, target=target, precision=precision,
                                     compile=compile, bucket=bucket, images=total)
        batch_size = batch_size or translator.batch_size
        width, height = vin.codec_context.width, vin.codec_context.height
        chosen = choose_codec(muxer, width=width, height=height, codec=codec)
        remove_stale_temps(dst.parent)
        model_start = translator.model_seconds
        with atomic_path(dst) as tmp:
            try:
                out = av.open(str(tmp), "w", format=muxer)
            except (av.FFmpegError, OSError) as exc:
                raise VideoError(f"cannot write {dst}: {_describe(exc)}") from None
            with out:
                run = _Run(inp, vin, audio, out, translator, chosen=chosen,
                           rate=Fraction(rate) / every if rate else None, every=every,
                           batch_size=batch_size, src=src, dst=dst, total=total,
                           progress=progress)
                with translator.evaluation():
                    run.execute()
    return VideoStats(frames_read=run.decoded_frames, frames=run.written, width=width, height=height,
                      fps=float(rate / every) if rate else 0.0, audio_streams=len(audio),
                      codec=chosen.name, wall_seconds=time.perf_counter() - start,
                      model_seconds=translator.model_seconds - model_start)


class _Run:
    """One video: the three stages and their queues (see the module docstring)."""

    def __init__(self, inp: Any, vin: Any, audio: list[Any], out: Any, translator: Any, *,
                 chosen: Any, rate: Fraction | None, every: int, batch_size: int, src: Path,
                 dst: Path, total: int | None,
                 progress: Callable[[int, int | None], None] | None) -> None:
        self.inp, self.vin, self.out, self.translator = inp, vin, out, translator
        self.every, self.batch_size, self.src, self.dst = every, batch_size, src, dst
        self.total, self.progress = total, progress
        self.decoded_frames = self.read = self.written = 0
        self.rate = rate
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        depth = 2 * batch_size + 4  # frames held between stages: bounded memory
        self.decoded: queue.Queue[Any] = queue.Queue(depth)
        self.encoded: queue.Queue[Any] = queue.Queue(depth)
        try:
            self.vout = out.add_stream(chosen.name, rate=rate, options=chosen.options)
        except Exception as exc:
            raise VideoError(f"cannot encode {chosen.name} into {dst.suffix}: "
                             f"{_describe(exc)}") from None
        self.audio_out = {}
        for stream in audio:
            try:
                self.audio_out[stream.index] = out.add_stream_from_template(stream)
            except Exception as exc:  # av raises ValueError/FFmpegError for unfit codecs
                raise VideoError(f"the audio of {src} ({stream.codec_context.name}) cannot be "
                                 f"copied into {dst.suffix} ({_describe(exc)}); write the "
                                 f"input's container ({src.suffix}) instead") from None
        self.vout.width = vin.codec_context.width
        self.vout.height = vin.codec_context.height
        self.vout.pix_fmt = chosen.pix_fmt
        # Input timestamps are kept: frame rate, variable frame timing and duration follow.
        # Each frame's own duration (to the next kept frame) is honoured, not 1/rate: a preview
        # (every > 1) then ends where the input ends.
        from av.codec.context import Flags

        self.vout.codec_context.time_base = vin.time_base
        self.vout.codec_context.flags |= Flags.frame_duration

    def execute(self) -> None:
        decoder = threading.Thread(target=self._guard, args=(self._decode, self.decoded),
                                   name="gtx-video-decode", daemon=True)
        encoder = threading.Thread(target=self._guard, args=(self._encode, None),
                                   name="gtx-video-encode", daemon=True)
        decoder.start()
        encoder.start()
        try:
            self._translate()
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            if self.errors:
                self.stop.set()
            self._put(self.encoded, _END)
            encoder.join()
            self.stop.set()
            decoder.join()
        if self.errors:
            raise self.errors[0]
        if self.read == 0:
            raise VideoError(f"{self.src}: no video frame could be decoded; the file is "
                             "damaged or empty")

    # -- stages ------------------------------------------------------------------------------
    def _guard(self, stage: Callable[[], None], downstream: queue.Queue[Any] | None) -> None:
        try:
            stage()
        except BaseException as exc:
            self.errors.append(exc)
            self.stop.set()
        finally:
            if downstream is not None:
                self._put(downstream, _END)

    def _put(self, q: queue.Queue[Any], item: Any) -> None:
        """Put ``item``, giving up once the run is stopping (a stage failed)."""
        while True:
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                if self.stop.is_set():
                    return

    def _get(self, q: queue.Queue[Any]) -> Any:
        while True:
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                if self.stop.is_set():
                    return _END

    def _decode(self) -> None:
        import av

        from ..inference.images import padded_input

        t = self.translator
        streams = [self.vin, *(s for s in self.inp.streams.audio if s.index in self.audio_out)]
        index = 0
        held: _Frame | None = None  # a kept frame waits for the next one to know its duration
        end: int = 0  # where the last decoded frame ends (input time base)
        step = round(1 / (self.rate * self.every) / self.vin.time_base) if self.rate else 1
        try:
            for packet in self.inp.demux(*streams):
                if self.stop.is_set():
                    return
                if packet.stream.index in self.audio_out:
                    if packet.dts is not None:  # the demuxer's final empty packet
                        self._put(self.encoded, ("audio", packet))
                    continue
                for frame in packet.decode():
                    keep = index % self.every == 0
                    pts = frame.pts
                    if pts is None:  # some containers (avi) leave it out
                        pts = index * step
                    index += 1
                    self.decoded_frames = index
                    end = pts + (frame.duration or step)
                    if not keep:
                        continue
                    arr = frame.to_ndarray(format="rgb24")
                    if t.channels == 1:  # ITU-R 601 luma, as the image readers convert
                        from PIL import Image

                        arr = np.asarray(Image.fromarray(arr).convert("L"))[:, :, None]
                    # The folder pipeline's steps (numpy only).
                    x, size = padded_input(arr, divisor=t.divisor, min_size=t.min_size,
                                           bucket=t.bucket)
                    self.read += 1
                    if held is not None:
                        held.duration = pts - held.pts
                        self._put(self.decoded, held)
                    held = _Frame(x, size, pts)
            if held is not None:  # the last kept frame lasts to the end of the input
                held.duration = max(end - held.pts, 1)
                self._put(self.decoded, held)
        except av.FFmpegError as exc:
            raise VideoError(f"{self.src} is damaged: decoding stopped after {index} frame(s) "
                             f"({_describe(exc)})") from None

    def _translate(self) -> None:
        from ..inference.images import crop_to

        pending: list[_Frame] = []
        done = 0

        def flush() -> None:
            nonlocal done
            y = self.translator(torch.cat([f.x for f in pending])).cpu()
            padded = tuple(pending[0].x.shape[-2:])
            for k, f in enumerate(pending):
                out = crop_to(y[k : k + 1], f.size, padded)  # type: ignore[arg-type]
                self._put(self.encoded, ("frame", out, f.pts, f.duration))
            done += len(pending)
            pending.clear()
            if self.progress is not None:
                self.progress(done, self.total)

        while (item := self._get(self.decoded)) is not _END:
            if pending and item.x.shape != pending[0].x.shape:
                flush()  # a size change mid-stream: batches hold one size
            pending.append(item)
            if len(pending) >= self.batch_size:
                flush()
        if pending and not self.stop.is_set():
            flush()

    def _encode(self) -> None:
        import av

        from ..inference.images import output_pixels

        try:
            while (item := self._get(self.encoded)) is not _END:
                if item[0] == "audio":
                    packet = item[1]
                    packet.stream = self.audio_out[packet.stream.index]
                    self.out.mux(packet)
                    continue
                _, y, pts, duration = item
                arr = output_pixels(y)
                if arr.ndim == 2:
                    arr = np.repeat(arr[:, :, None], 3, axis=2)
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")
                # Converted here, not by encode(): its conversion drops the frame's duration.
                frame = frame.reformat(format=self.vout.pix_fmt)
                frame.pts, frame.time_base = pts, self.vin.time_base
                frame.duration = duration
                self.out.mux(self.vout.encode(frame))
                self.written += 1
            if not self.errors:
                self.out.mux(self.vout.encode(None))  # flush the encoder's delayed frames
        except av.FFmpegError as exc:
            raise VideoError(f"writing {self.dst} failed after {self.written} frame(s): "
                             f"{_describe(exc)}") from None
