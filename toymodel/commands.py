"""What each `coop toy` command takes and does: its options, declared once as dataclass fields
(`runio.options.option`: help, allowed values; the CLI generates its options from them), their
validation (`ConfigError` naming the field), and the calls into the model.

Imports nothing heavy at module level (numpy, jax, sympy and matplotlib only inside the functions:
the model's modules are imported where a command runs), so that the CLI built from these
declarations starts fast. The choices of `method`, `space` and
`aggregate` are read from the model (`toymodel.dynamics`, `toymodel.loss`) when a value is checked.
"""

from __future__ import annotations

import importlib
import itertools
import math
import os
from dataclasses import dataclass
from pathlib import Path

from runio import write_json
from runio.options import MISSING, ConfigError, option, problems

_NONNEG = dict(low=0)
_POSITIVE = dict(low=0, low_open=True)
_COUNT = dict(low=1)


def _from(module: str, name: str):
    """Choices read from a model module when a value is checked (not when the CLI is built)."""
    return lambda: getattr(importlib.import_module(module), name)


def validate(opts) -> None:
    """ConfigError for the first field of `opts` outside its declared range or choices (value shown)."""
    for name, allowed in problems(opts):
        raise ConfigError(name, f"{allowed}, got {getattr(opts, name)}")


def int_list(name: str, text: str, count: int | None = None) -> tuple[int, ...]:
    """A comma list of positive integers (exactly `count` of them when given), else ConfigError on `name`."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        values = ()
    if not values or any(v < 1 for v in values) or (count is not None and len(values) != count):
        what = f"{count} " if count else ""
        raise ConfigError(name, f"must be {what}comma-separated positive integers (e.g. 20,20,20,160), got {text!r}")
    return values


def clamp_list(text: str, dims) -> tuple[str, ...]:
    """The items of a --clamp spec (NAME or NAME:K), checked against the dimensions."""
    from toymodel import clamp

    spec = clamp.split(text)
    try:
        clamp.counts(spec, dims)
    except ValueError as err:
        raise ConfigError("clamp", str(err)) from None
    return spec


def value_list(name: str, text: str) -> tuple[float, ...]:
    """A comma list of finite values >= 0, else ConfigError on `name`."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = (float("nan"),)
    for v in values:
        if not (math.isfinite(v) and v >= 0):
            raise ConfigError(name, f"must be a finite number >= 0, got {v}")
    return values


