"""The two links of the toy-to-transformer fit on the faithful preset's default run, seed by seed:
affine (the default) against probit (`compare.fit`'s docstring), same rows, same free
parameters, same weights, same search.

    .venv/bin/python studies/faithful_links.py     # fits each seed's default run with both links (cached), writes the table

The default run is the preset's length, 6.4M sequences: each seed's longest kept run
(`gallery.FAITHFUL_SEED_RUNS`, `studies/faithful_search.py`) read up to 6.4M (the learning
rate is constant and the seed the same, so these rows are the default run's; the rows after the cut are not
fitted; a run stopped earlier, once CIWL had won, is fitted whole). Per seed and link: R^2 of the ICL and the CIWL error curve, alpha, mu1, mu2, the toy's
outcome, the parameters on a bound; and where ICL emerged, the probit link's held-out prediction
of the rest of the longest run from the rows up to just after the ICL peak (as
`studies/faithful_fits.py` makes the affine link's). Results cached in `studies/faithful_links/<run>.json`
(keyed by the run's metrics and the fitting code); the table is `studies/faithful_links.md`.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from studies.faithful_fits import MAX_STEPS, _cut  # noqa: E402
from compare.predict import predict  # noqa: E402
from compare.config import FitConfig  # noqa: E402
from compare.curves import load_curves  # noqa: E402
from compare.fit import fit  # noqa: E402
from gallery import FAITHFUL_SEED_RUNS  # noqa: E402
from runio import write_json  # noqa: E402
from transformer.rundir import read_metrics  # noqa: E402

KEPT = ROOT / "studies" / "faithful_search"
LINKS = ("affine", "probit")  # the two links compared, each on the single-state map (population none)
OUT = ROOT / "studies" / "faithful_links"
DEFAULT_RUN = 6_400_000  # the faithful preset's sequences
GOAL = 0.95  # issue 13: R^2 >= 0.95 on both curves


def _digest(path: Path) -> str:
    code = b"".join((ROOT / "compare" / f).read_bytes() for f in ("fit.py", "config.py", "predict.py")) + Path(__file__).read_bytes()
    return hashlib.sha256(path.read_bytes() + code).hexdigest()[:16]


def fit_seed(name: str) -> dict | None:
    metrics = KEPT / name / "metrics.csv"
    if not metrics.is_file():
        return None
    cache, digest = OUT / f"{name}.json", _digest(metrics)
    if cache.is_file() and json.loads(cache.read_text()).get("digest") == digest:
        return json.loads(cache.read_text())
    last = read_metrics(metrics)[-1]["sequences"]  # a run settled before 6.4M (CIWL first) is fitted whole
    curves = load_curves(KEPT / name, until=DEFAULT_RUN if last > DEFAULT_RUN else None)
    rec = {"run": name, "digest": digest, "rows": int(curves.used.sum()), "links": {}}
    for link in ("affine", "probit"):
        t0 = time.perf_counter()
        res = fit(curves, FitConfig(link=link, population="none"))
        rec["links"][link] = {"r2": res.r2, "params": res.params, "se": res.se, "toy": res.toy["outcome"],
                              "at_bound": res.at_bound, "seconds": time.perf_counter() - t0}
    cut = _cut(read_metrics(metrics))
    if cut is not None:  # the probit link's held-out prediction, as studies/faithful_fits.py makes the affine one's
        held = load_curves(KEPT / name, until=cut)
        pred = predict(fit(held, FitConfig(link="probit", population="none", max_steps=MAX_STEPS)), held)
        rec["probit_predict"] = {"fit_until": cut, "r2_held_out": pred.r2_held_out, "measured_fade": pred.measured_fade,
                                 "predicted_fade": pred.predicted_fade,
                                 "icl_end_predicted": 1.0 - float(pred.predicted["icl"][-1]),
                                 "icl_end_measured": float(held.icl_acc[-1]), "end": float(held.sequences[-1])}
    write_json(cache, rec)
    return rec


def table(records: list[dict]) -> str:
    head = ["| run | rows | " + " | ".join(f"{link}: R² ICL / CIWL | {link}: α, μ1, μ2 | {link}: toy" for link in LINKS) + " |",
            "|---|---|" + "---|" * (3 * len(LINKS))]
    met = {link: 0 for link in LINKS}
    for r in records:
        cells = []
        for link in ("affine", "probit"):
            f = r["links"][link]
            p = f["params"]
            ok = min(f["r2"].values()) >= GOAL
            met[link] += ok
            bound = f" (on a bound: {', '.join(f['at_bound'])})" if f["at_bound"] else ""
            cells += [f"{f['r2']['icl']:.3f} / {f['r2']['ciwl']:.3f}{' ✓' if ok else ''}",
                      f"{p['alpha']:.3g}, {p['mu1']:.3g}, {p['mu2']:.3g}{bound}", f["toy"]]
        lines = f"| {r['run']} | {r['rows']} | " + " | ".join(cells) + " |"
        head.append(lines)
    head += ["", "Seeds with R² >= " + f"{GOAL} on both curves: " +
             ", ".join(f"{link} {met[link]} of {len(records)}" for link in LINKS) + ".", "",
             "The probit link's held-out prediction (fitted up to just after the ICL peak, the rest of the longest run "
             "predicted; step budget as in studies/faithful_fits.py):", "",
             "| run | fit until | held-out R² ICL / CIWL | ICL at the end: measured / predicted | ICL < 0.6 measured / predicted |",
             "|---|---|---|---|---|"]
    fade = lambda x: "none" if x is None else f"{x / 1e6:.2f}M"  # noqa: E731
    for r in records:
        p = r.get("probit_predict")
        if p:
            head.append(f"| {r['run']} | {p['fit_until'] / 1e6:.2f}M | {p['r2_held_out']['icl']:.2f} / "
                        f"{p['r2_held_out']['ciwl']:.2f} | {p['icl_end_measured']:.3f} / {p['icl_end_predicted']:.3f} "
                        f"(at {p['end'] / 1e6:g}M) | {fade(p['measured_fade'])} / {fade(p['predicted_fade'])} |")
    return "\n".join(head)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    records = []
    for name in FAITHFUL_SEED_RUNS:
        rec = fit_seed(name)
        if rec is None:
            print(f"[{name}] not kept (studies/faithful_search.py)", flush=True)
            continue
        print(f"[{name}] " + "; ".join(f"{k} {v['r2']['icl']:.3f} / {v['r2']['ciwl']:.3f}" for k, v in rec["links"].items()),
              flush=True)
        records.append(rec)
    text = table(records)
    print(text)
    (ROOT / "studies" / "faithful_links.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
