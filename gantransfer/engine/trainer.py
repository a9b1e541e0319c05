"""The Trainer: runs any GANModel with checkpoints, exact resume, samples and metrics.

The loop is deliberately plain: for each batch, call ``model.train_step(batch, ctx)``, step the
LR schedulers, then log / sample / checkpoint on their schedules. The losses a step returns stay
tensors on the device: they are read to the host together, once per ``log_every`` steps (one
``tolist()``, see :func:`read_losses`), not once per loss per step, so logging adds no host sync
to a step. Everything that must survive a
restart (weights, optimizer/scheduler/scaler state, EMA, RNG states, data position, the fixed
sample inputs) goes into the checkpoint, so ``fit(resume="auto")`` continues bit-identically.

Beside the loop: the checkpoint's state layout (:mod:`.checkpoint`), Ctrl-C and SIGTERM
(:mod:`.interrupts`), the run directory's lock and config (:mod:`.rundir`), the metrics file
(:class:`~.callbacks.MetricsWriter`), DDP (:mod:`.distributed`) and the debug dump (:mod:`.debug`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from ..config import to_plain
from ..device import resolve_device
from ..nn import parse_policy
from ..precision import Precision
from . import checkpoint as ckpt
from . import debug, distributed, loggers, rundir
from .ada import AugmentStrength
from .callbacks import Callback, LogCallback, MetricsWriter
from .config import TrainConfig
from .context import EngineContext, TrainingDivergedError
from .ema import EMA
from .evaluator import HeldOutEvaluator, best_path
from .grid import save_grid
from .interrupts import StopSignals, TrainingInterrupted
from .sampler import ResumableSampler, mix_seed

if TYPE_CHECKING:  # pragma: no cover
    from torch.utils.data import Dataset

    from ..data import DataConfig
    from ..model import GANModel

__all__ = ["Trainer", "TrainingInterrupted"]

log = logging.getLogger(__name__)


class KeyedDataset(Protocol):
    """What the Trainer reads from a dataset it is given: its length, and items by
    ``(index, seed)`` keys (the seed makes random augmentations resumable)."""

    def __len__(self) -> int: ...

    def __getitem__(self, key: Any) -> Any: ...


class Trainer:
    """Train ``model`` on ``data`` as ``config`` says, writing outputs to ``run_dir``.

    Args:
        model: a GANModel (``model.arch_name`` set, e.g. by ``gantransfer.get``).
        data: a Dataset whose ``__getitem__`` takes ``(index, seed)`` keys, or a DataConfig.
        config: a TrainConfig.
        run_dir: output folder (created).
        callbacks: hooks; None means ``[LogCallback()]``. (``metrics.jsonl`` is written by a
            :class:`~gantransfer.engine.callbacks.MetricsWriter` that always runs first.)

    Attributes a progress display reads: ``step``, ``start_step``, ``total_steps``, ``epoch``,
    ``steps_per_epoch``, ``latest_losses``, ``its_per_sec``; ``is_main`` is True on rank 0.

    Raises (from ``__init__``): ValueError for fp16 on CPU/MPS or an unnamed model.
    """

    def __init__(self, model: GANModel, data: KeyedDataset | DataConfig, config: TrainConfig,
                 run_dir: str | os.PathLike[str], *,
                 callbacks: Sequence[Callback] | None = None) -> None:
        self.model = model
        self.config = config
        self.run_dir = Path(run_dir)
        self.callbacks = list(callbacks) if callbacks is not None else [LogCallback()]
        self.arch_name = getattr(model, "arch_name", None)
        if not self.arch_name:
            raise ValueError("model.arch_name is not set; build models with gantransfer.get(name)")
        # Launched by torchrun (WORLD_SIZE > 1): join the process group; on CUDA the device
        # becomes cuda:LOCAL_RANK.
        self._owns_group, self.device = distributed.init_from_env(resolve_device(config.device))
        # The precision actually used ("auto" resolved against this device); cfg keeps the ask.
        self.precision = Precision.resolve(config.precision, self.device, job="training")
        dist = torch.distributed
        initialised = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if initialised else 0
        self.world_size = dist.get_world_size() if initialised else 1
        self.is_main = self.rank == 0
        self.data_config = None
        if not (hasattr(data, "resolved") and hasattr(data, "root")):
            self.dataset = data  # a Dataset taking (index, seed) keys
        else:  # a DataConfig: the data layer is imported only when used
            from ..data import build_dataset

            defaults = model.data_defaults()
            self.data_config = data.resolved(defaults)
            # The model's size rules are checked here, before anything is written.
            self.dataset = build_dataset(model.data_kind, self.data_config, defaults=defaults,
                                         size_contract=model.training_size_contract())
        _check_labels(model, self.dataset)
        # Before the sampler: evaluation may take held-out images out of the training set.
        self.evaluator: HeldOutEvaluator | None = None
        if config.eval_every:
            self.evaluator = HeldOutEvaluator.prepare(model, self.dataset, self.data_config,
                                                      config)
        self.best: dict[str, Any] | None = None  # the best evaluation so far (in checkpoints)
        self.sampler = ResumableSampler(len(self.dataset), seed=config.seed,
                                        shuffle=config.shuffle, rank=self.rank,
                                        world_size=self.world_size)
        n = self.sampler.num_samples
        self.steps_per_epoch = n // config.batch_size if config.drop_last else -(-n // config.batch_size)
        if self.steps_per_epoch < 1:
            raise ValueError(
                f"the dataset has {len(self.dataset)} samples, fewer than batch_size "
                f"{config.batch_size} per process with drop_last; lower batch_size"
            )
        self.total_steps = config.steps or config.epochs * self.steps_per_epoch  # type: ignore[operator]
        self.step = self.start_step = self.epoch = self.position = 0
        self._last_losses: Mapping[str, float] = {}  # the latest step's, read on demand
        self._unread: list[dict[str, Any]] = []  # train_step outputs since the last log line
        self.its_per_sec = 0.0
        self.consecutive_nonfinite = 0
        self.sample_inputs: Any = None
        self.wrapper: distributed.NetWrapper | None = None
        self.interrupts = StopSignals(world_size=self.world_size)
        self._hooks: list[Callback] = [MetricsWriter(), *debug.from_env(),
                                       *loggers.from_config(config), *self.callbacks]
        self._control: Any = None  # short-timeout group for the Ctrl-C checkpoint (DDP only)
        self._in_step = False  # True while train_step runs: the state is half-updated then
        self._stopped_gracefully = False  # all ranks stopped together on Ctrl-C (and saved)
        self._saved_step = -1  # the step of the last checkpoint this run wrote
        self._lock: rundir.RunLock | None = None  # the run directory's lock (rank 0, during fit)

    @property
    def latest_losses(self) -> Mapping[str, float]:
        """The latest step's losses as floats. Reading a value waits for the device (a host
        sync); the keys alone do not. Empty before the first step."""
        return self._last_losses

    # -- public ----------------------------------------------------------------------------
    def fit(self, resume: str | os.PathLike[str] | None = None, *, overwrite: bool = False
            ) -> GANModel:
        """Train until ``total_steps``; returns the model.

        ``resume``: None starts a new run, in a run directory that holds none (see
        ``overwrite``); ``"auto"`` continues the latest checkpoint in run_dir (or starts fresh
        when there is none); a path continues that checkpoint or run dir.
        ``overwrite``: a new run in a directory that holds one moves the old run aside to a
        sibling ``NAME.replaced-YYYYmmdd-HHMMSS`` directory first (nothing is deleted).

        The run directory is locked while ``fit`` runs (by rank 0 under DDP): see
        :mod:`gantransfer.engine.rundir`.

        Raises:
            RunExistsError: ``resume`` is None, ``overwrite`` is False, and run_dir holds a run
                (checkpoints, metrics or samples).
            RunDirectoryInUseError: another process trains into run_dir (the message names it).
            ValueError: ``overwrite`` together with ``resume``.
            CheckpointError: unreadable checkpoint or one of another architecture/config.
            TrainingDivergedError: ``max_nonfinite_steps`` consecutive non-finite steps (the
                last good checkpoint is kept; the diverged state is not saved).
            TrainingInterrupted: (a KeyboardInterrupt) on Ctrl-C (SIGINT) or SIGTERM, training
                stops at the end of the current step on every rank, a checkpoint of that state
                is saved (all ranks' RNG states included), and this is raised. A second Ctrl-C
                stops at once; a checkpoint is then written only if no step was half done (a
                second SIGTERM changes nothing). A KeyboardInterrupt raised another way (e.g. by
                a callback) is treated like the second Ctrl-C.
        """
        if overwrite and resume is not None:
            raise ValueError("overwrite starts a new run (moving the old one aside); it cannot "
                             "be combined with resume")
        clean = False  # every rank got through: the group can be torn down collectively
        self._stopped_gracefully = False
        previous = self.interrupts.install()
        try:
            self._lock = rundir.claim(self.run_dir, new_run=resume is None, overwrite=overwrite,
                                      is_main=self.is_main, rank=self.rank, device=self.device)
            self._fit(resume)
            clean = True
        except KeyboardInterrupt:
            clean = self._stopped_gracefully
            raise
        except BaseException as exc:
            if self.world_size > 1:  # say which rank and why, in this rank's own log
                if distributed.is_peer_failure(exc):
                    log.error("rank %d of %d stopped at step %d: lost contact with another rank "
                              "(see the first failing rank's error): %s", self.rank,
                              self.world_size, self.step, exc)
                else:
                    log.error("rank %d of %d failed at step %d: %s: %s", self.rank,
                              self.world_size, self.step, type(exc).__name__, exc)
            raise
        finally:
            self.interrupts.restore(previous)
            if self._lock is not None:  # the last thing this run does in its directory
                self._lock.release()
                self._lock = None
            if self.wrapper is not None:  # always hand back the plain nets, even on error
                self.wrapper.unwrap()
                self.ctx.wrapper = self.wrapper = None
            # After a failure the group is left to process exit: tearing it down while a peer
            # may be blocked in a collective can hang (nccl), and closing the connections
            # before this rank has reported its own error would let the peers' "connection
            # closed" errors race it to the launcher, which names the first exit as the cause.
            if clean and self._owns_group and distributed.is_active():
                torch.distributed.destroy_process_group()
                self._owns_group = False
            self._control = None
        return self.model

    def save(self) -> Path | None:
        """Write a checkpoint of the current state, rotate old ones, notify callbacks.

        In a distributed run every rank must call this (the RNG states of all ranks are
        gathered); rank 0 alone writes, and the others get None.
        """
        state = self._state()
        self._saved_step = self.step  # on every rank: the Ctrl-C path must agree on it
        return self._write_checkpoint(state) if self.is_main else None

    def write_samples(self) -> Path:
        """Write ``samples/step_XXXXXXX.png`` from the fixed sample inputs (EMA weights if on)."""
        # fork_rng: sampling must not consume the training RNG, or resume would not be exact.
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.no_grad(), self.unwrapped(), \
                self.model.evaluating():
            inputs = _to_device(self.sample_inputs, self.device)
            ema = self.ema.applied(self.model.nets) if self.ema is not None else None
            with ema or contextlib.nullcontext():
                rows = self.model.sample(inputs)
        path = save_grid(rows, self.run_dir / "samples" / f"step_{self.step:07d}.png")
        for cb in self._hooks:
            cb.on_samples(self, path)
        return path

    def evaluate(self) -> dict[str, Any] | None:
        """Evaluate on the held-out images now (``eval_every`` must be set); every rank calls
        it. Rank 0 computes, logs the record (metrics.jsonl, loggers) and, on an improvement,
        writes ``checkpoints/best.pt``; returns the record (None on other ranks).

        Runs in eval mode with the EMA weights (if on) and a forked RNG, so the training
        state and its random numbers are untouched (resume stays exact).
        """
        if self.evaluator is None:
            raise ValueError("evaluate() needs TrainConfig.eval_every > 0")
        record, new_best = None, None
        if self.is_main:
            devices = [self.device.index or 0] if self.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices), torch.no_grad(), self.unwrapped(), \
                    self.model.evaluating():
                ema = self.ema.applied(self.model.nets) if self.ema is not None else None
                with ema or contextlib.nullcontext():
                    record = self.evaluator.evaluate(self.model, step=self.step)
            new_best = self.evaluator.improved(record, self.best)
        if distributed.any_rank(new_best is not None, device=self.device):
            self.best = new_best if new_best is not None else self.best  # rank 0 decides
            state = self._state()  # every rank: RNG states are gathered
            if self.is_main and new_best is not None:
                path = ckpt.save_checkpoint(state, best_path(self.run_dir))
                log.info("best %s so far: %.6g at step %d (%s)", new_best["metric"],
                         new_best["value"], self.step, path)
        if record is not None:
            record["best"] = self.best
            for cb in self._hooks:
                cb.on_eval(self, record)
        return record

    def unwrapped(self) -> contextlib.AbstractContextManager[Any]:
        """Context in which ``model.nets`` holds the plain modules (no DDP wrappers)."""
        return self.wrapper.unwrapped() if self.wrapper is not None else contextlib.nullcontext()

    # -- the run ---------------------------------------------------------------------------
    def _fit(self, resume: str | os.PathLike[str] | None) -> None:
        self._setup()
        found = ckpt.resume_point(resume, self.run_dir, move_damaged=self.is_main)
        if found is not None:
            path, data = found
            ckpt.restore_training_state(self, data)
            log.info("resumed from %s at step %d (epoch %d)", path, self.step, self.epoch)
        else:
            self._seed()
        if self.world_size > 1:
            # After restore: DDP broadcasts rank 0's weights and buffers when it wraps, so a
            # fresh run starts from one initialisation on every rank.
            self.wrapper = distributed.NetWrapper(self.model.nets, device=self.device,
                                                  sync_batchnorm=self.config.sync_batchnorm)
            self.wrapper.wrap()
            self.ctx.wrapper = self.wrapper
            self._control = distributed.control_group()
        self.start_step = self.step
        if self.sample_inputs is None:
            self.sample_inputs = self._make_sample_inputs()
        if self.is_main:
            rundir.write_config(self.run_dir, self._resolved_config())
        for cb in self._hooks:
            cb.on_train_start(self)
        if self.is_main and self.step == 0 and self.config.sample_every:
            self.write_samples()  # where the run starts, before any step (0: only at the end)
        try:
            self._loop()
        except KeyboardInterrupt:
            if self._stopped_gracefully:
                raise  # _stop_if_requested saved already, with every rank
            # Any other interrupt (a second Ctrl-C, one raised by a callback): no collectives,
            # other ranks may be gone. Rank 0 saves its own state, RNG included, unless it was
            # cut off inside train_step (half-updated nets must not be saved as a step).
            if self._in_step:
                log.warning("interrupted inside step %d: no checkpoint written (the latest one "
                            "is kept)", self.step + 1)
            elif self.is_main and self.step > self.start_step and self._saved_step != self.step:
                self._write_checkpoint(self._state(gather=False))
            raise
        # Rank 0 decides (it alone sees the files); every rank then takes part in save().
        missing = self.is_main and not ckpt.checkpoint_path(self.run_dir, self.step).exists()
        if distributed.any_rank(missing, device=self.device) and self.consecutive_nonfinite == 0:
            self.save()
        if self.is_main and (self.config.sample_every == 0 or self.step % self.config.sample_every):
            self.write_samples()
        distributed.barrier()  # nobody leaves (and tears the group down) while rank 0 writes
        for cb in self._hooks:
            cb.on_train_end(self)

    def _loop(self) -> None:
        cfg = self.config
        sums: dict[str, float] = {}
        count, t_log = 0, time.perf_counter()
        while self.step < self.total_steps:
            self.sampler.set_epoch(self.epoch)
            self.sampler.set_position(self.position)
            for batch in self.loader:
                self._train_one(batch)
                count += 1
                step_epoch = self.epoch
                if self.position >= self.steps_per_epoch * cfg.batch_size or (
                        self.position >= self.sampler.num_samples):
                    self.epoch, self.position = self.epoch + 1, 0  # the epoch is complete
                last = self.step >= self.total_steps
                if self.step % cfg.log_every == 0 or last:
                    # The interval's losses, read in one go; summed in step order as floats
                    # (the same numbers as reading each step's losses with float()).
                    for losses in read_losses(self._unread):
                        for k, v in losses.items():
                            sums[k] = sums.get(k, 0.0) + v
                    self._unread = []
                    now = time.perf_counter()
                    self.its_per_sec = count / max(now - t_log, 1e-9)
                    # Logged losses are the mean over ranks (every rank logs at the same steps).
                    sums = distributed.all_reduce_mean(sums, device=self.device)
                    self._log({k: v / count for k, v in sums.items()}, step_epoch)
                    sums, count, t_log = {}, 0, now
                if self.is_main and cfg.sample_every and self.step % cfg.sample_every == 0:
                    self.write_samples()
                if cfg.eval_every and self.step % cfg.eval_every == 0:
                    self.evaluate()  # before the checkpoint, which then records the best
                # No checkpoint during a non-finite streak: forward passes may already have put
                # NaNs into buffers (BatchNorm statistics), so the last good one is kept instead.
                due = last or (cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0)
                if due and self.consecutive_nonfinite == 0:
                    self.save()  # every rank: it gathers RNG states; rank 0 writes
                if not last:  # a Ctrl-C during the last step just lets the run finish
                    self._stop_if_requested()
                if last or self.position == 0:
                    break

    def _train_one(self, batch: dict[str, Any]) -> None:
        ctx = self.ctx
        ctx.step, ctx.epoch, ctx.skipped_this_step = self.step, self.epoch, False
        batch = {k: v.to(self.device, non_blocking=self._pinned) if torch.is_tensor(v) else v
                 for k, v in batch.items()}
        self._in_step = True
        out = self.model.train_step(batch, ctx)
        for group, scheduler in self.schedulers.items():
            # A group whose optimizer has never stepped (a skipped non-finite first step, or a
            # model that updates D every other step) does not advance its schedule yet: torch
            # warns about scheduler-before-optimizer and would drop the first LR value. The
            # counter is saved in checkpoints, so resumed runs make the same choice.
            if ctx.optimizer_steps.get(group, 0) > 0:
                scheduler.step()
        self.step += 1
        images = next(iter(batch.values())).shape[0]
        self.position += images
        # ADA: every d_augment_interval steps p moves (one host read, a collective under DDP).
        self.augment.end_step(step=self.step, images=images)
        self._in_step = False
        # Kept on the device: read at the next log line (or when a callback reads a value).
        raw = {k: v.detach() if torch.is_tensor(v) else v for k, v in (out or {}).items()}
        self._unread.append(raw)
        self._last_losses = StepLosses(raw)
        for cb in self._hooks:
            cb.on_step_end(self, self._last_losses)
        if ctx.skipped_this_step:
            self.consecutive_nonfinite += 1
            if self.consecutive_nonfinite >= self.config.max_nonfinite_steps:
                raise TrainingDivergedError(
                    f"{self.consecutive_nonfinite} consecutive steps had non-finite losses or "
                    f"gradients (last at step {self.step}); training stopped. The last good "
                    f"checkpoint in {self.run_dir / 'checkpoints'} is kept. Lower the learning "
                    "rate, set grad_clip, or use precision='fp32'."
                )
        else:
            self.consecutive_nonfinite = 0

    def _log(self, losses: dict[str, float], epoch: int) -> None:
        record = {
            "step": self.step, "epoch": epoch, "losses": losses,
            "lr": {g: o.param_groups[0]["lr"] for g, o in self.optimizers.items()},
            "its": round(self.its_per_sec, 4), "nonfinite": self.ctx.nonfinite_total,
            "time": round(time.time(), 3),
        }
        if self.augment.logged:  # the strength of d_augment, when it is not simply 1
            record["aug_p"] = self.augment.p
            if self.augment.r_t is not None:
                record["aug_rt"] = self.augment.r_t
        for cb in self._hooks:  # MetricsWriter first: it appends the line to metrics.jsonl
            cb.on_log(self, record)

    def _stop_if_requested(self) -> None:
        """At a step boundary: if any rank got Ctrl-C or SIGTERM, all save together and raise
        :class:`TrainingInterrupted` (for SIGTERM if any rank got it)."""
        signum = self.interrupts.agreed(self.device)
        if not signum:
            return
        self.interrupts.requested_at = self.interrupts.requested_at or time.monotonic()
        if self.step > self.start_step and self._saved_step != self.step:
            try:
                state = self._state(group=self._control)
            except (RuntimeError, ValueError) as exc:  # a peer vanished meanwhile
                log.warning("rank %d: could not collect the other ranks' RNG states (%s); "
                            "saving without them (the others re-derive theirs on resume)",
                            self.rank, exc)
                state = self._state(gather=False)
            if self.is_main:
                self._write_checkpoint(state)
        log.info("rank %d: stopped by %s at step %d", self.rank, signal.Signals(signum).name,
                 self.step)
        self._stopped_gracefully = True
        raise TrainingInterrupted(signum)

    # -- setup and state -------------------------------------------------------------------
    def _setup(self) -> None:
        from ..data import loader_kwargs

        cfg, model = self.config, self.model
        model.to(self.device).train()
        self.groups = model.optimizer_groups()
        self.optimizers = model.make_optimizers()
        if sorted(self.optimizers) != sorted(self.groups):
            raise ValueError(f"{type(model).__name__}.make_optimizers() returned groups "
                             f"{sorted(self.optimizers)}, optimizer_groups() says {sorted(self.groups)}")
        self.schedulers = model.make_schedulers(self.optimizers, steps_per_epoch=self.steps_per_epoch)
        # One scaler per group: groups' losses have different magnitudes, and a skipped G step
        # must not lower D's scale.
        self.scalers = ({g: torch.amp.GradScaler(self.device.type) for g in self.optimizers}
                        if self.precision.needs_grad_scaler else {})
        self.ema = (EMA(model.nets, model.generator_names(), decay=cfg.ema_decay)
                    if cfg.ema_decay is not None else None)
        self.augment = AugmentStrength(
            parse_policy(cfg.d_augment), p=cfg.d_augment_p, target=cfg.d_augment_target,
            interval=cfg.d_augment_interval, speed=cfg.d_augment_speed, device=self.device,
            arch=self.arch_name)
        self.ctx = EngineContext(model, optimizers=self.optimizers, groups=self.groups,
                                 scalers=self.scalers, precision=self.precision, device=self.device,
                                 grad_clip=cfg.grad_clip, ema=self.ema, rank=self.rank,
                                 world_size=self.world_size, d_augment=cfg.d_augment,
                                 augment=self.augment)
        kwargs = dict(loader_kwargs(self.device, cfg.num_workers))
        # Any object with __len__ and __getitem__ works as a map-style dataset
        dataset = cast("Dataset[Any]", self.dataset)
        self.loader: DataLoader[Any] = DataLoader(
            dataset, batch_size=cfg.batch_size, sampler=self.sampler, drop_last=cfg.drop_last,
            generator=torch.Generator().manual_seed(cfg.seed), **kwargs)
        self._pinned = bool(kwargs.get("pin_memory"))

    def _seed(self) -> None:
        seed = mix_seed(self.config.seed, self.rank)  # seeds per rank: different noise per GPU
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)

    def _make_sample_inputs(self) -> Any:
        n = min(self.config.sample_count, len(self.dataset))
        items = [self.dataset[i] for i in range(n)]  # int keys: a fixed, pure choice
        batch = torch.utils.data.default_collate(items)
        gen = torch.Generator().manual_seed(mix_seed(self.config.seed, 0x5A3))
        return self.model.sample_inputs(batch, n=self.config.sample_count, generator=gen)

    def _state(self, *, gather: bool = True, group: Any = None) -> dict[str, Any]:
        rng = ckpt.get_rng_state()
        # Every rank's RNG state, so a resumed distributed run draws the same noise per rank.
        rng_ranks = (distributed.all_gather_objects(rng, group=group)
                     if gather and self.world_size > 1 else None)
        # ADA's partial sums of every rank, added (a collective like the RNG gather).
        augment = self.augment.state_dict(gather=gather, group=group)
        with self.unwrapped():  # state_dict keys without DDP's "module." prefix
            return ckpt.training_state(self, rng=rng, rng_ranks=rng_ranks, augment=augment)

    def _write_checkpoint(self, state: dict[str, Any]) -> Path:
        path = ckpt.save_checkpoint(state, ckpt.checkpoint_path(self.run_dir, self.step))
        self._saved_step = self.step
        ckpt.rotate(self.run_dir, keep=self.config.keep_checkpoints, protect=path)
        for cb in self._hooks:
            cb.on_checkpoint(self, path)
        return path

    def _resolved_config(self) -> dict[str, Any]:
        resolved = {"architecture": self.arch_name, "model": to_plain(self.model.config),
                    "train": to_plain(self.config)}
        if self.data_config is not None:  # a Dataset object has no config to record
            resolved["data"] = to_plain(self.data_config)
        return resolved


def read_losses(steps: Sequence[Mapping[str, Any]]) -> list[dict[str, float]]:
    """Steps' losses (``{name: scalar tensor or number}`` each) as floats, reading every tensor
    to the host in one transfer: one ``torch.stack(...).tolist()`` per device, in float64 (exact
    for fp32, fp16 and bf16 values, so each float equals ``float(v)``). Raises ValueError
    naming the loss when a value is not a one-element tensor or a number."""
    by_device: dict[torch.device, list[tuple[int, str, Tensor]]] = {}
    out: list[dict[str, float]] = [{} for _ in steps]
    for i, losses in enumerate(steps):
        for k, v in losses.items():
            if torch.is_tensor(v):
                if v.numel() != 1:
                    raise ValueError(f"train_step returned {k!r} with shape {tuple(v.shape)}; "
                                     "return one-element tensors (e.g. loss.detach())")
                by_device.setdefault(v.device, []).append((i, k, v))
            else:
                out[i][k] = float(v)
    for items in by_device.values():
        values = torch.stack([v.reshape(()).to(torch.float64) for _, _, v in items]).tolist()
        for (i, k, _), value in zip(items, values, strict=True):
            out[i][k] = value
    # Keys in the order train_step returned them.
    return [{k: done[k] for k in losses} for losses, done in zip(steps, out, strict=True)]


class StepLosses(Mapping[str, float]):
    """One step's losses as a read-only mapping of floats that reads the device only when a
    value is first asked for (iterating the names or ``len`` does not)."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self._raw = raw
        self._floats: dict[str, float] | None = None

    def _read(self) -> dict[str, float]:
        if self._floats is None:
            self._floats = read_losses([self._raw])[0]
        return self._floats

    def __getitem__(self, key: str) -> float:
        return self._read()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def __repr__(self) -> str:
        return f"StepLosses({self._read()!r})"


def _check_labels(model: Any, dataset: Any) -> None:
    """A conditional model's label names must be the labelled data's classes, in order (the
    label of an image is its class index): a mismatch would train every class under another
    name. Raises ValueError naming both lists and how to fix it."""
    classes = getattr(dataset, "classes", None)
    if model.data_kind != "labelled" or classes is None:
        return
    names = tuple(model.label_names or ())
    if names != tuple(classes):
        raise ValueError(
            f"the model's labels ({', '.join(names) or 'none'}) are not the classes of the data "
            f"({', '.join(classes)}); build the model with labels={list(classes)!r} (gtx train "
            "takes them from the data folder), or train on data with those class folders")


def _to_device(obj: Any, device: torch.device) -> Any:
    if torch.is_tensor(obj):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(v, device) for v in obj)
    return obj
