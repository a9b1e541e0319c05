"""Trainer callbacks: hooks for progress display, logging and custom side effects.

A progress bar reads ``trainer.step``, ``trainer.total_steps``, ``trainer.start_step``,
``trainer.epoch``, ``trainer.latest_losses`` and ``trainer.its_per_sec``.
"""

from __future__ import annotations

import datetime
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .trainer import Trainer

__all__ = ["Callback", "LogCallback"]

log = logging.getLogger(__name__)


class Callback:
    """Base class: override the hooks you need; every hook does nothing by default.

    Hooks run on every rank; check ``trainer.is_main`` before writing files.
    """

    def on_train_start(self, trainer: Trainer) -> None:
        """After setup (and resume), before the first step of this ``fit`` call."""

    def on_step_end(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        """After every step; ``metrics`` are that step's losses as floats."""

    def on_log(self, trainer: Trainer, record: dict[str, Any]) -> None:
        """When a line is added to metrics.jsonl; ``record`` is that line."""

    def on_checkpoint(self, trainer: Trainer, path: Path) -> None:
        """After a checkpoint was written to ``path``."""

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
        self.logger.info(
            "step %d/%d | %.2f it/s | ETA %s | %s", trainer.step, trainer.total_steps,
            record.get("its", rate), datetime.timedelta(seconds=round(eta)), losses,
        )

    def on_checkpoint(self, trainer: Trainer, path: Path) -> None:
        self.logger.info("saved checkpoint %s", path)

    def on_train_end(self, trainer: Trainer) -> None:
        self.logger.info("finished at step %d", trainer.step)
