"""A `coop compare` fit.json, read for the page's transformer overlay.

fit.json (`compare.report.fit_report`) is read by the keys `compare.result.FitResult.to_dict`
documents, and only those: `parameters.NAME.value` (alpha, mu1, mu2, tau, nd_ratio, sigma1, sigma2,
A1, B1, A2, B2; kappa with `config.interaction` icl-on-ciwl), `config.link|draw_seed|dims|lr`, `toy.steps|l1_ref|l2_ref`, `data.losses` and `residuals.sequences`
with `residuals.icl_measured|ciwl_measured` (and `icl_fitted|ciwl_fitted` when present). Other keys
are ignored (compare may add more); a file without these, or with values of another type, is
refused with one line naming the first key that is missing or wrong. The measured rows are put on
the toy's step axis with the fitted tau (step = sequences / tau), and a toy trajectory's L1 and L2
are mapped onto the evaluators as the fit maps them: the fitted link averaged over the population of
per-class speeds sigma_k (`compare.maps.population_times`, `population_map`; one speed at sigma_k = 0),
the CIWL margin diluted by ICL's strength at kappa (`compare.maps.interaction_scale`; 1 without the
interaction).
"""

from __future__ import annotations

import json
import math

import numpy as np

from compare.config import INTERACTIONS
from compare.maps import interaction_scale, population_map, population_times
from runio.options import ConfigError

__all__ = ["Fit", "read_fit", "NAME"]

NAME = "fit.json"
PARAMS = ("alpha", "mu1", "mu2", "tau", "nd_ratio", "sigma1", "sigma2", "A1", "B1", "A2", "B2")
LINKS = ("affine", "probit")


class Fit(dict):
    """The parts of a fit.json the page uses (a dict: it is sent to the page as JSON)."""

    def mapped(self, steps, l1, l2) -> dict:
        """The toy's L1, L2 (at `steps`) mapped onto the measured ICL and CIWL curves as the fit maps them:
        at step t, the mean of the link over the population's toy times v t (held at the last step past it)."""
        p = self["params"]
        scales = {1: 1.0, 2: interaction_scale(l1, self["l1_ref"], p["kappa"])}  # ICL's single state dilutes CIWL
        out = {}
        for key, loss, k in (("icl", l1, 1), ("ciwl", l2, 2)):
            times, weights = population_times(steps, p[f"sigma{k}"])
            losses = np.interp(times, steps, loss)
            out[key] = population_map(self["link"], losses, weights, p[f"A{k}"], p[f"B{k}"],
                                      self[f"l{k}_ref"], scales[k]).tolist()
        return out


def _get(info, path: str, check, what: str):
    node = info
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            raise ConfigError(NAME, f"not a `coop compare` fit: no {path} (needs {what})")
        node = node[key]
    if not check(node):
        raise ConfigError(NAME, f"not a `coop compare` fit: {path} must be {what}, got {str(node)[:40]!r}")
    return node


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _series(x) -> bool:
    return isinstance(x, list) and len(x) > 0 and all(_finite(v) for v in x)


def read_fit(text: str | bytes) -> Fit:
    """The overlay of a fit.json's text, else ConfigError on fit.json (one line)."""
    try:
        info = json.loads(text)
    except (ValueError, UnicodeDecodeError) as err:
        raise ConfigError(NAME, f"not JSON ({str(err).splitlines()[0]})") from None
    params = {k: float(_get(info, f"parameters.{k}.value", _finite, "a finite number")) for k in PARAMS}
    interaction = info.get("config", {}).get("interaction", "none") if isinstance(info.get("config"), dict) else "none"
    if interaction not in INTERACTIONS:
        raise ConfigError(NAME, f"not a `coop compare` fit: config.interaction must be one of {', '.join(INTERACTIONS)}, "
                                f"got {str(interaction)[:40]!r}")
    params["kappa"] = float(_get(info, "parameters.kappa.value", _finite, "a finite number")) if interaction != "none" else 0.0
    if not params["tau"] > 0:
        raise ConfigError(NAME, f"not a `coop compare` fit: parameters.tau.value must be > 0, got {params['tau']}")
    fit = Fit(
        params=params,
        link=_get(info, "config.link", lambda x: x in LINKS, f"one of {', '.join(LINKS)}"),
        seed=_get(info, "config.draw_seed", lambda x: isinstance(x, int) and x >= 0, "an integer >= 0"),
        dims=_get(info, "config.dims", lambda x: isinstance(x, list) and len(x) == 4 and
                  all(isinstance(n, int) and n >= 1 for n in x), "4 positive integers"),
        lr=float(_get(info, "config.lr", lambda x: _finite(x) and x > 0, "a number > 0")),
        steps=_get(info, "toy.steps", lambda x: isinstance(x, int) and x >= 1, "an integer >= 1"),
        l1_ref=float(_get(info, "toy.l1_ref", lambda x: _finite(x) and x > 0, "a number > 0")),
        l2_ref=float(_get(info, "toy.l2_ref", lambda x: _finite(x) and x > 0, "a number > 0")),
        losses=_get(info, "data.losses", lambda x: isinstance(x, str), "text"),
        source=str(info.get("source", "")),
    )
    seq = np.asarray(_get(info, "residuals.sequences", _series, "a list of numbers"))
    measured = {"step": (seq / params["tau"]).tolist()}
    for curve in ("icl", "ciwl"):
        values = _get(info, f"residuals.{curve}_measured", _series, "a list of numbers")
        if len(values) != seq.size:
            raise ConfigError(NAME, f"not a `coop compare` fit: residuals.{curve}_measured has {len(values)} rows, "
                                    f"residuals.sequences {seq.size}")
        measured[curve] = values
        fitted = info["residuals"].get(f"{curve}_fitted")
        if _series(fitted) and len(fitted) == seq.size:
            measured[f"{curve}_fitted"] = fitted
    fit["measured"] = measured
    return fit
