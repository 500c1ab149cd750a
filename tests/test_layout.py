"""The package's layout is its architecture: every import runs downward through the layers
below, and no modules import one another in a circle. A module may import its own layer's
modules (the model reads the batching's shift), never a higher layer's.

    plumbing (config, errors, files)
    < models, datasets, testing
    < training
    < records
    < experiment (one run end to end, which the book's pages also call), pretrained (released models)
    < book
    < the other commands (cli, results, runner, speech, cluster, publish, release)

The test oracles of ``srnn.testing`` import nothing from the package at all, so that they
share no code with what they check.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "srnn"
LAYERS = [("srnn.config", "srnn.errors", "srnn.files"),
          ("srnn.models", "srnn.datasets", "srnn.testing"),
          ("srnn.training",),
          ("srnn.records",),
          ("srnn.experiment", "srnn.pretrained"),
          ("srnn.book",),
          ("srnn.cli", "srnn.results", "srnn.runner", "srnn.speech", "srnn.cluster",
           "srnn.cluster_tasks", "srnn.publish", "srnn.release")]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its source (inside functions too)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        found |= {t for t in targets if t in known}
    return found - {name}


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(name, path, set(found)) for name, path in found.items()}


def layer(name: str) -> int:
    """The layer of a module (its subpackage's); the package's own ``__init__`` sits below all."""
    if name == "srnn":
        return -1
    for i, prefixes in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return i
    raise AssertionError(f"{name} is in no layer: add it to LAYERS in {__file__}")


def upward(edges: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} imports {b}" for a, targets in edges.items() for b in targets if layer(b) > layer(a))


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan's algorithm)."""
    index, low, stack, on, groups = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in edges:
        if v not in index:
            visit(v)
    return groups


def test_every_module_has_a_layer_and_imports_run_downward():
    edges = graph()
    assert len(edges) > 30 and all(layer(name) >= -1 for name in edges)
    assert upward(edges) == []


def test_no_modules_import_one_another_in_a_circle():
    assert circles(graph()) == []


def test_the_oracles_share_no_code_with_what_they_check():
    edges = graph()
    oracles = [name for name in edges if name.startswith("srnn.testing.")]
    assert oracles and all(b.startswith("srnn.testing") for a in oracles for b in edges[a])


def test_the_checks_can_fail():
    """Planted edges: one running up a layer, and a circle."""
    edges = {"srnn.models.model": {"srnn.training.train"}, "srnn.training.train": {"srnn.models.model"}}
    assert upward(edges) == ["srnn.models.model imports srnn.training.train"]
    assert circles(edges) == [["srnn.models.model", "srnn.training.train"]]
