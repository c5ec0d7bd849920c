"""`coop compare`'s options, declared once (`runio.options.option`: help, allowed values), and how
to fit: `FitConfig` (the fit's knobs; those declared with `option` are `coop compare`'s options of
the same name, the others are the library's) and `Compare` (the command's other options: the fixed
parameters, which rows and losses are fitted, the phase diagram's size). Both validate themselves
when made, raising `ConfigError` naming the field; what needs the data (`fit_until` against the
run's rows, a fixed tau against the bounds its span gives) is checked where the data is read
(`compare.curves.load_curves`, `compare.report.prepare`).

Imports nothing heavy (the CLI builds its options from these declarations without jax): the names
they need (the parameters, the weightings, the losses) are defined here and imported by
`compare.fit` and its parts.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from runio.options import ConfigError, option, validate

__all__ = ["NONLINEAR", "LINEAR", "PARAMS", "LOG_PARAMS", "WEIGHTS", "LOSSES", "LINKS", "POPULATIONS", "INTERACTIONS",
           "CURVE_KINDS", "fixed_params",
           "FitConfig", "Compare"]

# sigma_k: compare.maps's population; kappa: its ICL-on-CIWL interaction
NONLINEAR = ("alpha", "mu1", "mu2", "tau", "nd_ratio", "sigma1", "sigma2", "kappa")
LINEAR = ("A1", "B1", "A2", "B2")
PARAMS = NONLINEAR + LINEAR
LOG_PARAMS = ("tau", "nd_ratio")  # searched in log space
WEIGHTS = ("balanced", "none")
LOSSES = ("error", "context", "full")  # which curves of a run directory are fitted (docs/compare.md)
LINKS = ("auto", "affine", "probit")  # how a toy loss maps to a curve (compare.maps); auto: `FitConfig.for_curves`
POPULATIONS = ("none", "ciwl", "icl", "both")  # which curves average over a spread of speeds (compare.maps)
INTERACTIONS = ("none", "icl-on-ciwl")  # whether ICL's strength dilutes the CIWL evaluator's margin (compare.maps)
CURVE_KINDS = ("accuracy", "error", "loss")  # what a table's columns hold (compare.curves)


def fixed_params(items, names=PARAMS) -> dict:
    """`fix` NAME=VALUE items (each may be a comma list) as a dict, else ConfigError on `fix`."""
    fixed = {}
    for item in items or []:
        for part in item.split(","):
            name, sep, text = part.partition("=")
            name = name.strip()
            try:
                value = float(text)
            except ValueError:
                value = float("nan")
            if not sep or name not in names or not math.isfinite(value):
                raise ConfigError("fix", f"must be NAME=VALUE with NAME in {','.join(names)} and a finite value, "
                                         f"got {part!r}")
            if name in fixed:
                raise ConfigError("fix", f"{name} given twice")
            fixed[name] = value
    return fixed


@dataclass(frozen=True)
class FitConfig:
    """How to fit (`compare.fit.fit`). `fixed`: parameter name -> value (names in PARAMS; `coop
    compare --fix`). The fields declared with `option` are `coop compare`'s options."""

    fixed: dict = field(default_factory=dict)
    starts: int = option(1024, "Screening starts, simulated in one vmapped batch (>= 1).", low=1)
    refine: int = option(8, "Best starts refined by least squares (>= 1).", low=1)
    weights: str = option("balanced", "balanced (residuals / each curve's SD) | none.", choices=WEIGHTS)
    link: str = option("auto", "Toy loss -> curve: auto (probit on accuracy or error curves, affine on losses: "
                               "the map chosen by held-out error, docs/compare.md) | affine (anchored at chance on "
                               "error rates) | probit (a margin linear in the mechanism's strength 1 - sqrt(L / "
                               "L_ref); needs accuracy or error curves).", choices=LINKS)
    population: str = option("ciwl", "Which curves are a population average over a log-normal spread of per-class "
                                      "speeds (one parameter sigma_k each): none | ciwl | icl | both.",
                             choices=POPULATIONS)  # ciwl: chosen by held-out error (docs/compare.md)
    interaction: str = option("none", "none | icl-on-ciwl: ICL's random-sign vote on the CIWL evaluator's sequences "
                                      "widens the CIWL margin's spread, one parameter kappa (probit link only).",
                              choices=INTERACTIONS)
    seed: int = option(7, "The toy's draw (7 = the paper's).", low=0)  # toymodel.draws.PAPER_SEED (a test checks it)
    dims: tuple = (20, 20, 20, 160)  # the draw's dims: toymodel.draws.PAPER_DIMS (not imported here: it loads jax)
    lr: float = 1.0
    max_steps: int = option(40000, "Toy step budget: tau >= last sequences / max-steps.", low=1000)
    min_steps: int = 500  # tau <= s_max / min_steps
    screen_every: int = 10
    sample_seed: int = 0  # the Latin hypercube of starts
    max_nfev: int = 200

    def __post_init__(self):
        validate(self)  # the options' declared ranges and choices
        if not (1 <= self.min_steps < self.max_steps and self.screen_every >= 1):  # the library's knobs
            raise ValueError(f"need 1 <= min_steps < max_steps and screen_every >= 1, got min_steps {self.min_steps}, "
                             f"screen_every {self.screen_every}")
        if self.interaction != "none" and self.link == "affine":
            raise ConfigError("interaction", f"{self.interaction} needs the probit link (the affine link has no margin), "
                                             "got link affine")
        if self.max_steps % self.screen_every:
            raise ConfigError("max_steps", f"must be a multiple of {self.screen_every} (the screening interval), "
                                           f"got {self.max_steps}")
        bad = [k for k in self.fixed if k not in PARAMS]
        if bad:
            raise ConfigError("fix", f"unknown parameter(s) {','.join(bad)}; fixable: {','.join(PARAMS)}")
        for k, v in self.fixed.items():
            if k in ("B1", "B2"):
                ok, need = math.isfinite(v), "finite"
            elif k in LOG_PARAMS:
                ok, need = math.isfinite(v) and v > 0, "finite and > 0"
            else:
                ok, need = math.isfinite(v) and v >= 0, "finite and >= 0"
            if k == "kappa" and self.interaction == "none" and v != 0:
                ok, need = False, "0 without an interaction (give `interaction` icl-on-ciwl)"
            if not ok:
                raise ConfigError("fix", f"{k}={v}: must be {need}")

    def for_curves(self, error_rates: bool) -> "FitConfig":
        """This config with link "auto" resolved: probit on error-rate curves, affine on losses."""
        if self.link != "auto":
            return self
        return dataclasses.replace(self, link="probit" if error_rates else "affine")

    def spread(self, k: int) -> bool:
        """Whether curve k (1: ICL, 2: CIWL) is a population average (its sigma_k a parameter)."""
        return self.population in ("both", ("icl", "ciwl")[k - 1])

    def free_params(self, anchored: bool) -> tuple[list, list]:
        """(free nonlinear, free map parameters): not fixed, a sigma_k only with its population, kappa
        only with the interaction, and no A_k on curves anchored at chance (A_k follows from B_k there)."""
        nonlinear = [k for k in NONLINEAR if k not in self.fixed and not (k.startswith("sigma") and not self.spread(int(k[-1])))
                     and not (k == "kappa" and self.interaction == "none")]
        linear = [k for k in LINEAR if k not in self.fixed and not (anchored and k[0] == "A")]
        return nonlinear, linear

    def to_dict(self) -> dict:
        return {"fixed": dict(self.fixed), "starts": self.starts, "refine": self.refine, "weights": self.weights,
                "link": self.link, "population": self.population, "interaction": self.interaction,
                "draw_seed": self.seed, "dims": list(self.dims), "lr": self.lr, "max_steps": self.max_steps,
                "min_steps": self.min_steps, "screen_every": self.screen_every, "sample_seed": self.sample_seed,
                "max_nfev": self.max_nfev}


