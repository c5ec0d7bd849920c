"""The paper's cooperation experiment on `--preset faithful`: a CIWL-only run's second half, taken at
donors log-spaced over that run, clamped into ICL-only training; scored by the ICL evaluator.

    python studies/paper_data/cooperation.py            # the runs not yet finished, one per core; resumable
    python studies/paper_data/cooperation.py --table    # keeps the finished runs; cooperation.md, figures/paper_data_cooperation.png

The paper (arXiv:2503.05631; the official code's settings in TRANSFORMER_NOTES): donors taken from
a 64M-sequence CIWL-only run at lr 1e-5 helped ICL-only training within 9.8M-31.5M sequences, with
sharp edges at both ends; the clamped ICL-only runs lasted 64M sequences. Mapped by lr x steps to
this preset's lr 1e-4: a CIWL-only donor run of 3.2M sequences (to pass CIWL 0.9), donors at six
log-spaced steps of it, and a 6.4M-sequence horizon. Controls: ICL-only training from scratch, and
the second half of the bursty run's end (the preset's seed 0, kept by search.py), the paper's
control. The second half is Layer 2, the final layer norm and the unembedding (the cut after
block 0, `--init-layer second_half=... --freeze-layer second_half`).

Runs go to runs/paper_data/cooperation/<name>/ through the job layer (local, one per core, each
resuming from its last checkpoint); their metrics.csv and config.json are kept in
studies/paper_data/kept_cooperation/<name>/ once finished, so the table regenerates anywhere.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from runio import copy_file, save_figure  # noqa: E402
from runio.jobs import JobOptions  # noqa: E402
from transformer.experiments import finished, run_trainings  # noqa: E402
from transformer.presets import build_config  # noqa: E402
from transformer.rundir import RunDir, read_metrics  # noqa: E402

OUT = ROOT / "runs" / "paper_data" / "cooperation"
KEPT = Path(__file__).resolve().parent / "kept_cooperation"
DONOR = ROOT / "runs" / "paper_data" / "ciwl_only"  # `coop transformer train --preset faithful --train-dist ciwl_only`
BURSTY = ROOT / "runs" / "paper_data" / "L6_n0.7_sp1_sh0.5"  # the preset's seed 0 (search.py)
DONOR_STEPS = (3_000, 6_000, 12_000, 25_000, 50_000, 100_000)  # log-spaced over the donor run's 100,000 steps
HORIZON = 6_400_000


def runs() -> tuple[tuple, list[tuple]]:
    """(the donor run, the clamped runs and their controls) as (name, config, directory)."""
    base = build_config("faithful", {"sequences": 3_200_000})  # the donor run: CIWL passes 0.9 by 1.92M
    donor = ("ciwl_only", dataclasses.replace(base, train_dist="ciwl_only"), DONOR)
    icl = dataclasses.replace(base, train_dist="icl_only", sequences=HORIZON, eval_every=64_000)
    clamped = [("icl_only", icl, OUT / "icl_only")]
    for step in DONOR_STEPS:
        clamped.append((f"ciwl_half_{step}", dataclasses.replace(icl, init_layer=f"second_half={DONOR}@{step}",
                                                                  freeze_layer="second_half"), OUT / f"ciwl_half_{step}"))
    clamped.append(("bursty_half", dataclasses.replace(icl, init_layer=f"second_half={BURSTY}@100000",
                                                       freeze_layer="second_half"), OUT / "bursty_half"))
    return donor, clamped


def keep(name: str, cfg, folder: Path) -> None:
    if finished(cfg, folder):
        for f in ("metrics.csv", "config.json"):
            copy_file(RunDir(folder).path / f, KEPT / name / f)


def table() -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    donor_rows = {r["step"]: r for r in read_metrics(KEPT / "ciwl_only" / "metrics.csv")}
    lines = ["| ICL-only run | donor CIWL acc. | ICL >= 0.8 at | ICL acc. at 1.6M / 3.2M / 6.4M | ICL loss at 6.4M |",
             "|---|---|---|---|---|"]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    _, clamped = runs()
    for k, (name, cfg, _) in enumerate(clamped):
        if not (KEPT / name / "metrics.csv").is_file():
            continue
        rows = read_metrics(KEPT / name / "metrics.csv")
        at = {r["sequences"]: r for r in rows}
        reach = next((r["sequences"] for r in rows if r["icl_acc"] >= 0.8), None)
        step = int(cfg.init_layer.split("@")[1]) if name.startswith("ciwl_half") else None
        donor = f"{donor_rows[step]['ciwl_acc']:.3f} ({step * cfg.batch / 1e6:.2f}M)" if step else "-"
        accs = " / ".join(f"{at[s]['icl_acc']:.3f}" if s in at else "-" for s in (1_600_000, 3_200_000, 6_400_000))
        lines.append(f"| {name} | {donor} | {'-' if reach is None else f'{reach / 1e6:.2f}M'} | {accs} | "
                     f"{rows[-1]['icl_loss']:.3f} |")
        seq = [r["sequences"] / 1e6 for r in rows]
        ax.plot(seq, [r["icl_acc"] for r in rows], color=f"C{k}", label=name)
        ax2.plot(seq, [r["icl_loss"] for r in rows], color=f"C{k}", label=name)
    ax.set(xlabel="sequences (M)", ylabel="ICL evaluator accuracy", ylim=(0.4, 1.02))
    ax2.set(xlabel="sequences (M)", ylabel="ICL evaluator loss", yscale="log")
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, ROOT / "figures" / "paper_data_cooperation.png")
    plt.close(fig)
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", action="store_true")
    ap.add_argument("--jobs", type=int, default=2, help="runs at a time, one per core")
    args = ap.parse_args()
    if args.table:
        donor, clamped = runs()
        for run in (donor, *clamped):  # whatever has finished, kept first (the others: resume without --table)
            keep(*run)
        lines = table()
        (KEPT.parent / "cooperation.md").write_text("\n".join(lines) + "\n")
        print("\n".join(lines))
        return
    donor, clamped = runs()
    options = JobOptions(executor="local", jobs=args.jobs)
    run_trainings([donor], options, OUT / "jobs")  # the donors must exist before the clamped runs are checked
    keep(*donor)
    run_trainings(clamped, options, OUT / "jobs")
    for run in clamped:
        keep(*run)


if __name__ == "__main__":
    main()
