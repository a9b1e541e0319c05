"""Checkpoint files: the state layout, writing, validated reading, finding the latest,
rebuilding a model.

A checkpoint is a ``torch.save``d dict of tensors and plain data only, so it loads with
``torch.load(weights_only=True)`` and never runs code from the file. :func:`training_state`
builds it from a Trainer and :func:`restore_training_state` puts it back. Keys (format version 1):

``format`` ("gantransfer.checkpoint"), ``format_version``, ``architecture``, ``config`` (the
model config as plain data), ``train_config``, ``data_config`` (plain or None), ``model``
(``model.state_dict()``, extra state such as image pools included), ``ema`` ({net: state_dict}
or None), ``optimizers``, ``schedulers``, ``scalers`` ({group: state_dict}), ``rng`` (torch CPU,
CUDA, numpy and python states), ``step``, ``epoch``, ``data_position`` (samples this rank
consumed in the current epoch), ``sample_inputs``, ``nonfinite`` (counters), ``optimizer_steps``,
``augment`` (the strength of ``d_augment``: ADA's ``p`` and its running interval's sums, see
:meth:`~gantransfer.engine.ada.AugmentStrength.state_dict`; absent in older files),
``versions`` (gantransfer, torch, plugin distribution and version), and last ``checksum``
({"algorithm", "digest"}: a content digest of every other key, see ``_checksum``), verified on
every read. Files written before checksums existed have no ``checksum`` key and still load.
:func:`save_model` writes a checkpoint of a model that was not trained here (e.g. official
weights): ``step`` 0 and no optimizer state, enough for :func:`load`, export and translation.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch

from .._io import atomic_path
from ..config import to_plain
from ._checksum import ALGORITHM, content_digest
from .sampler import mix_seed

if TYPE_CHECKING:  # pragma: no cover
    from ..model import GANModel
    from .trainer import Trainer

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "CheckpointCorruptError",
    "CheckpointError",
    "checkpoint_path",
    "find_latest",
    "get_rng_state",
    "list_checkpoints",
    "load",
    "move_aside",
    "newest_intact",
    "read_checkpoint",
    "restore_training_state",
    "resume_point",
    "rotate",
    "save_checkpoint",
    "save_model",
    "set_rng_state",
    "training_state",
    "versions_for",
]

log = logging.getLogger(__name__)

FORMAT = "gantransfer.checkpoint"
FORMAT_VERSION = 1
_NAME = re.compile(r"^step_(\d+)\.pt$")
# What gantransfer._io.atomic_path leaves behind when a process is killed mid-write.
_PARTIAL = re.compile(r"^\.step_\d+\.pt\..+\.tmp$")
_EXPECTED = "a gantransfer checkpoint (RUN/checkpoints/step_*.pt) or a run directory"
_KEY_TYPES: dict[str, type | tuple[type, ...]] = {"architecture": str, "config": dict, "model": dict, "step": int,
                                                  "ema": (dict, type(None))}


class CheckpointError(ValueError):
    """A file is missing, damaged, not a gantransfer checkpoint, or does not fit the model."""


class CheckpointCorruptError(CheckpointError):
    """The file's bytes are damaged: truncated, unreadable, or its content checksum differs.

    Raised for damage only (not for a foreign or a too-new file), so a caller may fall back to an
    older checkpoint of the same run.
    """


# -- paths ------------------------------------------------------------------------------------
def checkpoint_path(run_dir: str | os.PathLike[str], step: int) -> Path:
    """``RUN/checkpoints/step_XXXXXXX.pt`` for ``step``."""
    return Path(run_dir) / "checkpoints" / f"step_{step:07d}.pt"


def list_checkpoints(run_dir: str | os.PathLike[str]) -> list[Path]:
    """Checkpoints of a run directory, oldest step first (temporary files are ignored)."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def find_latest(run_dir: str | os.PathLike[str]) -> Path | None:
    """The checkpoint with the highest step in ``run_dir``, or None when there is none."""
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def rotate(run_dir: str | os.PathLike[str], *, keep: int | None,
           protect: str | os.PathLike[str] | None = None) -> list[Path]:
    """Delete all but the ``keep`` newest checkpoints (None keeps all); returns what was deleted.

    ``protect`` (the checkpoint the caller has just written: the last one known intact) is never
    deleted, even when checkpoints of higher steps exist (a run resumed from an older file), so
    rotation cannot leave only files that were never verified. The newest one is never deleted.

    Also deletes partial files of writes that were killed (a rank SIGTERMed by torchrun while it
    saved): only the run's writer calls this, right after its own write has completed, so no
    temporary file in the folder can belong to a write in progress. They go whatever ``keep``.
    """
    folder = Path(run_dir) / "checkpoints"
    partial = [p for p in folder.iterdir() if _PARTIAL.match(p.name)] if folder.is_dir() else []
    for path in partial:
        log.info("removing %s, left by an interrupted checkpoint write", path)
        path.unlink(missing_ok=True)
    if keep is None:
        return partial
    found = list_checkpoints(run_dir)
    kept = Path(protect).resolve() if protect is not None else None
    old = [p for p in found[: max(len(found) - max(keep, 1), 0)] if p.resolve() != kept]
    for path in old:
        path.unlink(missing_ok=True)
    return partial + old


