"""Export generators to ONNX with torch's dynamo exporter, verified in onnxruntime.

Every file is written to a temporary path, verified against PyTorch at several shapes, and only
then moved over the destination, so a failed export never replaces a good file.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime as _dt
import functools
import logging
import math
import os
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import nn

from .._io import atomic_path
from ..precision import Precision
from ..targets import ExportSpec, OnnxMetadata
from .verify import DEFAULT_ATOL, ExportVerificationError, compare, verification_shapes

if TYPE_CHECKING:  # pragma: no cover
    from ..model import GANModel

__all__ = [
    "ExportResult",
    "ExportVerificationError",
    "check_opset",
    "export_network",
    "export_onnx",
    "output_paths",
    "supported_opsets",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportResult:
    """One written file: its path, target, precision, max abs error per verified input shape
    (empty when verification was skipped; for int8, vs the fp32 file) and the seconds the export
    took; int8 files also carry the PSNR against fp32 (see :func:`quantize_int8`)."""

    path: Path
    target: str
    precision: str
    max_abs_error: dict[str, float]
    elapsed: float
    psnr: float | None = None  # int8: dB vs fp32 on the calibration images
    heldout_psnr: float | None = None  # int8: dB vs fp32 on held-out images (None: none held out)

    @property
    def worst_error(self) -> float | None:
        return max(self.max_abs_error.values()) if self.max_abs_error else None


def _exporter_min_opset() -> int:
    """The oldest opset torch's dynamo exporter has implementations for (18 in torch 2.5-2.13);
    for older ones it exports 18 and tries a version conversion that fails for these graphs
    (no ``Pad`` adapter from 18 to 17 in onnx) and then writes opset 18 anyway."""
    try:
        from torch.onnx._internal.exporter._constants import TORCHLIB_OPSET
    except ImportError:  # private module moved: the value of every torch release so far
        return 18
    return int(TORCHLIB_OPSET)


@functools.cache
def _runtime_max_opset(upper: int) -> int:
    """The newest default-domain opset onnxruntime here loads (probed with an Identity model)."""
    from onnx import TensorProto, helper

    from ..inference.onnx_backend import open_session

    value = helper.make_tensor_value_info
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "opset_probe",
                              [value("x", TensorProto.FLOAT, [1])],
                              [value("y", TensorProto.FLOAT, [1])])
    for version in range(upper, 0, -1):
        opsets = [helper.make_opsetid("", version)]
        model = helper.make_model(graph, opset_imports=opsets,
                                  ir_version=helper.find_min_ir_version_for(opsets))
        try:  # the failures are the probe: keep them quiet (fatal-only logging)
            open_session(model.SerializeToString(), log_level=4)
        except Exception:  # "does not load" is the answer being probed
            continue
        return version
    return 0


def supported_opsets() -> range:
    """The ONNX opsets :func:`export_onnx` can write and verify here: from the oldest one torch's
    exporter implements to the newest one both ``onnx`` and onnxruntime know."""
    import onnx

    upper = min(onnx.defs.onnx_opset_version(), _runtime_max_opset(onnx.defs.onnx_opset_version()))
    return range(_exporter_min_opset(), upper + 1)


def check_opset(opset: int | None) -> None:
    """Raise ``ValueError`` naming the supported range when ``opset`` cannot be honoured.

    Checked before anything is exported: torch used to export opset 18 for ``--opset 13`` or
    ``17`` (printing a version-conversion traceback), and an opset newer than onnxruntime's
    fails only in verification.
    """
    if opset is None:
        return
    import onnx

    newest = onnx.defs.onnx_opset_version()
    if _exporter_min_opset() <= opset <= newest and _runtime_max_opset(opset) == opset:
        return
    import onnxruntime

    ok = supported_opsets()
    if opset < ok.start:
        why = (f"The exporter of torch {torch.__version__.split('+')[0]} implements opset "
               f"{ok.start} and newer, and onnx cannot convert these graphs to older opsets (it "
               "has no Pad adapter below 18); for a runtime that needs an older opset, upgrade "
               "the runtime")
    else:
        why = (f"{ok.stop - 1} is the newest that both onnx {onnx.__version__} and onnxruntime "
               f"{onnxruntime.__version__} (which verifies every export) know")
    raise ValueError(f"ONNX opset {opset} is not supported here; choose one from {ok.start} to "
                     f"{ok.stop - 1}. {why}.")


class _Generator(nn.Module):
    """The exported graph: one generator with a fixed, documented input name."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class _ConditionalGenerator(_Generator):
    """The exported graph of a conditional generator: images (or latents) and int64 labels."""

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.net(x, labels)


