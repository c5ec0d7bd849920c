"""Lazy package exports (PEP 562): a package names what it exports and the module each name is in;
a name is imported on first use. Packages use it so that importing one light module of theirs
(what the CLI reads to build its options) does not load jax, sympy or matplotlib."""

from __future__ import annotations

import importlib
import importlib.util

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: dict[str, tuple[str, ...]]):
    """(__getattr__, __dir__, __all__, where) for `package`: `exports` maps each submodule to the
    names it exports; `where` maps each name to its submodule. An unknown name that is a submodule
    not yet imported is imported as that submodule."""
    where = {name: module for module, names in exports.items() for name in names}
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str):
        if name in where:
            value = getattr(importlib.import_module(f"{package}.{where[name]}"), name)
        elif importlib.util.find_spec(f"{package}.{name}") is not None:  # a submodule not imported yet
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__():
        return sorted(set(namespace) | set(where))

    return __getattr__, __dir__, list(where), where
