"""The import graph: layers point one way and no module imports itself back (at any depth).

Every import statement counts, also those inside functions, so a circle cannot hide in a
function-level import. Layers: runio (I/O) <- toymodel, transformer (neither imports the other)
<- the comparison and the CLI.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT
PACKAGES = ("runio", "toymodel", "transformer", "compare")


def _modules() -> dict[str, Path]:
    mods = {"gallery": ROOT / "gallery.py"}
    for pkg in (*PACKAGES, "cli"):
        for p in sorted((ROOT / pkg).glob("*.py")):
            mods[pkg if p.stem == "__init__" else f"{pkg}.{p.stem}"] = p
    return mods


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules that `name` imports (resolving relative imports; `from pkg import x` counts x
    when it is a module, else pkg)."""
    package = name if path.stem == "__init__" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        out |= {t for t in targets if t in known and t != name}
    return out


GRAPH = {n: _imports(n, p, set(_modules())) for n, p in _modules().items()}


def _top(name: str) -> str:
    return name.split(".")[0]


def test_layers_point_one_way():
    allowed = {"runio": {"runio"}, "toymodel": {"toymodel", "runio"}, "transformer": {"transformer", "runio"},
               "compare": {"compare", "toymodel", "transformer", "runio"}}
    for name, deps in GRAPH.items():
        if _top(name) in allowed:
            wrong = {d for d in deps if _top(d) not in allowed[_top(name)]}
            assert not wrong, f"{name} imports {sorted(wrong)}"


def test_no_import_circles():
    def cycle_from(start):
        stack = [(start, [start])]
        seen = set()
        while stack:
            node, path = stack.pop()
            for dep in GRAPH.get(node, ()):
                if dep == start:
                    return path + [dep]
                # a package's __init__ re-exporting its modules is not a circle of its modules
                if dep not in seen and not (dep in PACKAGES and _top(start) == dep):
                    seen.add(dep)
                    stack.append((dep, path + [dep]))
        return None

    for name in GRAPH:
        if name in PACKAGES:
            continue
        cycle = cycle_from(name)
        assert cycle is None, " -> ".join(cycle)


def test_the_graph_is_read():
    """The walker sees the imports it must see (so the two tests above can fail)."""
    assert "transformer.data" in GRAPH["transformer.train"] and "runio" in GRAPH["transformer.checkpoints"]
    assert "toymodel.reduced" in GRAPH["toymodel.dynamics"]
    assert "toymodel.kernel" in GRAPH["compare.toy"]
