"""The paper's mechanism measurements on the first seeds of `--preset faithful` to 3.2M sequences, one
table row per seed.

    python studies/paper_data/mechanism_seeds.py [--seeds 0,1,2,3,4] [--family lr2e-5]   # needs the runs' checkpoints

For each seed's run (trained by search.py: runs/paper_data/L6_n0.7_sp1_sh0.5[_s<seed>], the preset's first 3.2M;
with `--family lr2e-5` the same data at lr 2e-5, L6_n0.7_sp1_sh0.5_lr2e-05[_s<seed>]_S9600000): Layer 1's
previous-token heads at the flip peak (label tokens attending to their exemplar >= 0.15) and what
they do by the end (previous-token and self attention), and Layer 2 reading Layer 1 at the end (the
CIWL evaluator with Layer 1 zero-ablated: intact, only keys / values / queries recomputed from the
ablated stream), from 21 checkpoints; and the first half (embeddings and Layer 1) of the flip peak's
and of the ICL peak's checkpoint grafted into the final model (the paper's figure: later models act
like the earlier point). Writes studies/paper_data/mechanism_seeds[_lr2e-5].md and, per seed, the
progress measures at those checkpoints as figures/paper_data_mechanism[_lr2e-5]_s<seed>.png (linked
from the table).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from transformer import plots  # noqa: E402
from transformer.analysis import Run, graft_matrix, progress_table  # noqa: E402
from transformer.readout import readout_table  # noqa: E402

RUNS = ROOT / "runs" / "paper_data"
# family: (run name before the seed, after it, the outputs' tag, the figures' title)
FAMILIES = {"3.2M": ("L6_n0.7_sp1_sh0.5", "", "", "--preset faithful"),
            "lr2e-5": ("L6_n0.7_sp1_sh0.5_lr2e-05", "_S9600000", "_lr2e-5", "the preset's data at lr 2e-5")}
PREV = 0.15  # a head counts as a previous-token head at this share of attention to its exemplar


def seed_row(seed: int, family: str) -> str:
    before, after, tag, label = FAMILIES[family]
    run = Run(RUNS / (before + ("" if seed == 0 else f"_s{seed}") + after))
    flip_peak = max(run.metrics.values(), key=lambda r: r["flip_acc"])["step"]
    steps = sorted(set(run.spread(21)) | {flip_peak})
    cols = progress_table(run, steps)
    figure = f"paper_data_mechanism{tag}_s{seed}.png"
    plots.progress(ROOT / "figures" / figure, cols, run.model.heads,
                   title=f"{label}, seed {seed} ({len(steps)} checkpoints)")
    at, end = steps.index(flip_peak), len(steps) - 1
    heads = [h for h in range(run.model.heads) if cols[f"l1_prev_h{h}"][at] >= PREV]
    switched = [h for h in heads if cols[f"l1_self_h{h}"][end] > cols[f"l1_prev_h{h}"][end]]
    per_head = ", ".join(f"h{h} {cols[f'l1_prev_h{h}'][at]:.2f}/{cols[f'l1_self_h{h}'][at]:.2f} -> "
                         f"{cols[f'l1_prev_h{h}'][end]:.2f}/{cols[f'l1_self_h{h}'][end]:.2f}" for h in heads) or "none"
    read = {r["variant"]: r["ciwl_acc"] for r in readout_table(run, [steps[-1]]) if r["mode"] in ("none", "zero")}
    icl_peak = run.icl_peak_step()
    g = graft_matrix(run, "first_half", [flip_peak, icl_peak, steps[-1]])  # [i, 2]: the final model carrying i's first half
    grafts = " / ".join(f"{g['icl_acc'][i, 2]:.3f}, {g['flip_acc'][i, 2]:.3f}" for i in (2, 0, 1))
    return (f"| [{seed}](figures/{figure}) | {run.sequences(flip_peak) / 1e6:.2f}M | {per_head} | {len(switched)} of {len(heads)} | "
            f"{read['intact']:.3f} / {read['k_ablated']:.3f} / {read['v_ablated']:.3f} / {read['q_ablated']:.3f} | "
            f"{run.sequences(icl_peak) / 1e6:.2f}M | {grafts} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--family", choices=sorted(FAMILIES), default="3.2M")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    lines = ["| seed (figure) | flip peak at | previous-token heads: prev/self at the flip peak -> at the end | attend more to self at the end | "
             "CIWL at the end: intact / only K / only V / only Q from the ablated Layer 1 | ICL peak at | "
             "the final model's ICL, flip: own / with the flip peak's first half / with the ICL peak's |", "|---|---|---|---|---|---|---|"]
    for seed in seeds:
        lines.append(seed_row(seed, args.family))
        print(lines[-1], flush=True)
    (Path(__file__).resolve().parent / f"mechanism_seeds{FAMILIES[args.family][2]}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
