"""Which observation model maps the toy to a run's curves: every link x population, chosen by held-out error.

    .venv/bin/python studies/compare_maps.py                 # every source, every map (cached per source)
    .venv/bin/python studies/compare_maps.py --maps affine/none,probit/ciwl/icl-on-ciwl SOURCE ...   # some of them

Writes studies/compare_maps.md from every cached record.

Maps: the link (affine | probit, `compare.maps`) times the population (`--population`: none | ciwl
| both: which curves are a mean over a log-normal spread of per-class speeds), and with the probit
link the ICL-on-CIWL interaction (`--interaction icl-on-ciwl`, a third part of the map's name). Sources:
- the official run (`reference/official_main_run.csv`, accuracies; the default step budget);
- this project's faithful seeds (`FAITHFUL_RUNS`, run directories in `FAITHFUL`; step budget
  80,000 as `studies/faithful_fits.py`): fitted up to the faithful preset's 6.4M sequences.
Per source and map: R^2 of the whole fit, and held-out fits: the official run fitted up to 5.0M and
5.5M sequences (`OFFICIAL_CUTS`), each faithful seed whose ICL emerged fitted up to just after its
ICL peak (`studies.faithful_fits._cut`), the rest of its longest run predicted. The held-out
error is the mean absolute error of the predicted curves on the held-out rows (both curves, in
error-rate units); the map chosen is the one with the smallest held-out error averaged over every
held-out fit (among the maps fitted on every source). Fit times are reported as a ratio against the
affine map without population (the default before) measured in the same source's run. Records
cached in `studies/compare_maps/<source>.json`, each map's entry keyed by the source's data and the
fitting code (FIT_CODE: not the plots or the report) it was computed with; a map asked for is refitted
when its key is not the current one, and the table marks entries computed at another key.
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

from compare.config import FitConfig  # noqa: E402
from compare.curves import load_curves  # noqa: E402
from compare.fit import fit  # noqa: E402
from compare.predict import predict  # noqa: E402
from runio import write_json  # noqa: E402

OUT = ROOT / "studies" / "compare_maps"
OFFICIAL = ROOT / "reference" / "official_main_run.csv"
OFFICIAL_COLUMNS = dict(icl="icl_acc", ciwl="ciwl_acc", kind="accuracy")
OFFICIAL_CUTS = (5_000_000, 5_500_000)
FAITHFUL = ROOT / "studies" / "faithful_search"
FAITHFUL_RUNS = ("K12800_E5_n0.6_s0_S25600000", "K12800_E5_n0.6_s1", "K12800_E5_n0.6_s2_S25600000", "K12800_E5_n0.6_s3",
                 "K12800_E5_n0.6_s4_S12800000", "K12800_E5_n0.6_s5_S25600000", "K12800_E5_n0.6_s6_S25600000")
DEFAULT_RUN = 6_400_000  # the faithful preset's sequences
FAITHFUL_STEPS = 80_000
AFTER_PEAK = 320_000  # as studies/faithful_fits.py: the cut is the first row at least this after the ICL peak
PEAK_TOLERANCE = 0.02
MAPS = (*((link, pop) for pop in ("none", "ciwl", "both") for link in ("affine", "probit")),
        ("probit", "ciwl", "icl-on-ciwl"), ("probit", "none", "icl-on-ciwl"))
BASELINE = ("affine", "none")
FIT_CODE = ("config", "curves", "maps", "toy", "screen", "objective", "fit", "result", "predict")


def _digest(data: Path) -> str:
    code = b"".join((ROOT / "compare" / f"{name}.py").read_bytes() for name in FIT_CODE)
    return hashlib.sha256(data.read_bytes() + code).hexdigest()[:16]


def _cut(icl_acc: np.ndarray, seq: np.ndarray) -> float | None:
    """Just after the ICL peak (the first row AFTER_PEAK past where ICL first comes within
    PEAK_TOLERANCE of its maximum), if ICL emerged (peak >= 0.7) and rows remain after it."""
    if icl_acc.max() < 0.7:
        return None
    peak = int(np.argmax(icl_acc >= icl_acc.max() - PEAK_TOLERANCE))
    later = seq[seq >= seq[peak] + AFTER_PEAK]
    return float(later[0]) if later.size > 1 else None


def _one(load, config: FitConfig, until=None) -> dict:
    """One fit (with `until`, held out after it and predicted)."""
    t0 = time.perf_counter()
    curves = load(until)
    res = fit(curves, config)
    rec = {"r2": res.r2, "seconds": time.perf_counter() - t0, "toy": res.toy["outcome"], "verdict": res.verdict["toy"],
           "measured": res.verdict["measured"],
           "params": {k: res.params[k] for k in ("alpha", "mu1", "mu2", "tau", "nd_ratio", "sigma1", "sigma2", "kappa", "B1",
                                                 "B2")},
           "se": {k: res.se.get(k) for k in ("sigma2", "kappa")},
           "poorly_determined": sorted(res.poorly_determined)}
    if until is not None:
        pred = predict(res, curves)
        rec.update(until=until, r2_held_out=pred.r2_held_out, mae_held_out=pred.mae_held_out,
                   measured_fade=pred.measured_fade, predicted_fade=pred.predicted_fade, fade_error=pred.fade_error)
    return rec


def _data(name: str) -> Path:
    return OFFICIAL if name == "official" else FAITHFUL / name / "metrics.csv"


def _cached(name: str) -> dict:
    """A source's cached record; every map entry carries the key (`_digest`) it was computed at (the
    entries of a record from before per-entry keys get the record's)."""
    cache = OUT / f"{name}.json"
    rec = json.loads(cache.read_text()) if cache.is_file() else {"source": name, "maps": {}}
    old = rec.pop("digest", None)
    for entry in rec["maps"].values():
        entry.setdefault("digest", old)
    return rec


