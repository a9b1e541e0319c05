"""Translate image files with decoding, inference and encoding overlapped.

    >>> from gantransfer.inference import translate_files
    >>> stats = translate_files(model, [("in/a.jpg", "out/a.png")], precision="auto")  # doctest: +SKIP
    >>> print(f"{stats.images_per_second:.2f} img/s, model {stats.model_seconds:.1f} s")  # doctest: +SKIP

Decoder threads read and pad images ahead of the model, the caller's thread runs batches of
images of equal (bucketed) size, and writer threads crop, encode and atomically save the outputs
behind it. Pillow's codecs and torch release the GIL, so on a 2-core CPU the file work hides
behind the model. At most ``max_in_memory`` images are held at any time (decoding, waiting in a
batch or being written), however many files there are. ``gtx translate`` and
``benchmarks/bench_translate.py`` both run this code. See docs/inference.md.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.folders import ImageReadError
from . import memory
from .dispatch import translator as make_translator
from .images import bucket_size, crop_to, output_pixels, padded_input
from .runner import Translator

__all__ = ["PipelineStats", "TranslationMemoryError", "save_image", "translate_files"]

log = logging.getLogger(__name__)

PathPair = tuple["str | os.PathLike[str]", "str | os.PathLike[str]"]


# Bytes per pixel no generator we know comes near (CycleGAN's default is estimated at ~1.4 KB):
# a job that fits even at this rate is not probed.
_OBVIOUSLY_ENOUGH = 16384


class TranslationMemoryError(MemoryError):
    """A translation would need more memory than the machine has (estimated before it runs)."""


@dataclass(frozen=True)
class PipelineStats:
    """What a :func:`translate_files` run did and how long it took.

    ``model_seconds`` is the time spent inside the generator (summed over batches), including
    ``compile_seconds`` (first runs of newly compiled shapes); ``wall_seconds - model_seconds``
    is what decoding, encoding and waiting added on top.
    ``peak_in_memory`` is the most images held at once (bounded by ``max_in_memory``).
    """

    images: int
    skipped: int
    batches: int
    wall_seconds: float
    model_seconds: float
    compile_seconds: float
    peak_in_memory: int
    description: str = ""

    @property
    def images_per_second(self) -> float:
        return self.images / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def model_images_per_second(self) -> float:
        return self.images / self.model_seconds if self.model_seconds > 0 else 0.0

    @property
    def overhead(self) -> float:
        """Wall time beyond the model's, as a fraction of the model's (0.05 = 5 %)."""
        return self.wall_seconds / self.model_seconds - 1.0 if self.model_seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "images_per_second": self.images_per_second,
                "model_images_per_second": self.model_images_per_second,
                "overhead": self.overhead}


def save_image(image: Any, path: str | os.PathLike[str]) -> None:
    """Save a PIL image atomically (no half-written file, even on a crash); the format follows
    the extension (``.png`` when there is none)."""
    from .._io import atomic_path

    path = Path(path)
    ext = path.suffix.lstrip(".").upper()
    fmt = {"JPG": "JPEG", "TIF": "TIFF", "": "PNG"}.get(ext, ext)
    with atomic_path(path) as tmp:
        image.save(tmp, format=fmt)


@dataclass
class _Item:
    dst: Path
    x: torch.Tensor  # 1xCxHxW, padded
    size: tuple[int, int]


def _decode(src: Path, dst: Path, translator: Translator, max_side: int | None) -> _Item:
    from ..data.images import read_image

    image = read_image(src, channels=translator.channels, max_side=max_side)
    x, size = padded_input(np.asarray(image), divisor=translator.divisor,
                           min_size=translator.min_size, bucket=translator.bucket)
    return _Item(dst, x, size)


def _encode(y: torch.Tensor, dst: Path) -> None:
    from PIL import Image

    save_image(Image.fromarray(output_pixels(y)), dst)


def translate_files(model: Any, pairs: Sequence[PathPair], *, target: str | None = None,
                    batch_size: int | None = None, precision: str = "fp32", compile: str | bool = "off",
                    bucket: int | None = None, workers: int | None = None, writers: int = 2,
                    max_in_memory: int | None = None, skip_bad_images: bool = False,
                    max_side: int | None = None, check_memory: bool = True,
                    progress: Callable[[int, int], None] | None = None) -> PipelineStats:
    """Translate ``(input file, output file)`` pairs; outputs keep each input's size (or the
    size ``max_side`` reduces it to).

    Args:
        model: a GANModel, an OnnxModel or a :class:`~gantransfer.inference.Translator`
            (:func:`gantransfer.inference.translator` makes the translator).
        pairs: input and output paths; output folders are created, outputs are PNG unless their
            extension says otherwise, and each is written atomically.
        batch_size: images of equal padded size run together; None: the translator's measured
            default for its device (1 on CPUs, 8 on CUDA; :func:`gantransfer.inference.defaults.
            default_batch_size`).
        precision, compile, bucket, target: see :func:`gantransfer.inference.translator`
            (``compile="auto"`` counts ``len(pairs)`` images).
        workers: decoder threads (default ``min(4, cpu count)``); ``writers``: encoder threads.
        max_in_memory: most images held at once (default ``2 * batch_size + 2 * workers``);
            must be at least ``batch_size``.
        skip_bad_images: log and count unreadable files instead of stopping at the first one.
        max_side: downscale inputs whose longer side is larger (aspect kept; outputs then have
            the reduced size).
        check_memory: estimate the peak memory from the image sizes (file headers) before
            anything runs, and refuse a job that needs more than the device has available.
        progress: called as ``progress(done, total)`` after each batch.

    Returns:
        :class:`PipelineStats`; outputs are all saved when it returns.

    Temporary files that killed runs left in the output folders are removed first.

    Raises:
        OutputIsInputError: an output path is one of the inputs (nothing is written).
        ImageReadError: an unreadable input (unless ``skip_bad_images``), naming the file. A file
            that is not an image at all is found before anything is translated (headers are
            checked first); one with corrupt pixel data when it is decoded, after which images
            already translated stay written. No output is written for it. An image above the
            pixel limit raises ``ImageTooLargeError`` (a subclass) from its header.
        TranslationMemoryError: ``check_memory`` found that the largest batch would need more
            memory than is available; the message gives both and suggests a ``max_side``.
        ValueError: bad options.
    """
    if max_side is not None and max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side}")
    translator = make_translator(model, target=target, precision=precision, compile=compile,
                                 bucket=bucket, images=len(pairs))
    batch_size = translator.batch_size if batch_size is None else batch_size
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    workers = workers or min(4, os.cpu_count() or 1)
    limit = max_in_memory or 2 * batch_size + 2 * workers
    if limit < batch_size:
        raise ValueError(f"max_in_memory ({limit}) must be at least batch_size ({batch_size})")
    from .._io import remove_stale_temps
    from .._outputs import select_outputs

    paths = [(Path(s), Path(d)) for s, d in pairs]
    select_outputs([d for _, d in paths], inputs=[s for s, _ in paths], existing="overwrite")
    for folder in {d.parent for _, d in paths}:
        remove_stale_temps(folder)
    start = time.perf_counter()
    model_start, compile_start = translator.model_seconds, translator.compile_seconds
    todo, skipped, sizes = _check_headers(paths, skip=skip_bad_images)
    if check_memory and todo:
        _check_memory(translator, todo, sizes, batch_size=batch_size, held=limit,
                      max_side=max_side)
    with translator.evaluation():
        run = _Run(translator, todo, batch_size=batch_size, workers=workers, writers=writers,
                   limit=limit, skip=skip_bad_images, max_side=max_side, progress=progress)
        run.skipped = skipped
        run.execute()
    return PipelineStats(images=run.done, skipped=run.skipped, batches=run.batches,
                         wall_seconds=time.perf_counter() - start,
                         model_seconds=translator.model_seconds - model_start,
                         compile_seconds=translator.compile_seconds - compile_start,
                         peak_in_memory=run.peak, description=translator.description)


def _check_headers(pairs: list[tuple[Path, Path]], *, skip: bool
                   ) -> tuple[list[tuple[Path, Path]], int, list[tuple[int, int]]]:
    """Drop (``skip``) or fail on files whose header is not an image (or is above the pixel
    limit), before any work is done (as data loading does); a few hundred bytes per file.
    Corrupt pixel data is only found while decoding, and handled the same way there. Returns
    the kept pairs, the number dropped, and the kept images' (width, height)."""
    from ..data.images import probe_images

    keep: list[tuple[Path, Path]] = []
    sizes: list[tuple[int, int]] = []
    for pair, info in zip(pairs, probe_images([s for s, _ in pairs]), strict=True):
        if isinstance(info, ImageReadError):
            if not skip:
                raise info
            log.warning("skipping unreadable image %s: %s", info.path, info.reason)
            continue
        keep.append(pair)
        sizes.append(info.size)
    return keep, len(pairs) - len(keep), sizes


