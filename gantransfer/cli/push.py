"""`gtx push RUN --repo user/name`: share a model on the Hugging Face Hub (see gantransfer.sharing).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from ._console import console

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command("push")(push_cmd)


def push_cmd(
    run: Annotated[str, typer.Argument(
        help="Run directory or checkpoint (or a downloaded pretrained name).")],
    repo: Annotated[str, typer.Option(help="Hub repository, user/name (created if needed).")],
    onnx: Annotated[list[Path] | None, typer.Option(
        help="ONNX file(s) exported with `gtx export` to upload too (repeat the option).")
    ] = None,
    checkpoint: Annotated[bool, typer.Option(
        "--checkpoint/--no-checkpoint", help="Upload the checkpoint as model.pt (leave it out "
                                             "to share ONNX files only).")] = True,
    samples: Annotated[int, typer.Option(
        min=0, help="How many of the run's latest sample grids to upload and show.")] = 1,
    private: Annotated[bool, typer.Option("--private", help="Create the repository private.")
                       ] = False,
    token: Annotated[str | None, typer.Option(
        help="Hub token with write access (default: HF_TOKEN or `hf auth login`).")] = None,
    message: Annotated[str | None, typer.Option(help="Commit message.")] = None,
) -> None:
    """Upload a model to the Hugging Face Hub: checkpoint and/or ONNX files, the config, sample
    images and a generated model card (metrics, usage, file hashes), in one commit.

    Others then run `gtx weights download hf://user/name` and use hf://user/name wherever a
    run directory works.
    """
    from ..sharing import push

    if repo.count("/") != 1 or repo.startswith("hf:"):
        raise typer.BadParameter("use user/name (or org/name)", param_hint="--repo")
    result = push(run, repo_id=repo, onnx=onnx or [], checkpoint=checkpoint, samples=samples,
                  private=private, token=token, message=message)
    console.print(Text(f"pushed {len(result.files)} file(s) ({', '.join(result.files)}) to "
                       f"{repo}: {result.commit_url}"), highlight=False)
    console.print(Text(f"use it as: gtx weights download {result.address}, then gtx translate "
                       f"{result.address} IMAGES -o OUT"), style="bold", highlight=False)