def source_record(name: str, maps=MAPS) -> dict | None:
    """The fits of one source with each of `maps` (cached)."""
    data = _data(name)
    if name == "official":
        steps = 40_000
        load = lambda until=None: load_curves(OFFICIAL, until=until, **OFFICIAL_COLUMNS)  # noqa: E731
        cuts = OFFICIAL_CUTS
        whole = None
    else:
        steps = FAITHFUL_STEPS
        if not data.is_file():
            return None
        full = load_curves(FAITHFUL / name)
        whole = DEFAULT_RUN if full.sequences[-1] > DEFAULT_RUN else None
        load = lambda until=None: load_curves(FAITHFUL / name, until=until)  # noqa: E731
        cut = _cut(full.icl_acc, full.sequences)
        cuts = () if cut is None else (cut,)
    cache = OUT / f"{name}.json"
    digest = _digest(data)
    rec = _cached(name)
    for link, pop, *inter in maps:
        key = "/".join((link, pop, *inter))
        if rec["maps"].get(key, {}).get("digest") == digest:
            continue
        config = FitConfig(link=link, population=pop, interaction=inter[0] if inter else "none", max_steps=steps)
        entry = {"digest": digest, "fit": _one(lambda _=None: load(whole), config)}  # the whole fit: every row up to `whole`
        entry["held_out"] = [_one(load, config, c) for c in cuts]
        rec["maps"][key] = entry
        print(f"[{name}] {key}: R² {entry['fit']['r2']['icl']:.3f} / {entry['fit']['r2']['ciwl']:.3f}, "
              f"{entry['fit']['seconds']:.1f} s; held out: "
              + ", ".join(f"{h['until'] / 1e6:g}M MAE {h['mae_held_out']['icl']:.3f} / {h['mae_held_out']['ciwl']:.3f} "
                          f"fade {_fade(h)}" for h in entry["held_out"]), flush=True)
        write_json(cache, rec)
    return rec


def _fade(h: dict) -> str:
    p, m = h["predicted_fade"], h["measured_fade"]
    if p is None:
        return "none"
    return f"{p / 1e6:.2f}M" + (f" ({100 * (p - m) / m:+.0f}%)" if m else "")


