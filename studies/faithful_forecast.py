"""The toy model's forecast of a kept faithful run past its last row: what a wave's comment in
`studies/faithful_search.py` writes down before the longer run's rows exist.

    .venv/bin/python studies/faithful_forecast.py RUN [RUN ...] --to 38400000 [--every 6400000]

Each RUN (a directory name under `studies/faithful_search/`) is fitted on every row
(`compare.fit.fit`, the default mapping, step budget `faithful_fits.MAX_STEPS`), the toy run on
at the fitted point to `--to` sequences, and its ICL accuracy (1 - the mapped toy's ICL error; the
fits are of error rates) printed at the run's end and every `--every` sequences after it, with
the toy's outcome at the fitted point (the phase diagram's verdict).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from studies.faithful_fits import KEPT, MAX_STEPS  # noqa: E402
from compare.config import FitConfig  # noqa: E402
from compare.curves import load_curves  # noqa: E402
from compare.fit import fit  # noqa: E402
from compare.toy import simulate_batch  # noqa: E402


def forecast(name: str, to: float, every: float) -> dict:
    curves = load_curves(KEPT / name)
    res = fit(curves, FitConfig(max_steps=MAX_STEPS))
    p, cfg = res.params, res.config
    steps = int(math.ceil(to / p["tau"]))
    theta = np.array([[p["alpha"], p["mu1"], p["mu2"], p["nd_ratio"]]])
    l1, _, _, _ = simulate_batch(theta, steps, 1, seed=cfg.seed, dims=cfg.dims, lr=cfg.lr)
    grid = np.arange(steps + 1) * p["tau"]
    acc = 1.0 - res.curve("icl", grid, l1[0])
    end = float(curves.sequences[-1])
    at = np.arange(end, to + 1, every)
    return {"run": name, "r2": res.r2, "toy": res.toy["outcome"], "params": p, "end": end,
            "icl_measured_end": float(curves.icl_acc[-1]),
            "forecast": {float(s): float(np.interp(s, grid, acc)) for s in at}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--to", type=float, required=True, help="forecast up to this many sequences")
    ap.add_argument("--every", type=float, default=6_400_000, help="print every this many sequences after the run's end")
    args = ap.parse_args()
    for name in args.runs:
        f = forecast(name, args.to, args.every)
        path = " -> ".join(f"{a:.3f} ({s / 1e6:g}M)" for s, a in f["forecast"].items())
        print(f"{name}: R² {f['r2']['icl']:.3f} / {f['r2']['ciwl']:.3f}; toy outcome {f['toy']}; alpha "
              f"{f['params']['alpha']:.3g}, mu1 {f['params']['mu1']:.3g}, mu2 {f['params']['mu2']:.3g}, tau "
              f"{f['params']['tau']:.0f}; ICL measured at the end {f['icl_measured_end']:.3f}; toy ICL {path}", flush=True)


if __name__ == "__main__":
    main()
