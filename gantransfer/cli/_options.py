"""Options several commands share, declared once so their names and help stay the same."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from .._outputs import Existing

__all__ = ["Download", "Overwrite", "SkipExisting", "download_if_asked", "existing_from_flags"]

Overwrite = Annotated[bool, typer.Option(
    "--overwrite", help="Replace outputs that exist already (inputs are never replaced).")]
SkipExisting = Annotated[bool, typer.Option(
    "--skip-existing", help="Keep outputs that exist already and write only the missing ones "
                            "(re-run an interrupted job to finish it).")]

Download = Annotated[bool, typer.Option(
    "--download", help="An hf://user/repo source that is not cached yet is downloaded (and "
                       "checked) first; without it nothing is fetched.")]


def download_if_asked(source: object, download: bool) -> None:
    """With ``--download``, fetch an ``hf://`` source into the Hub cache (nothing otherwise);
    pretrained names are downloaded with `gtx weights download NAME`."""
    from ..pretrained import is_hub_address

    if download and is_hub_address(str(source)):
        from ..hf import download_hub

        download_hub(str(source))


def existing_from_flags(overwrite: bool, skip_existing: bool) -> Existing:
    """``error``, ``overwrite`` or ``skip``; both flags at once is a usage error (exit 2)."""
    from .._outputs import existing_mode

    try:
        return existing_mode(overwrite=overwrite, skip_existing=skip_existing)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--overwrite/--skip-existing") from None
