"""`gtx eval`: FID, KID, PSNR and SSIM of a model on held-out data, or of two image folders.

    gtx eval runs/h2z --data data/horse2zebra --metrics fid,kid -o eval.json
    gtx eval --real data/testB --fake outputs/ --metrics fid,kid,psnr,ssim

The model path generates through :func:`gantransfer.model_evaluation.evaluate_model` (the one
dispatcher of gantransfer.inference); two folders go to
:func:`gantransfer.evaluation.evaluate_folders`. The JSON report says how many images every
number used.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ._console import console, err_console
from ._options import Overwrite

if TYPE_CHECKING:  # pragma: no cover
    from ..evaluation import EvalResult

__all__ = ["register"]


def _metric_list(text: str) -> list[str]:
    from ..evaluation import METRICS

    names = [m.strip().lower() for m in text.split(",") if m.strip()]
    unknown = sorted(set(names) - set(METRICS))
    if unknown or not names:
        raise typer.BadParameter(f"unknown metric(s) {', '.join(unknown) or '(none)'}; choose "
                                 f"from {', '.join(METRICS)}", param_hint="--metrics")
    return names


@contextmanager
def _progress_bar() -> Iterator[Any]:
    """A rich bar per stage on stderr (quiet off a terminal); yields ``progress(stage, done,
    total)``."""
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=err_console, disable=not err_console.is_terminal)
    tasks: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    with bar:
        yield update


def _rows(result: EvalResult) -> Iterator[tuple[str, str, str]]:
    """(metric, value, images used) rows of one result."""
    if result.fid is not None:
        yield ("FID", f"{result.fid.value:.4f}",
               f"{result.fid.n_real} real, {result.fid.n_fake} generated")
    if result.kid is not None:
        k = result.kid
        yield ("KID", f"{k.mean:.6f} ± {k.std:.6f}",
               f"{k.n_real} real, {k.n_fake} generated; {k.subsets} subsets of {k.subset_size}")
    if result.paired is not None:
        p = result.paired
        for name in p.metrics:
            value = getattr(p, name)
            if not p.applicable or value is None:
                yield (name.upper(), "not applicable", p.reason or "no ground truth")
            else:
                text = f"{value:.4f}" + (" dB" if name == "psnr" else "")
                unmatched = f" ({p.n_unmatched} without ground truth)" if p.n_unmatched else ""
                yield (name.upper(), text, f"{p.n_pairs} pairs{unmatched}")


def _print(title: str, result: EvalResult) -> None:
    table = Table(title=title, show_header=True, header_style="bold", title_justify="left")
    for column in ("metric", "value", "images"):
        table.add_column(column)
    for row in _rows(result):
        table.add_row(*row)
    console.print(table)
    for note in result.notes:
        console.print(f"note: {note}", style="yellow", highlight=False)


def _write(out: Path, report: dict[str, Any], *, overwrite: bool) -> None:
    from .._io import atomic_write_bytes

    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it or choose another "
                              "-o file")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, (json.dumps(report, indent=2) + "\n").encode())
    console.print(f"wrote {out}", highlight=False)


def _usage(message: str, hint: str) -> typer.BadParameter:
    return typer.BadParameter(message, param_hint=hint)


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_cmd(
        source: Annotated[Path | None, typer.Argument(
            help="Run directory, checkpoint or .onnx file (omit with --real/--fake).")] = None,
        data: Annotated[Path | None, typer.Option(
            help="Dataset folder: held-out testA/testB (or test/A, test/B, A/B); for a latent "
                 "generator, the real images; for a conditional model, one folder per "
                 "label (DIR/<label>, DIR/test/<label> or DIR/test<label>).")] = None,
        direction: Annotated[str, typer.Option(
            "--direction", "--target", help="a2b, b2a, another target name, or all.")] = "all",
        metrics: Annotated[str, typer.Option(
            help="Comma list of fid, kid, psnr, ssim (PSNR/SSIM only where a ground-truth "
                 "image with the same relative path exists).")] = "fid,kid,psnr,ssim",
        out: Annotated[Path | None, typer.Option(
            "--out", "-o", help="Write the JSON report here.")] = None,
        real: Annotated[Path | None, typer.Option(
            help="Real images: with --fake, compare two folders; with a model, the target "
                 "domain's images (with --inputs).")] = None,
        fake: Annotated[Path | None, typer.Option(
            help="Generated images from any tool (with --real).")] = None,
        inputs: Annotated[Path | None, typer.Option(
            help="Images for the model to translate (instead of --data's held-out folder; "
                 "a multi-style model translates them into every --style).")
        ] = None,
        label: Annotated[list[str] | None, typer.Option(
            "--label", "--style", help="Class label / style (name or index) of a conditional "
                                       "model, evaluated against DIR/<label> (repeatable; "
                                       "default: every label).")] = None,
        samples: Annotated[int | None, typer.Option(
            min=2, help="Images a latent generator draws (default: as many as --data holds).")
        ] = None,
        device: Annotated[str, typer.Option(
            help="auto, cpu, cuda, cuda:N or mps: the model and the Inception network.")
        ] = "auto",
        batch_size: Annotated[int | None, typer.Option(
            "--batch-size", "-b", min=1, help="Images per model / feature batch (default: "
                                             "the translator's default; 50 for features).")
        ] = None,
        weights: Annotated[Path | None, typer.Option(
            help="Inception weights file (default: where `gtx weights download inception` "
                 "puts it).")] = None,
        kid_subsets: Annotated[int, typer.Option("--kid-subsets", min=1)] = 100,
        kid_subset_size: Annotated[int | None, typer.Option(
            "--kid-subset-size", min=2, help="Default: min(1000, both set sizes).")] = None,
        seed: Annotated[int, typer.Option(help="Latent noise and KID subsets.")] = 0,
        cache: Annotated[bool, typer.Option(
            "--cache/--no-cache", help="Cache the real folders' features.")] = True,
        save_fakes: Annotated[Path | None, typer.Option(
            "--save-fakes", help="Keep the generated images in this folder (one subfolder per "
                                 "direction).")] = None,
        overwrite: Overwrite = False,
    ) -> None:
        """Evaluate a model on held-out data, or two folders of images (FID, KID, PSNR, SSIM).

        FID/KID need the Inception weights (`gtx weights download inception`; nothing is
        downloaded implicitly). The report gives the number of images behind every value.
        """
        from ..evaluation import evaluate_folders
        from ..model_evaluation import evaluate_model

        names = _metric_list(metrics)
        if out is not None and out.exists() and not overwrite:
            raise _usage(f"{out} exists; pass --overwrite to replace it", "--out")
        start = time.perf_counter()
        if fake is not None:
            if source is not None or data is not None or inputs is not None:
                raise _usage("--fake compares two folders: give no model, --data or --inputs",
                             "--fake")
            if real is None:
                raise _usage("--fake needs --real (the real images to compare with)", "--real")
            with _progress_bar() as progress:
                result = evaluate_folders(real, fake, metrics=names, weights=weights,
                                          device=_device(device),
                                          batch_size=batch_size or 50, kid_subsets=kid_subsets,
                                          kid_subset_size=kid_subset_size, seed=seed,
                                          cache=cache, progress=progress)
            seconds = time.perf_counter() - start
            _print(f"{fake} vs {real}", result)
            report: dict[str, Any] = {"metrics": names, **result.to_dict(),
                                      "seconds": round(seconds, 3)}
        else:
            if source is None:
                raise _usage("give a model (run directory, checkpoint or .onnx) with --data, "
                             "or two folders with --real and --fake", "SOURCE")
            if data is None and inputs is None and real is None:
                raise _usage("give the held-out data with --data DIR (or --inputs and --real)",
                             "--data")
            with _progress_bar() as progress:
                evaluation = evaluate_model(
                    source, data=data, inputs=inputs, real=real, direction=direction,
                    metrics=names, device=device, batch_size=batch_size, samples=samples,
                    seed=seed, weights=weights, cache=cache, fakes_dir=save_fakes,
                    kid_subsets=kid_subsets, kid_subset_size=kid_subset_size,
                    labels=label or (), progress=progress,
                    on_source=lambda text: console.print(f"evaluating {text}",
                                                         highlight=False))
            seconds = time.perf_counter() - start
            for name, result in evaluation.results.items():
                plan = evaluation.targets[name]
                what = (f"{plan.inputs} -> {name}" if plan.inputs is not None
                        else f"{evaluation.generated[name]} samples of {name}")
                _print(f"{what} vs {plan.real}", result)
            report = {**evaluation.to_dict(), "seconds": round(seconds, 3)}
        console.print(f"done in {seconds:.1f} s", highlight=False)
        if out is not None:
            _write(out, report, overwrite=overwrite)


def _device(name: str) -> str:
    from ..device import resolve_device

    return str(resolve_device(name))