def output_paths(path: str | os.PathLike[str], targets: list[str], *, many: bool
                 ) -> dict[str, Path]:
    """Where each target goes: ``path`` itself for one target named by file; for several (or a
    directory) ``{stem}_{target}.onnx`` next to a ``.onnx`` path, or ``{dir}/{target}.onnx``."""
    p = Path(path)
    if p.suffix.lower() == ".onnx" and not p.is_dir():
        if not many:
            return {targets[0]: p}
        return {t: p.with_name(f"{p.stem}_{t}.onnx") for t in targets}
    return {t: p / f"{t}.onnx" for t in targets}


def check_destination(path: str | os.PathLike[str]) -> None:
    """Fail before a (possibly long) export when ``path``'s folder cannot exist: a part of it is
    an existing file (writing would fail at the end with "[Errno 17] File exists").

    Raises:
        NotADirectoryError: naming the file that is in the way.
    """
    p = Path(path)
    folder = p.parent if p.suffix.lower() == ".onnx" and not p.is_dir() else p
    for part in (folder, *folder.parents):
        if part.is_dir():
            return
        if part.exists() or part.is_symlink():
            raise NotADirectoryError(
                f"cannot write {p}: {part} is a file, not a folder. Choose another output path, "
                f"or move {part} out of the way")


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """torch's exporter logs a warning per missing optional op library (torchvision); not ours."""
    logger = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            # torch-internal deprecation noise raised while tracing (pytree LeafSpec).
            warnings.filterwarnings("ignore", category=FutureWarning, message=".*LeafSpec.*")
            # A conditional generator's label input shares the image's batch axis on purpose.
            warnings.filterwarnings("ignore", category=UserWarning,
                                    message=".*shares the same shape constraints.*")
            yield
    finally:
        logger.setLevel(level)


def _example_and_dims(spec: ExportSpec, *, dynamic: bool, static_shape: tuple[int, ...] | None
                      ) -> tuple[torch.Tensor, Any]:
    """An example input for tracing and torch.export dynamic shapes (None when static)."""
    from torch.export import Dim

    if spec.input == "latent":
        batch = static_shape[0] if static_shape else 2
        example = torch.randn(batch, int(spec.latent_dim or 0))
        return example, ({0: Dim("batch", min=1)},) if dynamic else None
    if static_shape is not None:
        b, h, w = static_shape
        d, m = spec.size_divisor, spec.min_size
        if h % d or w % d or h < m or w < m:
            raise ValueError(
                f"static shape {h}x{w} is not allowed: height and width must be multiples of "
                f"{d} and at least {m}"
            )
        return torch.rand(b, spec.in_channels, h, w) * 2 - 1, None
    d = spec.size_divisor
    low = math.ceil(spec.min_size / d)
    blocks = max(low, 2) + 1  # >= 2 so torch.export does not specialise a size of 1
    example = torch.rand(2, spec.in_channels, d * blocks, d * (blocks + 1)) * 2 - 1
    if d == 1:
        height, width = Dim("height", min=max(low, 1)), Dim("width", min=max(low, 1))
    else:  # sizes are multiples of the divisor: export that as the constraint
        height = d * Dim("h_blocks", min=max(low, 1))
        width = d * Dim("w_blocks", min=max(low, 1))
    return example, ({0: Dim("batch", min=1), 2: height, 3: width},)


def _resolve_model(model_or_checkpoint: Any, ema: bool | None) -> GANModel:
    from ..model import GANModel

    if isinstance(model_or_checkpoint, GANModel):
        if ema is not None:
            log.warning("ema=%s ignored: it selects weights when loading a checkpoint, and a "
                        "model object was given", ema)
        return model_or_checkpoint
    if isinstance(model_or_checkpoint, (str, os.PathLike)):
        from ..engine.checkpoint import load

        return load(model_or_checkpoint, device="cpu", ema=ema)
    raise TypeError(f"export_onnx expects a GANModel or a checkpoint/run path, got "
                    f"{type(model_or_checkpoint).__name__}")


