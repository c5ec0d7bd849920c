"""An atlas of transformer runs on the toy model's phase diagram: which setups give transient ICL.

`coop compare RUN1 RUN2 ... --out DIR` fits each run (`compare.fit`, one mapping for all) and writes
- `DIR/atlas.csv`: one row per run: the run, the knobs that differ between the runs (from their
  config.json), the transformer's observed outcome, the fitted alpha, mu1, mu2 with standard errors,
  R^2 per curve, the toy's outcome at the fitted point in the curves' terms, whether the two agree; a run the toy cannot
  fit (the fit fails, or R^2 < `FIT_R2` on a curve) is kept with its reason, never dropped;
- `DIR/atlas.json`: how often the toy's outcome agrees with the observed one, and which way each
  numeric knob moves the fitted parameters and the outcomes (`directions`: rank correlations);
- `DIR/atlas.png`: the fitted (alpha, mu1) of every run over the toy's outcome classes, filled with
  the colour of the run's observed outcome and ringed with the toy's outcome at its own fitted point.
  The background is one slice (the runs' median fitted mu2 and nd_ratio and median step count), so
  a point's ring, not the background under it, is the toy's verdict for that run.

Both outcomes are classified by one rule, `transformer.outcomes.outcome` (the toy's class names):
the observed one on the run's accuracies, the toy's on its fitted curves mapped to accuracies
(`compare.result.curve_verdict`; with loss curves, which have no accuracy, the toy's own
loss-threshold class).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from runio import write_csv, write_json
from toymodel.outcomes import OUTCOMES, classify
from transformer.rundir import RunDir
from transformer.outcomes import outcome

from .config import FitConfig
from .curves import load_curves
from .fit import fit
from .plots import plot_atlas
from .result import FitResult
from .toy import problem, simulate_batch

__all__ = ["EVALUATOR_FIELDS", "FIT_R2", "ICL_ORDER", "AtlasRow", "observed_outcome", "differing_knobs", "atlas_rows",
           "agreement", "directions", "write_atlas"]

# config fields that define the evaluators (runs mixing values of one measure different things)
EVALUATOR_FIELDS = ("icl_labels", "eval_classes", "eval_exemplars")
FIT_R2 = 0.8  # below this on either curve, a run counts as not fitted by the toy (reported as such)


def observed_outcome(rows: list[dict]) -> str:
    """The transformer run's outcome (`transformer.outcomes.outcome`) from its metrics rows."""
    return outcome([r["icl_acc"] for r in rows], [r["ciwl_acc"] for r in rows])


def differing_knobs(configs: list[dict]) -> list[str]:
    """The config fields (of full configs, `dataclasses.asdict(TrainConfig)`) whose values are not the
    same in every run, the seed included."""
    keys = sorted(configs[0]) if configs else []
    return [k for k in keys if len({json.dumps(c[k], sort_keys=True) for c in configs}) > 1]


@dataclass
class AtlasRow:
    run: str
    knobs: dict
    observed: str
    result: FitResult | None  # None when the fit failed
    problem: str  # why the toy does not fit the run ("" when it does)
    length: float | None = None  # sequences at the run's last row (a run can stop before its config's `sequences`)

    @property
    def toy(self) -> str:
        """The toy's outcome at the fit: in the curves' terms, else (loss curves) its own class."""
        if self.result is None:
            return "not_fitted"
        return self.result.verdict["toy"] or self.result.toy["outcome"]

    @property
    def agrees(self) -> bool | None:
        """Toy outcome == observed outcome; None when the toy did not fit the run."""
        return None if self.problem else self.toy == self.observed


def atlas_rows(runs: list[str | Path], config: FitConfig = FitConfig(), losses: str = "error",
               progress=None) -> list[AtlasRow]:
    """Fit every run (one mapping, one config); `progress(done, total, run)` after each."""
    configs, metrics = [], []
    for run in runs:
        run = Path(run)
        rd = RunDir.open(run, needs=("config", "metrics"))
        configs.append(dataclasses.asdict(rd.config()))
        metrics.append(rd.metrics())
        if not metrics[-1]:
            raise ValueError(f"{run} has no metrics rows (an empty run)")
    for k in EVALUATOR_FIELDS:  # the curves must be one measurement
        values = {json.dumps(c[k]) for c in configs}
        if len(values) > 1:
            raise ValueError(f"the runs' evaluators differ ({k}: {', '.join(sorted(values))}): their curves are not "
                             "the same measurement")
    knobs = differing_knobs(configs)
    out = []
    for i, (run, cfg, rows) in enumerate(zip(runs, configs, metrics)):
        observed = observed_outcome(rows)
        try:
            result = fit(load_curves(run, losses=losses), config)
            low = [k for k, v in result.r2.items() if not v >= FIT_R2]
            problem = f"R² {', '.join(f'{k} {result.r2[k]:.3f}' for k in low)} < {FIT_R2}" if low else ""
        except ValueError as err:
            result, problem = None, f"fit failed: {err}"
        out.append(AtlasRow(str(run), {k: cfg.get(k) for k in knobs}, observed, result, problem,
                            float(rows[-1]["sequences"])))
        if progress:
            progress(i + 1, len(runs), str(run))
    return out


def agreement(rows: list[AtlasRow]) -> dict:
    """How often the toy's outcome at the fitted point is the observed one (over the fitted runs)."""
    fitted = [r for r in rows if not r.problem]
    hits = sum(bool(r.agrees) for r in fitted)
    return {"runs": len(rows), "fitted": len(fitted), "agree": hits,
            "fraction": hits / len(fitted) if fitted else float("nan")}


