"""One run per run directory: the lock a training run holds, and what counts as a run.

A run directory is locked while a run trains into it (an advisory ``flock`` on
``RUN/.gtx-run.lock``, taken by the process that writes: rank 0 under DDP). The lock file says who
holds it (pid, host, since when, command), so a second process is refused with a message that
names the holder. The operating system releases the lock when its process ends, however it ends
(``kill -9`` included), so a lock of a dead process is never in the way; the holder's details
are then still in the file, which is how the next run recognises (and reports) that the previous
one did not finish cleanly. The file itself stays: deleting a lock file races with processes
that opened it.

A directory *holds a run* when it has checkpoints, metrics or sample grids. Starting a new run
there (rather than resuming it) is refused, or with ``overwrite`` the old run is moved aside to
a sibling ``NAME.replaced-YYYYmmdd-HHMMSS`` directory: nothing is deleted.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import os
import socket
import sys
from pathlib import Path
from typing import IO, Any

import torch

from .._io import pid_running
from ..config import write_toml
from . import distributed

__all__ = ["LOCK_NAME", "RunDirectoryError", "RunDirectoryInUseError", "RunExistsError",
           "RunLock", "claim", "describe_run", "move_aside", "write_config"]

log = logging.getLogger(__name__)

LOCK_NAME = ".gtx-run.lock"

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class RunDirectoryError(RuntimeError):
    """The run directory cannot be used as asked (in use, or holding another run)."""


class RunDirectoryInUseError(RunDirectoryError):
    """Another process holds the run directory's lock; ``holder`` is what it wrote there."""

    def __init__(self, message: str, *, holder: dict[str, Any]) -> None:
        super().__init__(message)
        self.holder = holder


class RunExistsError(RunDirectoryError):
    """A new run was started in a directory that holds a run."""


def describe_run(run_dir: str | os.PathLike[str]) -> str | None:
    """What run ``run_dir`` holds, in a few words (None when it holds none).

    Checkpoints, ``metrics.jsonl`` or sample grids count; a ``config.toml`` alone does not (it is
    written first, and users keep configs there).
    """
    from .checkpoint import list_checkpoints

    run_dir = Path(run_dir)
    parts = []
    checkpoints = list_checkpoints(run_dir)
    if checkpoints:
        parts.append(f"{len(checkpoints)} checkpoint(s) up to {checkpoints[-1].name}")
    if (run_dir / "metrics.jsonl").is_file():
        parts.append("metrics.jsonl")
    samples = run_dir / "samples"
    if samples.is_dir() and any(p.suffix == ".png" for p in samples.iterdir()):
        parts.append("sample grids")
    return ", ".join(parts) or None


def move_aside(run_dir: str | os.PathLike[str]) -> Path:
    """Move everything in ``run_dir`` but its lock file into a new sibling directory
    ``NAME.replaced-YYYYmmdd-HHMMSS`` (``-2``, ``-3``... if taken); returns that directory.

    Entries are renamed, not copied (the sibling is on the same filesystem), so this is quick
    and deletes nothing.
    """
    run_dir = Path(run_dir)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = run_dir.with_name(f"{run_dir.name}.replaced-{stamp}")
    dest, n = base, 1
    while True:
        try:
            dest.mkdir()
            break
        except FileExistsError:
            n += 1
            dest = base.with_name(f"{base.name}-{n}")
    for entry in sorted(run_dir.iterdir()):
        if entry.name != LOCK_NAME:
            os.replace(entry, dest / entry.name)
    log.warning("moved the previous run in %s aside to %s", run_dir, dest)
    return dest


def _holder_text(holder: dict[str, Any]) -> str:
    parts = [f"process {holder.get('pid', '?')} on host {holder.get('host', '?')}"]
    if holder.get("since"):
        parts.append(f"since {holder['since']}")
    if holder.get("command"):
        parts.append(f"({holder['command']})")
    return " ".join(parts)


