"""The import graph: layers point one way and no module imports itself back (at any depth); what
the CLI imports when it starts (its module-level imports, to any depth) loads nothing heavy; the
packages' `__init__`s are plain (a submodule is the module, `import transformer.train as t`).

Every import statement counts for the layers and the circles, also those inside functions, so a
circle cannot hide in a function-level import. Layers: runio (I/O) <- toymodel, transformer
(neither imports the other) <- the comparison and the CLI.
"""

from __future__ import annotations

import ast
import importlib
import types
from pathlib import Path

from conftest import ROOT

PACKAGES = ("runio", "toymodel", "transformer", "compare")
# what `coop --help` must not load (jax and what is built on it, sympy, matplotlib, and the
# numerical and I/O libraries that take a noticeable time to import)
HEAVY = {"jax", "jaxlib", "optax", "diffrax", "sympy", "matplotlib", "scipy", "numpy", "h5py", "submitit"}


def _modules() -> dict[str, Path]:
    mods = {"gallery": ROOT / "gallery.py"}
    for pkg in (*PACKAGES, "cli"):
        for p in sorted((ROOT / pkg).glob("*.py")):
            mods[pkg if p.stem == "__init__" else f"{pkg}.{p.stem}"] = p
    return mods


def _module_level(tree: ast.AST):
    """The nodes of `tree` that run when the module is imported (not those inside functions)."""
    for node in ast.iter_child_nodes(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            yield node
            yield from _module_level(node)


def _imports(name: str, path: Path, known: set[str], *, module_level: bool = False) -> tuple[set[str], set[str]]:
    """(project modules, other top-level packages) that `name` imports, everywhere or only at module
    level (resolving relative imports; `from pkg import x` counts x when it is a module, else pkg)."""
    package = name if path.stem == "__init__" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    out, external = set(), set()
    for node in _module_level(tree) if module_level else ast.walk(tree):
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
        external |= {t.split(".")[0] for t in targets if t.split(".")[0] not in known}
    return out, external


GRAPH = {n: _imports(n, p, set(_modules()))[0] for n, p in _modules().items()}
AT_IMPORT = {n: _imports(n, p, set(_modules()), module_level=True) for n, p in _modules().items()}


def _loaded_by(name: str) -> dict[str, list[str]]:
    """Every project module that importing `name` runs (its packages' `__init__`s too), each with
    the chain of module-level imports that reaches it."""
    chains, todo = {}, [(name, [name])]
    while todo:
        node, chain = todo.pop(0)  # breadth first: each chain is a shortest one
        if node in chains:
            continue
        chains[node] = chain
        parents = [".".join(node.split(".")[:i]) for i in range(1, node.count(".") + 1)]
        todo += [(dep, chain + [dep]) for dep in sorted(AT_IMPORT[node][0] | set(parents))]
    return chains


def _heavy_loaded_by(name: str) -> dict[str, list[str]]:
    """The HEAVY packages that importing `name` loads, each with a shortest chain of imports that loads it."""
    heavy = {}
    for mod, chain in sorted(_loaded_by(name).items(), key=lambda item: len(item[1])):
        for pkg in sorted(AT_IMPORT[mod][1] & HEAVY):
            heavy.setdefault(pkg, chain + [pkg])
    return heavy


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
                if dep not in seen:
                    seen.add(dep)
                    stack.append((dep, path + [dep]))
        return None

    for name in GRAPH:
        cycle = cycle_from(name)
        assert cycle is None, " -> ".join(cycle)


def test_the_cli_starts_without_heavy_modules():
    """What `import cli` runs (the CLI's module-level imports, to any depth: the options it reads,
    `toymodel.commands`, `transformer.config`, `compare.config`, `runio.jobs`) imports no HEAVY package
    at module level: they are imported inside the functions that run a command."""
    loaded = _loaded_by("cli")
    assert {"toymodel.commands", "transformer.config", "compare.config", "runio.jobs", "toymodel"} <= set(loaded)
    assert not any(m in loaded for m in ("toymodel.dynamics", "transformer.train", "compare.fit"))
    heavy = _heavy_loaded_by("cli")
    assert not heavy, "; ".join(" -> ".join(chain) for chain in heavy.values())


def test_the_graph_is_read():
    """The walker sees the imports it must see (so the tests above can fail)."""
    assert "transformer.data" in GRAPH["transformer.train"] and "runio" in GRAPH["transformer.checkpoints"]
    assert "toymodel.reduced" in GRAPH["toymodel.dynamics"]
    assert "toymodel.kernel" in GRAPH["compare.toy"]
    assert "toymodel.dynamics" in GRAPH["toymodel.commands"]  # inside a function: not at import
    assert "toymodel.dynamics" not in AT_IMPORT["toymodel.commands"][0]
    assert _heavy_loaded_by("transformer.train")["jax"][-2:] == ["transformer.train", "jax"]
    assert {"numpy", "scipy", "jax", "matplotlib"} <= set(_heavy_loaded_by("compare.report"))
    assert _heavy_loaded_by("transformer.presets") == {} and "sympy" in _heavy_loaded_by("toymodel.reduced")


def test_package_inits_are_plain():
    """No package `__init__` swaps its module class, loads names on first use (`__getattr__`) or binds
    a name that is also one of its submodules: `import pkg.mod as m` is always the module."""
    for pkg in PACKAGES:
        submodules = {p.stem for p in (ROOT / pkg).glob("*.py")} - {"__init__"}
        bound = set()
        for node in ast.parse((ROOT / pkg / "__init__.py").read_text()).body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                bound.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                bound |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        wrong = bound & (submodules | {"__getattr__", "__class__"})
        assert not wrong, f"{pkg}/__init__.py binds {sorted(wrong)}"


def test_a_submodule_is_the_module():
    """`import transformer.train as t` gives the module, so `t.make_optimizer` works (the package used
    to hand out the function `train` under that name); likewise every module of every package."""
    import transformer.train as t

    assert isinstance(t, types.ModuleType) and t.__name__ == "transformer.train"
    assert callable(t.make_optimizer) and callable(t.train) and t.train.__module__ == "transformer.train"
    for name in _modules():
        if name.count(".") == 1 and not name.endswith(".__main__"):  # a __main__ runs its command when imported
            package, _, sub = name.partition(".")
            module = importlib.import_module(name)
            assert getattr(importlib.import_module(package), sub) is module, name
