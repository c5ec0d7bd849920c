"""A fit's result (`FitResult`: parameters, standard errors, R^2, the verdicts, fit.json's content),
the mapped toy curves (`toy_on_sequences`), and the verdict in the curves' own terms (`curve_verdict`).

Two verdicts are reported at the fitted point, over the data's span (the toy run for ceil(s_max /
tau) steps): the toy's own class (`compare.toy.toy_outcome`: losses relative to their reference
levels), and the class a person reads off the curves: the toy's fitted curves mapped to
accuracies (1 - error rate) and classified by the rule that classifies a transformer run
(`transformer.outcomes.outcome`), beside the measured curves classified by the same rule. The
second needs accuracy or error-rate curves (a loss has no accuracy).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from transformer.outcomes import OUTCOME_RULE, outcome

from .config import PARAMS, FitConfig
from .curves import CURVES, Curves
from .maps import (INTERACTION_MAPPING, MAPPING, POPULATION_MAPPING, PROBIT_MAPPING, interaction_scale, population_map,
                   population_times)

__all__ = ["FitResult", "toy_on_sequences", "curve_verdict"]


@dataclass(kw_only=True)
class FitResult:
    """A fit: parameters (all, natural units) and their standard errors (free ones only), R^2 per
    curve, fitted and measured values at the fitted rows, the verdicts, diagnostics."""

    params: dict  # every name in PARAMS -> value
    se: dict  # free parameter -> standard error
    free: list  # the free parameters, in the order of `correlation`
    at_bound: list
    poorly_determined: dict  # name -> reason
    correlation: np.ndarray  # (len(free), len(free))
    sigma2: float  # weighted SS_res / dof
    dof: int
    r2: dict  # curve -> R^2
    weights: dict  # curve -> residual weight
    curves: Curves
    fitted: dict  # curve -> fitted values at curves.s
    toy: dict  # the toy's own verdict and trajectory summary (`compare.toy.toy_outcome`)
    verdict: dict  # the verdict in the curves' terms (`curve_verdict`)
    trajectory: dict  # l1, l2 at every toy step to the horizon (config.max_steps + 1,); the data's span is toy["steps"]
    starts: list  # per refined start: screen cost, cost, nfev, status, start and end parameters
    bounds: dict  # nonlinear parameter -> (lo, hi)
    config: FitConfig
    timing: dict

    def residuals(self) -> dict:
        return {c: self.curves.y(c) - self.fitted[c] for c in CURVES}

    def curve(self, curve: str, sequences, trajectory, l1=None) -> np.ndarray:
        """The fitted curve at `sequences` from the toy's `trajectory` of `curve`'s loss at every step
        (the population average at the fitted sigma_k, times past the trajectory held at its end: give
        it at least to the fit's horizon, as `trajectory` is, for the fitted values). The CIWL curve
        of a fit with the ICL-on-CIWL interaction also needs `l1`, the ICL loss at the same steps."""
        i = CURVES.index(curve) + 1
        t = np.asarray(sequences, np.float64) / self.params["tau"]
        times, wts = population_times(t, self.params[f"sigma{i}"])
        steps = np.arange(len(trajectory))
        losses = np.interp(np.minimum(times, steps[-1]), steps, trajectory)
        scale = 1.0
        if curve == "ciwl" and self.config.interaction != "none":
            if l1 is None:
                raise ValueError("the CIWL curve of a fit with the ICL-on-CIWL interaction needs the ICL trajectory l1")
            scale = interaction_scale(np.interp(np.minimum(t, steps[-1]), steps, l1), self.toy["l1_ref"],
                                      self.params["kappa"])
        return population_map(self.config.link, losses, wts, self.params[f"A{i}"], self.params[f"B{i}"],
                              self.toy[f"l{i}_ref"], scale)

    def to_dict(self) -> dict:
        res = self.residuals()
        c = self.curves
        spread = any(self.config.spread(k) for k in (1, 2)) or any(self.params[f"sigma{k}"] for k in (1, 2))
        return {
            "source": c.source,
            "mapping": (MAPPING if self.config.link == "affine" else PROBIT_MAPPING) + (POPULATION_MAPPING if spread else "")
                       + (INTERACTION_MAPPING if self.config.interaction != "none" else ""),
            "data": {
                "rows_read": int(c.sequences.size), "rows_fitted": int(c.used.sum()),
                "losses": c.losses, "curves": c.kind, "columns": c.columns, "chance": c.chance,
                "from_sequences": c.from_sequences, "fit_until": c.until,
                "rule": "rows with sequences < from_sequences not fitted (default: the rows at sequences 0, "
                        "the untrained network)",
                "dropped_sequences": c.sequences[~c.used & ~c.held_out].tolist(),
            },
            "config": self.config.to_dict(),
            "parameters": {
                k: {"value": self.params[k], "se": self.se.get(k), "fixed": k in self.config.fixed,
                    "at_bound": k in self.at_bound,
                    "bounds": list(self.bounds[k]) if k in self.bounds else
                    ([0.0, None] if k in ("A1", "A2") else [None, None])}
                for k in PARAMS
            },
            "derived": {"rho_d_rate": self.toy["rho"], "effective_n_d": self.params["nd_ratio"] * self.config.dims[0],
                        **({"maps": f"anchored at chance: A_k = ({c.chance} - B_k) / L_k_ref, L1_ref = "
                                    f"{self.toy['l1_ref']:.6g}, L2_ref = {self.toy['l2_ref']:.6g}"}
                           if c.chance is not None else {})},
            "uncertainty": {
                "method": "HC2 sandwich (J^T J)^-1 J^T diag(r_i^2 / (1 - h_i)) J (J^T J)^-1, J = d(weighted residuals)/"
                          "d(free parameters) at the optimum (central differences), h_i the leverages; sigma2 = weighted "
                          "SS_res / dof; assumes independent residuals, so systematic misfit makes these too small",
                "sigma2": self.sigma2, "dof": self.dof, "free": list(self.free),
                "correlation": self.correlation.tolist(),
                "poorly_determined": self.poorly_determined,
            },
            "r2": self.r2,
            "weights": self.weights,
            "residuals": {
                "sequences": c.s.tolist(),
                **{f"{k}_measured": c.y(k).tolist() for k in CURVES},
                **{f"{k}_fitted": self.fitted[k].tolist() for k in CURVES},
                **{f"{k}_residual": res[k].tolist() for k in CURVES},
            },
            "toy": self.toy,
            "verdict": self.verdict,
            "starts": self.starts,
            "timing": self.timing,
        }


def toy_on_sequences(result: FitResult) -> dict:
    """The fitted curves at every toy step up to the own step count (the data's span): sequences, icl, ciwl."""
    seq = np.arange(result.toy["steps"] + 1) * result.params["tau"]
    return {"sequences": seq, **{k: result.curve(k, seq, result.trajectory[f"l{i}"], result.trajectory["l1"])
                                 for i, k in enumerate(CURVES, 1)}}


def curve_verdict(curves: Curves, toy_curves: dict) -> dict:
    """The outcome in the curves' terms (see the module docstring): the measured fitted rows' class and
    the toy's fitted curves' class (`toy_curves`: error rates at every toy step, from
    `toy_on_sequences`), both by `transformer.outcomes.outcome`; None for loss curves."""
    if curves.chance is None:
        return {"measured": None, "toy": None, "agrees": None, "rule": OUTCOME_RULE,
                "note": "loss curves have no accuracy: only the toy's own class applies"}
    acc = {k: 1.0 - toy_curves[k] for k in CURVES}
    measured = outcome(1.0 - curves.y("icl"), 1.0 - curves.y("ciwl"))
    toy = outcome(acc["icl"], acc["ciwl"])
    peak = int(np.argmax(acc["icl"]))
    return {"measured": measured, "toy": toy, "agrees": measured == toy, "rule": OUTCOME_RULE,
            "toy_icl_peak_acc": float(acc["icl"][peak]), "toy_icl_peak_sequences": float(toy_curves["sequences"][peak]),
            "toy_icl_final_acc": float(acc["icl"][-1]), "toy_ciwl_final_acc": float(acc["ciwl"][-1])}
