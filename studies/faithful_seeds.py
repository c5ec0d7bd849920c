"""The faithful preset's mechanism on each of its five seeds (search wave 7: K 12,800, E 5, noise 0.6).

    .venv/bin/python studies/faithful_seeds.py

Needs the runs of `studies/faithful_search.py` with their checkpoints (`runs/faithful_search/
K12800_E5_n0.6_s{0..4}`); each is analysed once by `coop transformer analyze` into
`runs/faithful_seeds/s<seed>/` (progress measures at every checkpoint; Layer-1 ablation at the ICL
peak and the end). The table (`studies/faithful_seeds.md`) and each seed's progress figure
(`studies/faithful_seeds/s<seed>_progress.png`) are kept in the repository:
- who came first (ICL or CIWL to 0.75), ICL's peak and end;
- Layer 1 at the label tokens, averaged over heads, at ICL's peak and at the end: attention to
  the exemplar (previous token) and to itself; the strongest previous-token head at the end and its weight at the peak and the end;
- Layer 2's induction strength on flip sequences (summed over heads) at ICL's peak and at the end;
- at ICL's peak, ICL and flip accuracy with that head zeroed (total path).
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from transformer.rundir import read_metrics  # noqa: E402
from transformer.outcomes import first_learned  # noqa: E402

RUNS = ROOT / "runs" / "faithful_search"
OUT = ROOT / "runs" / "faithful_seeds"
KEPT = ROOT / "studies" / "faithful_seeds"
SEEDS = range(5)


def analyse(seed: int) -> Path | None:
    run = RUNS / f"K12800_E5_n0.6_s{seed}"
    out = OUT / f"s{seed}"
    if (out / "ablation.csv").is_file():
        return out
    if not (ROOT / "studies" / "faithful_search" / run.name / "search.json").is_file() or not run.is_dir():
        return None  # not finished (the search keeps a run's record when it ends) or its checkpoints are gone
    subprocess.run([sys.executable, "-c", "import cli; cli.main()", "transformer", "analyze", str(run), "--out", str(out)],
                   check=True, cwd=ROOT)
    return out


def row(seed: int, out: Path) -> str:
    metrics = read_metrics(RUNS / f"K12800_E5_n0.6_s{seed}" / "metrics.csv")
    prog = list(csv.DictReader(open(out / "progress.csv")))
    icl = [r["icl_acc"] for r in metrics]
    peak = max(range(len(icl)), key=icl.__getitem__)
    at = {int(r["sequences"]): r for r in prog}
    p, e = at[metrics[peak]["sequences"]], prog[-1]
    heads = [float(e[f"l1_prev_h{h}"]) for h in range(8)]
    h = max(range(8), key=heads.__getitem__)
    abl = {(r["sequences"], r["path"], r["mode"], r["ablated"]): r for r in csv.DictReader(open(out / "ablation.csv"))}
    cut = abl.get((str(metrics[peak]["sequences"]), "total", "zero", f"head {h}"))
    cut_txt = f"{float(cut['icl_acc']):.2f} / {float(cut['flip_acc']):.2f}" if cut else "-"
    f = lambda r, k: f"{float(r[k]):.2f}"  # noqa: E731
    return (f"| {seed} | {first_learned(metrics)} | {icl[peak]:.3f} ({metrics[peak]['sequences'] / 1e6:.2f}M) / {icl[-1]:.3f} "
            f"| {f(p, 'l1_prev')} / {f(p, 'l1_self')} | {f(e, 'l1_prev')} / {f(e, 'l1_self')} "
            f"| h{h}: {float(p[f'l1_prev_h{h}']):.2f} → {heads[h]:.2f} | {f(p, 'l2_induction')} → {f(e, 'l2_induction')} "
            f"| {float(metrics[peak]['icl_acc']):.2f} / {float(metrics[peak]['flip_acc']):.2f} → {cut_txt} |")


def main() -> None:
    KEPT.mkdir(parents=True, exist_ok=True)
    lines = ["| seed | first to 0.75 | ICL peak (at) / end | Layer 1 at the peak: to exemplar / to self | at the end | "
             "the strongest previous-token head at the end: its weight at the peak → end | Layer-2 induction: peak → end | ICL / flip at the peak, "
             "that head zeroed |", "|" + "---|" * 8]
    for seed in SEEDS:
        out = analyse(seed)
        if out is None:
            print(f"seed {seed}: no finished run under {RUNS}", flush=True)
            continue
        shutil.copyfile(out / "progress.png", KEPT / f"s{seed}_progress.png")
        lines.append(row(seed, out))
    text = "\n".join(lines)
    print(text)
    (ROOT / "studies" / "faithful_seeds.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