def _metadata(model: GANModel, name: str, spec: ExportSpec, precision: str) -> OnnxMetadata:
    from .._version import __version__
    from ..config import to_plain

    try:
        config = to_plain(model.config)
    except TypeError:  # a third-party config with non-plain values: record what we can
        config = {f.name: repr(getattr(model.config, f.name))
                  for f in dataclasses.fields(model.config)}
    return OnnxMetadata.from_spec(
        spec, architecture=model.arch_name or type(model).__name__, target=name,
        direction=spec.direction or name, precision=precision, version=__version__,
        exported_at=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), config=config)


def export_network(net: nn.Module, spec: ExportSpec, dest: str | os.PathLike[str], *,
                   metadata: OnnxMetadata, opset: int | None = None, dynamic: bool = True,
                   static_shape: tuple[int, ...] | None = None, precision: str = "fp32",
                   verify: bool = True, atol: float | None = None, label: str = "generator"
                   ) -> ExportResult:
    """Export one generator ``net`` described by ``spec`` to ``dest`` (verified, atomic).

    The building block of :func:`export_onnx`, usable for a bare network (benchmarks, networks
    from :func:`gantransfer.get_network`). ``metadata`` is written into the file as is.
    """
    import onnx

    from ._graph import convert_fp16, rename_axes, set_metadata

    dest = Path(dest)
    check_opset(opset)
    start = time.perf_counter()
    net = copy.deepcopy(net).cpu().float().eval()
    wrapper = (_Generator(net) if spec.labels is None else _ConditionalGenerator(net)).eval()
    example, dims = _example_and_dims(spec, dynamic=dynamic and static_shape is None,
                                      static_shape=static_shape)
    input_names = ["latent" if spec.input == "latent" else "image"]
    inputs: tuple[torch.Tensor, ...] = (example,)
    if spec.labels is not None:
        # The label input: int64, one per batch row, sharing the image's batch dimension.
        inputs = (example, torch.arange(example.shape[0]) % len(spec.labels))
        input_names.append("label")
        if dims is not None:
            dims = (dims[0], {0: dims[0][0]})
    label = f"{label} ({precision})"
    try:
        with _quiet_exporter(), torch.no_grad():
            program = torch.onnx.export(
                wrapper, inputs, dynamo=True, input_names=input_names,
                output_names=["output"], dynamic_shapes=dims, opset_version=opset,
                external_data=False, verbose=False,
            )
    except Exception as exc:
        raise RuntimeError(f"torch.onnx.export failed for {label}: {exc}") from exc
    if program is None:  # only the legacy (TorchScript) exporter returns None
        raise RuntimeError(f"torch.onnx.export returned no ONNX program for {label}")
    proto = program.model_proto
    written = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is not None and written != opset:  # never hand out another opset than asked for
        raise RuntimeError(f"torch.onnx.export wrote opset {written} for {label}, not the "
                           f"requested {opset}; nothing was written")
    if dims is not None:
        rename_axes(proto, {0: "batch"} if spec.input == "latent"
                    else {0: "batch", 2: "height", 3: "width"})
    if precision == "fp16":
        proto = convert_fp16(proto)
    set_metadata(proto, dataclasses.replace(metadata, precision=precision).to_props())
    proto.doc_string = f"gantransfer {label}"

    errors: dict[str, float] = {}
    with atomic_path(dest) as tmp:
        onnx.save_model(proto, os.fspath(tmp))  # weights inside: these generators are << 2 GB
        if verify:
            shapes = verification_shapes(spec, static_shape=static_shape)
            tol = DEFAULT_ATOL[precision] if atol is None else atol
            errors = compare(tmp, wrapper, spec=spec, shapes=shapes, atol=tol, label=label)
    elapsed = time.perf_counter() - start
    log.info("exported %s to %s in %.1fs%s", label, dest, elapsed,
             f" (max abs error {max(errors.values()):.2g})" if errors else " (not verified)")
    return ExportResult(path=dest, target=metadata.target or "", precision=precision,
                        max_abs_error=errors, elapsed=elapsed)


