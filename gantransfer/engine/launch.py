"""Launching data-parallel training with torchrun, and naming the rank that failed first.

Two halves, one per side of the launcher:

* the parent: :func:`launch` runs torchrun's launcher in this process (``--standalone
  --nproc-per-node N``, a single-node rendezvous on a free local port) over a module or a script,
  and turns its failure report into one :class:`DistributedRunError` naming the rank that failed
  first (:func:`first_failure`), or its stop signal into :class:`TrainingInterrupted`;
* each worker: :func:`report_failures` wraps the training so a rank's error lands where the
  launcher reads it (torchrun's error file) with the rank, the time and whether the rank only lost
  contact with a failed peer.

``gtx train --nproc N`` is ``launch(N, ["train", ...], module="gantransfer")``; a training script
of your own works the same way::

    >>> from gantransfer.engine.launch import launch, report_failures
    >>> launch(2, ["--steps", "100"], script="train.py")     # doctest: +SKIP

with ``train.py`` running ``with report_failures(): Trainer(...).fit()``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .interrupts import TrainingInterrupted

__all__ = ["PEER_GRACE_S", "DistributedRunError", "first_failure", "launch", "report_failures"]

log = logging.getLogger(__name__)

# A rank that only lost contact with a failed peer waits this long before exiting, so torchrun
# (which stops the others as soon as one exits) sees the rank that failed first exit first and
# names it as the root cause. torchrun normally terminates the waiting rank well within it.
PEER_GRACE_S = 10.0


class DistributedRunError(RuntimeError):
    """A distributed training run failed; the message names the rank that failed first."""


def launch(nproc: int, args: Sequence[str], *, module: str | None = None,
           script: str | os.PathLike[str] | None = None,
           env: Mapping[str, str] | None = None) -> None:
    """Run ``nproc`` workers on this machine with torchrun and wait for them.

    Exactly one of ``module`` (run as ``python -m MODULE ARGS``) and ``script`` (``python SCRIPT
    ARGS``) names what each worker runs. The launcher runs in this process, so its failure
    report becomes one exception here instead of torchrun's traceback.

    Args:
        nproc: worker processes (>= 1); each gets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``.
        args: the workers' command-line arguments.
        env: variables set for the workers (inherited from this process while it runs, restored
            afterwards).

    Raises:
        ValueError: ``nproc < 1``, or not exactly one of ``module`` and ``script``.
        DistributedRunError: a worker failed; the message names the rank that failed first
            (workers report through :func:`report_failures`).
        TrainingInterrupted: this process got SIGINT (Ctrl-C) or SIGTERM; the workers stopped
            at a step boundary and saved (torchrun's agent gives them
            ``TORCH_ELASTIC_SHUTDOWN_TIMEOUT``, default 30 s). ``signum`` says which signal.
    """
    if nproc < 1:
        raise ValueError(f"nproc must be >= 1, got {nproc}")
    if (module is None) == (script is None):
        raise ValueError("give exactly one of module= and script= (what each worker runs)")
    from torch.distributed.elastic.multiprocessing import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    target = ["-m", module] if module is not None else [os.fspath(script)]  # type: ignore[arg-type]
    argv = ["--standalone", "--nproc-per-node", str(nproc), *target, *args]
    log.info("starting torchrun %s", " ".join(argv))
    saved = {k: os.environ.get(k) for k in env or {}}
    os.environ.update(env or {})
    try:
        run(parse_args(argv))
    except ChildFailedError as exc:
        raise DistributedRunError(first_failure(exc.failures)) from None
    except SignalException as exc:
        raise TrainingInterrupted(int(exc.sigval)) from None
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def report_failures(*, passthrough: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Under torchrun, leave this rank's error where the launcher (and :func:`launch`) reads it.

    Outside a distributed run this does nothing. Inside one, an exception (other than the
    ``passthrough`` types: deliberate exits) is written to the file torchrun names in
    ``TORCHELASTIC_ERROR_FILE`` (the format of torch.distributed.elastic's ErrorHandler, so
    torchrun's summary shows the message), with the rank, the exact time and whether it only
    lost contact with a failed peer added under ``extraInfo.gantransfer``, then re-raised. A
    rank that lost contact waits :data:`PEER_GRACE_S` so that the rank that really failed exits
    first.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or "RANK" not in os.environ:
        yield
        return
    try:
        yield
    except passthrough:
        raise
    except Exception as exc:
        from .distributed import is_peer_failure

        peer_lost = is_peer_failure(exc)
        _write_error_file(exc, rank=int(os.environ["RANK"]), peer_lost=peer_lost)
        if peer_lost and "TORCHELASTIC_RUN_ID" in os.environ:
            time.sleep(PEER_GRACE_S)
        raise


def _write_error_file(exc: BaseException, *, rank: int, peer_lost: bool) -> None:
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if not path:
        return
    now = time.time()
    data = {"message": {"message": f"{type(exc).__name__}: {exc}", "extraInfo": {
        "py_callstack": "".join(traceback.format_exception(exc)),
        "timestamp": str(int(now)),
        "gantransfer": {"rank": rank, "peer_lost": peer_lost, "time": now},
    }}}
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(data))
    except OSError as err:  # reporting must never hide the error being reported
        log.warning("could not write the error file %s for torchrun: %s", path, err)


def first_failure(failures: Mapping[int, Any]) -> str:
    """One line naming the rank that failed first and why, from torchrun's failure records
    (``ChildFailedError.failures``: rank -> ``ProcessFailure``).

    Ranks that only lost contact with a failed peer are passed over while another rank has its
    own error; among the rest the earliest (by the time written in its error file) wins.
    """
    def info(failure: Any) -> dict[str, Any]:
        message = failure.message if isinstance(failure.message, dict) else {}
        return (message.get("extraInfo") or {}).get("gantransfer") or {}

    def order(item: tuple[int, Any]) -> tuple[bool, bool, float, int, int]:
        rank, failure = item
        extra = info(failure)
        return (bool(extra.get("peer_lost", False)), not extra, extra.get("time", 0.0),
                failure.timestamp, rank)

    rank, failure = min(failures.items(), key=order)
    message = failure.message
    if isinstance(message, dict):
        message = message.get("message", "")
    if info(failure) and message:
        return f"rank {rank} failed: {message}"
    if failure.exitcode < 0:
        return f"rank {rank} was killed by {failure.signal_name()} (out of memory?)"
    return f"rank {rank} failed with exit code {failure.exitcode}; see its log above"
