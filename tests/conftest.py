"""Shared fixtures: fake third-party distributions installed through real entry-point metadata."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

import gantransfer

# Tests use tiny tensors: one thread avoids inter-thread synchronisation that costs far more than
# it saves at these sizes (measured: a tiny generator forward took 1 ms with one thread and up to
# hundreds of ms with two on a busy 2-core machine).
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _restore_gantransfer_logging():
    """CLI tests install log handlers on the `gantransfer` logger; remove them after each test
    so no handler outlives the (closed) stream it writes to."""
    import logging

    logger = logging.getLogger("gantransfer")
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)
    logger.propagate = propagate


def write_distribution(
    root: Path,
    *,
    name: str,
    version: str = "1.0",
    entry_points: dict[str, dict[str, str]],
    modules: dict[str, str] | None = None,
) -> Path:
    """Create ``<name>-<version>.dist-info`` with METADATA + entry_points.txt, and modules, in root.

    Putting ``root`` on ``sys.path`` makes importlib.metadata see a real installed distribution.
    """
    dist = root / f"{name.replace('-', '_')}-{version}.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = []
    for group, entries in entry_points.items():
        lines.append(f"[{group}]")
        lines.extend(f"{k} = {v}" for k, v in entries.items())
        lines.append("")
    (dist / "entry_points.txt").write_text("\n".join(lines))
    for mod, source in (modules or {}).items():
        (root / f"{mod}.py").write_text(textwrap.dedent(source))
    return dist


@pytest.fixture
def fake_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Path]]:
    """Install fake distributions on sys.path for one test; everything is undone afterwards."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    before = set(sys.modules)

    def install(**kwargs) -> Path:
        path = write_distribution(site, **kwargs)
        gantransfer.refresh()
        return path

    yield install
    for mod in set(sys.modules) - before:
        if mod.startswith("fake"):
            del sys.modules[mod]
    monkeypatch.undo()
    gantransfer.refresh()
