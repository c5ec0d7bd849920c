"""The page's state: its controls as URL query parameters, checked, and the commands that reproduce it.

A view is what the URL's query says (every value text, as typed): the toy's options under the
names of `coop toy simulate`'s (alpha, mu1, mu2, lr, steps, dims, seed, method, clamp,
aggregate), and the phase diagram's range (alpha_max, mu1_max). `parse` checks them with the
library's own checks (`toymodel.commands.Simulate`, `toymodel.commands.Sweep`: a bad value raises
`runio.options.ConfigError` naming the field, `alpha`, and what is allowed) plus the page's
limits (PAGE_LIMITS: what keeps one answer fast), and returns the commands' option objects. The
page records every `every`-th step (at most MAX_ROWS rows); `simulate_command`,
`sweep_command` and `portrait_command` are the `coop` commands whose outputs equal what the page
shows.
"""

from __future__ import annotations

import dataclasses
import math
import shlex
from dataclasses import dataclass

from runio.options import ConfigError
from toymodel.commands import Portrait, Simulate, Sweep, int_list

__all__ = ["DEFAULTS", "GRID", "MAX_ROWS", "PAGE_LIMITS", "View", "parse", "simulate_command", "sweep_command",
           "portrait_command"]

DEFAULTS = {"alpha": "0.1", "mu1": "0.1", "mu2": "0", "lr": "1", "steps": "16000", "dims": "20,20,20,160",
            "seed": "7", "method": "gd", "clamp": "", "aggregate": "mean", "alpha_max": "0.5", "mu1_max": "0.5"}
GRID = 64  # the phase diagram's points per axis
MAX_ROWS = 4000  # rows the page records: every = ceil(steps / MAX_ROWS)
METHODS = ("gd", "momentum", "flow")
# the page's bounds beyond the commands' own (query name -> (low, high)): one answer stays fast
PAGE_LIMITS = {"lr": (0.0, 10.0), "steps": (1, 200_000), "seed": (0, 2**31 - 1), "alpha_max": (0.0, 20.0),
               "mu1_max": (0.0, 20.0)}
MAX_DIM = 10_000
FLOATS = ("alpha", "mu1", "mu2", "lr")
INTS = ("steps", "seed")


@dataclass(frozen=True)
class View:
    """A checked view: the `coop toy simulate` options of its trajectory, the `coop toy sweep` ones of its
    diagram and the `coop toy portrait` ones of its portrait."""

    simulate: Simulate
    sweep: Sweep
    portrait: Portrait

    @property
    def every(self) -> int:
        return self.simulate.every


def _number(name: str, text: str, kind):
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise ConfigError(name, f"must be a{'n integer' if kind is int else ' number'}, got {text!r}") from None
    return value


def _within(name: str, value) -> None:
    low, high = PAGE_LIMITS[name]
    strict = isinstance(low, float)  # a float range excludes its low end
    inside = low < value <= high if strict else low <= value <= high
    if not (math.isfinite(value) and inside):
        rng = f"> {low:g} and <= {high:g}" if strict else f"from {low:,} to {high:,}"
        raise ConfigError(name, f"must be {rng} on this page, got {value}")


def parse(query: dict) -> View:
    """The view of a URL query (name -> text; missing names take DEFAULTS), else ConfigError naming
    the control's query name (the command's field) and its allowed range. Unknown names are ignored (the page's own, e.g. tab)."""
    q = {k: str(query.get(k, v)).strip() for k, v in DEFAULTS.items()}
    values = {k: _number(k, q[k], float) for k in FLOATS} | {k: _number(k, q[k], int) for k in INTS}
    if q["method"] not in METHODS:
        raise ConfigError("method", f"must be one of {', '.join(METHODS)} on this page, got {q['method']!r}")
    opts = Simulate(dims=q["dims"], method=q["method"], clamp=q["clamp"], aggregate=q["aggregate"],
                    out="runs/explore", **values)
    if max(int_list("dims", opts.dims, 4)) > MAX_DIM:  # before the draw is made
        raise ConfigError("dims", f"must be 4 integers from 1 to {MAX_DIM:,} on this page, got {opts.dims}")
    opts.prepare()  # the command's checks: ranges, choices, dims, clamp against the dims
    _within("lr", opts.lr)
    _within("steps", opts.steps)
    _within("seed", opts.seed)
    spans = {}
    for name in ("alpha_max", "mu1_max"):
        spans[name] = _number(name, q[name], float)
        _within(name, spans[name])
    every = -(-opts.steps // MAX_ROWS)
    opts = dataclasses.replace(opts, every=every)
    sweep = Sweep(out="runs/explore-diagram", alpha=f"0:{spans['alpha_max']!r}:{GRID}",
                  mu1=f"0:{spans['mu1_max']!r}:{GRID}", mu2=repr(opts.mu2), steps=opts.steps, lr=opts.lr,
                  dims=opts.dims, seed=opts.seed, aggregate=opts.aggregate, clamp=opts.clamp)
    sweep.config()  # its checks (the same values, already checked above)
    portrait = Portrait(out="runs/explore-portrait", alpha=repr(opts.alpha), mu1=repr(opts.mu1), mu2=repr(opts.mu2),
                        dims=opts.dims, seeds=str(opts.seed), time=float(opts.steps * opts.lr), clamp=opts.clamp)
    portrait.panels()  # its checks
    return View(opts, sweep, portrait)


def _line(command: str, options: dict) -> str:
    parts = ["coop", *command.split()]
    for name, value in options.items():
        if value not in ("", None):
            parts += [f"--{name.replace('_', '-')}", repr(value) if isinstance(value, float) else str(value)]
    return shlex.join(parts)


def simulate_command(view: View) -> str:
    """The `coop toy simulate` command whose trajectory.csv holds the page's curves."""
    o = view.simulate
    return _line("toy simulate", {k: getattr(o, k) for k in ("alpha", "mu1", "mu2", "lr", "steps", "dims", "seed",
                                                             "method", "aggregate", "clamp", "every", "out")})


def sweep_command(view: View) -> str:
    """The `coop toy sweep` command whose phase diagram is the page's."""
    o = view.sweep
    return _line("toy sweep", {k: getattr(o, k) for k in ("alpha", "mu1", "mu2", "steps", "lr", "dims", "seed",
                                                          "aggregate", "clamp", "out")})


def portrait_command(view: View) -> str:
    """The `coop toy portrait` command whose portrait.png draws the page's portrait (flow time = steps x lr)."""
    o = view.portrait
    return _line("toy portrait", {k: getattr(o, k) for k in ("alpha", "mu1", "mu2", "dims", "seeds", "time", "clamp",
                                                             "out")})
