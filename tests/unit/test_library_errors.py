"""Library errors name parameters, never command-line flags (issue 30): the CLI maps parameters to
flags (`cli.errors`). Every `raise` in the library is read with `ast`; the string constants and
f-string parts of the raised expression must not contain a flag (`--x`)."""

from __future__ import annotations

import ast
import re

from conftest import ROOT

FLAG = re.compile(r"--[a-z]")
LIBRARY = ("toymodel", "transformer", "compare", "runio")
# also cleaned: the browser page's state and the figure recipes (their errors reach `coop` too)
ALSO = ("explore", "gallery.py")


def _text(node: ast.AST) -> list[str]:
    """The texts a raised expression can show: every string constant, and every f-string with its
    replacement fields read as "x" (so f"--{name}" reads "--x")."""
    out = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            out.append(sub.value)
        elif isinstance(sub, ast.JoinedStr):
            out.append("".join(v.value if isinstance(v, ast.Constant) else "x" for v in sub.values))
    return out


def flags_raised(source: str) -> list[tuple[int, str]]:
    """(line, text) of every flag-like text inside a `raise` statement of `source`."""
    hits = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Raise) and node.exc is not None:
            hits += [(node.lineno, t) for t in _text(node.exc) if FLAG.search(t)]
    return hits


def _files(names):
    for name in names:
        path = ROOT / name
        yield from sorted(path.rglob("*.py")) if path.is_dir() else [path]


def test_the_check_finds_a_flag_in_a_raise():
    source = '''
def f(name, x):
    if x:
        raise ConfigError("--lr", "must be > 0")
    raise ValueError(f"--{name} is refused; use another " + "--out")
raise KeyError(f"{x} needs {'--seeds'}")
print("--not-raised")
raise ConfigError("lr", "must be > 0 (`out`, x-y--)")
'''
    hits = flags_raised(source)
    assert sorted(line for line, _ in hits) == [4, 5, 5, 6]
    assert {t for _, t in hits} >= {"--lr", "--x is refused; use another ", "--out", "--seeds"}


def test_no_library_module_raises_an_error_naming_a_flag():
    found = [f"{path.relative_to(ROOT)}:{line}: {text!r}" for path in _files(LIBRARY + ALSO)
             for line, text in flags_raised(path.read_text())]
    assert len(list(_files(LIBRARY))) > 40
    assert not found, "\n".join(found)


def flags_outside_declarations(source: str) -> list[tuple[int, str]]:
    """(line, text) of flag-like texts anywhere in `source` but docstrings, the option declarations
    (`option(...)`: help texts and `flag=`, the CLI's own words) and XLA's flags (`--xla_...`): the
    messages a library function builds before raising (e.g. "why a run may not start" pairs)."""
    tree = ast.parse(source)
    skip = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            skip.add(id(body[0].value))  # a docstring
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "option":
            skip |= {id(sub) for sub in ast.walk(node)}
    hits = []
    for node in ast.walk(tree):
        if id(node) in skip or not isinstance(node, (ast.Constant, ast.JoinedStr)):
            continue
        hits += [(node.lineno, t) for t in _text(node) if FLAG.search(t.replace("--xla_", ""))]
    return hits


def test_no_library_message_names_a_flag():
    source = 'def f():\n    """Use --out."""\n    x = option(1, "help: --out", flag="--a/--no-a")\n    return [("out", "pass --resume")]\n'
    assert flags_outside_declarations(source) == [(4, "pass --resume")]
    found = [f"{path.relative_to(ROOT)}:{line}: {text!r}" for path in _files(LIBRARY)
             for line, text in flags_outside_declarations(path.read_text())]
    assert not found, "\n".join(found)
