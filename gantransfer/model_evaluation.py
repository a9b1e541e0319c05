"""Evaluate a model (a run directory, a checkpoint or an ``.onnx`` file) on held-out data: what
``gtx eval MODEL --data DIR`` runs.

For each chosen export target the model either **translates** the held-out images of its input
domain (``a2b``: ``DIR/testA`` -> compared with ``DIR/testB``) or, for a latent generator,
**draws** as many samples as the real folder holds (seeded), through the one dispatcher of
:mod:`gantransfer.inference` (:func:`~gantransfer.inference.translator`,
:func:`~gantransfer.inference.latent_generator`). The generated images are written as PNG (the
way ``gtx translate`` writes them) into a folder, then compared with the real images by
:func:`~gantransfer.evaluation.evaluate_folders`, so a model evaluated here and its saved outputs evaluated
with ``gtx eval --real --fake`` give the same numbers.

Where the held-out images of domain ``X`` are looked for, in order: ``DIR/testX`` (CycleGAN
layout), ``DIR/test/X`` and ``DIR/X`` (paired layouts). A latent generator's real images are
``DIR`` itself (every image below it).

A **conditional** model (export targets with label names) is evaluated once per label, under
the name ``<target>/<label>`` (default: every label; ``labels=`` picks some, by name or index).
A class-conditional generator draws its samples with that label and compares them with the
real images of that class, ``held_out_folder(DIR, label)`` (``DIR/<label>``, the labelled
layout, or ``DIR/test<label>``, ``DIR/test/<label>``). A multi-style translator translates the
inputs (``inputs=``, or the held-out images of the ``photo`` style when the model has one) into
each style and compares them with the real images of that style.

    from gantransfer.model_evaluation import evaluate_model
    report = evaluate_model("runs/h2z", data="data/horse2zebra", metrics=["fid", "kid"])
    report.to_dict()["targets"]["a2b"]["fid"]["value"]
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import torch

from .evaluation.evaluate import METRICS, EvalResult, _check_metrics, evaluate_folders
from .evaluation.features import DEFAULT_BATCH_SIZE, FeatureExtractor, Progress, find_images
from .evaluation.heldout import held_out_folder, parse_direction
from .evaluation.stats import DEFAULT_KID_SUBSETS
from .targets import resolve_label

__all__ = ["EvalTarget", "ModelEvaluation", "evaluate_model", "held_out_folder", "plan_targets"]

log = logging.getLogger(__name__)

@dataclass(frozen=True, kw_only=True)
class EvalTarget:
    """One thing to evaluate: ``target`` (an export target name, or None for an ONNX file's own)
    of ``kind`` image (translate ``inputs``) or latent (draw ``samples`` images), compared with
    the images in ``real``; ``label`` is the class/style name a conditional model runs with."""

    name: str
    target: str | None
    kind: Literal["image", "latent"]
    real: Path
    inputs: Path | None = None
    samples: int | None = None
    label: str | None = None


@dataclass(frozen=True, kw_only=True)
class ModelEvaluation:
    """Results per target name, with what produced them; :meth:`to_dict` is the JSON report."""

    source: str
    results: dict[str, EvalResult]
    targets: dict[str, EvalTarget]
    metrics: tuple[str, ...]
    generated: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    extractor: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """``{"source", "metrics", "extractor", "targets": {name: {...}}}``; every target says its
        inputs, real folder and image counts beside each number."""
        out: dict[str, Any] = {"source": self.source, "metrics": list(self.metrics),
                               "extractor": self.extractor, "targets": {}}
        for name, result in self.results.items():
            plan = self.targets[name]
            entry: dict[str, Any] = {"kind": plan.kind, "target": plan.target,
                                     "label": plan.label,
                                     "inputs": str(plan.inputs) if plan.inputs else None,
                                     "generated": self.generated.get(name, 0),
                                     "seconds": self.seconds.get(name)}
            entry.update(result.to_dict())
            out["targets"][name] = entry
        return out


def _targets_of(model: Any) -> dict[str, Any]:
    """Export target name -> spec (an ExportSpec or an ONNX file's metadata)."""
    metadata = getattr(model, "metadata", None)
    if metadata is not None and not hasattr(model, "export_targets"):  # an OnnxModel
        return {metadata.target or metadata.direction or "default": metadata}
    return dict(model.export_targets())


# The style a multi-style translator's held-out inputs are taken from when no --inputs is given
# (the demo's styles and the CycleGAN painters' sets arranged as label folders both have it).
SOURCE_STYLE = "photo"


def _chosen_labels(name: str, spec: Any, labels: Sequence[str | int], *, source: str
                   ) -> list[str] | None:
    """The label names to evaluate target ``name`` with (None: it is not conditional)."""
    names = getattr(spec, "labels", None)
    if not names:
        if labels:  # raises: the message says the model takes no label
            resolve_label(labels[0], None, what="label or style", source=source)
        return None
    what = "label" if getattr(spec, "input", "image") == "latent" else "style"
    picked = [names[resolve_label(v, names, what=what, source=source)] for v in labels]
    return list(dict.fromkeys(picked)) or list(names)


def _labelled_plans(name: str, spec: Any, chosen: list[str], *, target: str | None,
                    data: str | os.PathLike[str] | None,
                    inputs: str | os.PathLike[str] | None,
                    real: str | os.PathLike[str] | None, samples: int | None
                    ) -> list[EvalTarget]:
    """One plan per label of a conditional target, named ``<name>/<label>``."""
    if real is not None and len(chosen) > 1:
        raise ValueError(f"--real names one folder but {name} is evaluated for "
                         f"{len(chosen)} labels ({', '.join(chosen)}): pick one with --label, "
                         "or give --data DIR with one folder per label")
    if real is None and data is None:
        raise ValueError(f"{name} is conditional: give the dataset with --data DIR (the real "
                         "images of each label in DIR/<label>, DIR/test/<label> or "
                         "DIR/test<label>)")
    latent = getattr(spec, "input", "image") == "latent"
    source_folder: Path | None = None
    if not latent:
        if inputs is not None:
            source_folder = Path(inputs)
        elif data is not None and SOURCE_STYLE in spec.labels:
            source_folder = held_out_folder(data, SOURCE_STYLE)
        else:
            raise ValueError(
                f"{name} translates images into the styles {', '.join(spec.labels)}, none of "
                f"which is an obvious source domain (a style named {SOURCE_STYLE!r}): give the "
                "images to translate with --inputs DIR")
    plans = []
    for label in chosen:
        if real is not None:
            folder = Path(real)
        else:
            assert data is not None  # checked above
            folder = held_out_folder(data, label)
        plans.append(EvalTarget(name=f"{name}/{label}", target=target,
                                kind="latent" if latent else "image", real=folder,
                                inputs=source_folder, samples=samples if latent else None,
                                label=label))
    return plans


def plan_targets(specs: dict[str, Any], *, direction: str = "all",
                 data: str | os.PathLike[str] | None = None,
                 inputs: str | os.PathLike[str] | None = None,
                 real: str | os.PathLike[str] | None = None, samples: int | None = None,
                 onnx: bool = False, labels: Sequence[str | int] = (),
                 source: str = "the model") -> list[EvalTarget]:
    """What to evaluate for a model with export targets ``specs``.

    Args:
        direction: a target name or direction (``a2b``), or ``all`` (every image target; a
            model with only latent targets: every latent target).
        data: the dataset folder (held-out folders found by :func:`held_out_folder`; for a
            latent target the real images are ``data`` itself).
        inputs, real: explicit folders instead (``inputs`` only for image targets); they win
            over ``data``.
        samples: images a latent target draws (default: as many as the real folder holds).
        onnx: the specs come from an ONNX file (which takes no target name).
        labels: names or indexes of the labels (classes, styles) to evaluate a conditional
            target with (default: every label); one plan per label, ``<target>/<label>``,
            whose real images are ``held_out_folder(data, label)`` (or ``real`` for one label).
            A multi-style translator's inputs are ``inputs`` or the held-out images of its
            ``photo`` style.
        source: the model's description, for error messages.

    Raises:
        ValueError: an unknown direction, or neither ``data`` nor the explicit folders; labels
            for a model without them, an unknown label or an index out of range (the message
            lists the valid names); a multi-style translator without ``inputs`` and no
            ``photo`` style.
        EvaluationError: a held-out folder that is not there.
    """
    if not specs:
        raise ValueError("the model has no export targets to evaluate")
    image = {n: s for n, s in specs.items() if getattr(s, "input", "image") == "image"}
    if direction == "all":
        chosen = image or specs
    else:
        chosen = {n: s for n, s in specs.items()
                  if direction in (n, getattr(s, "direction", None))}
        if not chosen:
            names = sorted({*specs, *(s.direction for s in specs.values() if s.direction)})
            raise ValueError(f"the model has no target or direction {direction!r}; it has "
                             f"{', '.join(names)} (or use all)")
    plans: list[EvalTarget] = []
    for name, spec in chosen.items():
        target = None if onnx else name
        picked = _chosen_labels(name, spec, labels, source=source)
        if picked is not None:
            plans += _labelled_plans(name, spec, picked, target=target, data=data,
                                     inputs=inputs, real=real, samples=samples)
            continue
        if getattr(spec, "input", "image") == "latent":
            folder = Path(real) if real is not None else Path(data) if data is not None else None
            if folder is None:
                raise ValueError(f"{name} draws samples: give the real images with --data DIR "
                                 "(or --real DIR)")
            plans.append(EvalTarget(name=name, target=target, kind="latent", real=folder,
                                    samples=samples))
            continue
        if inputs is not None or real is not None:
            if inputs is None or real is None:
                raise ValueError("--inputs and --real go together: the images to translate and "
                                 "the real images of the target domain")
            plans.append(EvalTarget(name=name, target=target, kind="image", real=Path(real),
                                    inputs=Path(inputs)))
            continue
        if data is None:
            raise ValueError(f"{name} translates images: give the dataset with --data DIR "
                             "(held-out testA/testB), or --inputs DIR and --real DIR")
        domains = parse_direction(getattr(spec, "direction", None) or name)
        if domains is None:
            raise ValueError(f"target {name!r} names no direction (like a2b), so its held-out "
                             "folders cannot be found: give --inputs DIR and --real DIR")
        plans.append(EvalTarget(name=name, target=target, kind="image",
                                inputs=held_out_folder(data, domains[0]),
                                real=held_out_folder(data, domains[1])))
    if len({p.target for p in plans}) > 1 and (inputs is not None or real is not None):
        raise ValueError(f"--inputs/--real name one pair of folders but {len(plans)} targets "
                         f"were chosen ({', '.join(p.name for p in plans)}); pick one with "
                         "--direction")
    return plans


def _translate(model: Any, plan: EvalTarget, out: Path, *, batch_size: int | None,
               progress: Progress | None) -> int:
    from .inference import translate_files, translator

    assert plan.inputs is not None
    files = find_images(plan.inputs)
    pairs = [(f, out / f.relative_to(plan.inputs).with_suffix(".png")) for f in files]
    runner = translator(model, target=plan.target, images=len(pairs), style=plan.label)
    stage = f"translate {plan.name}"

    def report(done: int, total: int) -> None:
        if progress is not None:
            progress(stage, done, total)

    stats = translate_files(runner, pairs, batch_size=batch_size, progress=report)
    return stats.images


def _draw(model: Any, plan: EvalTarget, out: Path, *, n: int, seed: int,
          batch_size: int | None, progress: Progress | None) -> int:
    from PIL import Image

    from .inference import latent_generator
    from .inference.pipeline import save_image
    from .pixels import to_uint8

    dim, run = latent_generator(model, target=plan.target)
    z = torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))
    step = batch_size or DEFAULT_BATCH_SIZE
    width = len(str(n - 1))
    for start in range(0, n, step):
        batch = z[start:start + step]
        fake = run(batch) if plan.label is None else run(batch, label=plan.label)
        images = to_uint8(fake.cpu()).permute(0, 2, 3, 1).numpy()
        for i, arr in enumerate(images, start):
            save_image(Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr),
                       out / f"{i:0{width}d}.png")
        if progress is not None:
            progress(f"draw {plan.name}", min(start + step, n), n)
    return n


