"""How long `coop figures` takes from scratch (cold cache) and again (everything cached).

    .venv/bin/python benchmarks/bench_figures.py [--cache runs/bench_figures] [--out runs/bench_figures/out] [--jobs 2]

Deletes `--cache` first, runs every `cpu` and toy recipe (`gallery.RECIPES`; the faithful recipes,
about 2 core-hours more, are left out), prints each recipe's wall time, the
total, and the time of a second call (which only checks the cache and copies the figures); writes
both to `--cache/timing.json`. The goal: the cold run <= 25 minutes on the project's 2-core machine.
Not a test: about 20 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from pathlib import Path

import gallery


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", default="runs/bench_figures")
    ap.add_argument("--out", default="runs/bench_figures/out")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    cache, out = Path(args.cache), Path(args.out)
    shutil.rmtree(cache, ignore_errors=True)

    t0 = time.perf_counter()
    records = gallery.make_all(out, cache, jobs=args.jobs, recipes=gallery.RECIPES)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = gallery.make_all(out, cache, jobs=args.jobs, recipes=gallery.RECIPES)
    warm = time.perf_counter() - t0
    assert all(r.get("cached") for r in again.values())

    for name, rec in records.items():
        print(f"{name:<22}{rec['seconds']:8.1f} s")
    print(f"cold: {cold:.0f} s ({cold / 60:.1f} min, goal <= 25 min); second call (cached): {warm:.1f} s")
    timing = {"cold_s": cold, "cached_s": warm, "jobs": args.jobs, "recipes": {n: r["seconds"] for n, r in records.items()},
              "machine": f"{platform.machine()}, {os.cpu_count()} cores"}
    (cache / "timing.json").write_text(json.dumps(timing, indent=2) + "\n")


if __name__ == "__main__":
    main()