def table(records: list[dict]) -> str:
    keys = ["/".join(m) for m in MAPS]
    digests = {r["source"]: _digest(_data(r["source"])) for r in records}
    lines = ["Whole fit: R² ICL / CIWL (toy's verdict in the curves' terms; kappa ± its standard error with the "
             "interaction); fit seconds as a ratio to affine/none in the same source's run (* computed at an earlier "
             "key: see below).", "",
             "| source | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for r in records:
        base = r["maps"][f"{BASELINE[0]}/{BASELINE[1]}"]["fit"]["seconds"]
        cells = []
        for k in keys:
            if k not in r["maps"]:
                cells.append("-")
                continue
            f = r["maps"][k]["fit"]
            ok = " ✓" if min(f["r2"].values()) >= (0.97 if r["source"] == "official" else 0.95) else ""
            kappa = f" κ {f['params']['kappa']:.3g} ± {f['se']['kappa']:.2g};" if k.endswith("icl-on-ciwl") else ""
            stale = "*" if r["maps"][k]["digest"] != digests[r["source"]] else ""
            cells.append(f"{f['r2']['icl']:.3f} / {f['r2']['ciwl']:.3f}{ok}{stale} ({f['verdict'] or f['toy']};{kappa} "
                         f"{f['seconds']:.0f} s, {f['seconds'] / base:.1f}x)")
        lines.append(f"| {r['source']} | " + " | ".join(cells) + " |")
    lines += ["", "Held out: mean |error| ICL / CIWL on the held-out rows; predicted fall of ICL accuracy below 0.6 "
                  "(error vs measured).", "",
              "| source, fitted until | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    common = [k for k in keys if all(k in r["maps"] for r in records)]
    scores = {k: [] for k in common}
    for r in records:
        n = len(r["maps"][keys[0]]["held_out"])
        for i in range(n):
            h0 = r["maps"][keys[0]]["held_out"][i]
            cells = []
            for k in keys:
                if k not in r["maps"]:
                    cells.append("-")
                    continue
                h = r["maps"][k]["held_out"][i]
                if k in scores:
                    scores[k].append(np.mean(list(h["mae_held_out"].values())))
                cells.append(f"{h['mae_held_out']['icl']:.3f} / {h['mae_held_out']['ciwl']:.3f}, fade {_fade(h)}")
            measured = h0["measured_fade"]
            lines.append(f"| {r['source']}, {h0['until'] / 1e6:.2f}M (measured fade "
                         f"{'none' if measured is None else f'{measured / 1e6:.2f}M'}) | " + " | ".join(cells) + " |")
    mean = {k: float(np.mean(v)) for k, v in scores.items()}
    best = min(mean, key=mean.get)
    official = next((r for r in records if r["source"] == "official"), None)
    lines += ["", "Mean held-out error over every held-out fit (both curves), maps fitted on every source: "
              + ", ".join(f"{k} {v:.4f}" for k, v in mean.items()) + f". Chosen by held-out error: **{best}**."]
    if official is not None:
        lines += ["", "The official run alone (its held-out fits): "
                  + ", ".join(f"{k} {np.mean([np.mean(list(h['mae_held_out'].values())) for h in m['held_out']]):.4f}"
                              for k, m in ((k, official["maps"][k]) for k in keys if k in official["maps"])) + "."]
    stale = sum(m["digest"] != digests[r["source"]] for r in records for m in r["maps"].values())
    if stale:
        lines += ["", f"\\* {stale} of {sum(len(r['maps']) for r in records)} entries were computed with an earlier "
                      "version of the fitting code (or of the data) than the current one."]
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    maps = MAPS
    if argv[:1] == ["--maps"]:
        maps = tuple(tuple(m.split("/")) for m in argv[1].split(","))
        argv = argv[2:]
    for name in argv or ("official", *FAITHFUL_RUNS):
        source_record(name, maps)
    order = ["official", *FAITHFUL_RUNS]
    records = [_cached(n) for n in order if (OUT / f"{n}.json").is_file()]
    text = table(records)
    print(text)
    (ROOT / "studies" / "compare_maps.md").write_text(text + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
