"""Options several commands share, declared once so their names and help stay the same."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from .._outputs import Existing

__all__ = ["Overwrite", "SkipExisting", "existing_from_flags"]

Overwrite = Annotated[bool, typer.Option(
    "--overwrite", help="Replace outputs that exist already (inputs are never replaced).")]
SkipExisting = Annotated[bool, typer.Option(
    "--skip-existing", help="Keep outputs that exist already and write only the missing ones "
                            "(re-run an interrupted job to finish it).")]


def existing_from_flags(overwrite: bool, skip_existing: bool) -> Existing:
    """``error``, ``overwrite`` or ``skip``; both flags at once is a usage error (exit 2)."""
    from .._outputs import existing_mode

    try:
        return existing_mode(overwrite=overwrite, skip_existing=skip_existing)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--overwrite/--skip-existing") from None