def _export_one(model: GANModel, name: str, spec: ExportSpec, dest: Path, *,
                int8: dict[str, Any] | None = None, **options: Any) -> ExportResult:
    label = f"{model.arch_name or type(model).__name__}/{name}"
    if int8 is None:
        meta = _metadata(model, name, spec, options.get("precision", "fp32"))
        return export_network(model.nets[spec.net], spec, dest, metadata=meta, label=label,
                              **options)
    # int8: a verified fp32 export in a scratch folder, quantised from there into ``dest``.
    from .quantize import quantize_int8

    start = time.perf_counter()
    meta = _metadata(model, name, spec, "fp32")
    with tempfile.TemporaryDirectory(prefix="gantransfer-export-") as tmp:
        fp32 = export_network(model.nets[spec.net], spec, Path(tmp, "fp32.onnx"), metadata=meta,
                              label=label, **{**options, "precision": "fp32"})
        size = int8["size"]
        if size is None and options.get("static_shape") is None:  # a static file has its own
            size = model.data_defaults().get("crop_size") or 256
        report = quantize_int8(fp32.path, dest, calib=int8["calib"], count=int8["count"],
                               size=size, min_psnr=int8["min_psnr"])
    return ExportResult(path=dest, target=name, precision="int8",
                        max_abs_error=report.max_abs_error, elapsed=time.perf_counter() - start,
                        psnr=report.psnr, heldout_psnr=report.heldout_psnr)


def export_onnx(model_or_checkpoint: GANModel | str | os.PathLike[str],
                path: str | os.PathLike[str], *,
                target: str | None = None, opset: int | None = None, dynamic: bool = True,
                static_shape: tuple[int, int, int] | None = None,
                precision: Literal["fp32", "fp16", "int8"] = "fp32", ema: bool | None = None,
                verify: bool = True, atol: float | None = None,
                calib: str | os.PathLike[str] | None = None, calib_count: int | None = None,
                calib_size: int | tuple[int, int] | None = None,
                min_psnr: float | None = None,
                existing: Literal["error", "overwrite", "skip"] = "overwrite"
                ) -> list[ExportResult]:
    """Export a model's generator(s) to ONNX and verify each file in onnxruntime.

    Args:
        model_or_checkpoint: a :class:`~gantransfer.GANModel`, or a checkpoint file / run
            directory (loaded with :func:`gantransfer.load`).
        path: the ``.onnx`` file; with ``target="all"`` (or a directory) each target is written
            to ``{stem}_{target}.onnx`` (``{dir}/{target}.onnx`` for a directory).
        target: an export target name (``"a2b"``, ``"generator"``...), ``"all"``, or None for
            the model's default target.
        opset: ONNX opset (None: the exporter's default, 18); see :func:`supported_opsets`.
        dynamic: dynamic batch, height and width (multiples of the size divisor).
        static_shape: ``(batch, height, width)`` (``(batch,)`` for latents) for a fixed-shape file.
        precision: ``"fp32"``, ``"fp16"`` (normalisation and graph I/O stay fp32) or ``"int8"``
            (static QDQ quantisation for the CPU, calibrated on ``calib``; see
            :func:`gantransfer.export.quantize.quantize_int8`). int8 exports one image target.
        ema: use EMA weights when loading a checkpoint (None: the checkpoint's default).
        verify: compare with PyTorch at several shapes; fails past ``atol``.
        atol: max abs error allowed (default 1e-4 for fp32, 2e-2 for fp16; int8: for the fp32
            graph it is quantised from).
        calib: int8 only (required): folder of real input images of the target (recursive).
        calib_count: int8: calibration images to use (default 32).
        calib_size: int8: calibration size, ``int`` or ``(h, w)`` (default: the model's training
            crop, else 256; rounded to the size divisor).
        min_psnr: int8: refuse a file whose PSNR vs fp32 is below this (default 40 dB).
        existing: what to do with files that exist already: ``"overwrite"`` (replace them, once
            verified), ``"error"`` (refuse before exporting anything) or ``"skip"`` (export only
            the missing targets). A file is never written over the checkpoint it comes from.

    Returns:
        One :class:`ExportResult` per written file (skipped targets have none).

    Raises:
        ExportVerificationError: the ONNX output differs from PyTorch (nothing was replaced).
        NotADirectoryError: a part of ``path``'s folder is a file (checked before exporting).
        ValueError: unknown target, precision or static shape; an opset outside
            :func:`supported_opsets` (before anything is exported); int8 without ``calib``, with
            several targets or with a latent target.
        OutputExistsError: ``existing="error"`` and a file exists (nothing was exported).
        OutputIsInputError: an output path is the checkpoint being exported.
        CalibrationError: int8 and ``calib`` is missing, empty or has no readable images.
        QuantizationError: int8 PSNR below ``min_psnr`` (nothing was written or replaced).
    """
    Precision.check(precision, "export")
    check_opset(opset)
    check_destination(path)
    int8 = _int8_options(precision, calib=calib, count=calib_count, size=calib_size,
                         min_psnr=min_psnr)
    model = _resolve_model(model_or_checkpoint, ema)
    targets = model.export_targets()
    if target == "all":
        names = list(targets)
    elif target is None:
        names = [model.default_target()]
    elif target in targets:
        names = [target]
    else:
        raise ValueError(f"unknown export target {target!r}; {model.arch_name or 'the model'} "
                         f"has {', '.join(map(repr, targets))} (or 'all')")
    if int8 is not None:
        _check_int8_targets(model, {n: targets[n] for n in names})
    if static_shape is not None:
        batch, height, width = static_shape
        static_shape = (int(batch), int(height), int(width))
    paths = output_paths(path, names, many=target == "all")
    names = _writable(paths, source=model_or_checkpoint, existing=existing)
    with model.evaluating():
        return [
            _export_one(model, n, targets[n], paths[n], opset=opset, dynamic=dynamic,
                        static_shape=(static_shape[:1] if static_shape and targets[n].input
                                      == "latent" else static_shape),
                        precision=precision, verify=verify, atol=atol, int8=int8)
            for n in names
        ]


