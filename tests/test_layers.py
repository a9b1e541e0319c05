"""The layering of docs/architecture.md, checked on the real import graph.

The graph is grimp's (what import-linter builds on): every ``import``/``from ... import``
statement of every module of ``gantransfer``, including those inside functions and methods
(a cycle hidden in a function is still a cycle); not those under ``if TYPE_CHECKING:`` (they never
run, so annotations may point anywhere); not ``importlib.import_module("...")`` strings (the
deprecation shims of ``gantransfer._deprecated`` load their targets that way, on purpose).

The contracts themselves are import-linter's, configured in pyproject.toml
(``[tool.importlinter]``), so ``lint-imports`` on the command line checks the same rules.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grimp
import pytest
from importlinter.api import read_configuration
from importlinter.application import output
from importlinter.contracts.acyclic_siblings import AcyclicSiblingsContract
from importlinter.contracts.forbidden import ForbiddenContract
from importlinter.contracts.protected import ProtectedContract
from importlinter.domain.contract import Contract, ContractCheck

import gantransfer

ROOT = Path(__file__).resolve().parents[1]
CONFIG = read_configuration(str(ROOT / "pyproject.toml"))
CONTRACTS: dict[str, dict[str, Any]] = {c["id"]: c for c in CONFIG["contracts_options"]}
TYPES: dict[str, type[Contract]] = {
    c.type_name: c for c in (ForbiddenContract, ProtectedContract, AcyclicSiblingsContract)}


def _true(option: str) -> bool:
    return str(CONFIG["session_options"].get(option, "false")).lower() == "true"


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    """The import graph of the `gantransfer` that is imported (this checkout's, or the one
    PYTHONPATH names: the same test then checks another tree)."""
    return grimp.build_graph(
        *CONFIG["session_options"]["root_packages"],
        include_external_packages=_true("include_external_packages"),
        exclude_type_checking_imports=_true("exclude_type_checking_imports"),
        cache_dir=None)


def _check(contract_id: str, graph: grimp.ImportGraph) -> tuple[ContractCheck, str]:
    """Check one contract of pyproject.toml; the check and, if broken, import-linter's report."""
    options = CONTRACTS[contract_id]
    contract = TYPES[options["type"]](name=options["name"],
                                      session_options=CONFIG["session_options"],
                                      contract_options=options)
    check = contract.check(copy.deepcopy(graph), verbose=False)
    if check.kept:
        return check, ""
    with output.console.capture() as captured:
        contract.render_broken_contract(check)
    return check, captured.get()


def test_the_graph_is_of_the_package_under_test(graph):
    here = Path(gantransfer.__file__).resolve().parent
    assert (here / "model.py").is_file()
    assert "gantransfer.model" in graph.modules
    # imports inside functions are in the graph: GANModel.translate's, for one
    assert graph.direct_import_exists(importer="gantransfer.model",
                                      imported="gantransfer.inference.dispatch")


@pytest.mark.parametrize("contract_id", list(CONTRACTS))
def test_contract_is_kept(contract_id, graph):
    check, report = _check(contract_id, graph)
    assert check.kept, f"{CONTRACTS[contract_id]['name']}: BROKEN\n{report}"


def _cycles(graph: grimp.ImportGraph, package: str) -> Iterator[tuple[list[str], list[str]]]:
    """Each strongly connected set of modules inside ``package`` (Tarjan): one cycle through its
    first module ([a, b, ..., a]) and all the modules of the set."""
    modules = sorted(m for m in graph.modules if m == package or m.startswith(package + "."))
    edges = {m: sorted(i for i in graph.find_modules_directly_imported_by(m)
                       if i == package or i.startswith(package + ".")) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for m in modules:
        if m not in index:
            visit(m)
    for component in components:
        first = component[0]
        # the shortest way back to `first` from one of the modules it imports, inside the set
        back = min((graph.find_shortest_chain(importer=n, imported=first) or ()
                    for n in edges[first] if n in component), key=len)
        yield [first, *back], component


def _describe(graph: grimp.ImportGraph, cycle: list[str], component: list[str]) -> str:
    lines = [" -> ".join(cycle)]
    if len(component) > len(cycle) - 1:
        lines.append(f"    (one cycle of several between {', '.join(component)})")
    for importer, imported in itertools.pairwise(cycle):
        for d in graph.get_import_details(importer=importer, imported=imported):
            lines.append(f"    {importer}:{d['line_number']}: {d['line_contents']}")
    return "\n".join(lines)


def test_no_import_cycles_between_modules(graph):
    cycles = list(_cycles(graph, "gantransfer"))
    assert not cycles, "import cycles in gantransfer:\n" + "\n".join(
        _describe(graph, *c) for c in cycles)


def test_the_cycle_finder_names_a_cycle(graph):
    graph = copy.deepcopy(graph)
    graph.add_import(importer="gantransfer.pixels", imported="gantransfer.inference.pipeline",
                     line_number=1, line_contents="from .inference import pipeline")
    ((cycle, component),) = _cycles(graph, "gantransfer")
    assert cycle[0] == cycle[-1] and "gantransfer.pixels" in cycle
    assert "gantransfer.inference.pipeline" in component
    assert all(graph.direct_import_exists(importer=a, imported=b)
               for a, b in itertools.pairwise(cycle))
    assert "gantransfer.pixels:1: from .inference import pipeline" in _describe(
        graph, cycle, component)


# One import per contract that breaks it: the contracts can fail (they do not pass vacuously,
# say because a module name in the config is misspelt or a plugin is not installed here).
VIOLATIONS = {
    "no-plugins": ("gantransfer.demo", "gantransfer_cyclegan"),
    "data-below": ("gantransfer.data.transforms", "gantransfer.engine.trainer"),
    "cli-on-top": ("gantransfer.engine.trainer", "gantransfer.cli.app"),
    "acyclic-packages": ("gantransfer.nn", "gantransfer.engine"),
}


def test_every_contract_has_a_violation_below():
    assert set(VIOLATIONS) == set(CONTRACTS)


@pytest.mark.parametrize("contract_id", list(VIOLATIONS))
def test_contract_catches_a_violation(contract_id, graph):
    importer, imported = VIOLATIONS[contract_id]
    graph = copy.deepcopy(graph)
    graph.add_import(importer=importer, imported=imported, line_number=1,
                     line_contents=f"import {imported}")
    check, report = _check(contract_id, graph)
    assert not check.kept
    # import-linter names the offending import (relative to the package, in the cycles report)
    assert importer.removeprefix("gantransfer") in report
