"""Options declared once: a config dataclass's fields carry their command-line option.

A field made with `option(default, help, ...)` holds in its metadata the help text, the allowed
values (`low`/`high` bounds, `choices`) and, when it differs from `--field-name`, the option's
name. From that one declaration

- the library validates a config (`problems(cfg)`: (field, what is allowed) pairs; `validate(cfg)`
  raises the first as `ConfigError`), and
- the CLI generates its options (`parameters(cls)`: typer parameters; `with_fields(cls)`: a
  decorator giving a command one option per field, handed to it as one dict),

so adding a field to a config adds its option, its help and its check. `ConfigError(parameter,
allowed)` is the project's error for a bad user-supplied value; it names the Python parameter or
field (`lr`, `init_file`), never a command-line flag: the CLI maps the parameter to its flag
(`flag_name`), prints one line and exits with code 2. This module imports nothing heavy (typer
only inside the CLI helpers).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import numbers
import typing
from pathlib import Path

MISSING = dataclasses.MISSING


class ConfigError(ValueError):
    """A user-supplied value is invalid: `parameter` names it (a function's parameter or a config's
    field, e.g. `lr`, `init_file`; several joined by "/"), `allowed` says what is allowed. Another
    parameter cited in `allowed` is written in backticks (`shard`), so the CLI can show its flag."""

    def __init__(self, parameter: str, allowed: str):
        super().__init__(f"{parameter}: {allowed}")
        self.parameter = parameter
        self.allowed = allowed


def option(default=MISSING, help: str = "", *, low=None, high=None, low_open: bool = False, high_open: bool = False,
           choices=None, allowed: str | None = None, flag: str | None = None, cli: bool = True, cli_default=MISSING,
           **field_kwargs):
    """A dataclass field with its option: `help`; allowed values `low <= x <= high` (`low_open` /
    `high_open`: strict), or one of `choices` (a tuple, or a callable returning it); `allowed` the
    text of the error (default: from the bounds); `flag` the option's declaration when not
    `--field-name` (e.g. "--tie-labels/--no-tie-labels"); `cli=False`: no option; `cli_default`:
    the option's default when it is not the field's. None is allowed when the field's annotation
    or default is None. A field annotated `tuple[str, ...]` is a repeatable option (its values
    handed over as a list)."""
    meta = dict(help=help, low=low, high=high, low_open=low_open, high_open=high_open, choices=choices,
                allowed=allowed, flag=flag, cli=cli, cli_default=cli_default)
    return dataclasses.field(default=default, metadata={"option": meta}, **field_kwargs)


def spec(field: dataclasses.Field) -> dict | None:
    """The option metadata of a field (None: a field declared without `option`)."""
    return field.metadata.get("option")


def flag_name(field: dataclasses.Field) -> str:
    """The option's name on the command line: `--field-name`, or the first name of its `flag`."""
    meta = spec(field) or {}
    if meta.get("flag"):
        return meta["flag"].split("/")[0]
    return "--" + field.name.replace("_", "-")


def _choices(meta: dict):
    c = meta["choices"]
    return c() if callable(c) else c


def _allowed_text(meta: dict, kind: str) -> str:
    if meta["allowed"]:
        return meta["allowed"]
    if meta["choices"] is not None:
        return f"must be one of {', '.join(_choices(meta))}"
    what = "an integer" if kind == "int" else "a finite number"
    low, high = meta["low"], meta["high"]
    if low is not None and high is not None:
        return f"must be in {'(' if meta['low_open'] else '['}{low:g}, {high:g}{')' if meta['high_open'] else ']'}"
    if low is not None:
        return f"must be {what} {'>' if meta['low_open'] else '>='} {low:g}"
    if high is not None:
        return f"must be {what} {'<' if meta['high_open'] else '<='} {high:g}"
    return f"must be {what}"


def _base_type(field: dataclasses.Field) -> str:
    """'int', 'float', 'str', 'bool' or '' from the field's annotation (a string under
    `from __future__ import annotations`), ignoring `| None`."""
    text = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", str(field.type))
    parts = [p.strip() for p in text.split("|") if p.strip() != "None"]
    return parts[0] if len(parts) == 1 and parts[0] in ("int", "float", "str", "bool") else ""


