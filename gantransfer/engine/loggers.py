"""Loggers beside metrics.jsonl: TensorBoard (``TrainConfig.loggers=("tensorboard",)``, ``gtx
train --logger tensorboard``).

A logger is a :class:`~gantransfer.engine.callbacks.Callback` like any other, so W&B, MLflow or
anything else is a few lines of user code (docs/training.md shows them); this module holds the
one built in. Loggers write on rank 0 only.

What :class:`TensorBoardLogger` writes to ``RUN/tensorboard``:

- ``loss/<name>`` for every loss at every logged step (``log_every``), ``lr/<group>``, ``its``;
- ``eval/<target>/<metric>`` at every evaluation (``eval_every``), and ``eval/best``;
- the sample grids as images (``samples``, at their step; step 0 included);
- the resolved run config as text (``config``) and as hparams (scalars and strings only).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .callbacks import Callback

if TYPE_CHECKING:  # pragma: no cover
    from .config import TrainConfig
    from .trainer import Trainer

__all__ = ["TensorBoardLogger", "from_config"]

log = logging.getLogger(__name__)


def from_config(config: TrainConfig) -> list[Callback]:
    """The loggers ``config.loggers`` names (validated by TrainConfig)."""
    return [TensorBoardLogger() for name in config.loggers if name == "tensorboard"]


def _flat(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, (bool, int, float, str)):
        out[prefix] = value
    elif value is None:
        out[prefix] = "None"
    else:
        out[prefix] = json.dumps(value, default=str)


class TensorBoardLogger(Callback):
    """Writes losses, LR, eval metrics, sample grids and the config to ``log_dir`` (default
    ``RUN/tensorboard``) with ``torch.utils.tensorboard.SummaryWriter``.

    Raises (at the start of training): ImportError naming the extra when the ``tensorboard``
    package is missing.
    """

    def __init__(self, log_dir: str | Path | None = None) -> None:
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.writer: Any = None

    def on_train_start(self, trainer: Trainer) -> None:
        if not trainer.is_main:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:  # torch's wrapper needs the tensorboard package
            raise ImportError("the tensorboard logger needs the tensorboard package: pip "
                              "install 'gantransfer[tensorboard]'") from exc
        folder = self.log_dir or trainer.run_dir / "tensorboard"
        self.writer = SummaryWriter(log_dir=str(folder), purge_step=trainer.step or None)
        config = trainer._resolved_config()
        self.writer.add_text("config", "```\n" + json.dumps(config, indent=2, default=str)
                             + "\n```", global_step=trainer.step)
        if trainer.step == 0:  # once per run: a resumed run would add a second hparams entry
            hparams: dict[str, Any] = {}
            _flat("", {k: v for k, v in config.items() if k != "architecture"}, hparams)
            hparams["architecture"] = trainer.arch_name
            self.writer.add_hparams(hparams, {}, run_name=".")
        self.writer.flush()

    def on_log(self, trainer: Trainer, record: dict[str, Any]) -> None:
        if self.writer is None:
            return
        step = int(record["step"])
        for name, value in record.get("losses", {}).items():
            self.writer.add_scalar(f"loss/{name}", value, step)
        for group, value in record.get("lr", {}).items():
            self.writer.add_scalar(f"lr/{group}", value, step)
        if "its" in record:
            self.writer.add_scalar("its", record["its"], step)
        for name in ("aug_p", "aug_rt"):  # the augmentation strength and ADA's heuristic
            if name in record:
                self.writer.add_scalar(name, record[name], step)
        self.writer.flush()  # an interrupted run keeps what it logged

    def on_eval(self, trainer: Trainer, record: dict[str, Any]) -> None:
        if self.writer is None:
            return
        step = int(record["step"])
        for target, values in record["eval"].items():
            for name, value in values.items():
                if isinstance(value, float):
                    self.writer.add_scalar(f"eval/{target}/{name}", value, step)
        best = record.get("best")
        if best:
            self.writer.add_scalar("eval/best", best["value"], best["step"])
        self.writer.flush()

    def on_samples(self, trainer: Trainer, path: Path) -> None:
        if self.writer is None:
            return
        import numpy as np
        from PIL import Image

        with Image.open(path) as img:
            array = np.asarray(img.convert("RGB"))
        self.writer.add_image("samples", array, trainer.step, dataformats="HWC")
        self.writer.flush()

    def on_train_end(self, trainer: Trainer) -> None:
        self.close()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
