"""The toy model fitted to the faithful model's runs, one mapping for all: per-seed fits and the
held-out prediction of the fade (issue: the toy model predicts the transformer).

    .venv/bin/python studies/faithful_fits.py        # fits each seed's longest kept run (cached), writes the table

For each run kept by `studies/faithful_search.py` (`studies/faithful_search/<run>/metrics.csv`):
- the fit of every row (`compare.fit.fit`, default config but for the step budget MAX_STEPS: the
  evaluators' error rates, balanced weights, every parameter free): R^2 per curve, alpha, mu1, mu2 +- se, the toy's outcome at the
  fitted point against the run's observed outcome (`compare.atlas.observed_outcome`);
- when ICL emerged (peak >= 0.7): the fit of the rows up to just after the ICL peak (the first row
  at or after peak + `AFTER_PEAK` sequences, the peak being where ICL first comes within
  `PEAK_TOLERANCE` of its maximum) and the toy's prediction of the rest
  (`compare.predict`): R^2 on the held-out rows, and the sequences at which ICL accuracy falls below
  0.6, measured and predicted, with the relative error, and the ICL accuracy at the run's last row,
  predicted (1 - the mapped toy's ICL error; the fits are of error rates);
- the same cut with the toy's physics carried over from the *other* seeds ("transfer"): the rows
  before the peak show when ICL rises and how good it gets, but not what the competition will do
  (fitted alone their alpha, mu1, mu2 and tau correlate beyond 0.95 and the toy predicts no fade).
  alpha, mu1, mu2, nd_ratio and the CIWL floor B2 (a property of the training setup, not of the
  seed) are fixed at the median of their full fits on the other runs of the same configuration in
  which ICL emerged (the median: a seed can land in another regime, as seed 5, whose CIWL never
  took over, does; with two donors it is their mean); only tau (when, in sequences, this seed's dynamics run) and the ICL floor B1
  are fitted to this run's rows up to the cut.
- "beyond" (runs continued past 12.8M sequences: the seeds of wave 10 of
  `studies/faithful_search.py`, and the noise runs of waves 12-13, for which only this is done): the fit
  of the rows up to `BEYOND` (12.8M, where the earlier runs ended) and the toy's prediction of the
  rest, as `coop compare RUN --fit-until 12800000`: does the outcome seen at 12.8M hold, and does
  the toy say where ICL goes next? (Written down before those rows existed: the wave's comment.)
Each run's results are cached in `studies/faithful_fits/<run>.json` (keyed by its metrics.csv's
content and the fitting code), the overlays and phase panels drawn into `studies/faithful_fits/<run>_{fit,predict,transfer}*.png`, and the table
written to `studies/faithful_fits.md`.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compare.atlas import observed_outcome  # noqa: E402
from compare.config import FitConfig  # noqa: E402
from compare.curves import load_curves  # noqa: E402
from compare.fit import fit  # noqa: E402
from compare.result import toy_on_sequences  # noqa: E402
from compare.toy import phase_grid  # noqa: E402
from compare.plots import plot_fit  # noqa: E402
from compare.predict import predict  # noqa: E402
from gallery import FAITHFUL_NOISE_KEPT, FAITHFUL_SEED_RUNS  # noqa: E402 (every kept noise run; each seed's longest)
from runio import write_json  # noqa: E402
from transformer.rundir import read_metrics  # noqa: E402

KEPT = ROOT / "studies" / "faithful_search"
OUT = ROOT / "studies" / "faithful_fits"
TRANSFERRED = ("alpha", "mu1", "mu2", "nd_ratio", "B2")
AFTER_PEAK = 320_000  # "just after the ICL peak": 5 evaluations of the faithful preset
PEAK_TOLERANCE = 0.02  # ICL has reached its peak at the first row within this of its maximum (3 evaluation SDs at 0.9)
PHASE_N = 24  # the phase panels' grid
BEYOND = 12_800_000  # the "beyond" cut: the earlier runs' length
# The toy's step budget, the same for every fit: tau >= the run's last sequences / MAX_STEPS. The
# default (40,000) put a 25.6M-sequence run's tau on that bound (640, where the 12.8M runs fit
# 489-555); 80,000 leaves the 25.6M runs room down to tau = 320.
MAX_STEPS = 80_000


def _digest(path: Path) -> str:
    """The run's metrics, the fitting code and this script (what a record holds): a change of any fits again."""
    code = b"".join((ROOT / "compare" / f).read_bytes() for f in ("fit.py", "predict.py", "config.py"))
    code += Path(__file__).read_bytes()
    return hashlib.sha256(path.read_bytes() + code).hexdigest()[:16]