# ---- coop toy simulate ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Simulate:
    """`coop toy simulate`: train the toy model once."""

    dims: str | None = option(None, "n_a,n_b,n_c,n_d [default: 20,20,20,160, or from --init-file]")
    alpha: float = option(0.1, "Competition strength (>= 0).", **_NONNEG)
    mu1: float = option(0.1, "Offset of mechanism 1, ICL (>= 0).", **_NONNEG)
    mu2: float = option(0.0, "Offset of mechanism 2, CIWL (>= 0).", **_NONNEG)
    lr: float = option(1.0, "Learning rate (> 0); for flow, time = lr * step.", **_POSITIVE)
    steps: int = option(16000, "Training steps (>= 1).", **_COUNT)
    seed: int = option(7, "Random draw (7 = the paper's draw; others i.i.d. N(0,1) the same way).", **_NONNEG)
    init_file: str | None = option(None, ".npz with keys a b c d a_star b_star c_star d_star.")
    method: str = option("gd", "gd | sgd | momentum | adam (optax) | flow (diffrax ODE).",
                         choices=_from("toymodel.dynamics", "METHODS"))
    space: str = option("auto", "reduced (exact, 8 scalars) | full (the vectors) | auto.",
                        choices=_from("toymodel.dynamics", "SPACES"))
    aggregate: str = option("mean", "mean | sum over tensor entries.", choices=_from("toymodel.loss", "AGGREGATES"))
    clamp: str = option("", "Held at the target from step 0: NAME (whole vector) or NAME:K (its first K "
                            "coordinates), e.g. b:10,c (grafting analogue).")
    stop_at_loss: float | None = option(None, "End at the first step whose loss is below this (>= 0) [default: never].",
                                        **_NONNEG)
    every: int = option(1, "Record a row every this many steps (>= 1).", **_COUNT)
    out: str = option("runs/toy", "Output folder.")

    def prepare(self):
        """(draw, LossParams, RunConfig) of these options, else ConfigError; nothing is written."""
        from toymodel.draws import PAPER_DIMS, load_init_file, paper_draw
        from toymodel.dynamics import RunConfig
        from toymodel.loss import LossParams

        validate(self)
        if self.method == "adam" and self.space == "reduced":
            raise ConfigError("space", "adam is per-coordinate and leaves span{v*, v(0)}: use full or auto")
        dims = int_list("dims", self.dims, 4) if self.dims is not None else None
        if self.init_file is not None:
            try:
                draw = load_init_file(self.init_file)
            except ValueError as err:
                raise ConfigError("init_file", str(err)) from None
            if dims is not None and dims != draw.dims:
                raise ConfigError("dims", f"must match the init file's dims {draw.dims} or be omitted, got {dims}")
        else:
            draw = paper_draw(self.seed, dims or PAPER_DIMS)
        clamped = clamp_list(self.clamp, draw.dims)
        params = LossParams(self.alpha, self.mu1, self.mu2, self.aggregate)
        config = RunConfig(method=self.method, lr=self.lr, steps=self.steps, every=self.every, clamp=clamped,
                           space=self.space, stop_at_loss=self.stop_at_loss)
        return draw, params, config

    def run(self):
        """Validate, simulate, write trajectory.csv, summary.json, trajectory.png; returns (trajectory, summary)."""
        from toymodel.dynamics import simulate
        from toymodel.runs import write_run

        draw, params, config = self.prepare()
        traj = simulate(draw, params, config)
        record = {
            "dims": list(draw.dims), "alpha": self.alpha, "mu1": self.mu1, "mu2": self.mu2, "lr": self.lr,
            "steps": self.steps, "seed": None if self.init_file else self.seed, "init_file": self.init_file,
            "method": self.method, "space": config.resolved_space, "aggregate": self.aggregate,
            "clamp": list(config.clamp), "every": self.every, "stop_at_loss": self.stop_at_loss,
        }
        title = (f"α={self.alpha:g}, μ1={self.mu1:g}, μ2={self.mu2:g}, dims={','.join(map(str, draw.dims))}, "
                 f"{self.method}, lr={self.lr:g}")
        return traj, write_run(traj, record, self.out, title)


# ---- coop toy sweep / merge -----------------------------------------------------------------------


@dataclass(frozen=True)
class Sweep:
    """`coop toy sweep`: the options from which a `toymodel.sweep.SweepConfig` is built (axes as SPEC text)."""

    out: str = option(MISSING, "Output folder (re-running the same command resumes it).")
    alpha: str = option("0.1", "SPEC: a value, a comma list, or start:stop:num.")
    mu1: str = option("0.1", "SPEC for mu1.")
    mu2: str = option("0", "SPEC for mu2.")
    steps: int = option(16000, "GD steps per point (>= 1).", **_COUNT)
    lr: float = option(1.0, "Learning rate (> 0).", **_POSITIVE)
    dims: str = option("20,20,20,160", "n_a,n_b,n_c,n_d.")
    seed: int = option(7, "Seed of the first draw (7 = the paper's draw).", **_NONNEG)
    draws: int = option(1, "Random draws per point (seeds seed, seed+1, ...).", **_COUNT)
    aggregate: str = option("mean", "mean | sum.", choices=_from("toymodel.loss", "AGGREGATES"))
    clamp: str = option("", "As for simulate: NAME or NAME:K held at the target in every lane, e.g. b:10,c.")
    chunk: int = option(8192, "Lanes (points x draws) per chunk: the unit of work and of resuming.", **_COUNT)
    shard: str = option("0/1", "i/n: compute only chunks c with c % n == i (one Slurm array task).")
    shards: int | None = option(None, "Run the sweep as N shard jobs (--executor) and merge them into --out.", **_COUNT)

    def config(self):
        """The SweepConfig of these options, else ConfigError."""
        from toymodel.sweep import SweepConfig, parse_axis

        axes = {}
        for name in ("alpha", "mu1", "mu2"):
            try:
                axes[name] = tuple(float(v) for v in parse_axis(getattr(self, name)))
            except ValueError as err:
                raise ConfigError(name, str(err)) from None
        validate(self)
        dims = int_list("dims", self.dims, 4)
        clamped = clamp_list(self.clamp, dims)
        self.shard_index()
        if self.shards is not None and self.shard != "0/1":
            raise ConfigError("shards", "runs every shard itself: leave out `shard`")
        return SweepConfig(axes["alpha"], axes["mu1"], axes["mu2"], steps=self.steps, lr=self.lr, dims=dims,
                           seed=self.seed, draws=self.draws, aggregate=self.aggregate, chunk=self.chunk, clamp=clamped)

    def shard_index(self) -> tuple[int, int]:
        try:
            index, count = (int(x) for x in self.shard.split("/"))
        except ValueError:
            index, count = -1, 0
        if count < 1 or not 0 <= index < count:
            raise ConfigError("shard", f"must be i/n with n >= 1 and 0 <= i < n (e.g. 0/4), got {self.shard!r}")
        return index, count


