"""Ctrl-C and SIGTERM: stop at the next step boundary on every rank, then save.

A stop signal (SIGINT from Ctrl-C, SIGTERM from a job scheduler, systemd or torchrun's agent)
only sets a flag in :class:`StopSignals`; the trainer asks at each step boundary whether any rank
got one (:meth:`StopSignals.agreed`, one small all-reduce under DDP), and if so every rank saves
together and raises :class:`TrainingInterrupted`. A second Ctrl-C stops at once.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any

import torch

from . import distributed

__all__ = ["STOP_SIGNALS", "StopSignals", "TrainingInterrupted"]

log = logging.getLogger(__name__)

# Two SIGINTs closer than this are one Ctrl-C (torchrun forwards the terminal's to its workers).
_REPEAT_WINDOW_S = 2.0
# Signals that stop training at the next step boundary with a checkpoint. SIGTERM is what job
# schedulers (SLURM, Kubernetes, systemd) and torchrun's agent send before they kill a process.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on a signal (Ctrl-C's SIGINT, or SIGTERM) at a step boundary.

    A ``KeyboardInterrupt``, so code that catches Ctrl-C keeps working. ``signum`` is the signal
    (under DDP: SIGTERM if any rank got one, else SIGINT); ``exit_code`` is the shell convention
    for it, 128 + signal number (130 for SIGINT, 143 for SIGTERM).
    """

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class StopSignals:
    """The stop signals of one ``fit`` call in this process.

    Attributes: ``signal`` (the first stop signal received, 0 for none) and ``requested_at``
    (its ``time.monotonic()``).
    """

    def __init__(self, *, world_size: int = 1) -> None:
        self.world_size = world_size
        self.signal = 0
        self.requested_at: float | None = None
        self._pid = 0  # the process whose handlers these are (not forked DataLoader workers)

    def install(self) -> dict[int, Any]:
        """Handle SIGINT and SIGTERM from now on; returns the handlers :meth:`restore` puts back.

        Only signals whose handler is Python's default are taken (a caller's own handler is
        respected), and only in the main thread (signals are delivered there only).
        """
        if threading.current_thread() is not threading.main_thread():
            return {}
        defaults = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
        mine = [s for s in STOP_SIGNALS if signal.getsignal(s) is defaults[s]]
        self.requested_at, self.signal = None, 0
        self._pid = os.getpid()
        return {s: signal.signal(s, self._on_signal) for s in mine}

    @staticmethod
    def restore(previous: dict[int, Any]) -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    def agreed(self, device: torch.device) -> int:
        """At a step boundary: the stop signal any rank got (SIGTERM wins), 0 for none."""
        return distributed.max_over_ranks(self.signal, device=device)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if os.getpid() != self._pid:
            # A forked DataLoader worker inherited this handler and the terminal's Ctrl-C: it
            # keeps serving batches until the trainer shuts the loader down.
            return
        now = time.monotonic()
        if self.requested_at is None:
            self.requested_at, self.signal = now, signum
            if signum == signal.SIGINT:
                log.warning("Ctrl-C: stopping after the current step and saving a checkpoint "
                            "(press Ctrl-C again to stop at once without one)")
            else:
                log.warning("%s: stopping after the current step and saving a checkpoint",
                            signal.Signals(signum).name)
            return
        if signum != signal.SIGINT:
            return  # SIGTERM again (a scheduler, then torchrun's agent): already stopping
        # torchrun forwards the terminal's Ctrl-C to workers that already got it from the
        # terminal: a repeat within a moment is the same keypress, not a second one.
        if self.world_size > 1 and now - self.requested_at < _REPEAT_WINDOW_S:
            return
        raise KeyboardInterrupt
