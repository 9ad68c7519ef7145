"""No import cycle anywhere in ``service``, module by module.

The ``acyclic_siblings`` contract in pyproject.toml checks cycles between sibling packages;
this test checks the finer graph of modules, imports inside functions included (grimp reads
those too), so a cycle hidden in a function body cannot slip between two packages' contracts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import grimp

import service

PACKAGE = Path(service.__file__).parent


def import_cycles(edges: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Every strongly connected group of two or more modules (Tarjan), each sorted."""
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = lowlink[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in edges.get(module, ()):
            if imported not in index:
                visit(imported)
                lowlink[module] = min(lowlink[module], lowlink[imported])
            elif imported in on_stack:
                lowlink[module] = min(lowlink[module], index[imported])
        if lowlink[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return sorted(groups)


def test_the_cycle_finder_finds_a_cycle_hidden_behind_others() -> None:
    edges = {
        "app": ["routes.demo", "deps"],
        "routes.demo": ["demo"],
        "demo": ["server"],
        "server": ["app"],
        "deps": ["settings"],
    }
    assert import_cycles(edges) == [["app", "demo", "routes.demo", "server"]]
    assert import_cycles({"a": ["b"], "b": []}) == []


def test_service_has_no_import_cycle() -> None:
    graph = grimp.build_graph("service", cache_dir=None)
    edges = {
        module: sorted(
            imported
            for imported in graph.find_modules_directly_imported_by(module)
            if imported.startswith("service.") or imported == "service"
        )
        for module in graph.modules
        if module.startswith("service")
    }
    on_disk = {
        ".".join(("service", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(
            ".__init__"
        )
        for path in PACKAGE.rglob("*.py")
    }
    assert set(edges) == on_disk  # every module was read, not an empty graph
    assert import_cycles(edges) == []