class RunLock:
    """The advisory lock of one run directory (a context manager; not re-entrant).

    ``acquire()`` never waits: a directory held by another process (or another RunLock in this
    process) raises :class:`RunDirectoryInUseError`. On platforms without ``fcntl`` (Windows)
    nothing is locked and a warning says so.
    """

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._fh: IO[str] | None = None
        self.previous: dict[str, Any] | None = None  # holder details a dead process left

    def acquire(self) -> RunLock:
        """Take the lock and write this process's details into the lock file.

        Raises:
            RunDirectoryInUseError: another process holds it (the message names it).
            OSError: the directory cannot be created or the file cannot be opened.
        """
        if fcntl is None:  # pragma: no cover
            log.warning("run directories cannot be locked on this platform: make sure no other "
                        "process trains into %s", self.run_dir)
            return self
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # Opened without truncating: a process that is refused must not erase the holder's line.
        fh = open(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666), "r+",  # noqa: SIM115
                  encoding="utf-8")  # kept open while the lock is held
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fh)
            fh.close()
            raise RunDirectoryInUseError(self._in_use_message(holder), holder=holder) from None
        except BaseException:
            fh.close()
            raise
        self.previous = _read(fh) or None
        if self.previous:
            log.warning("%s: the previous run (%s) ended without releasing its lock (killed?); "
                        "the lock is free now, taking it over", self.run_dir,
                        _holder_text(self.previous))
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({
            "pid": os.getpid(), "host": socket.gethostname(),
            "since": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": _command(),
        }) + "\n")
        fh.flush()
        self._fh = fh
        return self

    def release(self) -> None:
        """Empty the lock file (a clean end) and release the lock; idempotent."""
        fh, self._fh = self._fh, None
        if fh is None:
            return
        with contextlib.suppress(OSError):
            fh.seek(0)
            fh.truncate()
            fh.flush()
            # Unlocked explicitly: forked children (DataLoader workers, persistent ones outlive
            # fit) share this open file, and closing ours alone would leave them holding it.
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        fh.close()

    @property
    def held(self) -> bool:
        return self._fh is not None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _in_use_message(self, holder: dict[str, Any]) -> str:
        who = _holder_text(holder) if holder else "another process"
        note = ""
        pid = holder.get("pid")
        if (holder.get("host") == socket.gethostname() and isinstance(pid, int)
                and not pid_running(pid)):
            note = (" That process has ended; child processes it started (data loader workers) "
                    "may hold the lock for a few more seconds: try again shortly.")
        return (f"run directory {self.run_dir} is in use by {who}: two runs training into one "
                f"directory would overwrite each other's checkpoints.{note} Wait for it to "
                "finish or stop it (it saves a checkpoint on Ctrl-C or SIGTERM), or train into "
                "another directory")


def _command() -> str:
    """This process's command line, short: ``gtx train ...``, ``python -m gantransfer ...``."""
    if not sys.argv or not sys.argv[0]:
        return ""
    program = Path(sys.argv[0])
    name = f"python -m {program.parent.name}" if program.name == "__main__.py" else program.name
    return " ".join([name, *sys.argv[1:]])


def _read(fh: IO[str]) -> dict[str, Any]:
    try:
        fh.seek(0)
        text = fh.read().strip()
        data = json.loads(text) if text else {}
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def claim(run_dir: str | os.PathLike[str], *, new_run: bool, overwrite: bool, is_main: bool,
          rank: int, device: torch.device) -> RunLock | None:
    """Rank 0 locks ``run_dir`` and, for a new run, checks that it holds no run (or moves that
    aside with ``overwrite``). Every rank learns the outcome before any other collective, so a
    refusal stops all ranks at once instead of leaving them waiting for rank 0. Returns rank 0's
    lock (None on the other ranks).

    Raises:
        RunExistsError, RunDirectoryInUseError, OSError: on rank 0 (the message says why).
        distributed.PeerFailedError: on the other ranks when rank 0 could not start.
    """
    run_dir = Path(run_dir)
    lock: RunLock | None = None
    error: BaseException | None = None
    if is_main:
        try:
            lock = RunLock(run_dir).acquire()
            held = describe_run(run_dir) if new_run else None
            if held and overwrite:
                move_aside(run_dir)
            elif held:
                raise RunExistsError(
                    f"run directory {run_dir} already holds a run ({held}); a new run "
                    "there would mix with it (load and export would pick the old, "
                    "higher-step checkpoints). Continue it with --resume auto "
                    "(fit(resume='auto')), train into another directory, or pass "
                    "--overwrite (fit(overwrite=True)) to move the old run aside to "
                    f"{run_dir.name}.replaced-<date>-<time>/ (nothing is deleted)")
        except (RunDirectoryError, OSError) as exc:
            error = exc
    try:
        failed = distributed.any_rank(error is not None, device=device)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    if failed:
        if lock is not None:
            lock.release()
        if error is not None:
            raise error
        raise distributed.PeerFailedError(
            f"rank {rank}: rank 0 could not start the run in {run_dir} (see its error)")
    return lock


def write_config(run_dir: str | os.PathLike[str], resolved: dict[str, Any]) -> None:
    """Write the run's resolved config (architecture, model, train and data sections) to
    ``RUN/config.toml``, where ``gtx train --resume`` reads it back."""
    write_toml(Path(run_dir) / "config.toml", resolved)