def sweep(opts: Sweep, config, job_options=None, progress=None) -> dict:
    """Run the sweep of `config` into `opts.out` (as `opts.shards` jobs of the job layer, merged, when
    given; else shard `opts.shard` in this process) and, once every chunk is there, write the
    results and figures. Returns the timings, with `info` (sweep.json's content) when complete.
    A folder holding another sweep: ConfigError on `out`."""
    from toymodel.plots import plot_sweep
    from toymodel.sweep import missing_chunks, run_shards, run_sweep, shard_folders, write_results

    try:
        if opts.shards is not None:
            timings = run_shards(config, opts.out, opts.shards, job_options, progress)
            folders = shard_folders(opts.out, opts.shards)
        else:
            timings = run_sweep(config, opts.out, opts.shard_index(), progress)
            folders = [opts.out]
    except ValueError as err:  # a folder holding another sweep
        raise ConfigError("out", str(err)) from None
    if missing_chunks(config, folders):
        return timings
    timings["info"] = write_results(config, folders, opts.out, timings)
    plot_sweep(config, opts.out)
    return timings


def merge(folders, out):
    """Merge the shard `folders` of one sweep into `out`; (config, sweep.json's content)."""
    from toymodel.plots import plot_sweep
    from toymodel.sweep import merge_config, write_results

    try:
        config = merge_config(folders)
    except ValueError as err:
        raise ConfigError("FOLDERS", str(err)) from None
    info = write_results(config, folders, out, {"merged_from": list(folders)})
    plot_sweep(config, out)
    return config, info


# ---- coop toy fixed-points / portrait / curves ----------------------------------------------------


@dataclass(frozen=True)
class FixedPoints:
    """`coop toy fixed-points`: the fixed points of the reduced dynamics at one (alpha, mu1, mu2)."""

    out: str = option(MISSING, "Output folder: fixed_points.json.")
    alpha: float = option(0.1, "Competition strength (>= 0).", **_NONNEG)
    mu1: float = option(0.1, "ICL offset (>= 0).", **_NONNEG)
    mu2: float = option(0.0, "CIWL offset (>= 0).", **_NONNEG)
    dims: str = option("20,20,20,160", "n_a,n_b,n_c,n_d.")
    seed: int = option(7, "Draw whose target norms |v*|² enter the equations (7 = paper).", **_NONNEG)
    aggregate: str = option("mean", "mean | sum.", choices=_from("toymodel.loss", "AGGREGATES"))

    def run(self) -> list[dict]:
        """Validate, find the fixed points, write OUT/fixed_points.json; returns the fixed points."""
        validate(self)
        dims = int_list("dims", self.dims, 4)
        from toymodel import analysis, reduced
        from toymodel.draws import paper_draw
        from toymodel.loss import LossParams

        draw = paper_draw(self.seed, dims)
        _, _, s, _ = reduced.reduce(draw)
        points = analysis.fixed_points(LossParams(self.alpha, self.mu1, self.mu2, self.aggregate), s, dims)
        config = {"alpha": self.alpha, "mu1": self.mu1, "mu2": self.mu2, "dims": list(dims), "seed": self.seed,
                  "aggregate": self.aggregate}
        write_json(f"{self.out}/fixed_points.json", {
            "config": config,
            "coordinates": "m1 = ICL strength, m2 = CIWL strength, z = (p_b p_c)^2 (shared-layer scale); "
                           "p, q = reduced state of a representative (q = 0, p_b = p_c)",
            "closed_form_checks": analysis.closed_form_checks(),
            "fixed_points": points,
        })
        return points


