"""`gtx bench SOURCE`: PyTorch eager vs onnxruntime speed for a generator, side by side.

SOURCE is a run directory/checkpoint, an ``.onnx`` file (onnxruntime only), an architecture name
(``cyclegan``, built with ``--set`` overrides, random weights) or a network name
(``resnet_9blocks``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ._console import console

__all__ = ["register"]


def _overrides(items: list[str]) -> dict[str, Any]:
    from ..config import parse_value

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"expected key=value, got {item!r}", param_hint="--set")
        out[key.strip()] = parse_value(value.strip())
    return out


def parse_batches(text: str) -> list[int]:
    """``"1,4"`` -> ``[1, 4]``; anything but a list of positive integers is a usage error."""
    items = [b.strip() for b in text.split(",") if b.strip()]
    if not items or not all(b.isdigit() and int(b) >= 1 for b in items):
        raise typer.BadParameter(
            f"expected comma-separated batch sizes of at least 1, such as 1,4; got {text!r}",
            param_hint="--batch")
    return [int(b) for b in items]


def _resolve(source: str, *, target: str | None, sets: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(net or None, ExportSpec, onnx path or None) for any kind of SOURCE."""
    import gantransfer

    from ..inference import open_source
    from ..inference.torch_backend import resolve_target
    from ..targets import ExportSpec

    path = Path(source)
    if path.suffix.lower() == ".onnx":  # the file's metadata is its ExportSpec
        return None, open_source(path, providers="cpu").model.metadata, path
    if not path.exists() and source in gantransfer.list(kind="network"):
        from ..nn import SizeContract, size_contract

        net = gantransfer.get_network(source, **sets)
        sizes = size_contract(net) or SizeContract()
        spec = ExportSpec(net=source, size_divisor=sizes.divisor, min_size=sizes.min_size)
        return net, spec, None
    if not path.exists() and source in gantransfer.list():
        model = gantransfer.get(source, **sets)
    else:
        model = open_source(path, device="cpu").model
    targets = model.export_targets()
    name = target or model.default_target()
    spec = targets[resolve_target(model, name, kind=targets[name].input)[0]]
    return model.nets[spec.net], spec, None


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def bench_cmd(
        source: Annotated[str, typer.Argument(
            help="Run dir, checkpoint, .onnx file, architecture or network name.")],
        size: Annotated[int, typer.Option(min=1, help="Square input size in pixels.")] = 256,
        batch: Annotated[str, typer.Option(help="Comma-separated batch sizes.")] = "1,4",
        device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
        repeats: Annotated[int, typer.Option(min=1, help="Timed runs per backend.")] = 10,
        threads: Annotated[int | None, typer.Option(
            min=1, help="Threads for both backends (default: each its own).")] = None,
        target: Annotated[str | None, typer.Option(help="Export target to time.")] = None,
        set_: Annotated[list[str] | None, typer.Option(
            "--set", help="key=value config/network override (repeatable).")] = None,
    ) -> None:
        """Images/s, median latency and GFLOP/s of eager PyTorch and onnxruntime, interleaved."""
        from ..export.bench import benchmark_network, format_table, machine_summary

        batches = parse_batches(batch)
        net, spec, onnx_path = _resolve(source, target=target, sets=_overrides(set_ or []))
        console.print(f"[dim]{machine_summary()}[/dim]", highlight=False)
        rows = benchmark_network(net, spec, size=size, batches=batches, repeats=repeats,
                                 device=device, onnx_path=onnx_path, threads=threads)
        header, *body = format_table(rows)
        table = Table(title=f"{source} at {size}x{size}" if spec.input == "image" else source)
        for i, column in enumerate(header):
            table.add_column(column, justify="left" if i == 0 else "right")
        for line in body:
            table.add_row(*line)
        console.print(table)