# config fields that differ between runs without being a setting of the data or the model: a
# seed draws another run of the same setup, `sequences` is where the run was stopped
NOT_KNOBS = ("seed", "sequences")
# outcomes ordered from "most ICL" to "least ICL", the axis along which a knob moves a run
ICL_ORDER = {"persistent_icl": 0, "transient_icl": 1, "ciwl_only": 2}


def _spearman(x, y) -> float:
    """Spearman's rank correlation (scipy); nan if either side is constant."""
    if np.ptp(np.asarray(x, float)) == 0 or np.ptp(np.asarray(y, float)) == 0:
        return math.nan
    return float(spearmanr(x, y).statistic)


def directions(rows: list[AtlasRow]) -> dict:
    """Which way each numeric knob (not NOT_KNOBS) moves the fitted runs: per knob that varies over
    the fitted runs (at least 3 of them), Spearman's rank correlation of the knob's value with the fitted log alpha,
    log mu1, log mu2, and with the observed and the toy's outcome on the ICL_ORDER axis (persistent
    0 < transient 1 < CIWL only 2; runs with another outcome left out of that one). Positive: the
    quantity grows with the knob. The direction a knob *should* move the points is the
    experimenter's to say before the runs; this measures the one they moved in."""
    fitted = [r for r in rows if not r.problem]
    if len(fitted) < 3:
        return {}
    out = {}
    for knob in fitted[0].knobs:
        values = [r.knobs[knob] for r in fitted]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        if knob in NOT_KNOBS or not numeric or len(set(values)) < 2:
            continue
        d = {"runs": len(fitted)}
        for k in ("alpha", "mu1", "mu2"):
            d[f"log_{k}"] = _spearman(values, [math.log10(max(r.result.params[k], 1e-300)) for r in fitted])
        for side, outcome_of in (("observed", lambda r: r.observed), ("toy", lambda r: r.toy)):
            pairs = [(v, ICL_ORDER[outcome_of(r)]) for v, r in zip(values, fitted) if outcome_of(r) in ICL_ORDER]
            d[side] = _spearman(*zip(*pairs)) if len(pairs) >= 3 else math.nan
        out[knob] = d
    return out


def write_atlas(rows: list[AtlasRow], out: str | Path) -> dict:
    """Write out/atlas.csv, out/atlas.png and out/atlas.json (`agreement(rows)` with the knobs'
    `directions(rows)`); returns what atlas.json holds."""
    out = Path(out)
    knobs = list(rows[0].knobs) if rows else []
    cols: dict[str, list] = {"run": [r.run for r in rows]}
    for k in knobs:
        cols[k] = [json.dumps(r.knobs[k]) if isinstance(r.knobs[k], (dict, list)) else r.knobs[k] for r in rows]
    cols["observed"] = [r.observed for r in rows]
    for k in ("alpha", "mu1", "mu2"):
        cols[k] = [r.result.params[k] if r.result else math.nan for r in rows]
        cols[f"{k}_se"] = [(r.result.se.get(k, math.nan) if r.result else math.nan) for r in rows]
    for c in ("icl", "ciwl"):
        cols[f"r2_{c}"] = [r.result.r2[c] if r.result else math.nan for r in rows]
    cols["toy_outcome"] = [r.toy for r in rows]
    cols["agrees"] = ["" if r.agrees is None else str(r.agrees).lower() for r in rows]
    cols["problem"] = [r.problem for r in rows]
    write_csv(out / "atlas.csv", cols)
    plot_atlas(rows, background(rows), out / "atlas.png")
    summary = {**agreement(rows), "directions": directions(rows)}
    write_json(out / "atlas.json", summary)
    return summary


def _log_axis(values, n: int) -> np.ndarray:
    """n log-spaced values spanning the fitted values with a factor 2 to spare (at least 1e-3 .. 0.5,
    the paper's region; a value of 0 is drawn at the axis's start): fitted alphas and mu1s span four
    decades (0.0005 to 10 on the cpu atlas), which a linear axis would crush into one corner."""
    values = np.asarray(values, float)
    positive = values[values > 0]
    lo = min(1e-3, positive.min() / 2) if positive.size else 1e-3
    return np.geomspace(max(lo, 1e-6), max(0.5, 2 * values.max()), n)


def background(rows: list[AtlasRow], n: int = 48) -> dict | None:
    """The toy's outcome classes over (alpha, mu1), both log-spaced (`_log_axis`), at the fitted runs'
    median mu2, nd_ratio and step count (the atlas's background slice); None without a fitted run."""
    fitted = [r.result for r in rows if r.result is not None]
    if not fitted:
        return None
    mu2 = float(np.median([f.params["mu2"] for f in fitted]))
    nd = float(np.median([f.params["nd_ratio"] for f in fitted]))
    steps = int(np.median([f.toy["steps"] for f in fitted]))
    alphas, mu1s = (_log_axis([f.params[k] for f in fitted], n) for k in ("alpha", "mu1"))
    grid = np.stack(np.meshgrid(alphas, mu1s, indexing="ij"), -1).reshape(-1, 2)
    theta = np.column_stack([grid, np.full(len(grid), mu2), np.full(len(grid), nd)])
    cfg = fitted[0].config
    l1, l2, lmin, _ = simulate_batch(theta, steps, steps, seed=cfg.seed, dims=cfg.dims, lr=cfg.lr, chunk=len(theta))
    prob = problem(cfg.seed, tuple(cfg.dims), float(cfg.lr))
    codes = np.asarray(classify(lmin, l1[:, -1], l2[:, -1], prob.l1_ref, prob.l2_ref)).reshape(n, n)
    return {"alpha": alphas, "mu1": mu1s, "outcome": codes, "mu2": mu2, "nd_ratio": nd, "steps": steps,
            "outcomes": OUTCOMES}