@dataclass(frozen=True)
class Portrait:
    """`coop toy portrait`: phase portraits, one panel per (alpha, mu1, mu2) combination."""

    out: str = option(MISSING, "Output folder: portrait.png.")
    alpha: str = option("0.1", "Value or comma list (one panel per combination).")
    mu1: str = option("0.1", "Value or comma list.")
    mu2: str = option("0", "Value or comma list.")
    dims: str = option("20,20,20,160", "n_a,n_b,n_c,n_d.")
    seeds: str = option("7,8,9,10,11", "Draws whose free gradient flows are drawn.")
    time: float = option(16000.0, "Flow time (= GD steps at lr 1).", **_POSITIVE)
    clamp: str = option("", "As for simulate, applied to the drawn flows: NAME or NAME:K, e.g. b:10,c:10.")

    def panels(self):
        """(panels as (alpha, mu1, mu2), dims, seeds, clamp, number of columns), else ConfigError."""
        lists = [value_list(n, getattr(self, n)) for n in ("alpha", "mu1", "mu2")]
        dims = int_list("dims", self.dims, 4)
        try:
            seeds = tuple(int(x) for x in self.seeds.split(","))
        except ValueError:
            seeds = (-1,)
        if not seeds or min(seeds) < 0:
            raise ConfigError("seeds", f"must be a comma list of integers >= 0, got {self.seeds!r}")
        validate(self)
        clamped = clamp_list(self.clamp, dims)
        panels = list(itertools.product(*lists))
        if len(panels) > 36:
            raise ConfigError("alpha/mu1/mu2", f"at most 36 panels, got {len(panels)}")
        varying = [len(x) for x in lists if len(x) > 1]
        return panels, dims, seeds, clamped, min(varying[-1] if varying else 1, 6)

    def run(self, progress=None) -> int:
        """Validate, compute every panel (`progress(done, total)` after each), draw OUT/portrait.png; returns the panel count."""
        panels, dims, seeds, clamped, ncols = self.panels()
        from toymodel.loss import LossParams
        from toymodel.plots import plot_portraits
        from toymodel.portrait import compute_portrait

        portraits = []
        for i, (a, m1, m2) in enumerate(panels):
            if progress and i == 0:
                progress(0, len(panels))
            portraits.append(compute_portrait(LossParams(a, m1, m2), dims=dims, seeds=seeds, time=self.time,
                                              clamp=clamped))
            if progress:
                progress(i + 1, len(panels))
        plot_portraits(portraits, f"{self.out}/portrait.png", ncols=ncols)
        return len(panels)


def run_labels(run_dirs, labels: str | None) -> list[str]:
    """Legend labels: the comma list `labels`, one per run, or the folder names; else ConfigError."""
    names = [Path(r).name for r in run_dirs] if labels is None else [x.strip() for x in labels.split(",")]
    if len(names) != len(run_dirs):
        raise ConfigError("labels", f"one label per run ({len(run_dirs)}), got {len(names)}")
    return names


def curves(run_dirs, labels: str | None, title: str, out: str) -> list[tuple]:
    """Overlay L1 of `coop toy simulate` runs into the figure `out`; returns (name, steps, l1, L1 min,
    its step) per run. ConfigError on bad labels, a non-.png output or a folder that is not a run."""
    names = run_labels(run_dirs, labels)
    if not out.endswith(".png"):
        raise ConfigError("out", f"must be a .png file, got {out!r}")
    from toymodel.plots import plot_l1_curves
    from toymodel.runs import read_run

    runs = []
    for name, folder in zip(names, run_dirs):
        try:
            info, cols = read_run(folder)
        except ValueError as err:
            raise ConfigError("RUN_DIR", str(err)) from None
        runs.append((name, cols["step"], cols["l1"], info["l1_min"], info["l1_min_step"]))
    plot_l1_curves(runs, out, title)
    return runs


