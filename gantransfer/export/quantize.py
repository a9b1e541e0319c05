"""Static int8 quantisation of exported image generators for CPU deployment (onnxruntime).

:func:`quantize_int8` turns a verified fp32 ONNX file into an int8 QDQ file with
``onnxruntime.quantization.quantize_static``, calibrated on real images, then measures the PSNR of
the int8 outputs against the fp32 file on those images (and on held-out ones) and refuses files
below ``min_psnr``. What is quantised, and why (measured on resnet generators; see
``docs/export.md``):

* QDQ format, per-channel symmetric int8 weights, uint8 activations (onnxruntime's fast U8S8
  kernels on x86), MinMax calibration.
* Only ``Conv`` nodes. Transposed convs (``ConvTranspose``) stay fp32, and so do the first and the
  last ``Conv`` of the graph: the first sees raw pixels and the last writes them, and quantising
  those costs most of the quality (26–38 dB instead of ~50 dB).

The first and last convs are found by graph topology (no ``Conv`` upstream / no conv downstream),
not by node names, so any exporter's naming works.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._io import atomic_path
from ..data.metrics import psnr
from ..targets import OnnxMetadata
from .calibration import (
    DEFAULT_CALIB_COUNT,
    HOLDOUT_MIN_IMAGES,
    CalibrationError,
    calibration_split,
    load_calibration_images,
)

if TYPE_CHECKING:  # pragma: no cover
    import onnx

__all__ = [
    "DEFAULT_CALIB_COUNT",
    "DEFAULT_MIN_PSNR",
    "CalibrationError",
    "QuantizationError",
    "QuantizationReport",
    "calibration_split",
    "fp32_conv_nodes",
    "load_calibration_images",
    "quantize_int8",
]

log = logging.getLogger(__name__)

DEFAULT_MIN_PSNR = 40.0  # dB of int8 vs fp32 below which the file is refused
_CONV_OPS = ("Conv", "ConvTranspose")


class QuantizationError(RuntimeError):
    """Quantisation failed or its quality is below the threshold; no file was written."""


@dataclass(frozen=True)
class QuantizationReport:
    """What :func:`quantize_int8` did.

    ``psnr`` is int8 vs fp32 in dB on the calibration images, ``heldout_psnr`` the same on images
    not used for calibration (None when there were too few images to hold some out).
    ``max_abs_error`` is int8 vs fp32 on random inputs at the verification shapes.
    """

    path: Path
    psnr: float
    heldout_psnr: float | None
    calib_images: int
    heldout_images: int
    calib_size: tuple[int, int]
    quantized_nodes: int
    fp32_nodes: tuple[str, ...]
    max_abs_error: dict[str, float]

    def as_metadata(self) -> dict[str, Any]:
        """The plain-data summary stored as ``gantransfer.quantization`` in the file."""
        return {
            "method": "onnxruntime quantize_static, QDQ, per-channel int8 weights, uint8 "
                      "activations, MinMax; Conv only",
            "calib_images": self.calib_images, "heldout_images": self.heldout_images,
            "calib_size": list(self.calib_size), "quantized_nodes": self.quantized_nodes,
            "fp32_nodes": list(self.fp32_nodes),
        }


# -- graph inspection --------------------------------------------------------------------------
def fp32_conv_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the ``Conv`` nodes to keep in fp32: the first and the last conv of the graph.

    "First": a Conv with no Conv/ConvTranspose upstream of it; "last": a Conv with none
    downstream (found by walking the data-flow graph, so names and node order do not matter).
    Nodes without a name are given one (``quantize_static`` excludes nodes by name).
    """
    nodes = list(model.graph.node)
    for i, node in enumerate(nodes):
        if not node.name:
            node.name = f"gantransfer_{node.op_type}_{i}"
    producer = {out: node for node in nodes for out in node.output}
    consumers: dict[str, list[Any]] = defaultdict(list)
    for node in nodes:
        for name in node.input:
            consumers[name].append(node)

    def reaches_conv(start: Any, step: Any) -> bool:
        seen, stack = set(), list(step(start))
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if node.op_type in _CONV_OPS:
                return True
            stack.extend(step(node))
        return False

    def upstream(node: Any) -> list[Any]:
        return [producer[i] for i in node.input if i in producer]

    def downstream(node: Any) -> list[Any]:
        return [c for o in node.output for c in consumers.get(o, ())]

    convs = [n for n in nodes if n.op_type == "Conv"]
    keep = [n.name for n in convs
            if not reaches_conv(n, upstream) or not reaches_conv(n, downstream)]
    return list(dict.fromkeys(keep))


