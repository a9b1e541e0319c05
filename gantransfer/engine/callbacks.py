"""Trainer callbacks: hooks for progress display, logging, the metrics file and custom side
effects.

A progress bar reads ``trainer.step``, ``trainer.total_steps``, ``trainer.start_step``,
``trainer.epoch``, ``trainer.latest_losses`` and ``trainer.its_per_sec``. The run's
``metrics.jsonl`` is written by :class:`MetricsWriter`, a callback the Trainer always runs first.
"""

from __future__ import annotations

import datetime
import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._io import atomic_write_bytes

if TYPE_CHECKING:  # pragma: no cover
    from .trainer import Trainer

__all__ = ["Callback", "LogCallback", "MetricsWriter"]

log = logging.getLogger(__name__)


class Callback:
    """Base class: override the hooks you need; every hook does nothing by default.

    Hooks run on every rank; check ``trainer.is_main`` before writing files.
    """

    def on_train_start(self, trainer: Trainer) -> None:
        """After setup (and resume), before the first step of this ``fit`` call."""

    def on_step_end(self, trainer: Trainer, metrics: Mapping[str, float]) -> None:
        """After every step; ``metrics`` maps that step's loss names to floats. The losses stay
        on the device until a value is read: reading one waits for the device (a host sync
        per step on a GPU); the names alone do not. Per-interval means come to :meth:`on_log`."""

    def on_log(self, trainer: Trainer, record: dict[str, Any]) -> None:
        """When a line is added to metrics.jsonl; ``record`` is that line."""

    def on_checkpoint(self, trainer: Trainer, path: Path) -> None:
        """After a checkpoint was written to ``path``."""

    def on_samples(self, trainer: Trainer, path: Path) -> None:
        """After a sample grid was written to ``path`` (rank 0; step 0 included)."""

    def on_eval(self, trainer: Trainer, record: dict[str, Any]) -> None:
        """After an evaluation on held-out images (rank 0): ``record`` is its metrics.jsonl
        line, ``{"step", "eval": {target: {metric: value, "n_real", "n_fake", ...}},
        "skipped": {metric: reason}, "best": {"metric", "value", "step"} | None}``."""

    def on_train_end(self, trainer: Trainer) -> None:
        """After the last step (not called when training raised)."""


class LogCallback(Callback):
    """Plain periodic log lines through ``logging`` (INFO): step/total, it/s, ETA, losses."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or log
        self._start = time.perf_counter()

    def on_train_start(self, trainer: Trainer) -> None:
        self._start = time.perf_counter()
        self.logger.info("training %s for %d steps (from step %d) in %s",
                         trainer.arch_name, trainer.total_steps, trainer.step, trainer.run_dir)

    def on_log(self, trainer: Trainer, record: dict[str, Any]) -> None:
        done = trainer.step - trainer.start_step
        elapsed = time.perf_counter() - self._start
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (trainer.total_steps - trainer.step) / rate if rate > 0 else 0.0
        losses = " ".join(f"{k} {v:.4g}" for k, v in record.get("losses", {}).items())
        if "aug_p" in record:  # the strength of d_augment (adaptive or below 1)
            losses += f" | aug_p {record['aug_p']:.4g}"
        self.logger.info(
            "step %d/%d | %.2f it/s | ETA %s | %s", trainer.step, trainer.total_steps,
            record.get("its", rate), datetime.timedelta(seconds=round(eta)), losses,
        )

    def on_checkpoint(self, trainer: Trainer, path: Path) -> None:
        self.logger.info("saved checkpoint %s", path)

    def on_eval(self, trainer: Trainer, record: dict[str, Any]) -> None:
        parts = [f"{target}/{k} {v:.4g}" for target, values in record["eval"].items()
                 for k, v in values.items() if isinstance(v, float)]
        self.logger.info("eval at step %d: %s", trainer.step, " ".join(parts))

    def on_train_end(self, trainer: Trainer) -> None:
        self.logger.info("finished at step %d", trainer.step)


class MetricsWriter(Callback):
    """Appends every log record to ``RUN/metrics.jsonl`` (one JSON object per line; rank 0).

    When a run starts or resumes at step ``S``, lines of steps after ``S`` (logged by a run that
    was interrupted after its last checkpoint) are dropped first, so no step is logged twice.
    """

    def on_train_start(self, trainer: Trainer) -> None:
        path = trainer.run_dir / "metrics.jsonl"
        if trainer.is_main and path.exists():
            lines = [ln for ln in path.read_text().splitlines()
                     if ln.strip() and _logged_step(ln) <= trainer.step]
            atomic_write_bytes(path, "".join(ln + "\n" for ln in lines).encode())

    def on_eval(self, trainer: Trainer, record: dict[str, Any]) -> None:
        self.on_log(trainer, record)

    def on_log(self, trainer: Trainer, record: dict[str, Any]) -> None:
        if not trainer.is_main:
            return
        path = trainer.run_dir / "metrics.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")


def _logged_step(line: str) -> int:
    try:
        return int(json.loads(line).get("step", 0))
    except (ValueError, AttributeError):  # a line cut short by a crash: drop it
        return 1 << 62

