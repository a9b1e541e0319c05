"""`gtx train ARCH --data DIR -o RUN`: the shared trainer from the command line."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from ._console import console

__all__ = ["DistributedRunError", "build_run", "register"]

log = logging.getLogger("gantransfer.cli")

# A rank that only lost contact with a failed peer waits this long before exiting, so torchrun
# (which stops the others as soon as one exits) sees the rank that failed first exit first and
# names it as the root cause. torchrun normally terminates the waiting rank well within it.
_PEER_GRACE_S = 10.0


# Set by `gtx train --nproc` for its workers: the parent reports the outcome once.
_UNDER_GTX = "GANTRANSFER_UNDER_GTX_NPROC"


class DistributedRunError(RuntimeError):
    """A distributed training run failed; the message names the rank that failed first."""


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
    if not spec.architecture:
        raise typer.BadParameter("name an architecture (see `gtx list`)", param_hint="ARCH")
    cls = load_class(spec.architecture)
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
    # Built from the run's seed: the same command gives the same initial (and final) weights.
    model = gantransfer.get(spec.architecture, seed=train.seed, **spec.model)
    return model, data_config, train


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
        _launch_torchrun(nproc, args, out=out)
        return
    with _reported_to_launcher():
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

    flags = {"steps": steps, "epochs": epochs, "batch_size": batch_size, "device": device,
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


@contextlib.contextmanager
def _reported_to_launcher() -> Iterator[None]:
    """Under torchrun, leave this rank's error where the launcher and `gtx --nproc` read it.

    The error goes to the file torchrun names in ``TORCHELASTIC_ERROR_FILE`` (the format of
    torch.distributed.elastic's ErrorHandler, so torchrun's summary shows the message), with the
    rank, the exact time and whether it only lost contact with a failed peer added under
    ``extraInfo.gantransfer``. A rank that lost contact waits (see ``_PEER_GRACE_S``) so that the
    rank that really failed exits first.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or "RANK" not in os.environ:
        yield
        return
    try:
        yield
    except (typer.Exit, typer.Abort):  # deliberate exit codes (130 after Ctrl-C)
        raise
    except Exception as exc:
        from ..engine.distributed import is_peer_failure

        peer_lost = is_peer_failure(exc)
        _write_error_file(exc, rank=int(os.environ["RANK"]), peer_lost=peer_lost)
        if peer_lost and "TORCHELASTIC_RUN_ID" in os.environ:
            time.sleep(_PEER_GRACE_S)
        raise


def _write_error_file(exc: BaseException, *, rank: int, peer_lost: bool) -> None:
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if not path:
        return
    now = time.time()
    data = {"message": {"message": f"{type(exc).__name__}: {exc}", "extraInfo": {
        "py_callstack": "".join(traceback.format_exception(exc)),
        "timestamp": str(int(now)),
        "gantransfer": {"rank": rank, "peer_lost": peer_lost, "time": now},
    }}}
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(data))
    except OSError as err:  # reporting must never hide the error being reported
        log.warning("could not write the error file %s for torchrun: %s", path, err)


def _first_failure(failures: dict) -> str:
    """One line naming the rank that failed first and why, from torchrun's failure records.

    Ranks that only lost contact with a failed peer are passed over while another rank has its
    own error; among the rest the earliest (by the time written in its error file) wins.
    """
    def info(failure) -> dict:
        message = failure.message if isinstance(failure.message, dict) else {}
        return (message.get("extraInfo") or {}).get("gantransfer") or {}

    def order(item):
        rank, failure = item
        extra = info(failure)
        return (bool(extra.get("peer_lost", False)), not extra, extra.get("time", 0.0),
                failure.timestamp, rank)

    rank, failure = min(failures.items(), key=order)
    message = failure.message
    if isinstance(message, dict):
        message = message.get("message", "")
    if info(failure) and message:
        return f"rank {rank} failed: {message}"
    if failure.exitcode < 0:
        return f"rank {rank} was killed by {failure.signal_name()} (out of memory?)"
    return f"rank {rank} failed with exit code {failure.exitcode}; see its log above"


def _launch_torchrun(nproc: int, args: list[str], *, out: Path) -> None:
    """Run torchrun's launcher (``--standalone --nproc-per-node N -m gantransfer train ...``).

    The launcher runs in this process, so its failure report becomes one line here instead of
    torchrun's traceback. ``--standalone`` gives a single-node rendezvous on a free local port.

    Raises:
        DistributedRunError: a worker failed; the message names the rank that failed first.
        typer.Exit: 130 on Ctrl-C, 143 on SIGTERM (the workers stop at a step boundary and
            save; torchrun's agent gives them TORCH_ELASTIC_SHUTDOWN_TIMEOUT, default 30 s),
            128+N on another signal.
    """
    from torch.distributed.elastic.multiprocessing import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    from ..engine.checkpoint import find_latest

    argv = ["--standalone", "--nproc-per-node", str(nproc), "-m", "gantransfer", "train", *args]
    log.info("starting torchrun %s", " ".join(argv))
    os.environ[_UNDER_GTX] = "1"  # inherited by the workers
    from .app import _state

    if _state["debug"]:  # --debug is a root option: pass it on as the variable main() reads
        os.environ["GTX_DEBUG"] = "1"
    try:
        run(parse_args(argv))
    except ChildFailedError as exc:
        raise DistributedRunError(_first_failure(exc.failures)) from None
    except SignalException as exc:
        if exc.sigval in (signal.SIGINT, signal.SIGTERM):
            console.print(_interrupted_line(find_latest(out), out=out, signum=exc.sigval))
        raise typer.Exit(128 + int(exc.sigval)) from None
