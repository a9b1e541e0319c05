"""Atomic file writes: a temporary file in the same folder, fsync, then ``os.replace``.

A reader (or a crash) never sees a half-written checkpoint, export or config.

Modes: a new file gets the mode the user's umask gives (``0o666 & ~umask``, as ``open()`` would:
0644 under the usual umask 022), a replaced file keeps its mode. ``tempfile.mkstemp`` is not used
because it creates 0600 files, and ``os.replace`` would carry that mode to the destination.

Temporary files are named ``.{name}.{host}.{pid}.{token}.tmp``, so a file left by a process that
was killed mid-write can be told from one being written: :func:`remove_stale_temps` deletes the
ones whose process no longer runs on this host.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import socket
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["atomic_path", "atomic_write", "atomic_write_bytes", "pid_running",
           "remove_stale_temps", "temp_name"]

log = logging.getLogger(__name__)

# ".{name}.{host}.{pid}.{token}.tmp"; host with anything but letters, digits and '-' replaced.
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<host>[A-Za-z0-9-]+)\.(?P<pid>\d+)\.[A-Za-z0-9_-]+\.tmp$")
# What older versions wrote (tempfile.mkstemp: 8 random characters, no owner): removed by name
# only, once they are this old.
_LEGACY_MAX_AGE_S = 3600.0


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"


def temp_name(name: str) -> str:
    """A fresh temporary file name for a write of ``name`` by this process."""
    return f".{name}.{_host()}.{os.getpid()}.{secrets.token_hex(4)}.tmp"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` atomically.

    The temporary file exists (empty) when the block starts, with the mode ``path`` will have:
    the mode of the file it replaces, or the umask's for a new file. Writers should open it for
    writing (truncating), not delete and recreate it. On an exception the temporary file is
    removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp_path = path.parent / temp_name(path.name)
        try:  # 0o666: the kernel applies the umask, exactly as for open(path, "w")
            fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:  # pragma: no cover - 32 random bits collided
            continue
    os.close(fd)
    try:
        with contextlib.suppress(FileNotFoundError):  # a replaced file keeps its mode
            os.chmod(tmp_path, stat.S_IMODE(os.stat(path).st_mode))
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write(path: str | os.PathLike[str], writer: Callable[[Path], None]) -> None:
    """Call ``writer(tmp_path)`` and move the result to ``path`` atomically."""
    with atomic_path(path) as tmp:
        writer(tmp)


def pid_running(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (True when that cannot be told)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except OSError:  # pragma: no cover - e.g. a platform without signals: assume it runs
        return True
    return True


def remove_stale_temps(folder: str | os.PathLike[str], *, name: str | None = None) -> list[Path]:
    """Delete temporary files of :func:`atomic_path` left in ``folder`` by killed processes.

    A file counts as stale when the process named in it (this host, that pid) no longer runs;
    files of other hosts (a shared filesystem) and of running processes are left alone. With
    ``name`` only the temporaries of writes of ``folder/name`` are considered, including the
    unowned names older versions wrote, once they are an hour old. Returns what was deleted;
    a missing folder deletes nothing.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    host, now = _host(), time.time()
    legacy = (re.compile(rf"^\.{re.escape(name)}\.[A-Za-z0-9_]{{8}}\.tmp$")
              if name is not None else None)
    removed = []
    for entry in os.scandir(folder):
        if not (entry.name.startswith(".") and entry.name.endswith(".tmp")):
            continue
        m = _TEMP.match(entry.name)
        if m is not None:
            stale = ((name is None or m["name"] == name) and m["host"] == host
                     and not pid_running(int(m["pid"])))
        elif legacy is not None and legacy.match(entry.name):
            try:
                stale = now - entry.stat().st_mtime > _LEGACY_MAX_AGE_S
            except FileNotFoundError:
                continue
        else:
            continue
        if stale:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                log.info("removed %s, left by an interrupted write", entry.path)
                removed.append(Path(entry.path))
    return removed
