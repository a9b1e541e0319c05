"""Evaluation during training (``TrainConfig.eval_every``): held-out images, metrics, best.

**Held-out images.** A dataset with its own test split (``testA``/``testB``, ``test/A``,
``test/B``) is evaluated on it. Otherwise ``eval_holdout`` of the training images (a fixed,
seeded choice; paired partners together) are taken *out of the training set* before the sampler
is built, so they are never trained on. At most ``eval_images`` images per domain are used.

**What runs.** Every image target whose name or direction is ``x2y`` translates the held-out
``X`` images (through ``model.translate``, the inference dispatcher) and is compared with the
held-out ``Y`` images; a latent target draws as many samples (fixed seed) and is compared with
the held-out real images. Metrics: ``fid``/``kid`` (Inception features; need the downloaded
weights), ``psnr``/``ssim`` (only for images with a ground truth of the same name), ``stats``
(:func:`gantransfer.data.metrics.statistics_distance`, weights-free; needs images of one size
with sides multiple of 4). ``eval_metrics="auto"`` runs whatever is possible and says which did
not run and why (the log at the start and ``skipped`` in every record).

**Best checkpoint.** After each evaluation the chosen metric (``eval_best``) is compared with
the best so far (kept in the checkpoints, so resume continues the comparison); an improvement
writes ``checkpoints/best.pt``, a full training checkpoint that rotation never deletes.

Evaluation runs on rank 0 in eval mode with the EMA weights (if any) and its own RNG streams, so
it changes neither the training state nor its random numbers: runs with and without it, and
interrupted and uninterrupted runs, train identically.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:  # pragma: no cover
    from .config import TrainConfig

__all__ = ["EVAL_METRICS", "LOGGERS", "HeldOutEvaluator", "best_path", "hold_out"]

log = logging.getLogger(__name__)

EVAL_METRICS = ("fid", "kid", "psnr", "ssim", "stats")
LOWER_IS_BETTER = frozenset({"fid", "kid", "stats"})
LOGGERS = ("tensorboard",)
_BEST_ORDER = ("fid", "kid", "psnr", "ssim", "stats")
_HOLDOUT_SEED = 0x4E1D  # mixed with TrainConfig.seed: the held-out choice is fixed per seed


def best_path(run_dir: str | Path) -> Path:
    """``RUN/checkpoints/best.pt``: the checkpoint with the best evaluation so far."""
    return Path(run_dir) / "checkpoints" / "best.pt"


def hold_out(dataset: Any, *, fraction: float, seed: int) -> dict[str, list[Path]]:
    """Remove a seeded ``fraction`` of each domain's files from ``dataset`` (an
    ``ImageFolderDataset``: ``files``/``sizes`` per domain) and return them; paired datasets
    lose the same indices in A and B. At least one file is held out and one kept per domain.

    Raises:
        ValueError: a domain has fewer than 2 files (nothing could be held out).
    """
    domains = list(dataset.files)
    paired = getattr(dataset, "kind", "") == "paired"
    held: dict[str, list[Path]] = {}
    rng = np.random.default_rng([seed, _HOLDOUT_SEED])
    chosen: np.ndarray | None = None
    for d in domains:
        n = len(dataset.files[d])
        if n < 2:
            raise ValueError(f"cannot hold out images for evaluation from {n} image(s) of "
                             f"domain {d}: add a test split (testA/testB) or more images")
        k = min(max(1, round(n * fraction)), n - 1)
        if chosen is None or not paired:
            chosen = np.sort(rng.permutation(n)[:k])
        mask = np.zeros(n, bool)
        mask[chosen] = True
        held[d] = [f for f, m in zip(dataset.files[d], mask, strict=True) if m]
        dataset.files[d] = [f for f, m in zip(dataset.files[d], mask, strict=True) if not m]
        dataset.sizes[d] = [s for s, m in zip(dataset.sizes[d], mask, strict=True) if not m]
    return held


def _weights_available() -> tuple[bool, str]:
    from ..evaluation.inception import default_weights_path

    path = default_weights_path()
    if not path.is_file():
        return False, (f"no Inception weights at {path} (gtx weights download inception)")
    try:
        import torchmetrics  # noqa: F401
    except ImportError:
        return False, "torchmetrics is not installed (pip install 'gantransfer[eval]')"
    return True, ""


@dataclass
class _Target:
    name: str
    kind: str  # "image" | "latent"
    real: list[Path]
    inputs: list[Path] = field(default_factory=list)
    in_channels: int = 3
    out_channels: int = 3
    real_images: list[np.ndarray] | None = None  # decoded once
    real_features: np.ndarray | None = None  # extracted once


class HeldOutEvaluator:
    """Evaluates a model on the held-out images of a run (module docs).

    Build it with :meth:`prepare` before the sampler (it may take images out of the dataset);
    call :meth:`evaluate` on rank 0 inside eval mode / no grad / a forked RNG; :meth:`improved`
    says whether a record beats the best so far.
    """

    def __init__(self, targets: list[_Target], *, metrics: tuple[str, ...],
                 skipped: dict[str, str], best: str | None, seed: int,
                 source: str) -> None:
        self.targets = targets
        self.metrics = metrics
        self.skipped = skipped
        self.best_key = best
        self.seed = seed
        self.source = source
        self._extractor: Any = None  # the Inception network, loaded on first use (rank 0)
        self._needs_extractor = "fid" in metrics or "kid" in metrics

    # -- setup -------------------------------------------------------------------------------
    @classmethod
    def prepare(cls, model: Any, dataset: Any, data_config: Any,
                config: TrainConfig) -> HeldOutEvaluator:
        """Find (or hold out) the evaluation images and decide which metrics run.

        Raises:
            ValueError: ``eval_every`` without a folder dataset, a model with nothing to
                evaluate, a metric or best metric that cannot run (named, with the reason).
            WeightsNotFoundError: ``fid``/``kid`` named explicitly without the weights.
        """
        from ..evaluation.heldout import own_test_split, parse_direction

        if data_config is None or not hasattr(dataset, "files"):
            raise ValueError("eval_every needs the training data as a folder (a DataConfig), "
                             "where held-out images can be found")
        root = Path(data_config.root)
        specs = model.export_targets()
        kinds = {getattr(s, "input", "image") for s in specs.values()}
        splits = {d: own_test_split(root, d) for d in ("A", "B")}
        if data_config.phase == "train" and "image" in kinds and all(splits.values()):
            from ..data.folders import list_images

            held = {d: list_images(f) for d, f in splits.items() if f is not None}
            source = f"the test split of {root}"
        else:
            held = hold_out(dataset, fraction=config.eval_holdout or 0.1, seed=config.seed)
            source = (f"{config.eval_holdout or 0.1:.0%} of the training images of {root} "
                      "(held out, not trained on)")
        limit = config.eval_images
        targets = []
        for name, spec in specs.items():
            if getattr(spec, "input", "image") == "latent":
                real = held.get("image") or held.get("B") or []
                targets.append(_Target(name=name, kind="latent", real=real[:limit],
                                       out_channels=spec.out_channels))
                continue
            domains = parse_direction(getattr(spec, "direction", None) or name)
            if domains is None or domains[0] not in held or domains[1] not in held:
                log.warning("evaluation skips target %s: it names no direction between the "
                            "data's domains (like a2b)", name)
                continue
            targets.append(_Target(name=name, kind="image", inputs=held[domains[0]][:limit],
                                   real=held[domains[1]][:limit], in_channels=spec.in_channels,
                                   out_channels=spec.out_channels))
        if not targets:
            raise ValueError(f"eval_every: {type(model).__name__} has no target to evaluate "
                             f"(targets {', '.join(specs)})")
        metrics, skipped = cls._choose_metrics(config.eval_metrics)
        best = None if config.eval_best == "none" else config.eval_best
        if best not in (None, "auto") and best.rsplit("/", 1)[-1] not in metrics:
            raise ValueError(f"eval_best={best!r} but that metric does not run: "
                             f"{skipped.get(best.rsplit('/', 1)[-1], 'not in eval_metrics')}")
        evaluator = cls(targets, metrics=metrics, skipped=skipped, best=best,
                        seed=config.seed, source=source)
        log.info("evaluation every %d steps on %s: %s%s", config.eval_every, source,
                 ", ".join(metrics),
                 "".join(f"; {m} skipped: {why}" for m, why in skipped.items()))
        return evaluator

    @staticmethod
    def _choose_metrics(asked: str) -> tuple[tuple[str, ...], dict[str, str]]:
        ok, why = _weights_available()
        try:
            import torchmetrics  # noqa: F401
            has_tm = True
        except ImportError:
            has_tm = False
        if asked == "auto":
            skipped = {}
            metrics = []
            for name in EVAL_METRICS:
                if name in ("fid", "kid") and not ok:
                    skipped[name] = why
                elif name == "ssim" and not has_tm:
                    skipped[name] = "torchmetrics is not installed (pip install 'gantransfer[eval]')"
                else:
                    metrics.append(name)
            return tuple(metrics), skipped
        names = tuple(dict.fromkeys(m.strip() for m in asked.split(",") if m.strip()))
        if ("fid" in names or "kid" in names) and not ok:
            from ..evaluation.inception import WeightsNotFoundError

            raise WeightsNotFoundError(f"eval_metrics asks for fid/kid but {why}; or drop them "
                                       "(eval_metrics=auto runs what needs no weights)")
        if "ssim" in names and not has_tm:
            raise ImportError("eval_metrics asks for ssim, which needs torchmetrics: pip "
                              "install 'gantransfer[eval]'")
        return names, {}

    # -- evaluating --------------------------------------------------------------------------
    def evaluate(self, model: Any, *, step: int) -> dict[str, Any]:
        """One evaluation of ``model`` (as it is: the caller sets eval mode, EMA, no grad).

        Returns the metrics.jsonl record: ``{"step", "eval": {target: {metric: value,
        "n_real", "n_fake", "n_pairs"}}, "skipped": {metric: reason}, "eval_seconds"}``.
        """
        if self._needs_extractor and self._extractor is None:
            from ..evaluation.inception import load_inception

            self._extractor = load_inception(device=model.device)
        start = time.perf_counter()
        out: dict[str, dict[str, float | int | None]] = {}
        skipped = dict(self.skipped)
        for target in self.targets:
            out[target.name] = self._evaluate_target(model, target, skipped)
        return {"step": step, "eval": out, "skipped": skipped,
                "eval_seconds": round(time.perf_counter() - start, 3)}

    def _evaluate_target(self, model: Any, target: _Target, skipped: dict[str, str]
                         ) -> dict[str, float | int | None]:
        from ..data.images import read_image
        from ..pixels import to_uint8

        if target.real_images is None:
            target.real_images = [np.asarray(read_image(p, channels=target.out_channels))
                                  for p in target.real]
        reals = target.real_images
        if target.kind == "image":
            images = [read_image(p, channels=target.in_channels) for p in target.inputs]
            fakes = [np.asarray(y) for y in model.translate(images, direction=target.name)]
            names = [p.stem for p in target.inputs]
        else:
            gen = torch.Generator().manual_seed(self.seed)
            drawn = model.generate(len(reals), target=target.name, generator=gen)
            fakes = list(to_uint8(drawn.cpu()).permute(0, 2, 3, 1).numpy())
            names = []
        result: dict[str, float | int | None] = {"n_real": len(reals), "n_fake": len(fakes)}
        if "psnr" in self.metrics or "ssim" in self.metrics:
            result.update(self._paired(names, fakes, target, reals))
        if "fid" in self.metrics or "kid" in self.metrics:
            result.update(self._features(target, reals, fakes))
        if "stats" in self.metrics:
            value, why = _stats(reals, fakes)
            if why:
                skipped.setdefault("stats", why)
            result["stats"] = value
        return result

    def _paired(self, names: list[str], fakes: list[np.ndarray], target: _Target,
                reals: list[np.ndarray]) -> dict[str, float | int | None]:
        from ..data.metrics import psnr

        truth = {p.stem: img for p, img in zip(target.real, reals, strict=True)}
        pairs = [(f, truth[n]) for n, f in zip(names, fakes, strict=True)
                 if n in truth and truth[n].shape == f.shape] if names else []  # drawn: none
        out: dict[str, float | int | None] = {"n_pairs": len(pairs)}
        if "psnr" in self.metrics:
            out["psnr"] = float(np.mean([psnr(a, b) for a, b in pairs])) if pairs else None
        if "ssim" in self.metrics:
            out["ssim"] = _ssim(pairs) if pairs else None
        return out

    def _features(self, target: _Target, reals: list[np.ndarray], fakes: list[np.ndarray]
                  ) -> dict[str, float | int | None]:
        from ..evaluation.features import extract_features
        from ..evaluation.stats import fid, kid

        def tensors(images: list[np.ndarray]) -> list[torch.Tensor]:
            return [torch.from_numpy(np.ascontiguousarray(
                (a[:, :, None] if a.ndim == 2 else a).transpose(2, 0, 1)))[None] for a in images]

        device = next(self._extractor.parameters()).device
        if target.real_features is None:
            target.real_features = extract_features(tensors(reals), self._extractor,
                                                    device=device)
        fake_features = extract_features(tensors(fakes), self._extractor, device=device)
        out: dict[str, float | int | None] = {}
        if "fid" in self.metrics:
            out["fid"] = fid(target.real_features, fake_features).value
        if "kid" in self.metrics:
            result = kid(target.real_features, fake_features, seed=self.seed)
            out["kid"], out["kid_std"] = result.mean, result.std
        return out

    # -- the best checkpoint -----------------------------------------------------------------
    def best_metric(self, record: dict[str, Any]) -> str | None:
        """The ``target/metric`` key that decides the best checkpoint in ``record``."""
        if self.best_key is None:
            return None
        first = next(iter(record["eval"]))
        if self.best_key == "auto":
            values = record["eval"][first]
            name = next((m for m in _BEST_ORDER if values.get(m) is not None), None)
            return f"{first}/{name}" if name else None
        if "/" in self.best_key:
            return self.best_key
        return f"{first}/{self.best_key}"

    def improved(self, record: dict[str, Any], best: dict[str, Any] | None
                 ) -> dict[str, Any] | None:
        """The new best (``{"metric", "value", "step"}``) when ``record`` beats ``best``."""
        key = self.best_metric(record)
        if key is None:
            return None
        target, metric = key.rsplit("/", 1)
        value = record["eval"].get(target, {}).get(metric)
        if value is None or (not np.isfinite(value) and metric != "psnr"):  # PSNR inf: exact
            return None
        new = {"metric": key, "value": float(value), "step": int(record["step"])}
        if best is None or best.get("metric") != key:
            return new
        lower = metric in LOWER_IS_BETTER
        return new if (value < best["value"] if lower else value > best["value"]) else None


def _ssim(pairs: list[tuple[np.ndarray, np.ndarray]]) -> float:
    from ..evaluation.stats import require_torchmetrics

    require_torchmetrics()
    from torchmetrics.functional.image import structural_similarity_index_measure

    def chw(a: np.ndarray) -> torch.Tensor:
        a = a[:, :, None] if a.ndim == 2 else a
        return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None].double() / 255

    def one(a: np.ndarray, b: np.ndarray) -> float:
        value = structural_similarity_index_measure(chw(a), chw(b), data_range=1.0)
        assert isinstance(value, torch.Tensor)  # a tuple only with return_full_image=True
        return float(value)

    return float(np.mean([one(a, b) for a, b in pairs]))


def _stats(reals: list[np.ndarray], fakes: list[np.ndarray]) -> tuple[float | None, str]:
    from ..data.metrics import statistics_distance

    shapes = {a.shape for a in reals} | {a.shape for a in fakes}
    if len(shapes) != 1:
        return None, "the images differ in size"
    (shape,) = shapes
    if len(shape) != 3 or shape[2] != 3 or shape[0] % 4 or shape[1] % 4:
        return None, "needs RGB images with sides multiple of 4"
    if len(reals) < 2 or len(fakes) < 2:
        return None, "needs at least 2 images per set"
    stack = [np.stack(x).transpose(0, 3, 1, 2) for x in (reals, fakes)]
    return statistics_distance(stack[0], stack[1]), ""