@dataclass(frozen=True)
class Compare:
    """`coop compare`'s options besides the fit's own (`FitConfig`)."""

    fix: tuple[str, ...] = option((), "NAME=VALUE (repeat, or a comma list): hold a parameter fixed. "
                                      f"Names: {', '.join(PARAMS)}.")
    from_sequences: float | None = option(None, "Fit rows with sequences >= this (default: all but the untrained "
                                                "rows at 0).", low=0)
    grid: int = option(40, "Phase diagram points per axis (2..200).", low=2, high=200,
                       allowed="must be an integer from 2 to 200")
    losses: str = option("error", "A run's curves: error (1 - in-context accuracy) | context (in-context "
                                  "losses) | full (cross-entropy over all labels).", choices=LOSSES)
    fit_until: float | None = option(None, "Fit rows up to this many sequences only; predict the rest.", low=0,
                                     low_open=True)
    icl: str | None = option(None, "The ICL curve's column (a CSV/TSV header name, or a log.h5 dataset such as "
                                   "icl/in_context_acc; default: icl_loss, icl_acc or icl_error by --curves).")
    ciwl: str | None = option(None, "The CIWL curve's column (default: ciwl_loss, ciwl_acc or ciwl_error by --curves; "
                                    "in a log.h5 iwl_copy_avail/in_context_acc).")
    sequences: str | None = option(None, "The column of sequences seen (default: sequences; in a log.h5 eval_iter).")
    curves: str | None = option(None, "What the columns hold: accuracy | error (fitted as error rates, maps anchored "
                                      "at chance) | loss (free affine maps). Default: a CSV's loss, a log.h5's "
                                      "accuracy, a run directory's by --losses.", choices=CURVE_KINDS)
    chance: float | None = option(None, "The curves' value at chance, in their own units (accuracy or error curves; "
                                        "default 0.5).", low=0, high=1, low_open=True, high_open=True)

    def __post_init__(self):
        object.__setattr__(self, "fix", tuple(self.fix or ()))  # the CLI hands a list (None: not given)
        validate(self)

    def fit_config(self, **fit) -> FitConfig:
        """The FitConfig of --fix (`fixed_params`) and the fit's options `fit` (FitConfig's fields)."""
        return FitConfig(fixed=fixed_params(self.fix), **fit)
