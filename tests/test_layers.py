"""The import structure: the layers and the module contracts of pyproject.toml hold, and nothing imports in a circle.

``lint-imports`` checks the contracts (entry points above modules above core; modules reach each other only
through their service). The cycle check covers what contracts cannot: at every level of the package tree, the
children of a package (modules and subpackages alike) import each other without a circle.
"""

from __future__ import annotations

from pathlib import Path

import grimp
import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]


def test_the_import_contracts_hold() -> None:
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0, (
        "an import breaks a contract of pyproject.toml [tool.importlinter]: run `lint-imports` to see which"
    )


def _circles(graph: grimp.ImportGraph, package: str) -> list[list[str]]:
    """The children of ``package`` that reach themselves through imports among its children, with the path."""
    children = graph.find_children(package)
    imports = {
        child: {
            other
            for other in children
            if other != child and graph.direct_import_exists(importer=child, imported=other, as_packages=True)
        }
        for child in children
    }
    circles = []
    for start in sorted(children):
        paths = [[start, after] for after in imports[start]]
        seen: set[str] = set()
        while paths:
            path = paths.pop()
            if path[-1] == start:
                circles.append(path)
                break
            if path[-1] in seen:
                continue
            seen.add(path[-1])
            paths.extend([*path, after] for after in imports[path[-1]])
    return circles


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("northstar", cache_dir=None)


def test_no_package_or_module_imports_in_a_circle(graph: grimp.ImportGraph) -> None:
    packages = sorted(module for module in graph.modules if graph.find_children(module))
    circles = {package: found for package in packages if (found := _circles(graph, package))}
    assert circles == {}, f"import circles (each a path back to where it starts): {circles}"