def _check_memory(translator: Translator, pairs: list[tuple[Path, Path]],
                  sizes: list[tuple[int, int]], *, batch_size: int, held: int,
                  max_side: int | None) -> None:
    """Refuse a job whose largest batch would not fit in the available memory (see
    :mod:`gantransfer.inference.memory` for how the need is estimated)."""
    from collections import Counter

    from .._text import format_bytes
    from ..data.images import fit_size

    available = memory.available_memory(translator.device)
    if available is None:
        log.debug("memory check skipped: free memory of %s unknown", translator.device)
        return
    fitted = [fit_size(size, max_side) for size in sizes]
    padded = [bucket_size(h, w, divisor=translator.divisor, min_size=translator.min_size,
                          bucket=translator.bucket) for w, h in fitted]
    counts = Counter(padded)
    worst = max(counts, key=lambda hw: min(batch_size, counts[hw]) * hw[0] * hw[1])
    in_batch = min(batch_size, counts[worst])
    largest = max(hw[0] * hw[1] for hw in padded)
    # Decoded float32 images waiting in the pipeline (CPU memory, beside the activations).
    queued = (min(held, len(pairs)) * largest * translator.channels * 4
              if translator.device.type == "cpu" else 0)
    if in_batch * worst[0] * worst[1] * _OBVIOUSLY_ENOUGH + queued <= available:
        return  # small images: not worth probing the generator (~0.5 s for CycleGAN's)
    per_pixel = translator.bytes_per_pixel()
    if per_pixel is None:
        log.debug("memory check skipped: no estimate for %s", translator.description)
        return
    need = in_batch * worst[0] * worst[1] * per_pixel + queued
    index = padded.index(worst)
    log.info("memory estimate: %s for %d image(s) of %dx%d at once (%s available)",
             format_bytes(need), in_batch, worst[1], worst[0], format_bytes(available))
    if need <= available:
        return
    src, (w, h) = pairs[index][0], sizes[index]
    # The longer side at which one image (and the queue) fits in 80 % of what is available.
    room = 0.8 * available / (per_pixel + (queued / largest if queued else 0))
    side = int((room * max(w, h) / min(w, h)) ** 0.5) // 64 * 64
    hints = [f"--max-side {side} (max_side={side}) to downscale large inputs"] if side >= 64 else []
    if in_batch > 1 and worst[0] * worst[1] * per_pixel + queued <= available:
        hints.insert(0, "--batch-size 1")
    raise TranslationMemoryError(
        f"translating {src} ({w}x{h}{', downscaled' if max_side else ''}) in a batch of "
        f"{in_batch} would need about {format_bytes(need)} of memory on "
        f"{translator.device}, but only {format_bytes(available)} is available. "
        + (f"Use {' or '.join(hints)}" if hints else "Free memory or use a smaller image")
        + "; --no-memory-check (check_memory=False) tries anyway."
    )


