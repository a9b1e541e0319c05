"""`gtx train ARCH --data DIR -o RUN`: the shared trainer from the command line."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._console import console

if TYPE_CHECKING:
    from ..model import GANModel

__all__ = ["build_run", "register"]

# Set by `gtx train --nproc` for its workers: the parent reports the outcome once.
_UNDER_GTX = "GANTRANSFER_UNDER_GTX_NPROC"


def __getattr__(name: str) -> Any:
    # DistributedRunError lived here before launching moved to gantransfer.engine.launch; lazy,
    # so `gtx --help` does not import the engine.
    if name == "DistributedRunError":
        from ..engine.launch import DistributedRunError

        return DistributedRunError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register(app: typer.Typer) -> None:
    app.command("train")(train_cmd)


def build_run(arch: str | None, *, run_dir: Path, data: str | None = None,
              config_file: Path | None = None, sets: list[str] | None = None,
              flags: dict | None = None, resume: str | None = None):
    """Resolve a run from its layers and build (model, DataConfig, TrainConfig).

    Precedence, lowest first: the run directory's config.toml when resuming, ``config_file``,
    ``--set`` pairs, explicit flags (``--data``, ``--steps``...). When resuming, the model config
    comes from the run (flags need not be repeated); changing it is an error from the engine.
    """
    import gantransfer

    from ..config import build_config
    from ..data import DataConfig
    from ..engine import TrainConfig
    from ..registry import load_class
    from ..runconfig import RunSpec, field_names

    spec = RunSpec(arch)
    saved = run_dir / "config.toml"
    if resume is not None and saved.is_file():
        spec = RunSpec.from_toml(saved).merged(spec)
    if config_file is not None:
        spec = spec.merged(RunSpec.from_toml(config_file))
    architecture = spec.architecture  # (--set layers below never change it)
    if not architecture:
        raise typer.BadParameter("name an architecture (see `gtx list`)", param_hint="ARCH")
    cls = load_class(architecture)
    fields = {"model": field_names(cls.Config), "train": field_names(TrainConfig),
              "data": field_names(DataConfig)}
    spec = spec.apply_sets(sets or [], fields=fields)
    for key, value in (flags or {}).items():
        if value is not None:
            spec.train[key] = value
    if data is not None:
        spec.data["root"] = data
    if "root" not in spec.data:
        raise typer.BadParameter("no training data: pass --data DIR (or [data] root in --config)",
                                 param_hint="--data")
    if spec.train.get("steps") is None and spec.train.get("epochs") is None:
        raise typer.BadParameter("say how long to train: --steps N or --epochs N",
                                 param_hint="--steps/--epochs")
    if spec.train.get("steps") is not None and spec.train.get("epochs") is not None:
        # A later layer naming one of them replaces the other (e.g. --steps over a saved epochs).
        if flags and flags.get("steps") is not None:
            spec.train.pop("epochs")
        else:
            spec.train.pop("steps")
    train = build_config(TrainConfig, spec.train, owner="the train config")
    data_config = build_config(DataConfig, spec.data, owner="the data config")
    _labels_from_data(cls, spec.model, data_config)
    # Built from the run's seed: the same command gives the same initial (and final) weights.
    model = gantransfer.get(architecture, seed=train.seed, **spec.model)
    return model, data_config, train


def _labels_from_data(cls: type[GANModel], model: dict, data_config) -> None:
    """A conditional model's label names default to the labelled data's classes: for an
    architecture that always takes labelled data, or one asked for classes (``n_classes``)."""
    from ..data.datasets import label_names
    from ..runconfig import field_names

    if "labels" not in field_names(cls.Config) or model.get("labels"):
        return
    if getattr(cls, "data_kind", None) == "labelled" or model.get("n_classes"):
        model["labels"] = list(label_names(data_config))


def train_cmd(
    arch: Annotated[str | None, typer.Argument(help="Architecture (see `gtx list`); optional "
                                               "when resuming a run or using --config.")] = None,
    data: Annotated[str | None, typer.Option("--data", "-d", help="Dataset folder.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory.")] = Path("runs/run"),
    config: Annotated[Path | None, typer.Option("--config", "-c", help="TOML config with model, "
                                                "train and data tables.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", "-s", help="KEY=VALUE override "
                                                   "(repeatable), e.g. --set ngf=32.")] = None,
    steps: Annotated[int | None, typer.Option(help="Total training steps.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Total epochs.")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", "-b")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = None,
    precision: Annotated[str | None, typer.Option(help="fp32, bf16, fp16 (CUDA) or auto (bf16 where native, else fp32).")] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    resume: Annotated[str | None, typer.Option(help="'auto' (latest checkpoint in the run "
                                               "directory) or a checkpoint path.")] = None,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Start a new run in a run directory that holds one: the old run is "
                            "moved aside to OUT.replaced-DATE-TIME/ (never deleted).")] = False,
    skip_bad_images: Annotated[bool, typer.Option("--skip-bad-images", help="Skip and count "
                                                  "unreadable images instead of failing.")] = False,
    progress: Annotated[str, typer.Option(help="auto, bar, log or none.")] = "auto",
    logger: Annotated[list[str] | None, typer.Option(
        "--logger", help="Also log to: tensorboard (repeatable; metrics.jsonl is always "
                         "written).")] = None,
    nproc: Annotated[int | None, typer.Option(min=1, help="Data-parallel processes on this machine "
                                              "(starts torchrun; batch size is per process).")
                     ] = None,
) -> None:
    """Train an architecture on an image folder; checkpoints, samples and metrics go to --out.

    A run directory holds one run: a new run there is refused unless --overwrite (continue one
    with --resume auto). Ctrl-C or SIGTERM stop at the end of the current step and save a
    checkpoint (exit codes 130 and 143).
    """
    if overwrite and resume is not None:
        raise typer.BadParameter("--overwrite starts a new run (moving the old one aside); "
                                 "--resume continues one: give one of them",
                                 param_hint="--overwrite")
    if nproc is not None and nproc > 1 and device is not None and ":" in device:
        raise typer.BadParameter(
            f"with --nproc each process trains on its own GPU (cuda:0 .. cuda:{nproc - 1}); "
            f"use --device cuda, and CUDA_VISIBLE_DEVICES to choose which GPUs, not {device}",
            param_hint="--device")
    if nproc is not None and nproc > 1 and "LOCAL_RANK" not in os.environ:
        args = _forwarded_args(arch=arch, data=data, out=out, config=config, sets=set_ or [],
                               steps=steps, epochs=epochs, batch_size=batch_size, device=device,
                               precision=precision, seed=seed, resume=resume,
                               overwrite=overwrite, skip_bad_images=skip_bad_images,
                               progress=progress)
        args += [part for name in logger or () for part in ("--logger", name)]
        _launch(nproc, args, out=out)
        return
    from ..engine.launch import report_failures

    # Deliberate exits (130 after Ctrl-C, usage errors' own codes) are not failures to report.
    with report_failures(passthrough=(typer.Exit, typer.Abort)):
        _train(arch=arch, data=data, out=out, config=config, sets=list(set_ or []),
               steps=steps, epochs=epochs, batch_size=batch_size, device=device,
               precision=precision, seed=seed, resume=resume, overwrite=overwrite,
               skip_bad_images=skip_bad_images, progress=progress, loggers=logger)


def _train(*, arch: str | None, data: str | None, out: Path, config: Path | None,
           sets: list[str], steps: int | None, epochs: int | None, batch_size: int | None,
           device: str | None, precision: str | None, seed: int | None, resume: str | None,
           overwrite: bool, skip_bad_images: bool, progress: str,
           loggers: list[str] | None = None) -> None:
    """Train in this process (one rank of it under torchrun)."""
    from ..engine import Trainer
    from ..engine.checkpoint import find_latest
    from ._progress import training_callbacks

    flags: dict[str, Any] = {"steps": steps, "epochs": epochs, "batch_size": batch_size, "device": device,
             "precision": precision, "seed": seed}
    if steps is not None and epochs is not None:
        raise typer.BadParameter("give --steps or --epochs, not both", param_hint="--steps")
    if steps is not None:
        flags["epochs"] = None
    if loggers:
        flags["loggers"] = tuple(dict.fromkeys(loggers))
    model, data_config, train = build_run(arch, run_dir=out, data=data, config_file=config,
                                          sets=sets, flags=flags, resume=resume)
    if skip_bad_images:
        data_config.skip_bad_images = True
    callbacks = training_callbacks(progress)
    trainer = Trainer(model, data_config, train, out, callbacks=callbacks)
    try:
        trainer.fit(resume=resume, overwrite=overwrite)
    except KeyboardInterrupt as exc:
        for cb in callbacks:
            getattr(cb, "close", lambda: None)()
        signum = getattr(exc, "signum", signal.SIGINT)  # TrainingInterrupted says which
        if trainer.is_main and not os.environ.get(_UNDER_GTX):  # else `gtx --nproc` says it
            console.print(_interrupted_line(find_latest(out), out=out, step=trainer.step,
                                            signum=signum))
        raise typer.Exit(128 + signum) from None
    if not trainer.is_main:  # under torchrun only rank 0 talks
        return
    console.print(f"[green]done[/green]: {trainer.step} steps. Run directory: {out}")
    samples = sorted((out / "samples").glob("*.png"))
    if samples:
        console.print(f"latest samples: {samples[-1]}")


def _forwarded_args(*, arch: str | None, data: str | None, out: Path, config: Path | None,
                    sets: list[str], steps: int | None, epochs: int | None,
                    batch_size: int | None, device: str | None, precision: str | None,
                    seed: int | None, resume: str | None, skip_bad_images: bool,
                    progress: str, overwrite: bool = False) -> list[str]:
    """The `gtx train` arguments (minus --nproc) each torchrun worker gets."""
    args = [arch] if arch else []
    pairs = {"--data": data, "--out": out, "--config": config, "--steps": steps,
             "--epochs": epochs, "--batch-size": batch_size, "--device": device,
             "--precision": precision, "--seed": seed, "--resume": resume,
             "--progress": progress}
    for flag, value in pairs.items():
        if value is not None:
            args += [flag, str(value)]
    for pair in sets:
        args += ["--set", pair]
    if skip_bad_images:
        args.append("--skip-bad-images")
    if overwrite:
        args.append("--overwrite")
    return args


def _interrupted_line(latest: Path | None, *, out: Path, step: int | None = None,
                      signum: int = signal.SIGINT) -> str:
    what = "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
    where = f" at step {step}" if step is not None else ""
    if latest is None:
        return f"[yellow]{what}[/yellow]{where}: no checkpoint was saved"
    return (f"[yellow]{what}[/yellow]{where}: latest checkpoint {latest}; continue with "
            f"`gtx train -o {out} --resume auto`")


def _launch(nproc: int, args: list[str], *, out: Path) -> None:
    """`gtx train --nproc N`: :func:`gantransfer.engine.launch.launch` over ``gantransfer train``.

    Raises:
        DistributedRunError: a worker failed (the message names the rank that failed first).
        typer.Exit: 130 on Ctrl-C, 143 on SIGTERM (the workers stop at a step boundary and
            save), 128+N on another signal.
    """
    from ..engine.checkpoint import find_latest
    from ..engine.interrupts import TrainingInterrupted
    from ..engine.launch import launch
    from .app import _state

    env = {_UNDER_GTX: "1"}  # the workers leave the final report to this process
    if _state["debug"]:  # --debug is a root option: pass it on as the variable main() reads
        env["GTX_DEBUG"] = "1"
    try:
        launch(nproc, ["train", *args], module="gantransfer", env=env)
    except TrainingInterrupted as exc:
        if exc.signum in (signal.SIGINT, signal.SIGTERM):
            console.print(_interrupted_line(find_latest(out), out=out, signum=exc.signum))
        raise typer.Exit(exc.exit_code) from None