def fit_run(name: str, full: bool = True) -> dict | None:
    """The record of kept run `name` (cached): with `full`, its fit, held-out prediction and
    "beyond"; else only "beyond" (the noise runs continued past BEYOND)."""
    run = KEPT / name
    metrics = run / "metrics.csv"
    if not metrics.is_file():
        return None
    cache = OUT / f"{name}.json"
    digest = _digest(metrics) + ("" if full else "-beyond")
    if cache.is_file() and json.loads(cache.read_text()).get("digest") == digest:
        return json.loads(cache.read_text())
    rows = read_metrics(metrics)
    icl = np.array([r["icl_acc"] for r in rows])
    seq = np.array([r["sequences"] for r in rows], float)
    rec = {"run": name, "digest": digest, "observed": observed_outcome(rows), "rows": len(rows),
           "icl_peak": float(icl.max()), "icl_peak_at": float(seq[int(np.argmax(icl))]), "icl_end": float(icl[-1])}
    if full:
        t0 = time.perf_counter()
        curves = load_curves(run)
        result = fit(curves, FitConfig(max_steps=MAX_STEPS))
        rec["fit"] = {"r2": result.r2, "params": result.params, "se": result.se, "toy": result.toy["outcome"],
                      "seconds": time.perf_counter() - t0}
        plot_fit(result, toy_on_sequences(result), phase_grid(result, PHASE_N), OUT / f"{name}_fit.png",
                 OUT / f"{name}_phase.png")
        cut = _cut(rows)
        if cut is not None:
            rec["predict"] = _held_out(name, cut, FitConfig(max_steps=MAX_STEPS), "predict")
    if seq[-1] > BEYOND and icl.max() >= 0.7:
        rec["beyond"] = _held_out(name, BEYOND, FitConfig(max_steps=MAX_STEPS), "beyond")
    write_json(cache, rec)
    return rec


def _cut(rows: list[dict]) -> float | None:
    """Just after the ICL peak (the first row at or after peak + AFTER_PEAK), if ICL emerged (peak >= 0.7).
    The peak is where ICL first comes within PEAK_TOLERANCE of its maximum, not the maximum's row: on a
    plateau the maximum is an evaluation's noise (seed 5 holds 0.996-1.000 from 2.4M to 12.8M sequences
    and its single 1.000 is at 9.41M)."""
    icl = np.array([r["icl_acc"] for r in rows])
    seq = np.array([r["sequences"] for r in rows], float)
    peak = int(np.argmax(icl >= icl.max() - PEAK_TOLERANCE))
    later = seq[seq >= seq[peak] + AFTER_PEAK]
    return float(later[0]) if icl.max() >= 0.7 and later.size >= 2 else None


def _held_out(name: str, cut: float, config: FitConfig, tag: str) -> dict:
    """Fit run `name`'s rows up to `cut` with `config`, predict the rest (`compare.predict`), draw
    `<name>_<tag>.png` and `<name>_<tag>_phase.png`; the prediction's record."""
    held = load_curves(KEPT / name, until=cut)
    res = fit(held, config)
    pred = predict(res, held)
    plot_fit(res, toy_on_sequences(res), phase_grid(res, PHASE_N), OUT / f"{name}_{tag}.png",
             OUT / f"{name}_{tag}_phase.png", pred)
    at_cut = int(np.nonzero(~held.held_out)[0][-1])  # the last fitted row
    return {"fit_until": cut, "r2_fitted": res.r2, "r2_held_out": pred.r2_held_out, "mae_held_out": pred.mae_held_out,
            "params": res.params,
            "measured_fade": pred.measured_fade, "predicted_fade": pred.predicted_fade,
            "fade_relative_error": pred.fade_error, "toy": res.toy["outcome"],
            "icl_cut_measured": float(held.icl_acc[at_cut]), "icl_cut_fitted": 1.0 - float(pred.predicted["icl"][at_cut]),
            "icl_end_predicted": 1.0 - float(pred.predicted["icl"][-1])}


def transfer(rec: dict, donors: list[dict]) -> dict | None:
    """The held-out prediction of `rec`'s run, at its own cut, with TRANSFERRED fixed at the median
    of the donors' full fits."""
    if "predict" not in rec or not donors:
        return None
    fixed = {k: float(np.median([d["fit"]["params"][k] for d in donors])) for k in TRANSFERRED}
    out = _held_out(rec["run"], rec["predict"]["fit_until"], FitConfig(fixed=fixed, max_steps=MAX_STEPS), "transfer")
    return {"donors": [d["run"] for d in donors], "fixed": fixed, **out}


def _cells(p: dict | None, fade: bool = False, end: bool = False) -> str:
    """A prediction's held-out R² (ICL / CIWL), or its predicted fade (relative error), or its
    predicted ICL at the end; "-" without a prediction."""
    if not p:
        return "-"
    if fade:
        err = "" if p["fade_relative_error"] is None else f" ({p['fade_relative_error']:+.0%})"
        return f"{_fade(p['predicted_fade'])}{err}"
    if end:
        return f"{p['icl_end_predicted']:.3f}"
    return f"{p['r2_held_out']['icl']:.2f} / {p['r2_held_out']['ciwl']:.2f}"