class _Run:
    """One pipeline run: the bookkeeping of :func:`translate_files` (called from one thread)."""

    def __init__(self, translator: Translator, pairs: list[tuple[Path, Path]], *, batch_size: int,
                 workers: int, writers: int, limit: int, skip: bool, max_side: int | None,
                 progress: Callable[[int, int], None] | None) -> None:
        self.translator, self.pairs, self.batch_size = translator, pairs, batch_size
        self.max_side = max_side
        self.workers, self.writers, self.limit, self.skip = workers, writers, limit, skip
        self.progress = progress
        self.held = 0  # images decoding, waiting in a bucket, or being written
        self.peak = self.done = self.skipped = self.batches = 0
        self.next = 0
        self.decoding: deque[Future[_Item]] = deque()
        self.writing: set[Future[None]] = set()
        self.buckets: dict[tuple[int, ...], list[_Item]] = {}

    def execute(self) -> None:
        decode_pool = ThreadPoolExecutor(self.workers, thread_name_prefix="gtx-decode")
        write_pool = ThreadPoolExecutor(self.writers, thread_name_prefix="gtx-encode")
        try:
            self._loop(decode_pool, write_pool)
        finally:
            decode_pool.shutdown(wait=True, cancel_futures=True)
            write_pool.shutdown(wait=True)  # finish (or cleanly fail) every started save
        self._reap(block=False)

    def _loop(self, decode_pool: ThreadPoolExecutor, write_pool: ThreadPoolExecutor) -> None:
        while True:
            self._reap(block=False)
            while self.next < len(self.pairs) and self.held < self.limit:
                src, dst = self.pairs[self.next]
                self.decoding.append(decode_pool.submit(_decode, src, dst, self.translator,
                                                        self.max_side))
                self.next += 1
                self.held += 1
                self.peak = max(self.peak, self.held)
            if self.decoding:
                self._take(self.decoding.popleft(), write_pool)
            elif self.buckets:  # nothing more can arrive before a batch runs: run the fullest
                key = max(self.buckets, key=lambda k: len(self.buckets[k]))
                self._run_batch(self.buckets.pop(key), write_pool)
            elif self.next < len(self.pairs):
                self._reap(block=True)  # at the memory limit: wait for a save to finish
            else:
                break

    def _take(self, fut: Future[_Item], write_pool: ThreadPoolExecutor) -> None:
        try:
            item = fut.result()
        except ImageReadError as exc:
            self.held -= 1
            if not self.skip:
                raise
            self.skipped += 1
            log.warning("skipping unreadable image %s: %s", exc.path, exc.reason)
            return
        key = tuple(item.x.shape[1:])
        members = self.buckets.setdefault(key, [])
        members.append(item)
        if len(members) >= self.batch_size:
            self._run_batch(self.buckets.pop(key), write_pool)

    def _run_batch(self, items: list[_Item], write_pool: ThreadPoolExecutor) -> None:
        y = self.translator(torch.cat([it.x for it in items])).cpu()
        padded = (items[0].x.shape[-2], items[0].x.shape[-1])
        for k, it in enumerate(items):
            out = crop_to(y[k : k + 1], it.size, padded)
            self.writing.add(write_pool.submit(_encode, out, it.dst))
        self.batches += 1
        if self.progress is not None:
            self.progress(self.done + len(self.writing), len(self.pairs))

    def _reap(self, *, block: bool) -> None:
        """Count finished saves (raising the first save error); with ``block``, wait for one."""
        if not self.writing:
            return
        if block:
            finished, _ = wait(self.writing, return_when=FIRST_COMPLETED)
        else:
            finished = {f for f in self.writing if f.done()}
        for fut in finished:
            self.writing.discard(fut)
            self.held -= 1
            fut.result()
            self.done += 1
