"""The onnxruntime backend: exported generators in an onnxruntime session (public as
``gantransfer.onnx``).

    >>> import gantransfer
    >>> model = gantransfer.onnx.load("horse2zebra_a2b.onnx")     # doctest: +SKIP
    >>> zebra = model.translate(PIL.Image.open("horse.jpg"))      # doctest: +SKIP

The file's ``gantransfer.*`` metadata says how to run it (input kind, channels, size divisor), so
any image size works: :func:`onnx_translator` wraps the session in the same
:class:`~gantransfer.inference.runner.Translator` the PyTorch backend uses (inputs are
reflect-padded and cropped back by the same code). An ONNX file runs at the precision it was
exported with: :func:`onnx_translator` is where that rule lives.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..targets import OnnxMetadata, resolve_label
from ._providers import CUDA, TRT, ProviderUnavailableError, choose_providers
from .runner import DEFAULT_BATCH_SIZE, Translator, check_finite

__all__ = ["OnnxLoadError", "OnnxModel", "ProviderUnavailableError", "load", "onnx_translator",
           "open_session"]

log = logging.getLogger(__name__)


class OnnxLoadError(ValueError):
    """The file is missing, not an ONNX model, or lacks what is needed to run it."""


def _default_trt_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gantransfer" / "tensorrt"


class OnnxModel:
    """An exported generator in an onnxruntime session: ``translate`` for image inputs,
    ``generate`` for latent inputs. Build it with :func:`load`."""

    def __init__(self, session: Any, metadata: OnnxMetadata, *, path: Path,
                 batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self.session = session
        self.metadata = metadata
        self.path = path
        self.batch_size = batch_size
        self.input_name = session.get_inputs()[0].name
        # A conditional generator's second input: int64 label indexes, one per batch row.
        inputs = session.get_inputs()
        self.label_input: str | None = inputs[1].name if len(inputs) > 1 else None
        if (self.label_input is None) != (metadata.labels is None):
            raise OnnxLoadError(
                f"{path}: the graph has {len(inputs)} input(s) but its metadata lists "
                f"{'no labels' if metadata.labels is None else 'labels'}; re-export it")
        self.output_name = session.get_outputs()[0].name
        self.providers: list[str] = session.get_providers()
        # GPU sessions bind inputs/outputs on the device to skip an extra host copy per run.
        self._device = "cuda" if self.providers[0] in (CUDA, TRT) else "cpu"

    def __repr__(self) -> str:
        m = self.metadata
        return (f"OnnxModel({str(self.path)!r}, {m.architecture}/{m.target}, input={m.input_kind}, "
                f"precision={m.precision}, providers={self.providers})")

    @property
    def label_names(self) -> tuple[str, ...] | None:
        """The label (class or style) names of a conditional generator, index = label value
        (from the file's ``gantransfer.labels`` metadata); None for an unconditional one. The
        same property as :attr:`gantransfer.GANModel.label_names`."""
        return self.metadata.labels

    def run(self, x: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """Run the raw graph on one batch (``NxCxHxW`` images already padded, or ``NxZ`` latents;
        ``labels``: int64 ``N`` label indexes for a conditional generator)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        try:
            if self._device == "cpu":
                return self.session.run([self.output_name], self._feed(x, labels))[0]
            import onnxruntime as ort

            binding = self.session.io_binding()
            for name, value in self._feed(x, labels).items():
                binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(value, "cuda", 0))
            binding.bind_output(self.output_name, "cuda", 0)
            self.session.run_with_iobinding(binding)
            return binding.copy_outputs_to_cpu()[0]
        except Exception as exc:
            m = self.metadata
            raise RuntimeError(
                f"onnxruntime failed on {self.path.name} for input shape {x.shape}: {exc}. The "
                f"file expects {m.input_kind} input (size divisor {m.size_divisor}, min size "
                f"{m.min_size}); a file without gantransfer metadata needs those passed to load()"
            ) from exc

    def _feed(self, x: np.ndarray, labels: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The graph inputs by name for one batch: the images (or latents), and a conditional
        generator's int64 labels beside them."""
        if self.label_input is None:
            if labels is not None:
                resolve_label(0, None, source=str(self.path))
            return {self.input_name: x}
        if labels is None:
            raise ValueError(f"{self.path.name} is conditional: it needs a label per image (one "
                             f"of {', '.join(self.metadata.labels or ())})")
        labels = np.ascontiguousarray(labels, dtype=np.int64).reshape(-1)
        if len(labels) != len(x):
            raise ValueError(f"{len(labels)} labels for a batch of {len(x)}")
        return {self.input_name: x, self.label_input: labels}

    def translate(self, images: Any, *, style: str | int | None = None,
                  batch_size: int | None = None) -> Any:
        """Translate images (PIL, HxWxC uint8 array, CxHxW/NxCxHxW tensor in [-1, 1], or a list);
        the output mirrors the input type and size. ``style``: the target style (name or index)
        of a multi-style generator. Raises ``ValueError`` for a latent model or a missing,
        unknown or unexpected style (listing the valid names),
        :class:`~gantransfer.inference.NonFiniteOutputError` for NaN/inf outputs."""
        if self.metadata.input_kind != "image":
            raise ValueError(f"{self.path.name} is a latent generator; use generate(n)")
        return onnx_translator(self, style=style).translate(
            images, batch_size=batch_size or self.batch_size)

    def generate(self, n: int, *, seed: int | None = None, generator: torch.Generator | None = None,
                 latents: torch.Tensor | np.ndarray | None = None, batch_size: int = 64,
                 label: Any = None) -> torch.Tensor:
        """``n`` images (``NxCxHxW`` float32 tensor in [-1, 1]) from a latent generator.

        Noise is ``torch.randn(n, latent_dim)`` from ``generator`` (or ``seed``), exactly like
        :func:`gantransfer.inference.generate`, so the same seed gives the same images as the
        PyTorch model; ``latents`` gives the noise directly. ``label``: a class-conditional
        generator's class, as for :func:`gantransfer.inference.generate` (None: all classes in
        turn).
        """
        from .torch_backend import label_tensor

        m = self.metadata
        if m.input_kind != "latent":
            raise ValueError(f"{self.path.name} translates images; use translate(images)")
        if latents is None:
            if generator is None and seed is not None:
                generator = torch.Generator().manual_seed(seed)
            latents = torch.randn(n, int(m.latent_dim or 0), generator=generator)
        z = latents.numpy() if isinstance(latents, torch.Tensor) else np.asarray(latents)
        found = label_tensor(label, len(z), m.labels, source=str(self.path))
        labels = None if found is None else found.numpy()
        parts = [self.run(z[i : i + batch_size],
                          None if labels is None else labels[i : i + batch_size])
                 for i in range(0, len(z), batch_size)]
        out = np.concatenate(parts)
        check_finite(out, source=str(self.path))
        return torch.from_numpy(out)


def _metadata_from_session(session: Any, path: Path, overrides: dict[str, Any]) -> OnnxMetadata:
    props = dict(session.get_modelmeta().custom_metadata_map)
    inp = session.get_inputs()[0]
    shape = inp.shape
    if not any(k.startswith("gantransfer.") for k in props):
        kind = overrides.get("input_kind")
        if kind is None:
            raise OnnxLoadError(
                f"{path} has no gantransfer metadata (not exported by gantransfer.export_onnx). "
                f"Its input {inp.name!r} has shape {shape}; pass input_kind='image' with "
                "size_divisor= and min_size= (e.g. 4 and 8 for a CycleGAN resnet generator), or "
                "input_kind='latent'"
            )
        if len(shape) > 1 and isinstance(shape[1], int):  # channels or latent size from the graph
            overrides.setdefault("latent_dim" if kind == "latent" else "in_channels", shape[1])
        out = session.get_outputs()[0].shape
        if len(out) > 1 and isinstance(out[1], int):
            overrides.setdefault("out_channels", out[1])
    try:
        meta = OnnxMetadata.from_props(props, **overrides)
    except (TypeError, ValueError) as exc:
        raise OnnxLoadError(f"{path}: {exc}") from exc
    expected_rank = 2 if meta.input_kind == "latent" else 4
    if len(shape) != expected_rank:
        raise OnnxLoadError(f"{path}: input {inp.name!r} has rank {len(shape)} but "
                            f"input_kind={meta.input_kind!r} needs rank {expected_rank}")
    return meta


def open_session(model: str | os.PathLike[str] | bytes, *,
                 providers: Sequence[Any] = ("CPUExecutionProvider",), threads: int | None = None,
                 config: Mapping[str, str] | None = None, log_level: int = 3,
                 options: Any = None) -> Any:
    """An ``onnxruntime.InferenceSession`` for ``model`` (a file or serialised bytes): the one
    place gantransfer makes sessions (the runtime, export verification, int8 quantisation).

    Args:
        providers: execution providers in order, names or ``(name, options)`` pairs, used as
            given (:func:`load` chooses them; export checks run on the CPU).
        threads: intra-op threads (default: onnxruntime's choice, the physical cores).
        config: session config entries, e.g. ``{"session.intra_op.allow_spinning": "0"}``.
        log_level: onnxruntime's log severity: 3 = errors only (no optimiser or
            provider-assignment notes on stderr), 4 = fatal only (for probes that expect
            failures).
        options: an ``onnxruntime.SessionOptions`` to use as is (``threads`` and ``log_level``
            are then not applied; ``config`` entries are added to it).

    Graph optimisation is onnxruntime's full level. Raises what onnxruntime raises.
    """
    import onnxruntime as ort

    if options is None:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = log_level
        if threads:
            options.intra_op_num_threads = threads
    for key, value in (config or {}).items():
        options.add_session_config_entry(key, value)
    source = model if isinstance(model, bytes) else os.fspath(model)
    return ort.InferenceSession(source, options, providers=list(providers))


def load(path: str | os.PathLike[str], *, providers: str | Sequence[str] = "auto",
         strict: bool = False, batch_size: int = DEFAULT_BATCH_SIZE, threads: int | None = None,
         trt_cache_dir: str | os.PathLike[str] | None = None, session_options: Any = None,
         session_config: dict[str, str] | None = None, **metadata: Any) -> OnnxModel:
    """Open an exported generator for inference.

    Args:
        path: an ``.onnx`` file written by :func:`gantransfer.export_onnx` (or any image/latent
            generator when ``metadata`` says how to run it).
        providers: ``"auto"`` (TensorRT, CUDA, then CPU: whatever works here, checked quietly),
            or a name/list (``"cpu"``, ``"cuda"``, ``["CUDAExecutionProvider"]``).
        strict: raise :class:`ProviderUnavailableError` when a requested provider cannot be used
            (default: log a warning and fall back to the CPU).
        batch_size: images per run in :meth:`OnnxModel.translate`.
        threads: intra-op threads (default: onnxruntime's choice, the physical cores).
        trt_cache_dir: TensorRT engine cache (default ``~/.cache/gantransfer/tensorrt``).
        session_options: an ``onnxruntime.SessionOptions`` to use as is.
        session_config: extra session config entries, e.g.
            ``{"session.intra_op.allow_spinning": "0"}`` (the benchmark uses it so idle
            onnxruntime threads do not spin while PyTorch runs).
        **metadata: override or supply metadata (``input_kind``, ``size_divisor``, ``min_size``,
            ``in_channels``...) for files without gantransfer metadata.

    Raises:
        OnnxLoadError: missing file, not ONNX, or not enough metadata to run it.
        ProviderUnavailableError: ``strict`` and a requested provider is unusable.
    """
    path = Path(path)
    if not path.is_file():
        raise OnnxLoadError(f"{path} does not exist or is not a file")
    chosen = choose_providers(providers, strict=strict)
    provider_args: list[Any] = []
    for name in chosen:
        if name == TRT:
            cache = Path(trt_cache_dir) if trt_cache_dir else _default_trt_cache()
            cache.mkdir(parents=True, exist_ok=True)
            provider_args.append((name, {"trt_engine_cache_enable": True,
                                         "trt_engine_cache_path": str(cache)}))
        else:
            provider_args.append(name)
    try:
        session = open_session(path, providers=provider_args, threads=threads,
                               config=session_config, options=session_options)
    except Exception as exc:
        text = str(exc)
        if "INVALID_PROTOBUF" in text or "Protobuf parsing failed" in text or "INVALID_GRAPH" in text:
            raise OnnxLoadError(f"{path} is not a valid ONNX model file ({text.strip()})") from exc
        raise OnnxLoadError(f"onnxruntime could not open {path}: {text.strip()}") from exc
    meta = _metadata_from_session(session, path, dict(metadata))
    log.debug("loaded %s with providers %s", path, session.get_providers())
    return OnnxModel(session, meta, path=path, batch_size=batch_size)


def onnx_translator(model: OnnxModel, *, target: str | None = None, precision: str = "fp32",
                    compile: str | bool = "off", bucket: int | None = None,
                    style: str | int | None = None) -> Translator:
    """A :class:`~gantransfer.inference.runner.Translator` running ``model`` (onnxruntime).

    An ONNX file runs at the precision it was exported with, so ``precision`` and ``compile``
    (options for PyTorch models) accept only their defaults or ``auto``; ``target``, when given,
    must be the file's target or direction. ``bucket`` (default 1: pad to the divisor only)
    pads sizes further, as for PyTorch models. ``style`` (name or index) is required by a
    multi-style file and refused by any other.

    Raises:
        ValueError: another precision/compile value, another target, a latent generator, or a
            missing, unknown or unexpected style (the message lists the valid names).
    """
    meta = model.metadata
    wrong = [f"{name}={value!r} (--{name} {value})" for name, value, ok in (
        ("precision", precision, ("fp32", "auto")),
        ("compile", compile, ("off", "auto", False))) if value not in ok]
    if wrong:
        raise ValueError(
            f"{' and '.join(wrong)}: these options apply to PyTorch models; an ONNX file runs at "
            "the precision it was exported with (export an int8 file for faster CPU inference), "
            "so leave them at fp32/off or auto")
    if target is not None and target not in (meta.target, meta.direction):
        raise ValueError(f"{model.path} holds target {meta.target!r}, not {target!r}; export the "
                         "other direction to its own file")
    if meta.input_kind != "image":
        raise ValueError(f"{model.path} is a latent generator; it cannot translate images")

    index: int | None = None
    if style is not None or meta.labels is not None:
        if style is None:
            raise ValueError(f"{model.path} is a multi-style generator: name a style (one of "
                             f"{', '.join(meta.labels or ())})")
        index = resolve_label(style, meta.labels, what="style", source=str(model.path))

    def forward(x: torch.Tensor) -> torch.Tensor:
        # Back on the input's device (the pipeline's batches are on the CPU already).
        labels = None if index is None else np.full(len(x), index, dtype=np.int64)
        return torch.from_numpy(model.run(x.detach().cpu().numpy(), labels)).to(x.device)

    from .defaults import default_batch_size

    gpu = model.providers[0] in (CUDA, TRT)
    return Translator(forward, channels=meta.in_channels, divisor=meta.size_divisor,
                      min_size=meta.min_size, bucket=1 if bucket is None else bucket,
                      source=str(model.path),
                      batch_size=default_batch_size("cuda" if gpu else "cpu"),
                      description=f"onnxruntime {meta.precision} on {', '.join(model.providers)}"
                      + ("" if index is None else f", style {meta.labels[index]!r}"))  # type: ignore[index]
