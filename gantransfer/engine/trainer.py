"""The Trainer: runs any GANModel with checkpoints, exact resume, samples and metrics.

The loop is deliberately plain: for each batch, call ``model.train_step(batch, ctx)``, step the
LR schedulers, then log / sample / checkpoint on their schedules. Everything that must survive a
restart (weights, optimizer/scheduler/scaler state, EMA, RNG states, data position, the fixed
sample inputs) goes into the checkpoint, so ``fit(resume="auto")`` continues bit-identically.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from .._io import atomic_write_bytes
from ..config import to_plain, write_toml
from ..device import resolve_device
from ..precision import Precision
from . import checkpoint as ckpt
from . import distributed
from .callbacks import Callback, LogCallback
from .config import TrainConfig
from .context import EngineContext, TrainingDivergedError
from .ema import EMA
from .grid import save_grid
from .rundir import RunDirectoryError, RunExistsError, RunLock, describe_run, move_aside
from .sampler import ResumableSampler, mix_seed

__all__ = ["Trainer", "TrainingInterrupted"]

log = logging.getLogger(__name__)

# Two SIGINTs closer than this are one Ctrl-C (torchrun forwards the terminal's to its workers).
_REPEAT_WINDOW_S = 2.0
# Signals that stop training at the next step boundary with a checkpoint. SIGTERM is what job
# schedulers (SLURM, Kubernetes, systemd) and torchrun's agent send before they kill a process.
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on a signal (Ctrl-C's SIGINT, or SIGTERM) at a step boundary.

    A ``KeyboardInterrupt``, so code that catches Ctrl-C keeps working. ``signum`` is the signal
    (under DDP: SIGTERM if any rank got one, else SIGINT); ``exit_code`` is the shell convention
    for it, 128 + signal number (130 for SIGINT, 143 for SIGTERM).
    """

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class Trainer:
    """Train ``model`` on ``data`` as ``config`` says, writing outputs to ``run_dir``.

    Args:
        model: a GANModel (``model.arch_name`` set, e.g. by ``gantransfer.get``).
        data: a Dataset whose ``__getitem__`` takes ``(index, seed)`` keys, or a DataConfig.
        config: a TrainConfig.
        run_dir: output folder (created).
        callbacks: hooks; None means ``[LogCallback()]``.

    Attributes a progress display reads: ``step``, ``start_step``, ``total_steps``, ``epoch``,
    ``steps_per_epoch``, ``latest_losses``, ``its_per_sec``; ``is_main`` is True on rank 0.

    Raises (from ``__init__``): ValueError for fp16 on CPU/MPS or an unnamed model.
    """

    def __init__(self, model: Any, data: Any, config: TrainConfig,
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
        self.latest_losses: dict[str, float] = {}
        self.its_per_sec = 0.0
        self.consecutive_nonfinite = 0
        self.sample_inputs: Any = None
        self.wrapper: distributed.NetWrapper | None = None
        self._control: Any = None  # short-timeout group for the Ctrl-C checkpoint (DDP only)
        self._stop_requested_at: float | None = None  # monotonic time of the first Ctrl-C
        self._in_step = False  # True while train_step runs: the state is half-updated then
        self._stop_signal = 0  # the first stop signal this process got (SIGINT or SIGTERM)
        self._stopped_gracefully = False  # all ranks stopped together on Ctrl-C (and saved)
        self._sigint_pid = 0  # the process whose signal handlers these are (not forked workers)
        self._saved_step = -1  # the step of the last checkpoint this run wrote
        self._lock: RunLock | None = None  # the run directory's lock (rank 0, during fit)

    # -- public ----------------------------------------------------------------------------
    def fit(self, resume: str | os.PathLike[str] | None = None, *, overwrite: bool = False
            ) -> Any:
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
        previous = self._install_signal_handlers()
        try:
            self._claim_run_dir(new_run=resume is None, overwrite=overwrite)
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
            for signum, handler in previous.items():
                signal.signal(signum, handler)
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

    # -- the run directory -----------------------------------------------------------------
    def _claim_run_dir(self, *, new_run: bool, overwrite: bool) -> None:
        """Rank 0 locks the run directory and, for a new run, checks that it holds no run (or
        moves that aside). Every rank learns the outcome before any other collective, so a
        refusal stops all ranks at once instead of leaving them waiting for rank 0."""
        error: BaseException | None = None
        if self.is_main:
            try:
                self._lock = RunLock(self.run_dir).acquire()
                held = describe_run(self.run_dir) if new_run else None
                if held and overwrite:
                    move_aside(self.run_dir)
                elif held:
                    raise RunExistsError(
                        f"run directory {self.run_dir} already holds a run ({held}); a new run "
                        "there would mix with it (load and export would pick the old, "
                        "higher-step checkpoints). Continue it with --resume auto "
                        "(fit(resume='auto')), train into another directory, or pass "
                        "--overwrite (fit(overwrite=True)) to move the old run aside to "
                        f"{self.run_dir.name}.replaced-<date>-<time>/ (nothing is deleted)")
            except (RunDirectoryError, OSError) as exc:
                error = exc
        if distributed.any_rank(error is not None, device=self.device):
            if error is not None:
                raise error
            raise distributed.PeerFailedError(
                f"rank {self.rank}: rank 0 could not start the run in {self.run_dir} (see its "
                "error)")

    # -- Ctrl-C and SIGTERM ----------------------------------------------------------------
    def _install_signal_handlers(self) -> dict[int, Any]:
        """Make Ctrl-C and SIGTERM stop at the next step boundary; returns the handlers to
        restore.

        Only for signals whose handler is Python's default (a caller's own handler is
        respected) and in the main thread (signals are delivered there only).
        """
        if threading.current_thread() is not threading.main_thread():
            return {}
        defaults = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
        mine = [s for s in _STOP_SIGNALS if signal.getsignal(s) is defaults[s]]
        self._stop_requested_at, self._stop_signal, self._stopped_gracefully = None, 0, False
        self._sigint_pid = os.getpid()
        return {s: signal.signal(s, self._on_signal) for s in mine}

    def _on_signal(self, signum: int, frame: Any) -> None:
        if os.getpid() != self._sigint_pid:
            # A forked DataLoader worker inherited this handler and the terminal's Ctrl-C: it
            # keeps serving batches until the trainer shuts the loader down.
            return
        now = time.monotonic()
        if self._stop_requested_at is None:
            self._stop_requested_at, self._stop_signal = now, signum
            if signum == signal.SIGINT:
                log.warning("Ctrl-C: stopping after the current step and saving a checkpoint "
                            "(press Ctrl-C again to stop at once without one)")
            else:
                log.warning("%s: stopping after the current step and saving a checkpoint",
                            signal.Signals(signum).name)
            return
        if signum != signal.SIGINT:
            return  # SIGTERM again (a scheduler, then torchrun's agent): already stopping
        # torchrun forwards the terminal's Ctrl-C to workers that already got it from the
        # terminal: a repeat within a moment is the same keypress, not a second one.
        if self.world_size > 1 and now - self._stop_requested_at < _REPEAT_WINDOW_S:
            return
        raise KeyboardInterrupt

    def _stop_if_requested(self) -> None:
        """At a step boundary: if any rank got Ctrl-C or SIGTERM, all save together and raise
        :class:`TrainingInterrupted` (for SIGTERM if any rank got it)."""
        signum = distributed.max_over_ranks(self._stop_signal, device=self.device)
        if not signum:
            return
        self._stop_requested_at = self._stop_requested_at or time.monotonic()
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

    def _fit(self, resume: str | os.PathLike[str] | None) -> None:
        self._setup()
        found = self._resume_from(resume)
        if found is not None:
            path, data = found
            self._restore(data)
            log.info("resumed from %s at step %d (epoch %d)", path, self.step, self.epoch)
        else:
            self._seed()
            if resume is not None and self.is_main:
                self._truncate_metrics()  # a run killed before its first checkpoint: step 0
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
            self._write_config()
        self._debug_dump("start")
        for cb in self.callbacks:
            cb.on_train_start(self)
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
        missing = self.is_main and not self._has_checkpoint(self.step)
        if distributed.any_rank(missing, device=self.device) and self.consecutive_nonfinite == 0:
            self.save()
        if self.is_main and (self.config.sample_every == 0 or self.step % self.config.sample_every):
            self.write_samples()
        self._debug_dump("end")
        distributed.barrier()  # nobody leaves (and tears the group down) while rank 0 writes
        for cb in self.callbacks:
            cb.on_train_end(self)

    def save(self) -> Path | None:
        """Write a checkpoint of the current state, rotate old ones, notify callbacks.

        In a distributed run every rank must call this (the RNG states of all ranks are
        gathered); rank 0 alone writes, and the others get None.
        """
        state = self._state()
        self._saved_step = self.step  # on every rank: the Ctrl-C path must agree on it
        return self._write_checkpoint(state) if self.is_main else None

    def _write_checkpoint(self, state: dict[str, Any]) -> Path:
        path = ckpt.save_checkpoint(state, ckpt.checkpoint_path(self.run_dir, self.step))
        self._saved_step = self.step
        ckpt.rotate(self.run_dir, keep=self.config.keep_checkpoints, protect=path)
        for cb in self.callbacks:
            cb.on_checkpoint(self, path)
        return path

    def write_samples(self) -> Path:
        """Write ``samples/step_XXXXXXX.png`` from the fixed sample inputs (EMA weights if on)."""
        # fork_rng: sampling must not consume the training RNG, or resume would not be exact.
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.no_grad(), self._plain(), \
                self.model.evaluating():
            if self.ema is not None:
                with self.ema.applied(self.model.nets):
                    rows = self.model.sample(_to_device(self.sample_inputs, self.device))
            else:
                rows = self.model.sample(_to_device(self.sample_inputs, self.device))
        return save_grid(rows, self.run_dir / "samples" / f"step_{self.step:07d}.png")

    # -- setup and state -------------------------------------------------------------------
    def _setup(self) -> None:
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
        self.ctx = EngineContext(model, optimizers=self.optimizers, groups=self.groups,
                                 scalers=self.scalers, precision=self.precision, device=self.device,
                                 grad_clip=cfg.grad_clip, ema=self.ema, rank=self.rank,
                                 world_size=self.world_size)
        kwargs = self._loader_kwargs()
        self.loader = DataLoader(self.dataset, batch_size=cfg.batch_size, sampler=self.sampler,
                                 drop_last=cfg.drop_last,
                                 generator=torch.Generator().manual_seed(cfg.seed), **kwargs)
        self._pinned = bool(kwargs.get("pin_memory"))

    def _loader_kwargs(self) -> dict[str, Any]:
        try:
            from ..data import loader_kwargs
        except ImportError:  # the data layer is optional for Dataset inputs
            workers = self.config.num_workers
            if workers is None:
                workers = min(4, max((os.cpu_count() or 1) - 1, 0)) if self.device.type == "cuda" else 0
            return {"num_workers": workers, "pin_memory": self.device.type == "cuda",
                    "persistent_workers": workers > 0}
        return dict(loader_kwargs(self.device, self.config.num_workers))

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

    def _resume_from(self, resume: str | os.PathLike[str] | None
                     ) -> tuple[Path, dict[str, Any]] | None:
        """The checkpoint to resume from and its verified content, or None for a fresh run."""
        if resume is None:
            return None
        if resume == "auto":
            # Falls back past damaged checkpoints (warning, renamed aside by the writer): a run
            # on a flaky disk continues from its newest intact state instead of failing.
            found = ckpt.newest_intact(self.run_dir, move_damaged=self.is_main)
            if found is None:
                log.info("no checkpoint in %s: starting a fresh run", self.run_dir)
            return found
        path = ckpt.resolve(resume)
        return path, ckpt.read_checkpoint(path)

    def _plain(self) -> Any:
        """Context in which model.nets holds the plain modules (no DDP wrappers)."""
        return self.wrapper.unwrapped() if self.wrapper is not None else contextlib.nullcontext()

    def _state(self, *, gather: bool = True, group: Any = None) -> dict[str, Any]:
        rng = ckpt.get_rng_state()
        # Every rank's RNG state, so a resumed distributed run draws the same noise per rank.
        rng_ranks = (distributed.all_gather_objects(rng, group=group)
                     if gather and self.world_size > 1 else None)
        with self._plain():  # state_dict keys without DDP's "module." prefix
            model_state = self.model.state_dict()
        return {
            "architecture": self.arch_name,
            "config": to_plain(self.model.config),
            "train_config": to_plain(self.config),
            "data_config": to_plain(self.data_config) if self.data_config is not None else None,
            "model": model_state,
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizers": {g: o.state_dict() for g, o in self.optimizers.items()},
            "schedulers": {g: s.state_dict() for g, s in self.schedulers.items()},
            "scalers": {g: s.state_dict() for g, s in self.scalers.items()},
            "rng": rng,
            "rng_ranks": rng_ranks,
            "world_size": self.world_size,
            "step": self.step,
            "epoch": self.epoch,
            "data_position": self.position,
            "sample_inputs": self.sample_inputs,
            "nonfinite": {"total": self.ctx.nonfinite_total,
                          "consecutive": self.consecutive_nonfinite},
            "optimizer_steps": dict(self.ctx.optimizer_steps),
            "versions": ckpt.versions_for(self.arch_name),
        }

    def _restore(self, data: dict[str, Any]) -> None:
        mine = to_plain(self.model.config)
        if data["architecture"] != self.arch_name or data["config"] != mine:
            diff = sorted(k for k in set(mine) | set(data["config"])
                          if mine.get(k) != data["config"].get(k))
            raise ckpt.CheckpointError(
                f"the checkpoint is for architecture {data['architecture']!r} with a different "
                f"config than this model ({self.arch_name!r}; differing fields: {diff}). Build "
                "the model with the checkpoint's config, or start a new run directory."
            )
        changed = {k: (v, to_plain(self.config).get(k))
                   for k, v in (data.get("train_config") or {}).items()
                   if to_plain(self.config).get(k) != v}
        if changed:  # allowed (e.g. more steps), but worth a line in the log
            log.info("train settings changed since the checkpoint (old, new): %s", changed)
        self.model.load_state_dict(data["model"])
        if (data.get("ema") is None) != (self.ema is None):
            raise ckpt.CheckpointError("ema_decay was switched on/off since the checkpoint; "
                                       "keep the same setting to resume")
        if self.ema is not None:
            self.ema.load_state_dict(data["ema"])
        for name, part in (("optimizers", self.optimizers), ("schedulers", self.schedulers),
                           ("scalers", self.scalers)):
            saved = data.get(name) or {}
            if sorted(saved) != sorted(part):
                raise ckpt.CheckpointError(f"checkpoint {name} {sorted(saved)} do not match this "
                                           f"run's {sorted(part)} (precision changed?)")
            for g, obj in part.items():
                obj.load_state_dict(saved[g])
        self.step, self.epoch, self.position = data["step"], data["epoch"], data["data_position"]
        self.sample_inputs = data.get("sample_inputs")
        self.ctx.nonfinite_total = data["nonfinite"]["total"]
        self.consecutive_nonfinite = data["nonfinite"]["consecutive"]
        self.ctx.optimizer_steps.update(data.get("optimizer_steps", {}))
        self._restore_rng(data)
        if self.is_main:
            self._truncate_metrics()

    def _restore_rng(self, data: dict[str, Any]) -> None:
        saved_world = data.get("world_size", 1)
        if saved_world != self.world_size and self.is_main:
            # The data position counts samples per rank, so it means something else now.
            log.warning("the checkpoint was written by %d process(es), this run has %d: the "
                        "epoch's data order continues only approximately; resume with the same "
                        "process count for an exact continuation", saved_world, self.world_size)
        ranks = data.get("rng_ranks")
        if ranks and len(ranks) == self.world_size:
            ckpt.set_rng_state(ranks[self.rank])
        elif self.rank == 0:
            ckpt.set_rng_state(data["rng"])
        else:
            # Saved by a run of another size, or on Ctrl-C without the other ranks' states:
            # a deterministic per-rank stream from (seed, rank, step) instead.
            seed = mix_seed(self.config.seed, self.rank, self.step)
            torch.manual_seed(seed)
            np.random.seed(seed % 2**32)
            random.seed(seed)
            log.info("rank %d: RNG re-derived from (seed, rank, step) on resume", self.rank)

    def _debug_dump(self, when: str) -> None:
        # Test/debug hook: GANTRANSFER_DEBUG_STATE_DIR makes every rank write its weights, last
        # gradients and a parameter digest there, so tests can check that ranks stay identical
        # and that the averaged gradients are right.
        folder = os.environ.get("GANTRANSFER_DEBUG_STATE_DIR")
        if not folder:
            return
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        with self._plain():
            torch.save(self.model.state_dict(), out / f"{when}_rank{self.rank}.pt")
            # The last step's gradients (after DDP's averaging), by parameter name.
            grads = {n: p.grad.detach().cpu() for n, p in self.model.named_parameters()
                     if p.grad is not None}
            torch.save(grads, out / f"{when}_rank{self.rank}_grads.pt")
            digest = distributed.param_digest(self.model)
        (out / f"{when}_rank{self.rank}.sha256").write_text(digest + "\n")

    def _write_config(self) -> None:
        resolved = {"architecture": self.arch_name, "model": to_plain(self.model.config),
                    "train": to_plain(self.config)}
        if self.data_config is not None:  # a Dataset object has no config to record
            resolved["data"] = to_plain(self.data_config)
        write_toml(self.run_dir / "config.toml", resolved)

    def _truncate_metrics(self) -> None:
        # Lines logged after the checkpoint by the interrupted run would be repeated; drop them.
        path = self.run_dir / "metrics.jsonl"
        if path.exists():
            lines = [ln for ln in path.read_text().splitlines()
                     if ln.strip() and _logged_step(ln) <= self.step]
            atomic_write_bytes(path, "".join(ln + "\n" for ln in lines).encode())

    def _has_checkpoint(self, step: int) -> bool:
        return ckpt.checkpoint_path(self.run_dir, step).exists()

    # -- the loop --------------------------------------------------------------------------
    def _loop(self) -> None:
        cfg = self.config
        sums: dict[str, float] = {}
        count, t_log = 0, time.perf_counter()
        while self.step < self.total_steps:
            self.sampler.set_epoch(self.epoch)
            self.sampler.set_position(self.position)
            for batch in self.loader:
                self._train_one(batch)
                for k, v in self.latest_losses.items():
                    sums[k] = sums.get(k, 0.0) + v
                count += 1
                step_epoch = self.epoch
                if self.position >= self.steps_per_epoch * cfg.batch_size or (
                        self.position >= self.sampler.num_samples):
                    self.epoch, self.position = self.epoch + 1, 0  # the epoch is complete
                last = self.step >= self.total_steps
                if self.step % cfg.log_every == 0 or last:
                    now = time.perf_counter()
                    self.its_per_sec = count / max(now - t_log, 1e-9)
                    # Logged losses are the mean over ranks (every rank logs at the same steps).
                    sums = distributed.all_reduce_mean(sums, device=self.device)
                    self._log({k: v / count for k, v in sums.items()}, step_epoch)
                    sums, count, t_log = {}, 0, now
                if self.is_main and cfg.sample_every and self.step % cfg.sample_every == 0:
                    self.write_samples()
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
        self.position += next(iter(batch.values())).shape[0]
        self._in_step = False
        self.latest_losses = {k: float(v) for k, v in (out or {}).items()}
        for cb in self.callbacks:
            cb.on_step_end(self, self.latest_losses)
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
        if self.is_main:
            path = self.run_dir / "metrics.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a") as fh:
                fh.write(json.dumps(record) + "\n")
        for cb in self.callbacks:
            cb.on_log(self, record)


def _logged_step(line: str) -> int:
    try:
        return int(json.loads(line).get("step", 0))
    except (ValueError, AttributeError):  # a line cut short by a crash: drop it
        return 1 << 62


def _to_device(obj: Any, device: torch.device) -> Any:
    if torch.is_tensor(obj):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(v, device) for v in obj)
    return obj
