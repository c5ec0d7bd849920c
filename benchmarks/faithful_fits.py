"""The toy model fitted to the faithful model's runs, one mapping for all: per-seed fits and the
held-out prediction of the fade (issue: the toy model predicts the transformer).

    .venv/bin/python benchmarks/faithful_fits.py        # fits every kept run listed in RUNS (cached), writes the table

For each run kept by `benchmarks/faithful_search.py` (`benchmarks/faithful_search/<run>/metrics.csv`):
- the fit of every row (`compare.fit.fit`, default config: the evaluators' error rates, balanced
  weights, every parameter free): R^2 per curve, alpha, mu1, mu2 +- se, the toy's outcome at the
  fitted point against the run's observed outcome (`compare.atlas.observed_outcome`);
- when ICL emerged (peak >= 0.7): the fit of the rows up to just after the ICL peak (the first row
  at or after peak + `AFTER_PEAK` sequences) and the toy's prediction of the rest
  (`compare.predict`): R^2 on the held-out rows, and the sequences at which ICL accuracy falls below
  0.6, measured and predicted, with the relative error.
Each run's results are cached in `benchmarks/faithful_fits/<run>.json` (keyed by its metrics.csv's
content and the fitting code), the overlays and phase panels drawn into `benchmarks/faithful_fits/<run>_{fit,predict}*.png`, and the table
written to `benchmarks/faithful_fits.md`.
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
from compare.fit import FitConfig, fit, load_curves, phase_grid, toy_on_sequences  # noqa: E402
from compare.plots import plot_fit  # noqa: E402
from compare.predict import predict  # noqa: E402
from runio import write_json  # noqa: E402
from transformer.checkpoints import read_metrics  # noqa: E402

KEPT = ROOT / "benchmarks" / "faithful_search"
OUT = ROOT / "benchmarks" / "faithful_fits"
RUNS = [f"K12800_E5_n0.6_s{s}" for s in range(5)]  # the faithful preset (wave 7), seeds 0-4
AFTER_PEAK = 320_000  # "just after the ICL peak": 5 evaluations of the faithful preset
PHASE_N = 24  # the phase panels' grid


def _digest(path: Path) -> str:
    """The run's metrics and the fitting code: a change of either fits again."""
    code = b"".join((ROOT / "compare" / f).read_bytes() for f in ("fit.py", "predict.py", "config.py"))
    return hashlib.sha256(path.read_bytes() + code).hexdigest()[:16]


def fit_run(name: str) -> dict | None:
    run = KEPT / name
    metrics = run / "metrics.csv"
    if not metrics.is_file():
        return None
    cache = OUT / f"{name}.json"
    digest = _digest(metrics)
    if cache.is_file() and json.loads(cache.read_text()).get("digest") == digest:
        return json.loads(cache.read_text())
    rows = read_metrics(metrics)
    icl = np.array([r["icl_acc"] for r in rows])
    seq = np.array([r["sequences"] for r in rows], float)
    rec = {"run": name, "digest": digest, "observed": observed_outcome(rows), "rows": len(rows),
           "icl_peak": float(icl.max()), "icl_peak_at": float(seq[int(np.argmax(icl))]), "icl_end": float(icl[-1])}
    t0 = time.perf_counter()
    curves = load_curves(run)
    result = fit(curves, FitConfig())
    rec["fit"] = {"r2": result.r2, "params": result.params, "se": result.se, "toy": result.toy["outcome"],
                  "seconds": time.perf_counter() - t0}
    plot_fit(result, toy_on_sequences(result), phase_grid(result, PHASE_N), OUT / f"{name}_fit.png", OUT / f"{name}_phase.png")
    if icl.max() >= 0.7:
        later = seq[seq >= seq[int(np.argmax(icl))] + AFTER_PEAK]
        if later.size >= 2:
            cut = float(later[0])
            held = load_curves(run, until=cut)
            res_cut = fit(held, FitConfig())
            pred = predict(res_cut, held)
            rec["predict"] = {"fit_until": cut, "r2_fitted": res_cut.r2, "r2_held_out": pred.r2_held_out,
                              "measured_fade": pred.measured_fade, "predicted_fade": pred.predicted_fade,
                              "fade_relative_error": pred.fade_error, "toy": res_cut.toy["outcome"]}
            plot_fit(res_cut, toy_on_sequences(res_cut), phase_grid(res_cut, PHASE_N), OUT / f"{name}_predict.png",
                     OUT / f"{name}_predict_phase.png", pred)
    write_json(cache, rec)
    return rec


def _fade(x) -> str:
    return "none" if x is None else f"{x / 1e6:.2f}M"


def table(records: list[dict]) -> str:
    lines = ["| run | observed | ICL peak (at) / end | R² ICL | R² CIWL | α | μ1 | μ2 | toy outcome | fit until | "
             "held-out R² ICL / CIWL | fade measured / predicted (error) |", "|" + "---|" * 12]
    for r in records:
        f, p = r["fit"], r.get("predict")
        se = f["se"]
        par = [f"{f['params'][k]:.3g} ± {se[k]:.2g}" if k in se else f"{f['params'][k]:.3g}" for k in ("alpha", "mu1", "mu2")]
        if p:
            err = "" if p["fade_relative_error"] is None else f" ({p['fade_relative_error']:+.0%})"
            tail = (f"{p['fit_until'] / 1e6:.2f}M | {p['r2_held_out']['icl']:.2f} / {p['r2_held_out']['ciwl']:.2f} | "
                    f"{_fade(p['measured_fade'])} / {_fade(p['predicted_fade'])}{err}")
        else:
            tail = "- | - | -"
        lines.append(f"| {r['run']} | {r['observed']} | {r['icl_peak']:.3f} ({r['icl_peak_at'] / 1e6:.2f}M) / "
                     f"{r['icl_end']:.3f} | {f['r2']['icl']:.3f} | {f['r2']['ciwl']:.3f} | {' | '.join(par)} | "
                     f"{f['toy']} | {tail} |")
    return "\n".join(lines)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    records = []
    for name in RUNS:
        rec = fit_run(name)
        if rec is None:
            print(f"[{name}] not kept yet (benchmarks/faithful_search.py)", flush=True)
            continue
        print(f"[{name}] R² {rec['fit']['r2']['icl']:.3f} / {rec['fit']['r2']['ciwl']:.3f}", flush=True)
        records.append(rec)
    text = table(records)
    print(text)
    (ROOT / "benchmarks" / "faithful_fits.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