__all__ = ["Simulate", "Sweep", "FixedPoints", "Portrait", "sweep", "merge", "curves", "validate", "int_list",
           "clamp_list", "value_list", "run_labels"]


# ---- the lines the commands print ----------------------------------------------------------------


def _fmt(x) -> str:
    return "nan" if x is None else f"{x:.6g}"


def simulate_lines(opts: Simulate, traj, info: dict) -> list[str]:
    """What `coop toy simulate` prints on stdout: outcome, L1 minimum, final losses (and where it stopped)."""
    final = info["final"]
    lines = [f"{info['outcome']}: L1 min {traj.l1_min:.6g} at step {traj.l1_min_step:,}; "
             f"at step {info['final_step']:,}: L1 {_fmt(final.get('l1'))}, L2 {_fmt(final.get('l2'))}  "
             f"({traj.solver['space']} {opts.method}, {traj.solver['wall_time_s']:.2f} s) -> {opts.out}"]
    if traj.stopped_at is not None:
        lines.append(f"stopped at step {traj.stopped_at:,}: loss {_fmt(final.get('loss'))} < {opts.stop_at_loss:g}")
    return lines


def sweep_lines(opts: Sweep, config, timings: dict) -> list[str]:
    """What `coop toy sweep` prints when it is done: lanes, time, outcome counts (or that a shard is done)."""
    if "info" not in timings:
        index, count = opts.shard_index()
        return [f"shard {index}/{count} done in {timings['wall_time_s']:.1f} s "
                f"({timings['chunks_computed']} chunks computed); combine the shards with `coop toy merge`"]
    counts = ", ".join(f"{k} {v}" for k, v in timings["info"]["outcome_counts"].items())
    if opts.shards is not None:
        return [f"{config.lanes:,} lanes as {opts.shards} shards in {timings['wall_time_s']:.1f} s; outcomes: {counts} "
                f"-> {opts.out}"]
    return [f"{config.lanes:,} lanes in {timings['wall_time_s']:.1f} s on {len(timings['devices'])} device(s); "
            f"outcomes: {counts} -> {opts.out}"]


def fixed_point_lines(opts: FixedPoints, points: list[dict]) -> list[str]:
    """What `coop toy fixed-points` prints: each fixed point, and where they went."""
    lines = [f"  m1={fp['m1']:.4f} m2={fp['m2']:.4f}  L1={fp['l1']:.4g} L2={fp['l2']:.3g}  "
             f"{fp['type']:<32s} ({fp['found_by']})" for fp in points]
    if not any(fp["stable"] for fp in points):
        lines.append("  no stable finite fixed point: the loss decreases towards mu1*mu2 as the shared layer grows")
    return lines + [f"-> {opts.out}/fixed_points.json"]


def curves_lines(runs: list[tuple], out: str) -> list[str]:
    """What `coop toy curves` prints: each run's ICL peak step, L1 minimum and final L1."""
    w = max(len(r[0]) for r in runs) + 2
    lines = [f"{'run':<{w}}{'ICL peak step':>14}{'L1 min':>12}{'L1 end':>12}"]
    lines += [f"{name:<{w}}{peak:>14,}{l1_min:>12.4g}{l1[-1]:>12.4g}" for name, steps, l1, l1_min, peak in runs]
    return lines + [f"-> {out}"]


def cpu_devices() -> None:
    """One JAX CPU device per core, so that a sweep shards its lanes over all of them, and 512-bit
    vectors where the CPU has them (AVX-512: 8 float64 lanes per instruction instead of 4; the
    sweep's loop is elementwise over lanes, so its numbers are the same bit for bit; 1.06x faster
    as a whole process, `benchmarks/bench_sweep.py`). Set before JAX starts, and only for sweeps: a
    single-device program (the transformer) runs ~35% slower with the host split into several
    devices, and its reductions would be summed in another order with wider vectors."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        flags = f"{flags} --xla_force_host_platform_device_count={os.cpu_count() or 1}"
    if "xla_cpu_prefer_vector_width" not in flags:
        flags = f"{flags} --xla_cpu_prefer_vector_width=512"
    os.environ["XLA_FLAGS"] = flags.strip()
