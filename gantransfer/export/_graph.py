"""ONNX graph post-processing after torch's exporter: axis names, fp16 conversion, metadata."""

from __future__ import annotations

import collections
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import onnx

__all__ = ["FP16_KEEP_FP32_OPS", "convert_fp16", "rename_axes", "set_metadata"]

log = logging.getLogger(__name__)

# Normalisation statistics (a mean and variance over a whole feature map) overflow or lose too much
# precision in fp16, so these ops keep fp32 inputs/outputs; casts are inserted around them.
FP16_KEEP_FP32_OPS = ("InstanceNormalization", "BatchNormalization", "LayerNormalization",
                      "GroupNormalization")


def rename_axes(model: onnx.ModelProto, names: dict[int, str]) -> None:
    """Give the first graph input's symbolic axes clean names (``{0: "batch", 2: "height"}``).

    torch names a dynamic axis after its expression (``"4*h_blocks"``); the same symbol is renamed
    everywhere in the graph (outputs, value_info) so shapes stay consistent.
    """
    inp = model.graph.input[0].type.tensor_type.shape.dim
    mapping = {inp[i].dim_param: new for i, new in names.items()
               if i < len(inp) and inp[i].dim_param}
    for vi in (*model.graph.input, *model.graph.output, *model.graph.value_info):
        for dim in vi.type.tensor_type.shape.dim:
            if dim.dim_param in mapping:
                dim.dim_param = mapping[dim.dim_param]


def set_metadata(model: onnx.ModelProto, props: dict[str, str]) -> None:
    """Replace ``metadata_props`` entries with ``props`` (other keys are kept)."""
    kept = [(p.key, p.value) for p in model.metadata_props if p.key not in props]
    del model.metadata_props[:]
    for key, value in [*kept, *props.items()]:
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def _unshare_blocked_initializers(model: onnx.ModelProto, block: set[str]) -> None:
    """Give every fp32-kept node its own copy of shared initializers.

    onnxruntime's fp16 converter inserts one Cast per (initializer, consumer) with a name derived
    from the initializer alone, so a constant shared by two InstanceNormalization nodes (torch
    shares the all-ones scale) produces duplicate names and an invalid model.
    """
    import onnx

    inits = {i.name: i for i in model.graph.initializer}
    uses = collections.Counter(name for node in model.graph.node for name in node.input)
    for node in model.graph.node:
        if node.op_type not in block:
            continue
        for k, name in enumerate(node.input):
            if name in inits and uses[name] > 1:
                copy = onnx.TensorProto()
                copy.CopyFrom(inits[name])
                copy.name = f"{name}__{node.name or k}"
                model.graph.initializer.append(copy)
                node.input[k] = copy.name
                uses[name] -= 1


def _toposort(model: onnx.ModelProto) -> None:
    """Sort nodes topologically (the fp16 converter appends input casts at the end)."""
    graph = model.graph
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending = list(graph.node)
    ordered = []
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            raise ValueError("the fp16 graph has a cycle or a missing input; cannot sort it")
        for n in ready:
            available.update(n.output)
        ordered.extend(ready)
        ready_ids = {id(n) for n in ready}
        pending = [n for n in pending if id(n) not in ready_ids]
    nodes = [type(n)() for n in ordered]
    for dst, src in zip(nodes, ordered, strict=True):
        dst.CopyFrom(src)
    del graph.node[:]
    graph.node.extend(nodes)


def _drop_unused_initializers(model: onnx.ModelProto) -> None:
    used = {name for node in model.graph.node for name in node.input}
    used |= {o.name for o in model.graph.output}
    keep = [i for i in model.graph.initializer if i.name in used]
    if len(keep) != len(model.graph.initializer):
        del model.graph.initializer[:]
        model.graph.initializer.extend(keep)


def convert_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """An fp16 copy of ``model`` whose graph inputs/outputs and normalisation ops stay fp32.

    Uses onnxruntime's converter (``onnxruntime.transformers.float16``; onnxconverter-common is not
    a dependency) with ``keep_io_types=True`` and :data:`FP16_KEEP_FP32_OPS` blocked.
    """
    import onnx
    from onnxruntime.transformers import float16

    model = onnx.ModelProto.FromString(model.SerializeToString())
    block = set(FP16_KEEP_FP32_OPS)
    _unshare_blocked_initializers(model, block)
    converted = float16.convert_float_to_float16(
        model, keep_io_types=True,
        op_block_list=[*float16.DEFAULT_OP_BLOCK_LIST, *sorted(block)],
    )
    _drop_unused_initializers(converted)
    _toposort(converted)
    onnx.checker.check_model(converted)
    return converted
