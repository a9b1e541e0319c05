"""Choosing onnxruntime execution providers without error spam on machines that lack a GPU.

``onnxruntime-gpu`` lists the CUDA and TensorRT providers even where their libraries are missing;
asking for them then prints loud errors to stderr before falling back. We first check quietly, with
``ctypes``, that the provider library and everything it links (cuBLAS, cuDNN, TensorRT) loads and
that the CUDA driver sees a device; only then is the provider requested.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import sys
from collections.abc import Sequence

__all__ = ["ALIASES", "ProviderUnavailableError", "choose_providers", "provider_usable"]

log = logging.getLogger(__name__)

CPU, CUDA, TRT = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"
ALIASES = {"cpu": CPU, "cuda": CUDA, "tensorrt": TRT, "trt": TRT}
_AUTO_ORDER = (TRT, CUDA, CPU)


class ProviderUnavailableError(RuntimeError):
    """An explicitly requested execution provider cannot run on this machine."""


def _provider_library(provider: str) -> str | None:
    import onnxruntime

    stem = {CUDA: "onnxruntime_providers_cuda", TRT: "onnxruntime_providers_tensorrt"}.get(provider)
    if stem is None:
        return None
    name = f"{stem}.dll" if sys.platform == "win32" else f"lib{stem}.so"
    return os.path.join(os.path.dirname(onnxruntime.__file__), "capi", name)


@functools.cache
def _cuda_device_count() -> int:
    """Devices the CUDA driver reports (0 without a driver), asked through libcuda directly."""
    name = "nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return 0
    count = ctypes.c_int(0)
    if lib.cuInit(0) != 0 or lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return 0
    return count.value


@functools.cache
def provider_usable(provider: str) -> tuple[bool, str]:
    """``(usable, reason)`` for ``provider`` on this machine, decided without printing anything."""
    import onnxruntime

    if provider == CPU:
        return True, ""
    if provider not in onnxruntime.get_available_providers():
        return False, f"{provider} is not in this onnxruntime build (install onnxruntime-gpu)"
    if provider not in (CUDA, TRT):
        return True, ""  # other providers (DirectML, CoreML...): let onnxruntime decide
    if _cuda_device_count() == 0:
        return False, "no CUDA driver or GPU found"
    library = _provider_library(provider)
    try:
        ctypes.CDLL(library)
    except OSError as exc:  # e.g. libcublasLt.so.13 / libcudnn.so.9 / libnvinfer.so.10 missing
        return False, f"{os.path.basename(str(library))} cannot load: {exc}"
    return True, ""


def choose_providers(providers: str | Sequence[str], *, strict: bool = False) -> list[str]:
    """The provider list for a session.

    ``"auto"``: TensorRT, then CUDA, then CPU, keeping only the usable ones (silently).
    A name or list (``"cuda"``, ``["CUDAExecutionProvider"]``): the requested ones; an unusable
    one raises :class:`ProviderUnavailableError` when ``strict``, else logs a warning and is
    skipped. The CPU provider is always last, as the fallback.
    """
    if isinstance(providers, str) and providers.lower() == "auto":
        return [p for p in _AUTO_ORDER if provider_usable(p)[0]]
    requested = [providers] if isinstance(providers, str) else list(providers)
    chosen: list[str] = []
    for raw in requested:
        name = ALIASES.get(raw.lower(), raw)
        ok, reason = provider_usable(name)
        if ok:
            chosen.append(name)
        elif strict:
            raise ProviderUnavailableError(
                f"execution provider {name} was requested but cannot be used: {reason}. "
                "Use providers='auto' or 'cpu', or install the libraries (see docs/export.md)"
            )
        else:
            log.warning("execution provider %s unavailable (%s); falling back", name, reason)
    if CPU not in chosen:
        chosen.append(CPU)
    return chosen
