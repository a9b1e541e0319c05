"""A debug hook: every rank dumps its weights, last gradients and a parameter digest.

Switched on by ``GANTRANSFER_DEBUG_STATE_DIR=DIR`` (the distributed tests use it to check that
ranks stay identical and that DDP averaged the gradients right); the Trainer adds
:class:`DebugStateDump` to its callbacks then. Files: ``DIR/{start,end}_rank{R}.pt`` (state
dict), ``..._grads.pt`` (gradients by parameter name) and ``....sha256`` (the digest).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from . import distributed
from .callbacks import Callback

if TYPE_CHECKING:  # pragma: no cover
    from .trainer import Trainer

__all__ = ["ENV", "DebugStateDump", "from_env"]

ENV = "GANTRANSFER_DEBUG_STATE_DIR"


class DebugStateDump(Callback):
    """Writes each rank's state to ``folder`` when training starts and when it ends."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def on_train_start(self, trainer: Trainer) -> None:
        self.dump(trainer, "start")

    def on_train_end(self, trainer: Trainer) -> None:
        self.dump(trainer, "end")

    def dump(self, trainer: Trainer, when: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        rank = trainer.rank
        with trainer.unwrapped():
            torch.save(trainer.model.state_dict(), self.folder / f"{when}_rank{rank}.pt")
            # The last step's gradients (after DDP's averaging), by parameter name.
            grads = {n: p.grad.detach().cpu() for n, p in trainer.model.named_parameters()
                     if p.grad is not None}
            torch.save(grads, self.folder / f"{when}_rank{rank}_grads.pt")
            digest = distributed.param_digest(trainer.model)
        (self.folder / f"{when}_rank{rank}.sha256").write_text(digest + "\n")


def from_env() -> list[Callback]:
    """``[DebugStateDump(DIR)]`` when ``GANTRANSFER_DEBUG_STATE_DIR`` is set, else ``[]``."""
    folder = os.environ.get(ENV)
    return [DebugStateDump(folder)] if folder else []