def _fade(x) -> str:
    return "none" if x is None else f"{x / 1e6:.2f}M"


def table(records: list[dict]) -> str:
    lines = ["| run | observed | ICL peak (at) / end | R² ICL | R² CIWL | α | μ1 | μ2 | toy outcome | fit until | "
             "held-out R² ICL / CIWL | fade measured / predicted (error) | ICL end predicted | transfer: held-out R² ICL / CIWL | "
             "transfer: fade predicted (error) | transfer: ICL end predicted |", "|" + "---|" * 16]
    for r in records:
        f, p = r["fit"], r.get("predict")
        se = f["se"]
        par = [f"{f['params'][k]:.3g} ± {se[k]:.2g}" if k in se else f"{f['params'][k]:.3g}" for k in ("alpha", "mu1", "mu2")]
        t = r.get("transfer")
        tail = (f"{p['fit_until'] / 1e6:.2f}M | {_cells(p)} | {_fade(p['measured_fade'])} / {_cells(p, fade=True)} | "
                f"{_cells(p, end=True)}" if p else "- | - | - | -")
        tail += f" | {_cells(t)} | {_cells(t, fade=True)} | {_cells(t, end=True)}"
        lines.append(f"| {r['run']} | {r['observed']} | {r['icl_peak']:.3f} ({r['icl_peak_at'] / 1e6:.2f}M) / "
                     f"{r['icl_end']:.3f} | {f['r2']['icl']:.3f} | {f['r2']['ciwl']:.3f} | {' | '.join(par)} | "
                     f"{f['toy']} | {tail} |")
    return "\n".join(lines)


def beyond_table(records: list[dict]) -> str:
    """The runs continued past BEYOND: ICL measured and fitted at the cut, measured and predicted at the end."""
    lines = [f"Fitted up to {BEYOND / 1e6:g}M sequences, the rest predicted:", "",
             "| run | ICL at the cut: measured / fitted | ICL at the end: measured / predicted | held-out R² ICL / CIWL | "
             "held-out mean abs. error ICL / CIWL | ICL < 0.6 measured / predicted | toy outcome (fit to the cut) |",
             "|" + "---|" * 7]
    for r in records:
        b = r.get("beyond")
        if not b:
            continue
        lines.append(f"| {r['run']} | {b['icl_cut_measured']:.3f} / {b['icl_cut_fitted']:.3f} | {r['icl_end']:.3f} / "
                     f"{b['icl_end_predicted']:.3f} | {_cells(b)} | {b['mae_held_out']['icl']:.3f} / "
                     f"{b['mae_held_out']['ciwl']:.3f} | {_fade(b['measured_fade'])} / {_fade(b['predicted_fade'])} | "
                     f"{b['toy']} |")
    return "\n".join(lines)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    records = []
    for name in FAITHFUL_SEED_RUNS:
        rec = fit_run(name)
        if rec is None:
            print(f"[{name}] not kept yet (studies/faithful_search.py)", flush=True)
            continue
        print(f"[{name}] R² {rec['fit']['r2']['icl']:.3f} / {rec['fit']['r2']['ciwl']:.3f}", flush=True)
        records.append(rec)
    beyond = []  # every kept noise run continued past BEYOND (waves 12-13): their "beyond" prediction only
    for name in (name for kept in FAITHFUL_NOISE_KEPT.values() for name in kept):
        if name not in FAITHFUL_SEED_RUNS and int(name.rsplit("_S", 1)[1]) > BEYOND:
            rec = fit_run(name, full=False)
            print(f"[{name}] beyond {BEYOND / 1e6:g}M: ICL end measured {rec['icl_end']:.3f}, predicted "
                  f"{rec['beyond']['icl_end_predicted']:.3f}", flush=True)
            beyond.append(rec)
    emerged = [r for r in records if r["icl_peak"] >= 0.7]
    for rec in emerged:
        rec["transfer"] = transfer(rec, [d for d in emerged if d is not rec])
        t = rec["transfer"]
        if t:
            print(f"[{rec['run']}] transfer from {len(t['donors'])} runs: held-out R² {t['r2_held_out']['icl']:.2f} / "
                  f"{t['r2_held_out']['ciwl']:.2f}, fade measured {_fade(t['measured_fade'])}, predicted "
                  f"{_fade(t['predicted_fade'])}", flush=True)
    text = table(records) + "\n\n" + beyond_table(records + beyond)
    print(text)
    (ROOT / "studies" / "faithful_fits.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
