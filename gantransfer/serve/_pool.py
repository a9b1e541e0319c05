"""The inference pool: a bounded queue of translation jobs and the threads that run them.

Requests never run a model on the event loop: they put a decoded image in this queue and await
its future. Worker threads take the oldest job and, with it, the queued jobs of the same model,
style and padded size up to the translator's batch size (1 on CPUs, 8 on CUDA: the measured
defaults of ``gtx translate``), run them as one batch, and crop each output back.

Bounds: at most ``capacity`` jobs wait; :meth:`InferencePool.submit` refuses more with
:class:`QueueFullError` (the server answers 503 with ``Retry-After``) instead of holding them in
memory. Shutdown: :meth:`InferencePool.begin_shutdown` refuses new jobs at once, lets queued and
running ones finish for ``grace`` seconds, then refuses what is still queued
(:class:`ShuttingDownError`); :meth:`InferencePool.close` stops the threads.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # pragma: no cover
    from ._models import Opened

__all__ = ["InferencePool", "JobResult", "QueueFullError", "ShuttingDownError"]

log = logging.getLogger(__name__)


class QueueFullError(RuntimeError):
    """The queue holds ``capacity`` jobs; ``retry_after`` estimates when one frees (seconds)."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ShuttingDownError(RuntimeError):
    """The server is stopping: the job was not (or will not be) run."""


@dataclass
class JobResult:
    """The cropped output (``1xCxHxW`` float32 on the CPU), the time the batch spent in the
    model, the time the job waited in the queue, and how many images its batch held."""

    y: torch.Tensor
    model_seconds: float
    queue_seconds: float
    batch: int


@dataclass
class _Job:
    model: Opened
    style: str | None
    x: torch.Tensor
    size: tuple[int, int]
    future: Future[JobResult] = field(default_factory=Future)
    queued_at: float = field(default_factory=time.perf_counter)

    @property
    def key(self) -> tuple[object, ...]:
        return (self.model.id, self.style, tuple(self.x.shape[1:]))


class InferencePool:
    """``workers`` threads running queued jobs; at most ``capacity`` jobs wait.

    One worker is the default for a machine: a model run already spreads over every CPU core
    (intra-op threads) or the whole GPU, so two runs at once only compete (``gtx translate``
    runs one batch at a time for the same reason). More workers help when several models are
    served on a machine with cores to spare.
    """

    def __init__(self, *, workers: int = 1, capacity: int = 16) -> None:
        if workers < 1 or capacity < 1:
            raise ValueError(f"workers and capacity must be >= 1, got {workers} and {capacity}")
        self.workers, self.capacity = workers, capacity
        self._jobs: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._closing = False  # no new jobs
        self._stopped = False  # workers exit
        self._running = 0
        self._batch_seconds = 0.0  # moving average of a batch's wall time
        self._done = 0

    # -- state -------------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Jobs waiting (not yet taken by a worker)."""
        return len(self._jobs)

    @property
    def running(self) -> int:
        """Batches being run now."""
        return self._running

    @property
    def closing(self) -> bool:
        return self._closing

    def retry_after(self) -> int:
        """Seconds after which a refused client may try again: the queue's estimated drain
        time (at least 1)."""
        per_batch = self._batch_seconds or 1.0
        return max(1, math.ceil(per_batch * (self.pending / self.workers + 1)))

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        for i in range(self.workers):
            t = threading.Thread(target=self._work, name=f"gtx-serve-model-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def begin_shutdown(self, *, grace: float) -> None:
        """Refuse new jobs; after ``grace`` seconds refuse the jobs still queued."""
        with self._cond:
            if self._closing:
                return
            self._closing = True
        log.info("shutting down: finishing %d queued request(s) (up to %.0f s)", self.pending,
                 grace)
        timer = threading.Timer(grace, self._refuse_queued)
        timer.daemon = True
        timer.start()

    def close(self, *, timeout: float = 10.0) -> None:
        """Refuse what is queued, stop the workers (a running batch finishes) and join them."""
        with self._cond:
            self._closing = True
        self._refuse_queued()
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def _refuse_queued(self) -> None:
        with self._cond:
            jobs = list(self._jobs)
            self._jobs.clear()
        for job in jobs:
            if job.future.set_running_or_notify_cancel():
                job.future.set_exception(ShuttingDownError(
                    "the server is shutting down; the request was not run: send it again "
                    "when the server is back"))
        if jobs:
            log.info("refused %d queued request(s) at shutdown", len(jobs))

    # -- jobs --------------------------------------------------------------------------------
    def submit(self, model: Opened, style: str | None, x: torch.Tensor, size: tuple[int, int]
               ) -> Future[JobResult]:
        """Queue one padded ``1xCxHxW`` image for ``model`` (with ``style``).

        Raises:
            QueueFullError: ``capacity`` jobs are waiting.
            ShuttingDownError: the pool is shutting down.
        """
        job = _Job(model, style, x, size)
        with self._cond:
            if self._closing:
                raise ShuttingDownError("the server is shutting down and takes no new requests")
            if len(self._jobs) >= self.capacity:
                raise QueueFullError(
                    f"the server is busy: {len(self._jobs)} requests are queued (the limit); "
                    "try again shortly", retry_after=self.retry_after())
            self._jobs.append(job)
            self._cond.notify()
        return job.future

    def _take(self) -> list[_Job] | None:
        """The oldest live job and the queued jobs that can share its batch; None to exit."""
        with self._cond:
            while True:
                while not self._jobs and not self._stopped:
                    self._cond.wait()
                if self._stopped and not self._jobs:
                    return None
                first = self._jobs.popleft()
                if not first.future.set_running_or_notify_cancel():
                    continue  # its request timed out or went away while it waited
                limit = max(1, first.model.runner(first.style).batch_size)
                batch = [first]
                for job in list(self._jobs):
                    if len(batch) >= limit:
                        break
                    if job.key == first.key:
                        self._jobs.remove(job)
                        if job.future.set_running_or_notify_cancel():
                            batch.append(job)
                self._running += 1
                return batch

    def _work(self) -> None:
        from ..inference.images import crop_to

        while (batch := self._take()) is not None:
            start = time.perf_counter()
            try:
                runner = batch[0].model.runner(batch[0].style)
                x = batch[0].x if len(batch) == 1 else torch.cat([j.x for j in batch])
                y = runner(x).cpu()
                seconds = time.perf_counter() - start
                padded = tuple(x.shape[-2:])
                for k, job in enumerate(batch):
                    out = crop_to(y[k : k + 1], job.size, padded)  # type: ignore[arg-type]
                    job.future.set_result(JobResult(out, seconds, start - job.queued_at,
                                                    len(batch)))
            except Exception as exc:  # delivered to each request, which answers with JSON
                log.exception("translation with %s failed", batch[0].model.id)
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(exc)
            finally:
                elapsed = time.perf_counter() - start
                with self._cond:
                    self._running -= 1
                    self._done += 1
                    self._batch_seconds = (elapsed if self._done == 1
                                           else 0.8 * self._batch_seconds + 0.2 * elapsed)