def _repeatable(field: dataclasses.Field) -> bool:
    """A `tuple[str, ...]` field: an option given any number of times."""
    text = field.type if isinstance(field.type, str) else str(field.type)
    return text.replace(" ", "") == "tuple[str,...]"


def _optional(field: dataclasses.Field) -> bool:
    text = field.type if isinstance(field.type, str) else str(field.type)
    return field.default is None or "None" in text


def check_value(field: dataclasses.Field, value) -> str | None:
    """What is allowed, if `value` is not allowed for `field`; None if it is."""
    meta = spec(field)
    if meta is None or (value is None and _optional(field)):
        return None
    kind = _base_type(field)
    if meta["choices"] is not None:
        return None if value in _choices(meta) else _allowed_text(meta, kind)
    if kind in ("int", "float") and (meta["low"] is not None or meta["high"] is not None):
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
        if ok and meta["low"] is not None:
            ok = value > meta["low"] if meta["low_open"] else value >= meta["low"]
        if ok and meta["high"] is not None:
            ok = value < meta["high"] if meta["high_open"] else value <= meta["high"]
        return None if ok else _allowed_text(meta, kind)
    return None


def problems(cfg) -> list[tuple[str, str]]:
    """(field, what is allowed) for every field of dataclass `cfg` whose value its option metadata refuses."""
    out = []
    for f in dataclasses.fields(cfg):
        bad = check_value(f, getattr(cfg, f.name))
        if bad is not None:
            out.append((f.name, bad))
    return out


def validate(cfg, extra: list[tuple[str, str]] = ()) -> None:
    """Raise the first of `problems(cfg)` (with the value given) then of `extra` as ConfigError
    naming the field."""
    for name, allowed in problems(cfg):
        value = getattr(cfg, name)
        raise ConfigError(name, f"{allowed}, got {value!r}" if isinstance(value, str) else f"{allowed}, got {value}")
    for name, allowed in extra:
        raise ConfigError(name, allowed)


# ---- the CLI side: typer options generated from the fields ----------------------------------------


_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def parameters(cls, *, skip=(), default=MISSING) -> list[inspect.Parameter]:
    """One keyword-only typer parameter per field of `cls` declared with `option` (and `cli` true),
    but `skip`: its flag, its help, and as default the field's (or its `cli_default`, or `default`
    for every field when given: e.g. None, so that "not given" can be told from a value)."""
    import typer

    out = []
    for f in dataclasses.fields(cls):
        meta = spec(f)
        if meta is None or not meta["cli"] or f.name in skip:
            continue
        if default is not MISSING:
            value = default
        elif meta["cli_default"] is not MISSING:
            value = meta["cli_default"]
        else:
            value = f.default
        if value is MISSING:  # a required option
            value = ...
        flag = meta["flag"] or flag_name(f)
        kind = list[str] if _repeatable(f) else _TYPES[_base_type(f) or "str"]
        out.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, annotation=kind,
                                     default=typer.Option(value, *flag.split(" "), help=meta["help"])))
    return out


def with_fields(cls, into: str, *, skip=(), default=MISSING):
    """Decorator: give a typer command the options of `cls`'s fields (`parameters`), handed to it as
    one dict `into` (field -> value). The command's own parameters come first in its signature."""
    params = parameters(cls, skip=skip, default=default)
    names = [p.name for p in params]

    def decorate(fn):
        sig = inspect.signature(fn)
        hints = typing.get_type_hints(fn)  # resolved where `fn` was written (its annotations may be strings)

        @functools.wraps(fn)
        def command(**kwargs):
            given = {n: kwargs.pop(n) for n in names}
            return fn(**kwargs, **{into: given})

        own = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in sig.parameters.values() if p.name != into]
        command.__signature__ = sig.replace(parameters=own + [p for p in params if p.name not in sig.parameters])
        command.__annotations__ = {p.name: p.annotation for p in command.__signature__.parameters.values()}
        del command.__wrapped__  # typer reads __signature__, not the wrapped function's
        return command

    return decorate


def out_dir(path, parameter: str = "out"):
    """`path` as a Path to an output directory (it may not exist yet), else ConfigError on `parameter`: it is a file."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(parameter, f"{path} is a file, not a directory")
    return path