def _writable(paths: dict[str, Path], *, source: Any, existing: str) -> list[str]:
    """The targets to export under the output rule (gantransfer._outputs); clears temporary
    files that killed exports left next to the outputs."""
    from .._io import remove_stale_temps
    from .._outputs import select_outputs

    inputs = []
    if isinstance(source, (str, os.PathLike)):
        from ..engine.checkpoint import resolve

        inputs.append(resolve(source))
    keep = select_outputs(list(paths.values()), inputs=inputs, existing=existing,  # type: ignore[arg-type]
                          what="ONNX file")
    chosen = []
    for (name, dest), write in zip(paths.items(), keep, strict=True):
        if not write:
            log.info("%s exists: skipped (target %s)", dest, name)
            continue
        remove_stale_temps(dest.parent, name=dest.name)
        chosen.append(name)
    return chosen


def _int8_options(precision: str, *, calib: Any, count: int | None, size: Any,
                  min_psnr: float | None) -> dict[str, Any] | None:
    """The int8 options as a dict (None for fp32/fp16), rejecting misplaced ones early."""
    from .calibration import check_calibration_files
    from .quantize import DEFAULT_CALIB_COUNT, DEFAULT_MIN_PSNR, calibration_split

    given = [n for n, v in (("calib", calib), ("calib_count", count), ("calib_size", size),
                            ("min_psnr", min_psnr)) if v is not None]
    if precision != "int8":
        if given:
            raise ValueError(f"{', '.join(given)} only apply to precision='int8' (got "
                             f"precision={precision!r})")
        return None
    if calib is None:
        raise ValueError("precision='int8' needs calib=: a folder of real input images for the "
                         "generator (e.g. the dataset's testA/ for a2b) to calibrate on")
    count = DEFAULT_CALIB_COUNT if count is None else int(count)
    # A missing/empty folder, or one without a readable image, fails before the export.
    chosen, _heldout = calibration_split(calib, count=count)
    check_calibration_files(calib, chosen)
    return {"calib": calib, "count": count, "size": size,
            "min_psnr": DEFAULT_MIN_PSNR if min_psnr is None else float(min_psnr)}


def _check_int8_targets(model: GANModel, targets: dict[str, ExportSpec]) -> None:
    if len(targets) > 1:
        raise ValueError(
            f"int8 export quantises one target at a time, calibrated on images of that target's "
            f"input domain; pick one of {', '.join(map(repr, targets))} with target= (--target) "
            "and its own calibration folder")
    (name, spec), = targets.items()
    if spec.input != "image":
        raise ValueError(
            f"target {name!r} of {model.arch_name or 'the model'} takes latent vectors; int8 "
            "export supports image-to-image generators only (latent generators are mostly "
            "ConvTranspose layers, which stay fp32 for quality, so int8 would change nothing). "
            "Export it as fp32 or fp16")
