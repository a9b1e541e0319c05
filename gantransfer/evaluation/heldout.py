"""Where a dataset keeps its held-out images, and which domains a direction name joins.

Shared by ``gtx eval`` (:mod:`.models`) and evaluation during training
(:mod:`gantransfer.engine.evaluator`); it imports nothing above the data layer.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .features import EvaluationError

__all__ = ["held_out_folder", "own_test_split", "parse_direction"]

_DIRECTION = re.compile(r"^([a-z])2([a-z])$", re.IGNORECASE)


def parse_direction(name: str) -> tuple[str, str] | None:
    """``"a2b"`` -> ``("A", "B")``: the input and output domains; None for another name."""
    match = _DIRECTION.match(name)
    return (match.group(1).upper(), match.group(2).upper()) if match else None


def own_test_split(data: str | os.PathLike[str], domain: str) -> Path | None:
    """``data/testX`` or ``data/test/X`` when it exists (a dataset's own test split), else None."""
    data, domain = Path(data), domain.upper()
    for folder in (data / f"test{domain}", data / "test" / domain):
        if folder.is_dir():
            return folder
    return None


def held_out_folder(data: str | os.PathLike[str], domain: str) -> Path:
    """The held-out images of ``domain`` (``"A"``, ``"B"``..., or a class/style name of a
    labelled set such as ``"monet"``) in the dataset ``data``: ``data/testX``, ``data/test/X``
    or ``data/X``, the first that exists; ``X`` is ``domain`` as given, then upper-cased.

    Raises:
        EvaluationError: none exists (the message lists where it looked).
    """
    data = Path(data)
    candidates = []
    for name in dict.fromkeys((domain, domain.upper())):
        candidates += [data / f"test{name}", data / "test" / name, data / name]
    for folder in candidates:
        if folder.is_dir():
            return folder
    raise EvaluationError(
        f"no held-out images of domain {domain} in {data}: looked for "
        f"{', '.join(str(c) for c in candidates)}. Use a dataset with testA/testB (or test/A, "
        "test/B), or name the folders with --inputs and --real")
