"""Experiments made of several trainings, run through the job layer (`runio.jobs`): one run per seed,
and grids over training options (`coop transformer grid`).

Each run is a job that trains into its own directory and resumes from its last checkpoint, so a
requeued, killed or rerun job continues; a finished run is not trained again.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import shutil
import typing
from pathlib import Path

from runio import write_csv, write_json
from runio.jobs import Job, JobOptions, run_jobs
from runio.options import ConfigError
from transformer.checkpoints import donor_problems, run_problems
from transformer.rundir import RunDir
from transformer.config import TrainConfig, check_config, grid_run_name
from transformer.outcomes import TRANSIENT_RULE, transience
from transformer.plots import grid_curves
from transformer.train import train

SEED_KEYS = ("icl_peak_acc", "icl_peak_sequences", "icl_final_acc", "ciwl_final_acc", "flip_final_acc", "flip_max_acc",
             "iwl_final_acc", "iwl_max_acc", "transient", "wall_time_s", "steps_per_s")


def finished(cfg: TrainConfig, out: Path) -> bool:
    """Has the run in `out` (with this config) nothing left to train?"""
    summary = RunDir(out).summary_file
    if not summary.is_file():
        return False
    s = json.loads(summary.read_text())
    return s.get("config") == dataclasses.asdict(cfg) and (s["steps"] >= cfg.total_steps or s.get("stopped_early", False))


def train_job(cfg: TrainConfig, out: Path, should_stop=None) -> dict:
    """Train into `out`, continuing from its last checkpoint if it has one (a job's body);
    `should_stop` as for `train`."""
    out = Path(out)
    resume = RunDir(out).resumable
    if not resume and out.exists():
        shutil.rmtree(out)  # a start that never reached its first checkpoint
    return train(cfg, out, resume=resume, progress=False, should_stop=should_stop)


def run_trainings(runs: list[tuple[str, TrainConfig, Path]], options: JobOptions, logs: Path, progress=None) -> dict[str, dict]:
    """Train every (name, config, directory) not yet finished; returns {name: summary}. Raises
    ValueError (one line) before anything runs if a config or a directory is unusable."""
    for name, c, d in runs:
        d, run = Path(d), RunDir(d)
        resumable = run.resumable
        partial = run.started and not resumable  # started, no checkpoint yet: started again
        problems = check_config(c) + donor_problems(c)
        if not finished(c, d) and not partial:
            problems += run_problems(c, d, resumable)
        if problems:
            raise ValueError(f"{name}: " + "; ".join(f"{k}: {v}" for k, v in problems))
    jobs = [Job(name, train_job, (c, Path(d)), Path(d), (lambda c=c, d=d: finished(c, Path(d)))) for name, c, d in runs]
    run_jobs(jobs, options, logs, progress=progress)
    return {name: RunDir(d).summary() for name, _, d in runs}


def seed_dir(out: str | Path, seed: int) -> Path:
    return Path(out) / f"seed_{seed}"


def train_seeds(cfg: TrainConfig, out: str | Path, seeds: list[int], options: JobOptions = JobOptions(), progress=None) -> list[dict]:
    """Train one run per seed into `out/seed_{s}` through the job layer. Writes `out/seeds.json`
    (each seed's ICL peak and end, final evaluator accuracies, verdict); returns the summaries."""
    out = Path(out)
    runs = [(f"seed_{s}", dataclasses.replace(cfg, seed=s), seed_dir(out, s)) for s in seeds]
    done = run_trainings(runs, options, out / "jobs", progress)
    summaries = [done[name] for name, _, _ in runs]
    table = {"config": dataclasses.asdict(cfg), "transient_rule": TRANSIENT_RULE,
             "seeds": {str(s): {k: sm[k] for k in SEED_KEYS} for s, sm in zip(seeds, summaries)}}
    table["transient_seeds"] = sum(sm["transient"] for sm in summaries)
    write_json(out / "seeds.json", table)
    return summaries


# ---- grids -----------------------------------------------------------------------------------------


def parse_value(field: str, text: str):
    """`text` as a value of TrainConfig field `field` (ValueError naming the field if it is not one)."""
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    if field not in fields or field in ("seed", "init_layer", "freeze_layer"):
        raise ValueError(f"{field!r} is not a train option that can vary")
    hints = typing.get_type_hints(TrainConfig)
    kind = hints[field]
    base = [a for a in typing.get_args(kind) if a is not type(None)] or [kind]
    if text.lower() in ("none", "") and type(None) in typing.get_args(kind):
        return None
    try:
        if base[0] is bool:
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return text.lower() in ("true", "1")
        return base[0](float(text)) if base[0] is int and "e" in text.lower() else base[0](text)
    except ValueError:
        raise ValueError(f"{field}={text!r} is not a {base[0].__name__}") from None


def parse_vary(items: list[str]) -> dict[str, list]:
    """{field: values} from `--vary FIELD=V1,V2,...` items (dashes in FIELD read as underscores)."""
    out: dict[str, list] = {}
    for item in items:
        name, eq, values = item.partition("=")
        field = name.strip().replace("-", "_")
        if not eq or not values:
            raise ValueError(f"expected FIELD=V1,V2,... (e.g. noise=0.5,0.65), got {item!r}")
        if field in out:
            raise ValueError(f"{field} is varied twice")
        out[field] = [parse_value(field, v.strip()) for v in values.split(",")]
    return out


def grid_runs(cfg: TrainConfig, vary: dict[str, list], seeds: list[int], out: Path) -> list[tuple[str, TrainConfig, Path, dict]]:
    """(name, config, directory, varied values) for every point of the product times the seeds."""
    runs = []
    for values in itertools.product(*vary.values()):
        point = dict(zip(vary, values))
        for s in seeds:
            name = grid_run_name(point, s)
            runs.append((name, dataclasses.replace(cfg, **point, seed=s), Path(out) / name, point))
    return runs


def grid_table(runs: list[tuple[str, TrainConfig, Path, dict]], vary: dict[str, list]) -> dict[str, list]:
    """The columns of grid.csv: run, its varied knobs, seed, ICL peak and where, ICL end, CIWL end,
    flip peak and end, IWL max, transient, wall time."""
    cols: dict[str, list] = {"run": [], **{k: [] for k in vary}, "seed": [], "icl_peak": [], "icl_peak_sequences": [],
                             "icl_end": [], "ciwl_end": [], "flip_peak": [], "flip_end": [], "iwl_max": [], "transient": [],
                             "wall_time_s": []}
    for name, c, d, point in runs:
        rows = RunDir(d).metrics()
        t = transience(rows)
        summary = RunDir(d).summary()
        for k in vary:
            cols[k].append(point[k])
        for key, value in (("run", name), ("seed", c.seed), ("icl_peak", t["icl_peak_acc"]),
                           ("icl_peak_sequences", t["icl_peak_sequences"]), ("icl_end", t["icl_final_acc"]),
                           ("ciwl_end", t["ciwl_final_acc"]), ("flip_peak", t["flip_max_acc"]), ("flip_end", t["flip_final_acc"]),
                           ("iwl_max", t["iwl_max_acc"]), ("transient", int(t["transient"])), ("wall_time_s", summary["wall_time_s"])):
            cols[key].append(value)
    return cols


def train_grid(cfg: TrainConfig, vary: dict[str, list], seeds: list[int], out: str | Path, options: JobOptions = JobOptions(),
               progress=None) -> dict[str, list]:
    """Train the grid into `out/<run>/`, write `out/grid.csv` and `out/grid.png`; returns the table."""
    out = Path(out)
    runs = grid_runs(cfg, vary, seeds, out)
    run_trainings([(n, c, d) for n, c, d, _ in runs], options, out / "jobs", progress)
    table = grid_table(runs, vary)
    write_csv(out / "grid.csv", table)
    grid_curves(out / "grid.png", [(point, c.seed, RunDir(d).metrics()) for _, c, d, point in runs],
                title=f"{len(runs)} runs ({sum(table['wall_time_s']) / 60:.1f} min of training)")
    return table


# ---- the command line's inputs of several runs -----------------------------------------------------


def parse_seeds(text: str) -> list[int]:
    """`0,1,2` or `START:STOP` (STOP excluded) as a list of distinct seeds, else ConfigError on `seeds`."""
    try:
        if ":" in text:
            a, b = (int(v) for v in text.split(":"))
            seeds = list(range(a, b))
        else:
            seeds = [int(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError("seeds", f"comma-separated integers (0,1,2) or a range START:STOP (0:5), got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError("seeds", f"at least one seed, each once, got {text!r}")
    return seeds


def grid_axes(cfg: TrainConfig, vary: list[str]) -> dict[str, list]:
    """The grid's axes from `--vary` items, every value checked against `cfg` before anything runs;
    else ConfigError on `vary` naming the field and what is allowed."""
    try:
        axes = parse_vary(vary)
    except ValueError as err:
        raise ConfigError("vary", str(err)) from None
    for field, values in axes.items():
        for v in values:
            for name, allowed in check_config(dataclasses.replace(cfg, **{field: v})):
                raise ConfigError("vary", f"{field}={v}: `{name}` {allowed}")
    return axes


def seed_lines(seeds: list[int], summaries: list[dict]) -> list[str]:
    """What `coop transformer train --seeds` prints: one row per seed."""
    lines = [f"{'seed':>5}{'ICL peak':>10}{'at seq':>11}{'ICL end':>9}{'CIWL end':>10}{'flip end':>10}{'IWL end':>9}"
             f"{'wall s':>8}{'steps/s':>9}  transient"]
    for sd, sm in zip(seeds, summaries):
        lines.append(f"{sd:>5}{sm['icl_peak_acc']:>10.3f}{sm['icl_peak_sequences']:>11,}{sm['icl_final_acc']:>9.3f}"
                     f"{sm['ciwl_final_acc']:>10.3f}{sm['flip_final_acc']:>10.3f}{sm['iwl_final_acc']:>9.3f}"
                     f"{sm['wall_time_s']:>8.0f}{sm['steps_per_s']:>9.0f}  {sm['transient']}")
    return lines


def grid_lines(table: dict[str, list], axes: dict[str, list], out) -> list[str]:
    """What `coop transformer grid` prints: one row per run, then where the table went."""
    lines = [f"{'run':<40}{'ICL peak':>9}{'at seq':>11}{'ICL end':>8}{'CIWL end':>9}{'flip max':>9}{'IWL max':>8}  transient"]
    for i, name in enumerate(table["run"]):
        lines.append(f"{name:<40}{table['icl_peak'][i]:>9.3f}{table['icl_peak_sequences'][i]:>11,}{table['icl_end'][i]:>8.3f}"
                     f"{table['ciwl_end'][i]:>9.3f}{table['flip_peak'][i]:>9.3f}{table['iwl_max'][i]:>8.3f}  "
                     f"{bool(table['transient'][i])}")
    return lines + [f"{len(table['run'])} runs over {', '.join(axes)} -> {out}/grid.csv, {out}/grid.png"]


def train_one(cfg: TrainConfig, out, resume: bool, progress: bool) -> dict:
    """`coop transformer train` without --seeds: check `out` (ConfigError on `out` or `resume`), train; the summary."""
    for name, allowed in run_problems(cfg, Path(out), resume):
        raise ConfigError(name, allowed)
    return train(cfg, out, resume=resume, progress=progress)


def train_lines(out, s: dict) -> list[str]:
    """What `coop transformer train` prints at the end of a run."""
    return [f"{out}: {s['sequences_seen']:,} sequences, {s['wall_time_s']:.0f} s wall, {s['steps_per_s']:.0f} steps/s",
            f"ICL peak {s['icl_peak_acc']:.3f} at {s['icl_peak_sequences']:,} sequences, end {s['icl_final_acc']:.3f}; "
            f"CIWL end {s['ciwl_final_acc']:.3f}; flip end {s['flip_final_acc']:.3f}; IWL end {s['iwl_final_acc']:.3f}; "
            f"transient: {s['transient']}"]
