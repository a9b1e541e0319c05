"""A content checksum of a checkpoint's payload: every tensor's bytes and every plain value.

Why content and not the file's bytes: the digest must travel *inside* the one checkpoint file
(a copied ``step_*.pt`` stays verifiable; no sidecar to lose), and a file cannot contain its own
hash. So the digest covers what the file decodes to: the nested dicts/lists, their keys and
plain values (``repr``, type-tagged), and each tensor's dtype, shape and raw bytes. Any flipped
byte in a tensor, or in the pickled structure that still unpickles, changes the digest.

Cost: SHA-256 over the tensor bytes. hashlib releases the GIL on large buffers, so tensors are
cut into chunks hashed on a small thread pool, and the chunk digests are hashed in order (a
two-level hash). Measured on a default CycleGAN checkpoint (324 MB, weights + Adam state) on a
busy 2-core machine: see docs/training.md ("Checkpoint checksums").
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch

__all__ = ["ALGORITHM", "content_digest"]

ALGORITHM = "sha256-tree-v1"  # stored beside the digest so the scheme can change later
_CHUNK = 16 << 20  # bytes per leaf hash: large enough for hashlib, small enough to spread
_INLINE = 32 << 20  # below this many tensor bytes a thread pool costs more than it saves


def content_digest(payload: Any) -> str:
    """Hex SHA-256 digest of ``payload`` (tensors, dicts, lists, tuples and plain scalars).

    Deterministic across save and ``torch.load``: dict order, tensor dtypes/shapes/bytes and the
    ``repr`` of plain values survive a round trip unchanged. Tensors on a GPU are copied to the
    CPU to be hashed.
    """
    structure: list[bytes] = []
    leaves: list[memoryview] = []
    _walk(payload, structure, leaves)
    total = sum(leaf.nbytes for leaf in leaves)
    if total < _INLINE:
        digests = [hashlib.sha256(leaf).digest() for leaf in leaves]
    else:
        workers = min(8, os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gtx-checksum") as pool:
            digests = list(pool.map(lambda leaf: hashlib.sha256(leaf).digest(), leaves))
    outer = hashlib.sha256()
    for part in structure:
        outer.update(part)
    for digest in digests:
        outer.update(digest)
    return outer.hexdigest()


def _walk(obj: Any, structure: list[bytes], leaves: list[memoryview]) -> None:
    if isinstance(obj, torch.Tensor):
        raw = _tensor_bytes(obj)
        structure.append(f"T{obj.dtype}{tuple(obj.shape)}:{raw.nbytes};".encode())
        leaves.extend(raw[i:i + _CHUNK] for i in range(0, raw.nbytes, _CHUNK))
    elif isinstance(obj, dict):
        structure.append(f"D{len(obj)};".encode())
        for key, value in obj.items():
            _walk(key, structure, leaves)
            _walk(value, structure, leaves)
    elif isinstance(obj, list | tuple):
        structure.append(f"{'L' if isinstance(obj, list) else 'U'}{len(obj)};".encode())
        for value in obj:
            _walk(value, structure, leaves)
    else:  # str, int, float, bool, None, bytes, torch.Size, dtype ...: their repr is exact
        text = f"S{type(obj).__name__}:{obj!r}"
        structure.append(f"{len(text)}:{text};".encode())


def _tensor_bytes(tensor: torch.Tensor) -> memoryview:
    t = tensor.detach()
    if t.layout != torch.strided:
        t = t.to_dense()
    flat = t.cpu().contiguous().reshape(-1)
    if flat.dtype != torch.uint8:
        flat = flat.view(torch.uint8)  # the raw bytes; works for every strided dtype
    return flat.numpy().data.cast("B")