@contextlib.contextmanager
def _folder(base: Path | None, name: str) -> Iterator[Path]:
    if base is not None:
        folder = base / name
        folder.mkdir(parents=True, exist_ok=True)
        yield folder
        return
    with tempfile.TemporaryDirectory(prefix=f"gtx-eval-{name.replace(os.sep, '-')}-") as tmp:
        yield Path(tmp)


def evaluate_model(source: Any, *, data: str | os.PathLike[str] | None = None,
                   inputs: str | os.PathLike[str] | None = None,
                   real: str | os.PathLike[str] | None = None, direction: str = "all",
                   metrics: Sequence[str] = METRICS, device: str = "auto",
                   batch_size: int | None = None, samples: int | None = None, seed: int = 0,
                   extractor: FeatureExtractor | None = None,
                   weights: str | os.PathLike[str] | None = None, cache: bool = True,
                   fakes_dir: str | os.PathLike[str] | None = None,
                   kid_subsets: int = DEFAULT_KID_SUBSETS, kid_subset_size: int | None = None,
                   labels: Sequence[str | int] = (), progress: Progress | None = None,
                   on_source: Callable[[str], None] | None = None) -> ModelEvaluation:
    """Generate images with ``source`` and compare them with real ones (module docs).

    Args:
        source: a run directory, checkpoint, ``.onnx`` path, or a loaded model
            (:func:`gantransfer.inference.open_source`).
        data, inputs, real, direction, samples: what to evaluate (:func:`plan_targets`).
        metrics: any of ``fid``, ``kid``, ``psnr``, ``ssim``.
        device: where the model and the Inception network run (``auto``: cuda, mps, cpu).
        batch_size: images per model call and per feature batch (default: the translator's
            measured default; 50 for features).
        seed: the latent noise of drawn samples and the KID subsets.
        extractor, weights: the feature network, or the file to load it from (default: the
            downloaded file); loaded before anything is generated, so missing weights fail
            fast.
        cache: cache the real folders' features (:class:`~.cache.FeatureCache`).
        fakes_dir: keep the generated images in ``fakes_dir/<target>`` (``<target>/<label>``
            for a conditional model; default: a temporary folder, removed afterwards).
        labels: class labels / styles (names or indexes) to evaluate a conditional model with
            (default: every one it has); see :func:`plan_targets`.
        progress: ``progress(stage, done, total)`` for generation and feature extraction.
        on_source: called with the loaded model's description (for a CLI's first line).

    Raises:
        EvaluationError: missing or empty folders, too few images, mismatched pairs.
        WeightsNotFoundError: FID/KID asked for without the Inception weights.
        ValueError: an unknown metric or direction; labels for a model without them, an
            unknown label name or index (the message lists the valid names).
        CheckpointError, OnnxLoadError: the model cannot be loaded.
    """
    from .device import resolve_device
    from .inference import open_source

    metrics = _check_metrics(metrics)
    src = open_source(source, device=device)
    if on_source is not None:
        on_source(src.description)
    plans = plan_targets(_targets_of(src.model), direction=direction, data=data, inputs=inputs,
                         real=real, samples=samples, onnx=src.kind == "onnx", labels=labels,
                         source=src.description)
    for plan in plans:  # fail on missing or empty folders before loading anything heavy
        find_images(plan.real)
        if plan.inputs is not None:
            find_images(plan.inputs)
    torch_device = resolve_device(device)
    if extractor is None and {"fid", "kid"} & set(metrics):
        from .evaluation.inception import load_inception

        extractor = cast(FeatureExtractor, load_inception(weights, device=torch_device))
    results: dict[str, EvalResult] = {}
    generated: dict[str, int] = {}
    seconds: dict[str, float] = {}
    base = Path(fakes_dir) if fakes_dir is not None else None
    for plan in plans:
        start = time.perf_counter()
        with _folder(base, plan.name) as out:
            if plan.kind == "image":
                generated[plan.name] = _translate(src.model, plan, out, batch_size=batch_size,
                                                  progress=progress)
            else:
                n = plan.samples or len(find_images(plan.real))
                generated[plan.name] = _draw(src.model, plan, out, n=n, seed=seed,
                                             batch_size=batch_size, progress=progress)
            result = evaluate_folders(plan.real, out, metrics=metrics, extractor=extractor,
                                      device=torch_device,
                                      batch_size=batch_size or DEFAULT_BATCH_SIZE,
                                      kid_subsets=kid_subsets, kid_subset_size=kid_subset_size,
                                      seed=seed, cache=cache, progress=progress)
        if base is None:  # the temporary folder is gone: do not name it in the report
            result = EvalResult(fid=result.fid, kid=result.kid, paired=result.paired,
                                notes=result.notes, sources={"real": str(plan.real)})
        results[plan.name] = result
        seconds[plan.name] = round(time.perf_counter() - start, 3)
        log.info("evaluated %s in %.1f s", plan.name, seconds[plan.name])
    return ModelEvaluation(source=src.description, results=results,
                           targets={p.name: p for p in plans}, metrics=metrics,
                           generated=generated, seconds=seconds,
                           extractor=getattr(extractor, "cache_key", None))
