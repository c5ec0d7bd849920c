"""Experiments made of several trainings: one run per seed."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from runio import write_json
from transformer.checkpoints import donor_problems, run_problems
from transformer.config import TrainConfig, check_config
from transformer.outcomes import TRANSIENT_RULE
from transformer.train import train


def _train_one(args):
    cfg, out, resume = args
    return train(cfg, out, resume=resume, progress=False)


def seed_dir(out: str | Path, seed: int) -> Path:
    return Path(out) / f"seed_{seed}"


def train_seeds(cfg: TrainConfig, out: str | Path, seeds: list[int], jobs: int | None = None, resume: bool = False) -> list[dict]:
    """Train one run per seed into `out/seed_{s}`, `jobs` processes at a time (default: one per CPU).

    Separate processes use the cores better than one process with more threads for a model this
    small. Writes `out/seeds.json` (each seed's ICL peak and end, final evaluator accuracies,
    verdict) and returns the per-seed summaries.
    """
    import multiprocessing as mp

    out = Path(out)
    runs = [(dataclasses.replace(cfg, seed=s), seed_dir(out, s), resume) for s in seeds]
    for c, d, r in runs:
        problems = check_config(c) + donor_problems(c) + run_problems(c, d, r)
        if problems:
            raise ValueError("; ".join(f"{k}: {v}" for k, v in problems))
    jobs = jobs or os.cpu_count() or 1
    with mp.get_context("spawn").Pool(min(jobs, len(runs))) as pool:
        summaries = pool.map(_train_one, runs, chunksize=1)
    keep = ("icl_peak_acc", "icl_peak_sequences", "icl_final_acc", "ciwl_final_acc", "flip_final_acc", "flip_max_acc",
            "iwl_final_acc", "iwl_max_acc", "transient", "wall_time_s", "steps_per_s")
    table = {"config": dataclasses.asdict(cfg), "transient_rule": TRANSIENT_RULE,
             "seeds": {str(s): {k: sm[k] for k in keep} for s, sm in zip(seeds, summaries)}}
    table["transient_seeds"] = sum(sm["transient"] for sm in summaries)
    write_json(out / "seeds.json", table)
    return summaries

