"""The rule every command that writes files follows: what it may replace.

1. An output never replaces one of the command's inputs (not even with ``overwrite``).
2. An output that already exists is an error (``existing="error"``), unless the caller says to
   replace it (``"overwrite"``) or to leave it and skip that piece of work (``"skip"``: a folder
   job that was interrupted can be run again to finish it; writes are atomic, so an existing
   output is a complete one).

``gtx translate``, ``gtx generate``, ``gtx export`` and ``gtx demo`` check their planned outputs
with :func:`select_outputs` before any work starts, so a refused run writes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

__all__ = ["EXISTING_MODES", "OutputExistsError", "OutputIsInputError", "existing_mode",
           "select_outputs"]

Existing = Literal["error", "overwrite", "skip"]
EXISTING_MODES: tuple[str, ...] = ("error", "overwrite", "skip")
_SHOWN = 3  # paths named in a message; the rest are counted


class OutputExistsError(FileExistsError):
    """Outputs exist already and the caller did not say to replace or skip them."""


class OutputIsInputError(ValueError):
    """An output would replace one of the inputs."""


def existing_mode(*, overwrite: bool, skip_existing: bool) -> Existing:
    """The mode for ``--overwrite`` / ``--skip-existing``; ``ValueError`` for both at once."""
    if overwrite and skip_existing:
        raise ValueError("--overwrite and --skip-existing exclude each other: replace the "
                         "existing outputs, or keep them and write only the missing ones")
    return "overwrite" if overwrite else "skip" if skip_existing else "error"


def _key(path: Path) -> tuple[int, int] | str:
    """What identifies a file: (device, inode) when it exists (hard links, case-insensitive
    filesystems), else the absolute normalised path."""
    try:
        st = os.stat(path)
    except OSError:
        return os.path.normcase(os.path.abspath(path))
    return (st.st_dev, st.st_ino)


def _listed(paths: Sequence[Path]) -> str:
    more = f" and {len(paths) - _SHOWN} more" if len(paths) > _SHOWN else ""
    return ", ".join(str(p) for p in paths[:_SHOWN]) + more


def select_outputs(outputs: Sequence[str | os.PathLike[str]], *,
                   inputs: Iterable[str | os.PathLike[str]] = (),
                   existing: Existing = "error", what: str = "output") -> list[bool]:
    """Which of ``outputs`` to write, by the rule of this module (one flag per output).

    Args:
        outputs: the files (or folders) the job would write.
        inputs: the files it reads; an output that is one of them is always refused.
        existing: ``"error"``, ``"overwrite"`` (existing outputs are written again) or
            ``"skip"`` (their flag is False).
        what: the noun used in messages ("output", "ONNX file"...).

    Returns:
        ``[True, False, ...]``: False for an existing output that is skipped.

    Raises:
        OutputIsInputError: an output is one of ``inputs`` (the message names both).
        OutputExistsError: outputs exist and ``existing`` is ``"error"``; the message names
            them and says how to replace or keep them.
        ValueError: an unknown ``existing`` mode.
    """
    if existing not in EXISTING_MODES:
        raise ValueError(f"existing must be one of {', '.join(EXISTING_MODES)}, got {existing!r}")
    paths = [Path(p) for p in outputs]
    sources = {_key(Path(p)): Path(p) for p in inputs}
    clashes = [(p, sources[k]) for p in paths if (k := _key(p)) in sources]
    if clashes:
        out, src = clashes[0]
        raise OutputIsInputError(
            f"{len(clashes)} {what}(s) would replace input files (e.g. {out} is the input "
            f"{src}); outputs never overwrite inputs: write them to another folder or name")
    present = [os.path.lexists(p) for p in paths]
    if existing == "error" and any(present):
        found = [p for p, here in zip(paths, present, strict=True) if here]
        raise OutputExistsError(
            f"{len(found)} {what}(s) exist already: {_listed(found)}. Nothing was written. Pass "
            "--overwrite to replace them, --skip-existing to keep them and write only the "
            "missing ones, or choose another output")
    if existing == "skip":
        return [not here for here in present]
    return [True] * len(paths)
