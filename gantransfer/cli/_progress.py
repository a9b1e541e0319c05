"""A rich progress bar for training on a terminal (the engine's LogCallback serves CI logs)."""

from __future__ import annotations

from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..engine.callbacks import Callback, LogCallback
from ._console import err_console

__all__ = ["RichProgress", "training_callbacks"]


class RichProgress(Callback):
    """Progress bar with it/s and ETA (refreshed every step) and the losses (means over
    ``log_every`` steps, refreshed at each metrics.jsonl line)."""

    def __init__(self) -> None:
        self._progress: Progress | None = None
        self._task: Any = None

    def on_train_start(self, trainer) -> None:
        if not trainer.is_main:
            return
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[losses]}"),
            console=err_console,
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(
            trainer.arch_name, total=trainer.total_steps, completed=trainer.step, losses="",
            rate="",
        )

    def on_step_end(self, trainer, metrics) -> None:
        # The step count only: reading the losses here would wait for the GPU every step.
        if self._progress is None:
            return
        task = self._progress.tasks[0]
        rate = f"{task.speed:.2f} it/s" if task.speed else ""
        self._progress.update(self._task, completed=trainer.step, rate=rate)

    def on_log(self, trainer, record: dict[str, Any]) -> None:
        # The losses shown are the means of the last log_every steps (metrics.jsonl's numbers).
        if self._progress is None or "losses" not in record:
            return
        losses = " ".join(f"{k} {v:.3g}" for k, v in list(record["losses"].items())[:6])
        if "aug_p" in record:
            losses += f" aug_p {record['aug_p']:.2f}"
        self._progress.update(self._task, losses=losses)

    def on_checkpoint(self, trainer, path) -> None:
        if self._progress is not None:
            self._progress.console.log(f"checkpoint {path}")

    def on_train_end(self, trainer) -> None:
        self.close()

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def training_callbacks(progress: str = "auto") -> list[Callback]:
    """``auto``: a bar on a terminal, plain log lines otherwise; ``bar``; ``log``; ``none``."""
    if progress == "auto":
        progress = "bar" if err_console.is_terminal else "log"
    if progress == "bar":
        return [RichProgress()]
    if progress == "log":
        return [LogCallback()]
    if progress == "none":
        return []
    raise ValueError(f"--progress must be auto, bar, log or none; got {progress!r}")