def move_aside(path: str | os.PathLike[str]) -> Path:
    """Rename a damaged checkpoint to ``NAME.corrupt`` (``NAME.corrupt.N`` if taken); never
    deletes it. It then no longer counts as a checkpoint of its run. Returns the new path."""
    path = Path(path)
    target = path.with_name(path.name + ".corrupt")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}.corrupt.{n}")
        n += 1
    os.replace(path, target)
    return target


# -- RNG states as plain data -----------------------------------------------------------------
def get_rng_state() -> dict[str, Any]:
    """Torch CPU/CUDA, numpy and python ``random`` states as tensors and plain containers."""
    # legacy=True (the default) gives the tuple; the stubs also allow the dict of legacy=False
    state = cast("tuple[str, np.ndarray, int, int, float]", np.random.get_state(legacy=True))
    kind, keys, pos, has_gauss, cached = state
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        "numpy": [str(kind), torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss),
                  float(cached)],
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`get_rng_state`."""
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def versions_for(architecture: str | None) -> dict[str, Any]:
    """Library versions, and the distribution that provides ``architecture``, for a checkpoint."""
    from .. import registry
    from .._version import __version__

    out: dict[str, Any] = {"gantransfer": __version__, "torch": str(torch.__version__),
                           "plugin": None, "plugin_version": None}
    if architecture:
        try:
            found = registry.entry(architecture)
            out["plugin"], out["plugin_version"] = found.distribution, found.version
        except Exception as exc:  # versions are informative; never fail a save over them
            log.debug("no distribution info for %r: %s", architecture, exc)
    return out


# -- the training state -----------------------------------------------------------------------
def training_state(run: Trainer, *, rng: dict[str, Any], rng_ranks: list[Any] | None,
                   augment: dict[str, Any] | None = None) -> dict[str, Any]:
    """The checkpoint of ``run`` at its current step, laid out as the module docstring says.

    ``rng`` is this process's RNG state (:func:`get_rng_state`), ``rng_ranks`` every rank's
    (None when they could not be gathered), ``augment`` the augmentation strength's state
    (gathered over ranks by the caller). The caller makes ``run.model.nets`` hold the plain
    nets (state-dict keys without DDP's ``module.`` prefix).
    """
    return {
        "architecture": run.arch_name,
        "config": to_plain(run.model.config),
        "train_config": to_plain(run.config),
        "data_config": to_plain(run.data_config) if run.data_config is not None else None,
        "model": run.model.state_dict(),
        "ema": run.ema.state_dict() if run.ema is not None else None,
        "optimizers": {g: o.state_dict() for g, o in run.optimizers.items()},
        "schedulers": {g: s.state_dict() for g, s in run.schedulers.items()},
        "scalers": {g: s.state_dict() for g, s in run.scalers.items()},
        "rng": rng,
        "rng_ranks": rng_ranks,
        "world_size": run.world_size,
        "step": run.step,
        "epoch": run.epoch,
        "data_position": run.position,
        "sample_inputs": run.sample_inputs,
        "nonfinite": {"total": run.ctx.nonfinite_total,
                      "consecutive": run.consecutive_nonfinite},
        "optimizer_steps": dict(run.ctx.optimizer_steps),
        "augment": augment,
        "best": run.best,  # the best evaluation so far (engine/evaluator.py)
        "versions": versions_for(run.arch_name),
    }


def restore_training_state(run: Trainer, data: dict[str, Any]) -> None:
    """Put a checkpoint read by :func:`read_checkpoint` back into ``run`` (set up already).

    Raises:
        CheckpointError: the checkpoint is of another architecture or config, or its EMA,
            optimizer, scheduler or scaler groups do not match the run's (precision changed?).
    """
    mine = to_plain(run.model.config)
    if data["architecture"] != run.arch_name or data["config"] != mine:
        diff = sorted(k for k in set(mine) | set(data["config"])
                      if mine.get(k) != data["config"].get(k))
        raise CheckpointError(
            f"the checkpoint is for architecture {data['architecture']!r} with a different "
            f"config than this model ({run.arch_name!r}; differing fields: {diff}). Build "
            "the model with the checkpoint's config, or start a new run directory."
        )
    changed = {k: (v, to_plain(run.config).get(k))
               for k, v in (data.get("train_config") or {}).items()
               if to_plain(run.config).get(k) != v}
    if changed:  # allowed (e.g. more steps), but worth a line in the log
        log.info("train settings changed since the checkpoint (old, new): %s", changed)
    run.model.load_state_dict(data["model"])
    if (data.get("ema") is None) != (run.ema is None):
        raise CheckpointError("ema_decay was switched on/off since the checkpoint; "
                              "keep the same setting to resume")
    if run.ema is not None:
        run.ema.load_state_dict(data["ema"])
    for name, part in (("optimizers", run.optimizers), ("schedulers", run.schedulers),
                       ("scalers", run.scalers)):
        saved = data.get(name) or {}
        if sorted(saved) != sorted(part):
            raise CheckpointError(f"checkpoint {name} {sorted(saved)} do not match this "
                                  f"run's {sorted(part)} (precision changed?)")
        for g, obj in part.items():
            obj.load_state_dict(saved[g])
    run.step, run.epoch, run.position = data["step"], data["epoch"], data["data_position"]
    run.sample_inputs = data.get("sample_inputs")
    run.ctx.nonfinite_total = data["nonfinite"]["total"]
    run.consecutive_nonfinite = data["nonfinite"]["consecutive"]
    run.ctx.optimizer_steps.update(data.get("optimizer_steps", {}))
    run.augment.load_state_dict(data.get("augment"), rank=run.rank)
    run.best = data.get("best")
    _restore_rng(run, data)


def _restore_rng(run: Trainer, data: dict[str, Any]) -> None:
    saved_world = data.get("world_size", 1)
    if saved_world != run.world_size and run.is_main:
        # The data position counts samples per rank, so it means something else now.
        log.warning("the checkpoint was written by %d process(es), this run has %d: the "
                    "epoch's data order continues only approximately; resume with the same "
                    "process count for an exact continuation", saved_world, run.world_size)
    ranks = data.get("rng_ranks")
    if ranks and len(ranks) == run.world_size:
        set_rng_state(ranks[run.rank])
    elif run.rank == 0:
        set_rng_state(data["rng"])
    else:
        # Saved by a run of another size, or on Ctrl-C without the other ranks' states:
        # a deterministic per-rank stream from (seed, rank, step) instead.
        seed = mix_seed(run.config.seed, run.rank, run.step)
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)
        log.info("rank %d: RNG re-derived from (seed, rank, step) on resume", run.rank)


def resume_point(resume: str | os.PathLike[str] | None, run_dir: str | os.PathLike[str], *,
                 move_damaged: bool) -> tuple[Path, dict[str, Any]] | None:
    """The checkpoint ``fit(resume=...)`` continues from and its verified content, or None for
    a fresh run: ``"auto"`` is the newest intact checkpoint of ``run_dir`` (damaged ones are
    skipped, and renamed aside with ``move_damaged``), a path is that checkpoint or run."""
    if resume is None:
        return None
    if resume == "auto":
        # Falls back past damaged checkpoints (warning, renamed aside by the writer): a run
        # on a flaky disk continues from its newest intact state instead of failing.
        found = newest_intact(run_dir, move_damaged=move_damaged)
        if found is None:
            log.info("no checkpoint in %s: starting a fresh run", run_dir)
        return found
    path = resolve(resume)
    return path, read_checkpoint(path)


def save_model(model: Any, path: str | os.PathLike[str], *,
               source: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (built with ``gantransfer.get`` or a plugin's own loader, not trained
    here) as a checkpoint that :func:`load` rebuilds: its architecture, config and weights at
    step 0; ``source`` (plain data) records where the weights came from. Atomic.

    Raises:
        ValueError: ``model.arch_name`` is not set (build models with ``gantransfer.get``).
    """
    arch = getattr(model, "arch_name", None)
    if not arch:
        raise ValueError("model.arch_name is not set; build models with gantransfer.get(name)")
    return save_checkpoint({
        "architecture": arch, "config": to_plain(model.config), "model": model.state_dict(),
        "ema": None, "step": 0, "epoch": 0, "versions": versions_for(arch),
        **({"source": source} if source is not None else {}),
    }, path)


# -- reading and writing ----------------------------------------------------------------------
def save_checkpoint(state: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``state`` atomically (a crash never leaves half a file), with format keys and a
    content checksum added; :func:`read_checkpoint` verifies the checksum."""
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **state}
    payload.pop("checksum", None)  # a state read back from a file carries the old one
    payload["checksum"] = {"algorithm": ALGORITHM, "digest": content_digest(payload)}
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def read_checkpoint(path: str | os.PathLike[str], *, map_location: Any = "cpu") -> dict[str, Any]:
    """Load and validate a checkpoint with ``weights_only=True``.

    The content checksum is verified; a file written before checksums existed has none and is
    loaded unverified (logged at debug level).

    Raises:
        CheckpointCorruptError: the file is truncated or damaged, or its content no longer
            matches its checksum (bit rot, a bad copy). The message names the file.
        CheckpointError: the file is missing, not a torch zip file, contains pickled objects
            other than tensors and plain data, or is not a gantransfer checkpoint (for example a
            bare ``state_dict``). The message names the file and says what to do.
    """
    from ..torchfile import DamagedFileError, TorchFileError, load_tensors

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist (or is not a file)")
    try:
        data = load_tensors(path, expected=_EXPECTED, map_location=map_location)
    except DamagedFileError as exc:  # truncated or damaged bytes: resume may skip to an older one
        raise CheckpointCorruptError(str(exc)) from exc
    except TorchFileError as exc:  # names the file, what it is and what is refused
        raise CheckpointError(str(exc)) from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        hint = ""
        if isinstance(data, dict) and data and all(isinstance(v, torch.Tensor)
                                                    for v in data.values()):
            hint = (" It looks like a bare state_dict; load it with "
                    "model.load_state_dict(torch.load(path, weights_only=True)) instead.")
        raise CheckpointError(
            f"{path} is not a gantransfer checkpoint (no format={FORMAT!r} key).{hint}"
        )
    version = data.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {version!r}; this gantransfer reads up to "
            f"{FORMAT_VERSION}. Upgrade gantransfer to load it."
        )
    _verify(path, data)
    missing = [k for k in ("architecture", "config", "model", "step") if k not in data]
    if missing:
        raise CheckpointError(f"{path} is missing checkpoint keys {missing}; the file is damaged")
    # Found by tests/reliability/test_rel_fuzz.py: odd values here crashed load() with
    # TypeError/AttributeError instead of saying the file is damaged.
    wrong = [k for k, kind in _KEY_TYPES.items() if k in data and not isinstance(data[k], kind)]
    if wrong:
        raise CheckpointError(f"{path} has checkpoint keys of the wrong type ({', '.join(wrong)}); "
                              "the file is damaged or was not written by gantransfer")
    return data


def _verify(path: Path, data: dict[str, Any]) -> None:
    stored = data.get("checksum")
    if stored is None:
        log.debug("%s has no content checksum (written before gantransfer stored one): "
                  "loaded without verification", path)
        return
    if not isinstance(stored, dict) or stored.get("algorithm") != ALGORITHM:
        raise CheckpointError(
            f"{path} has a checksum of an unknown kind ({stored!r}); this gantransfer knows "
            f"{ALGORITHM!r}. Upgrade gantransfer to load it."
        )
    actual = content_digest({k: v for k, v in data.items() if k != "checksum"})
    if actual != stored.get("digest"):
        raise CheckpointCorruptError(
            f"{path} is damaged: its content does not match the checksum stored when it was "
            "written (bytes changed on disk or in a copy). Do not use it; use an older "
            "checkpoint of the run, or copy the file again from its source."
        )


def newest_intact(run_dir: str | os.PathLike[str], *, move_damaged: bool = False,
                  map_location: Any = "cpu") -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint of ``run_dir`` that reads and verifies, with its content.

    Damaged ones (:class:`CheckpointCorruptError`) are skipped with a warning naming them; with
    ``move_damaged`` they are also renamed aside (:func:`move_aside`) so that later loads and
    rotation ignore them. Returns None when the run has no checkpoints.

    Raises:
        CheckpointCorruptError: every checkpoint of the run is damaged.
        CheckpointError: a checkpoint is unreadable for another reason (foreign, too new).
    """
    found = list_checkpoints(run_dir)
    damaged: list[Path] = []
    for path in reversed(found):
        if not path.exists():  # moved aside by another rank since the listing
            continue
        try:
            return path, read_checkpoint(path, map_location=map_location)
        except CheckpointCorruptError as exc:
            damaged.append(path)
            where = ""
            if move_damaged:
                with contextlib.suppress(FileNotFoundError):  # another rank moved it already
                    where = f"; moved aside to {move_aside(path).name}"
            log.warning("skipping damaged checkpoint %s%s (%s)", path, where, exc)
    if damaged:
        raise CheckpointCorruptError(
            f"every checkpoint of {run_dir} is damaged ({', '.join(p.name for p in damaged)}); "
            "nothing to resume from. Restore the run directory from a backup, or start a new run."
        )
    return None


def resolve(path_or_run_dir: str | os.PathLike[str]) -> Path:
    """A checkpoint file as given, or the latest checkpoint of a run directory; a pretrained name
    (``cyclegan/style_monet``) or ``hf://`` address is first resolved to its cached file
    (:func:`gantransfer.pretrained.resolve_source`; NotDownloadedError when it is not cached)."""
    from ..pretrained import resolve_source

    path = resolve_source(path_or_run_dir)
    if path.is_dir():
        latest = find_latest(path)
        if latest is None:
            raise CheckpointError(
                f"run directory {path} has no checkpoints (expected {path}/checkpoints/step_*.pt)"
            )
        return latest
    return path


# A distribution name as PEP 508 spells it, and a version made of the characters versions use:
# anything else a file records is not shown as a package name at all.
_DIST_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?$")
_VERSION = re.compile(r"^[A-Za-z0-9.+!_-]{1,40}$")


def _unknown_architecture(path: Path, arch: Any, versions: Any) -> str:
    """The message for a checkpoint of an architecture that is not installed.

    Everything named here was read from the file, which anyone can write: it is shown quoted
    and shortened, as information, and never as a command to run (a crafted file could
    otherwise have gtx print ``pip install 'evil-package'`` for the user to paste).
    """
    from .. import registry

    installed = ", ".join(registry.list()) or "(none)"
    text = (f"{path} was trained with architecture {_quoted(arch)}, which is not installed "
            f"here (installed: {installed}).")
    versions = versions if isinstance(versions, dict) else {}
    dist, version = versions.get("plugin"), versions.get("plugin_version")
    if isinstance(dist, str) and _DIST_NAME.match(dist):
        recorded = f"distribution {dist!r}"
        if isinstance(version, str) and _VERSION.match(version):
            recorded += f" version {version!r}"
        return text + (f" The file says it came from the {recorded}: that is the file's claim, "
                       "not a checked fact, so install a plugin only from a source you trust, "
                       "then load the file again.")
    return text + (" The file names no valid plugin distribution; install or register "
                   "(gantransfer.register) the plugin that provides the architecture, then load "
                   "the file again.")


def _quoted(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def load(path_or_run_dir: str | os.PathLike[str], *, device: str | torch.device = "cpu",
         ema: bool | None = None) -> GANModel:
    """Rebuild a trained model from a checkpoint file or the latest checkpoint of a run dir.

    Args:
        path_or_run_dir: a ``.pt`` checkpoint, a run directory, a downloaded pretrained name
            (``cyclegan/style_monet``) or a downloaded ``hf://user/repo``.
        device: where the model is placed.
        ema: use the EMA generator weights; None uses them when the checkpoint has them.

    Returns:
        The model in eval mode with ``model.arch_name`` and ``model.checkpoint_path`` set.

    Raises:
        CheckpointError: unreadable/foreign file, unknown architecture (with the plugin the
            file says it came from, never as a command), ``ema=True`` without EMA weights,
            weights that do not fit the config, or generator weights holding NaN/inf.
    """
    from .. import registry
    from ..config import build_config

    path = resolve(path_or_run_dir)
    try:
        data = read_checkpoint(path)
    except CheckpointCorruptError as exc:
        older = [p.name for p in list_checkpoints(path.parent.parent)[::-1] if p != path]
        if path.parent.name != "checkpoints" or not older:
            raise
        raise CheckpointCorruptError(
            f"{exc} Older checkpoints of this run: {', '.join(older[:5])} in {path.parent} "
            "(pass one of them instead)."
        ) from exc
    arch = data["architecture"]
    try:
        cls = registry.load_class(arch)
    except registry.UnknownPluginError as exc:
        raise CheckpointError(_unknown_architecture(path, arch, data.get("versions"))) from exc
    try:
        model = cls(build_config(cls.Config, data["config"], owner=f"architecture {arch!r}"))
    # LookupError: the config names a network that is not registered (a damaged name too).
    except (TypeError, ValueError, LookupError) as exc:
        raise CheckpointError(
            f"{path}: the stored config does not fit architecture {arch!r} as installed "
            f"(plugin version differs?): {exc}"
        ) from exc
    model.arch_name = arch
    averaged = data.get("ema")
    if ema and not averaged:
        raise CheckpointError(f"{path} has no EMA weights (trained without ema_decay)")
    try:
        model.load_state_dict(data["model"])
        if averaged and ema is not False:
            for name, state in averaged.items():
                model.nets[name].load_state_dict(state)
    # A damaged state (odd values, a model's extra state such as image pools) fails in many
    # ways inside load_state_dict; all mean the same to the user (found by the fuzz tests).
    except (RuntimeError, KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise CheckpointError(f"{path}: weights do not fit architecture {arch!r}: "
                              f"{type(exc).__name__}: {exc}") from exc
    _check_finite_weights(model, path)
    model.checkpoint_path = path
    return model.to(device).eval()


def _check_finite_weights(model: Any, path: Path) -> None:
    """Refuse generators holding NaN/inf (they translate into garbage); warn for other nets.

    A sum per tensor (NaN and inf propagate through it; ``isfinite().all()`` was ~50x slower):
    25-200 ms for CycleGAN's 28 M parameters on a busy 2-core CPU.
    """
    inference = set(model.generator_names())
    for name, net in model.nets.items():
        bad = [(key, int((~torch.isfinite(t)).sum())) for key, t in net.state_dict().items()
               if isinstance(t, torch.Tensor) and t.is_floating_point()  # not extra state
               and not bool(torch.isfinite(t.sum()))
               and not bool(torch.isfinite(t).all())]
        if not bad:
            continue
        listed = ", ".join(f"{key} ({n} values)" for key, n in bad[:4])
        more = f" and {len(bad) - 4} more tensors" if len(bad) > 4 else ""
        if name in inference:
            raise CheckpointError(
                f"{path}: the weights of {name} hold NaN or infinite values ({listed}{more}), "
                "so it would produce garbage: the training run diverged before this checkpoint "
                "was written, or the file was edited. Use an earlier checkpoint of the run."
            )
        log.warning("%s: %s holds NaN or infinite values (%s%s); it is not used for inference",
                    path, name, listed, more)
