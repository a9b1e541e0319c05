"""`gtx train ARCH --data DIR -o RUN`: the shared trainer from the command line."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from ._console import console

__all__ = ["build_run", "register"]

log = logging.getLogger("gantransfer.cli")


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

    from ..data import DataConfig
    from ..engine import TrainConfig
    from ..registry import load_class, make_config
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
    model = gantransfer.get(spec.architecture, **_lists_to_tuples(cls.Config, spec.model))
    if spec.train.get("steps") is None and spec.train.get("epochs") is None:
        raise typer.BadParameter("say how long to train: --steps N or --epochs N",
                                 param_hint="--steps/--epochs")
    if spec.train.get("steps") is not None and spec.train.get("epochs") is not None:
        # A later layer naming one of them replaces the other (e.g. --steps over a saved epochs).
        if flags and flags.get("steps") is not None:
            spec.train.pop("epochs")
        else:
            spec.train.pop("steps")
    train = make_config(TrainConfig, spec.train, owner="the train config")
    data_config = make_config(DataConfig, spec.data, owner="the data config")
    return model, data_config, train


def _lists_to_tuples(config_cls: type, values: dict) -> dict:
    import dataclasses

    tuples = {f.name for f in dataclasses.fields(config_cls) if isinstance(f.default, tuple)}
    return {k: tuple(v) if k in tuples and isinstance(v, list) else v for k, v in values.items()}


def train_cmd(
    arch: Annotated[str | None, typer.Argument(help="Architecture (see `gtx list`); optional "
                                               "when resuming a run or using --config.")] = None,
    data: Annotated[str | None, typer.Option("--data", "-d", help="Dataset folder.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory.")] = Path("runs/run"),
    config: Annotated[Path | None, typer.Option("--config", "-c", help="TOML config with "
                                                "[model], [train], [data] tables.")] = None,
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
    skip_bad_images: Annotated[bool, typer.Option("--skip-bad-images", help="Skip and count "
                                                  "unreadable images instead of failing.")] = False,
    progress: Annotated[str, typer.Option(help="auto, bar, log or none.")] = "auto",
    nproc: Annotated[int | None, typer.Option(help="Data-parallel processes on this machine "
                                              "(starts torchrun; batch size is per process).")
                     ] = None,
) -> None:
    """Train an architecture on an image folder; checkpoints, samples and metrics go to --out."""
    from ..engine import Trainer

    if nproc is not None and nproc > 1 and "LOCAL_RANK" not in os.environ:
        args = _forwarded_args(arch=arch, data=data, out=out, config=config, sets=set_ or [],
                               steps=steps, epochs=epochs, batch_size=batch_size, device=device,
                               precision=precision, seed=seed, resume=resume,
                               skip_bad_images=skip_bad_images, progress=progress)
        _launch_torchrun(nproc, args)
        return
    from ._progress import training_callbacks

    flags = {"steps": steps, "epochs": epochs, "batch_size": batch_size, "device": device,
             "precision": precision, "seed": seed}
    if steps is not None and epochs is not None:
        raise typer.BadParameter("give --steps or --epochs, not both", param_hint="--steps")
    if steps is not None:
        flags["epochs"] = None
    model, data_config, train = build_run(arch, run_dir=out, data=data, config_file=config,
                                          sets=list(set_ or []), flags=flags, resume=resume)
    if skip_bad_images:
        data_config.skip_bad_images = True
    callbacks = training_callbacks(progress)
    trainer = Trainer(model, data_config, train, out, callbacks=callbacks)
    try:
        trainer.fit(resume=resume)
    except KeyboardInterrupt:
        for cb in callbacks:
            getattr(cb, "close", lambda: None)()
        console.print(f"[yellow]interrupted[/yellow]: checkpoint saved in {out}/checkpoints; "
                      f"continue with `gtx train -o {out} --resume auto`")
        raise typer.Exit(130) from None
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
                    progress: str) -> list[str]:
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
    return args


def _launch_torchrun(nproc: int, args: list[str]) -> None:
    """Run ``python -m torch.distributed.run --standalone --nproc-per-node N -m gantransfer train``.

    ``--standalone`` gives a single-node rendezvous on a free local port. Raises typer.Exit with
    torchrun's exit status when a worker fails (torchrun has printed which rank and why).
    """
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           "--nproc-per-node", str(nproc), "-m", "gantransfer", "train", *args]
    log.info("starting %s", " ".join(cmd))
    rc = subprocess.run(cmd, check=False).returncode
    if rc != 0:
        raise typer.Exit(rc)
