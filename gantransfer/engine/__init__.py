"""The shared trainer engine (DESIGN §4): loop, precision, EMA, checkpoints, exact resume.

    >>> from gantransfer.engine import Trainer, TrainConfig
    >>> Trainer(model, dataset, TrainConfig(steps=1000, batch_size=4), "runs/x").fit()  # doctest: +SKIP
"""

from __future__ import annotations

from .callbacks import Callback, LogCallback, MetricsWriter
from .checkpoint import (
    CheckpointCorruptError,
    CheckpointError,
    find_latest,
    load,
    read_checkpoint,
    save_checkpoint,
    save_model,
)
from .config import TrainConfig, resolve_device
from .context import EngineContext, TrainingDivergedError
from .ema import EMA
from .grid import make_grid, save_grid
from .interrupts import TrainingInterrupted
from .launch import DistributedRunError, launch, report_failures
from .rundir import RunDirectoryError, RunDirectoryInUseError, RunExistsError
from .sampler import ResumableSampler
from .trainer import Trainer

__all__ = [
    "EMA",
    "Callback",
    "CheckpointCorruptError",
    "CheckpointError",
    "DistributedRunError",
    "EngineContext",
    "LogCallback",
    "MetricsWriter",
    "ResumableSampler",
    "RunDirectoryError",
    "RunDirectoryInUseError",
    "RunExistsError",
    "TrainConfig",
    "Trainer",
    "TrainingDivergedError",
    "TrainingInterrupted",
    "find_latest",
    "launch",
    "load",
    "make_grid",
    "read_checkpoint",
    "report_failures",
    "resolve_device",
    "save_checkpoint",
    "save_grid",
    "save_model",
]