class _DropPreprocessAdvice(logging.Filter):
    """onnxruntime logs "consider pre-processing" on the root logger for every model; the dynamo
    export already carries full shape information and has nothing for its optimiser to fuse
    (``quant_pre_process`` leaves the graph's ops unchanged), so the advice is noise here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing" not in record.getMessage()


@contextlib.contextmanager
def _quiet_quantizer() -> Iterator[None]:
    root = logging.getLogger()
    flt = _DropPreprocessAdvice()
    root.addFilter(flt)
    try:
        yield
    finally:
        root.removeFilter(flt)


# -- running -----------------------------------------------------------------------------------
def _session(path: Path) -> Any:
    from ..inference.onnx_backend import open_session

    return open_session(path)  # the CPU provider, as the runtime optimises


def _batches(images: np.ndarray, batch: int | None) -> Iterator[tuple[np.ndarray, int]]:
    """``(batch, n_real)`` chunks; a fixed batch size is filled up by repeating images."""
    step = batch or 1
    for start in range(0, len(images), step):
        chunk = images[start : start + step]
        n = len(chunk)
        if batch and n < batch:
            chunk = np.concatenate([chunk, np.resize(images, (batch - n, *images.shape[1:]))])
        yield np.ascontiguousarray(chunk), n


def _feed(session: Any, x: np.ndarray, *, offset: int, n_labels: int | None
          ) -> dict[str, np.ndarray]:
    """The graph inputs for batch ``x``; a conditional (multi-style) generator's second input
    gets labels cycling through every style by image position (``(offset + i) % n_labels``),
    so calibration and the quality check cover every style."""
    names = [i.name for i in session.get_inputs()]
    feed = {names[0]: x}
    if len(names) > 1:
        feed[names[1]] = (np.arange(offset, offset + len(x)) % int(n_labels or 1)).astype(np.int64)
    return feed


def _run(session: Any, images: np.ndarray, batch: int | None, n_labels: int | None = None
         ) -> np.ndarray:
    outs, offset = [], 0
    for x, n in _batches(images, batch):
        outs.append(session.run(None, _feed(session, x, offset=offset, n_labels=n_labels))[0][:n])
        offset += n
    return np.concatenate(outs)


def _static_dims(session: Any) -> tuple[int | None, tuple[int, int] | None]:
    """Fixed batch size and (h, w) of the graph input, None where dynamic."""
    shape = session.get_inputs()[0].shape
    batch = shape[0] if isinstance(shape[0], int) else None
    hw = (shape[2], shape[3]) if all(isinstance(s, int) for s in shape[2:4]) else None
    return batch, hw


def _calib_size(size: int | tuple[int, int] | None, meta: OnnxMetadata,
                static_hw: tuple[int, int] | None) -> tuple[int, int]:
    if static_hw is not None:
        if size is not None and tuple(np.broadcast_to(size, 2)) != static_hw:
            raise ValueError(f"calibration size {size} differs from the file's fixed input size "
                             f"{static_hw[0]}x{static_hw[1]}; leave the size out")
        return static_hw
    d, m = meta.size_divisor, meta.min_size
    h, w = (256, 256) if size is None else tuple(int(v) for v in np.broadcast_to(size, 2))
    fixed = tuple(max(d * math.ceil(m / d), d * round(v / d)) for v in (h, w))
    if fixed != (h, w):
        log.info("calibration size %dx%d rounded to %dx%d (multiples of %d, at least %d)",
                 h, w, *fixed, d, m)
    return fixed  # type: ignore[return-value]


def _reader(session: Any, images: np.ndarray, batch: int | None, n_labels: int | None = None
            ) -> Any:
    """A ``CalibrationDataReader`` feeding ``images`` (defined here: onnxruntime is lazy)."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(_batches(images, batch))
            self._offset = 0

        def get_next(self) -> dict[str, np.ndarray] | None:
            item = next(self._it, None)
            if item is None:
                return None
            feed = _feed(session, item[0], offset=self._offset, n_labels=n_labels)
            self._offset += item[1]
            return feed

    return Reader()


