"""One-line errors: the library names a parameter, the command line shows the flag.

A library function raises `runio.options.ConfigError(parameter, allowed)` naming its Python
parameter or config field (`lr`, `init_file`; several joined by "/"), and cites another parameter
in `allowed` in backticks (`shard`). `message` turns that into what the user typed: the flag of the
invoked command's own option of that name, else the flag declared on the field of a config class
the CLI builds its options from (`runio.options.flag_name`: `--field-name`, or a `flag=` override
such as `--tie-labels`). A name that is neither (an internal parameter, a positional such as
RUN_DIR, or a flag the command layer named itself) is shown as it is.
"""

from __future__ import annotations

import dataclasses
import re

from compare.config import Compare, FitConfig
from runio.jobs import JobOptions
from runio.options import ConfigError, flag_name, spec
from toymodel.commands import FixedPoints, Portrait, Simulate, Sweep
from transformer.config import TrainConfig

# every config class whose fields are `coop` options (`runio.options.with_fields`)
CONFIGS = (Simulate, Sweep, FixedPoints, Portrait, TrainConfig, Compare, FitConfig, JobOptions)

_CITED = re.compile(r"`([a-z_][a-z0-9_]*)`")


def declared_flags() -> dict[str, str]:
    """Field name -> flag, for the fields of `CONFIGS` that are options."""
    flags = {}
    for cls in CONFIGS:
        for f in dataclasses.fields(cls):
            meta = spec(f)
            if meta is not None and meta["cli"]:
                flags.setdefault(f.name, flag_name(f))
    return flags


def invoked(root, args: list[str]):
    """The (sub)command that `args` name under the click command `root` (`coop toy sweep ...`: sweep)."""
    command = root
    for arg in args:
        sub = getattr(command, "commands", {}).get(arg)
        if sub is None:
            break
        command = sub
    return command


def flags_of(command) -> dict[str, str]:
    """Parameter -> flag for an error of `command`: its own options first, then the config fields."""
    own = {p.name: p.opts[0] for p in command.params if p.param_type_name == "option"}
    return {**declared_flags(), **own}


def message(err: ConfigError, flags: dict[str, str]) -> str:
    """`err` as the command line shows it: `--flag: what is allowed`, cited parameters as flags."""
    shown = "/".join(flags.get(name, name) for name in err.parameter.split("/"))
    allowed = _CITED.sub(lambda m: flags.get(m.group(1), m.group(0)), err.allowed)
    return f"{shown}: {allowed}"
