"""`gtx list`, `gtx info NAME`, `gtx plugins`: what is installed and what it accepts."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from .. import factory, registry
from ._console import console

__all__ = ["register"]

_KIND = typer.Option("--kind", "-k", help="architecture or network")


def register(app: typer.Typer) -> None:
    app.command("list")(list_cmd)
    app.command("info")(info_cmd)
    app.command("plugins")(plugins_cmd)


def list_cmd(
    pattern: Annotated[str | None, typer.Argument(help="Shell-style filter, e.g. 'resnet*'.")] = None,
    kind: Annotated[str, _KIND] = "all",
) -> None:
    """List registered architectures and networks (imports no plugin)."""
    kinds = ("architecture", "network") if kind == "all" else (kind,)
    for k in kinds:
        if k not in ("architecture", "network"):
            raise typer.BadParameter("use architecture, network or all", param_hint="--kind")
        names = registry.list(pattern, kind=k)  # type: ignore[arg-type]
        console.print(f"[bold]{k}s[/bold]: {', '.join(names) if names else '(none)'}")


def info_cmd(
    name: Annotated[str, typer.Argument(help="An architecture or network name (see `gtx list`).")],
    kind: Annotated[str | None, _KIND] = None,
) -> None:
    """Show an architecture's or network's config fields, defaults, help and source."""
    if kind is None:
        kind = "architecture" if name in registry.list() else "network"
        if name not in registry.list(kind="network") and kind == "network":
            kind = "architecture"  # let the architecture lookup produce the suggestions
    spec = factory.spec(name, kind=kind)  # type: ignore[arg-type]
    console.print(f"[bold]{spec.name}[/bold] ({spec.kind}) — {spec.summary}")
    source = f"{spec.distribution} {spec.version}" if spec.distribution else "registered in-process"
    console.print(f"object: {spec.object}   from: {source}")
    if spec.data_kind:
        console.print(f"data: {spec.data_kind}")
    table = Table(show_header=True, header_style="bold")
    table.add_column("field")
    table.add_column("type")
    table.add_column("default")
    table.add_column("help")
    for f in spec.fields:
        help_text = f.help
        if f.choices:
            help_text = f"{help_text} (one of: {', '.join(map(str, f.choices))})".strip()
        default = "(required)" if f.required else repr(f.default)
        table.add_row(*(escape(cell) for cell in (f.name, f.type, default, help_text)))
    console.print(table)
    if spec.kind == "architecture":
        # escape(): rich would read "[model]" as a markup tag and print nothing for it.
        console.print(escape(f"Override with `gtx train {spec.name} --set FIELD=VALUE` or a "
                             "TOML `[model]` table."))


def plugins_cmd() -> None:
    """Status of every plugin entry point, broken and shadowed ones included (exit 1 if any)."""
    rows = registry.status()
    table = Table(show_header=True, header_style="bold")
    for col in ("kind", "name", "object", "distribution", "state", "detail"):
        table.add_column(col, overflow="fold")
    style = {"ok": "green", "broken": "red", "shadowed": "yellow", "conflict": "red"}
    for r in rows:
        dist = f"{r.distribution} {r.version}" if r.distribution else "(in-process)"
        color = style.get(r.state, "")
        table.add_row(r.kind, r.name, r.value, dist, f"[{color}]{r.state}[/{color}]" if color
                      else r.state, r.detail)
    console.print(table)
    bad = [r for r in rows if r.state in ("broken", "conflict")]
    if bad:
        raise typer.Exit(1)