def _verify(path: Path, fp32: Any, meta: OnnxMetadata, static: tuple[int | None, Any]
            ) -> dict[str, float]:
    """Run the int8 file at the verification shapes: same output shapes as fp32, all finite."""
    from .verify import verification_shapes

    batch, hw = static
    shapes = verification_shapes(meta, static_shape=(batch or 1, *hw) if hw else None)
    session = _session(path)
    n_labels = len(meta.labels) if meta.labels else None
    rng = np.random.default_rng(0)
    errors = {}
    for shape in shapes:
        x = (rng.random(shape, dtype=np.float32) * 2 - 1).astype(np.float32)
        got = session.run(None, _feed(session, x, offset=0, n_labels=n_labels))[0]
        want = fp32.run(None, _feed(fp32, x, offset=0, n_labels=n_labels))[0]
        key = "x".join(map(str, shape))
        if got.shape != want.shape or not np.isfinite(got).all():
            raise QuantizationError(f"int8 file gives shape {got.shape} (fp32: {want.shape}) or "
                                    f"NaN/Inf for input {key}; nothing was written")
        errors[key] = float(np.abs(got.astype(np.float64) - want).max())
    return errors


# -- the public entry point ----------------------------------------------------------------------
def quantize_int8(fp32_path: str | os.PathLike[str], dest: str | os.PathLike[str], *,
                  calib: str | os.PathLike[str], count: int = DEFAULT_CALIB_COUNT,
                  size: int | tuple[int, int] | None = None,
                  min_psnr: float = DEFAULT_MIN_PSNR) -> QuantizationReport:
    """Write a static int8 (QDQ) copy of the fp32 image generator ``fp32_path`` to ``dest``.

    Args:
        fp32_path: an fp32 file written by :func:`gantransfer.export_onnx` (its metadata says
            the channels and size divisor).
        dest: the int8 file; written atomically, only when every check passes.
        calib: folder of real input images for this generator (recursive).
        count: calibration images to use (see :func:`calibration_split` for held-out ones).
        size: calibration size, ``int`` or ``(h, w)``, rounded to the size divisor (default 256;
            a fixed-shape file uses its own size).
        min_psnr: refuse the file when the PSNR (dB) of int8 vs fp32 on the calibration images,
            or on the held-out images, is below this. ``0`` (or ``-inf``) accepts anything.

    Returns:
        a :class:`QuantizationReport` (``psnr``, ``heldout_psnr``...).

    Raises:
        CalibrationError: ``calib`` is missing, empty or has no readable images.
        QuantizationError: the PSNR is below ``min_psnr`` (the message names it), the graph has
            nothing to quantise, or the int8 file does not run.
        ValueError: ``fp32_path`` is not an fp32 image generator.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from ._graph import set_metadata

    fp32_path, dest = Path(fp32_path), Path(dest)
    model = onnx.load(os.fspath(fp32_path))
    try:
        meta = OnnxMetadata.from_props({p.key: p.value for p in model.metadata_props})
    except ValueError as exc:
        raise ValueError(f"{fp32_path} was not written by gantransfer.export_onnx (no "
                         "gantransfer metadata): export it with gtx export first") from exc
    if meta.input_kind != "image":
        raise ValueError(
            f"{fp32_path} is a latent generator; int8 export supports image-to-image generators "
            "only (latent generators are mostly ConvTranspose layers, which stay fp32)")
    if meta.precision != "fp32":
        raise ValueError(f"{fp32_path} has precision {meta.precision}; quantise an fp32 export")
    keep = fp32_conv_nodes(model)
    n_quant = sum(1 for n in model.graph.node if n.op_type == "Conv" and n.name not in keep)
    if n_quant == 0:
        raise QuantizationError(
            f"{fp32_path} has no Conv layer besides the first and last one (kept fp32 for "
            "quality), so int8 would change nothing; export fp32 instead")

    fp32 = _session(fp32_path)
    static = _static_dims(fp32)
    hw = _calib_size(size, meta, static[1])
    calib_files, held_files = calibration_split(calib, count=count)
    calib_x = load_calibration_images(calib_files, channels=meta.in_channels, size=hw,
                                      folder=calib)
    try:
        held_x = load_calibration_images(held_files, channels=meta.in_channels, size=hw,
                                         folder=calib)
    except CalibrationError:  # every held-out file unreadable: check on calibration images only
        held_x = calib_x[:0]
    log.info("calibrating int8 on %d image(s) at %dx%d from %s (%d held out)", len(calib_x),
             *hw, calib, len(held_x))
    if not len(held_x):
        log.warning("int8: no image held out of %s (it has fewer than %d readable images): the "
                    "quality check runs on the calibration images only; add images for a "
                    "held-out check", calib, HOLDOUT_MIN_IMAGES)

    with tempfile.TemporaryDirectory(prefix="gantransfer-int8-") as tmp:
        src = Path(tmp, "fp32.onnx")
        onnx.save_model(model, os.fspath(src))  # with the node names fp32_conv_nodes may add
        raw = Path(tmp, "int8.onnx")
        n_labels = len(meta.labels) if meta.labels else None
        reader = _reader(fp32, calib_x, static[0], n_labels)
        try:
            with _quiet_quantizer():
                quantize_static(
                    os.fspath(src), os.fspath(raw), reader, quant_format=QuantFormat.QDQ,
                    per_channel=True, op_types_to_quantize=["Conv"], nodes_to_exclude=keep,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    # MinMax keeps only per-tensor min/max per batch (ReduceMin/ReduceMax
                    # outputs), so memory stays small at any calibration size. (Do not set
                    # CalibMaxIntermediateOutputs: in onnxruntime 1.31 it drops, rather than
                    # reduces, every full group of batches.)
                    calibrate_method=CalibrationMethod.MinMax,
                )
        except Exception as exc:
            raise QuantizationError(f"onnxruntime quantize_static failed on {fp32_path}: "
                                    f"{exc}") from exc
        int8 = _session(raw)
        # Nothing is held out of fewer than HOLDOUT_MIN_IMAGES images: run only what exists.
        outputs = [(_run(int8, x, static[0], n_labels), _run(fp32, x, static[0], n_labels))
                   for x in (calib_x, held_x) if len(x)]
        del int8
        if not all(np.isfinite(q).all() for q, _ in outputs):
            raise QuantizationError(f"the int8 copy of {fp32_path} gives NaN/Inf on the "
                                    f"calibration images; nothing was written")
        value = psnr(*outputs[0])
        held = psnr(*outputs[1]) if len(outputs) > 1 else None
        worst = min(value, held) if held is not None else value
        where = f"{value:.2f} dB on {len(calib_x)} calibration image(s)" + (
            f", {held:.2f} dB on {len(held_x)} held-out image(s)" if held is not None else "")
        if worst < min_psnr:
            raise QuantizationError(
                f"int8 quality too low for {dest}: PSNR vs fp32 {where}, below the required "
                f"{min_psnr:g} dB; nothing was written. Try more or more typical calibration "
                f"images (--calib, --calib-count; real inputs of this generator, not outputs or "
                f"noise), a calibration size like the training crop (--calib-size), or keep "
                f"fp32. To write it anyway, lower the threshold (--min-psnr / min_psnr="
                f"{math.floor(worst)})")
        report_meta: dict[str, Any] = dict(
            precision="int8", psnr_db=round(value, 3),
            heldout_psnr_db=None if held is None else round(held, 3))
        qmodel = onnx.load(os.fspath(raw))
        summary = QuantizationReport(
            path=dest, psnr=value, heldout_psnr=held, calib_images=len(calib_x),
            heldout_images=len(held_x), calib_size=hw, quantized_nodes=n_quant,
            fp32_nodes=tuple(keep), max_abs_error={})
        final = dataclasses.replace(meta, **report_meta, quantization=summary.as_metadata())
        set_metadata(qmodel, final.to_props())
        qmodel.doc_string = (model.doc_string or "gantransfer generator").replace(
            "(fp32)", "(int8)")
        with atomic_path(dest) as out:
            onnx.save_model(qmodel, os.fspath(out))
            report = dataclasses.replace(summary, max_abs_error=_verify(out, fp32, meta, static))
    log.info("int8 file %s: PSNR vs fp32 %s", dest, where)
    return report
