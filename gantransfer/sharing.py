"""Sharing a model on the Hugging Face Hub: ``gtx push RUN --repo user/name``.

:func:`push` stages what others need to use the model and uploads it in one commit with
``huggingface_hub`` (the optional extra ``hub``):

* ``model.pt``: the run's latest checkpoint (or the checkpoint given), unless left out; it holds
  the architecture and its config, so ``gantransfer.load`` rebuilds the model from it alone;
* the ONNX files given (``--onnx``, exported with ``gtx export``): they run without PyTorch;
* ``config.toml`` (the run's resolved config) when the run has one;
* ``samples/``: the latest sample grid(s) of the run;
* ``README.md``: a generated model card (what it is, how to use it, final metrics, samples,
  file hashes).

Others then use ``hf://user/name`` wherever a run directory works, after ``gtx weights download
hf://user/name`` (see :mod:`gantransfer.hf`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._download import sha256_file
from ._version import __version__

__all__ = ["PushResult", "model_card", "push"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PushResult:
    """What :func:`push` uploaded: the repository's address, the commit and the files."""

    repo_id: str
    commit_url: str
    commit: str
    files: list[str]

    @property
    def address(self) -> str:
        return f"hf://{self.repo_id}"


def _run_dir_of(checkpoint: Path, given: Path) -> Path | None:
    """The run directory a checkpoint belongs to (``RUN/checkpoints/step_*.pt``), if any."""
    if given.is_dir():
        return given
    parent = checkpoint.parent
    return parent.parent if parent.name == "checkpoints" else None


def final_metrics(run_dir: Path | None) -> tuple[int | None, dict[str, float]]:
    """The last value of each metric in ``RUN/metrics.jsonl`` and the last step (or None, {})."""
    path = run_dir / "metrics.jsonl" if run_dir else None
    if path is None or not path.is_file():
        return None, {}
    last: dict[str, float] = {}
    step = None
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut by a crash: the others still count
        if not isinstance(record, dict):
            continue
        step = record.get("step", step)
        last.update({k: float(v) for k, v in record.items()
                     if isinstance(v, int | float) and k not in ("step", "epoch", "time")})
    return step, last


def model_card(*, repo_id: str, architecture: str, config: dict[str, Any], step: int | None,
               metrics: dict[str, float], samples: Sequence[str], files: dict[str, str],
               targets: Sequence[str]) -> str:
    """The README.md of a pushed model: front matter the Hub reads, then what a user needs."""
    lines = ["---", "library_name: gantransfer", "pipeline_tag: image-to-image", "tags:",
             "- gantransfer", "- gan", f"- {architecture}", "---", "",
             f"# {repo_id}", "",
             f"A `{architecture}` model trained with [gantransfer](https://github.com/) "
             f"{__version__}" + (f", {step} steps." if step is not None else "."), "",
             "## Use it", "", "```bash", "pip install 'gantransfer[hub]'",
             f"gtx weights download hf://{repo_id}",
             f"gtx translate hf://{repo_id} photos/ -o styled/", "```", "",
             "```python", "import gantransfer",
             f'model = gantransfer.load("hf://{repo_id}")  # after the download above', "```", ""]
    if targets:
        lines += [f"Targets (directions): {', '.join(f'`{t}`' for t in targets)}.", ""]
    if metrics:
        lines += ["## Metrics", "", "Last logged value of each metric"
                  + (f" (step {step})" if step is not None else "") + ":", "",
                  "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4g} |" for k, v in sorted(metrics.items())]
        lines.append("")
    if samples:
        lines += ["## Samples", ""] + [f"![{Path(s).stem}]({s})" for s in samples] + [""]
    if config:
        lines += ["## Model config", "", "```json", json.dumps(config, indent=2, sort_keys=True),
                  "```", ""]
    lines += ["## Files", "", "| file | SHA-256 |", "|---|---|"]
    lines += [f"| `{name}` | `{digest}` |" for name, digest in sorted(files.items())]
    lines += ["", "`model.pt` is loaded weights-only (no pickled code runs); `gtx weights "
              "download` checks every file against the sizes and hashes the Hub lists.", ""]
    return "\n".join(lines)


def push(run: str | os.PathLike[str], *, repo_id: str, onnx: Sequence[str | os.PathLike[str]] = (),
         checkpoint: bool = True, samples: int = 1, private: bool = False,
         token: str | None = None, message: str | None = None) -> PushResult:
    """Upload a run (or checkpoint) to the Hub repository ``repo_id`` (created if needed).

    Args:
        run: a run directory, a checkpoint, or a downloaded pretrained name.
        onnx: ONNX files to upload beside (or, with ``checkpoint=False``, instead of) the
            checkpoint.
        samples: how many of the latest sample grids to include (0: none).
        private: create the repository private.
        token: a Hub token (default: ``HF_TOKEN`` or the stored login).
        message: the commit message.

    Raises:
        ImportError: huggingface_hub is not installed.
        ValueError: nothing to upload (no checkpoint and no ONNX file).
        FileNotFoundError: an ONNX file does not exist.
        CheckpointError: the checkpoint cannot be read.
        huggingface_hub errors: authentication, network.
    """
    from .engine.checkpoint import read_checkpoint, resolve
    from .hf import endpoint, require_hub

    hub = require_hub()
    onnx_files = [Path(p) for p in onnx]
    for path in onnx_files:
        if not path.is_file():
            raise FileNotFoundError(f"ONNX file {path} does not exist (export it first: gtx "
                                    f"export {run} --onnx {path})")
    if not checkpoint and not onnx_files:
        raise ValueError("nothing to upload: give --onnx FILE with --no-checkpoint")
    ckpt_path = resolve(run)
    data = read_checkpoint(ckpt_path)  # weights-only, checksum verified
    arch = str(data.get("architecture"))
    run_dir = _run_dir_of(ckpt_path, Path(run))
    step, metrics = final_metrics(run_dir)
    with tempfile.TemporaryDirectory(prefix="gtx-push-") as tmp:
        stage = Path(tmp)
        if checkpoint:
            shutil.copyfile(ckpt_path, stage / "model.pt")
        for path in onnx_files:
            shutil.copyfile(path, stage / path.name)
        if run_dir and (run_dir / "config.toml").is_file():
            shutil.copyfile(run_dir / "config.toml", stage / "config.toml")
        grids = sorted((run_dir / "samples").glob("*.png"))[-samples:] if (
            run_dir and samples > 0 and (run_dir / "samples").is_dir()) else []
        for grid in grids:
            (stage / "samples").mkdir(exist_ok=True)
            shutil.copyfile(grid, stage / "samples" / grid.name)
        hashes = {p.relative_to(stage).as_posix(): sha256_file(p)
                  for p in sorted(stage.rglob("*")) if p.is_file()}
        targets = sorted(p.stem for p in onnx_files)
        (stage / "README.md").write_text(model_card(
            repo_id=repo_id, architecture=arch, config=data.get("config") or {}, step=step,
            metrics=metrics, samples=[f"samples/{g.name}" for g in grids], files=hashes,
            targets=targets))
        api = hub.HfApi(endpoint=endpoint(), token=token)
        api.create_repo(repo_id, private=private, exist_ok=True)
        info = api.upload_folder(repo_id=repo_id, folder_path=stage,
                                 commit_message=message or f"gtx push: {arch} model")
        files = sorted(p.relative_to(stage).as_posix() for p in stage.rglob("*") if p.is_file())
    log.info("pushed %d file(s) to %s", len(files), repo_id)
    return PushResult(repo_id=repo_id, commit_url=str(info.commit_url), commit=str(info.oid),
                      files=files)
