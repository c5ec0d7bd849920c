"""`coop`: the command-line interface. A thin typer layer: parse, validate, call the library, print.

Every bad parameter ends the process with one line on stderr naming the parameter and what is
allowed, exit code 2, and no traceback (raise `BadInput` anywhere below a command).
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
from contextlib import contextmanager

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Strategy coopetition: the toy model of transient in-context learning and a CPU-scale transformer.",
)
toy_app = typer.Typer(no_args_is_help=True, help="The toy model: four vectors, two mechanisms, one competition.")
transformer_app = typer.Typer(no_args_is_help=True, help="The 2-layer attention-only transformer on bursty sequences.")
app.add_typer(toy_app, name="toy")
app.add_typer(transformer_app, name="transformer")


class BadInput(Exception):
    """A user-supplied parameter is invalid: `param` names it, `allowed` says what is allowed."""

    def __init__(self, param: str, allowed: str):
        super().__init__(f"{param}: {allowed}")
        self.param = param
        self.allowed = allowed


def main() -> None:
    """Console-script entry point: one-line errors with exit code 2 for bad input or bad usage."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=sys.argv[1:], prog_name="coop", standalone_mode=False)
    except BadInput as err:
        print(f"coop: error: {err}", file=sys.stderr)
        sys.exit(2)
    except Exception as err:  # click's usage errors (typer vendors click; match them by shape)
        if not (hasattr(err, "format_message") and hasattr(err, "exit_code")):
            raise
        if type(err).__name__ == "NoArgsIsHelpError":
            print(err.format_message())
            sys.exit(0)
        message = " ".join(err.format_message().split())
        print(f"coop: error: {message}", file=sys.stderr)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


# ---------------------------------------------------------------------------------------------
# coop toy ...
# ---------------------------------------------------------------------------------------------

# (toy commands below)


# The job layer's options (runio.jobs), declared once for every command that runs several runs.
JOB_OPTIONS = {  # name: (type, option)
    "executor": (str, typer.Option(None, "--executor", help="local (default: one job per core), slurm or debug (in this process); env COOP_EXECUTOR.")),
    "jobs": (int, typer.Option(None, "--jobs", help="local: runs at a time (default: one per core); env COOP_JOBS.")),
    "partition": (str, typer.Option(None, "--partition", help="Slurm partition; env COOP_PARTITION.")),
    "time": (int, typer.Option(None, "--time", help="Slurm time limit per job, minutes (default 60; requeued on timeout); env COOP_TIME.")),
    "cpus_per_job": (int, typer.Option(None, "--cpus-per-job", help="Slurm CPUs per job (default 1); env COOP_CPUS_PER_JOB.")),
    "gpus_per_job": (int, typer.Option(None, "--gpus-per-job", help="GPUs per job (default 0); env COOP_GPUS_PER_JOB.")),
    "mem": (float, typer.Option(None, "--mem", help="Slurm memory per job, GB; env COOP_MEM.")),
}


def with_job_options(*, skip: tuple[str, ...] = ()):
    """Give a command the job layer's options (JOB_OPTIONS but `skip`), passed to it as one dict `job`."""
    names = [n for n in JOB_OPTIONS if n not in skip]

    def decorate(fn):
        sig = inspect.signature(fn)
        extra = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=JOB_OPTIONS[n][1], annotation=JOB_OPTIONS[n][0])
                 for n in names]

        @functools.wraps(fn)
        def command(**kwargs):
            job = {n: kwargs.pop(n) for n in names}
            return fn(**kwargs, job=job)

        command.__signature__ = sig.replace(parameters=[p for p in sig.parameters.values() if p.name != "job"] + extra)
        del command.__wrapped__  # typer reads __signature__, not the wrapped function's
        return command

    return decorate


def _finite(name: str, value: float, *, low: float = 0.0, strict: bool = False) -> float:
    """A finite float >= low (> low if strict), else BadInput naming the option."""
    import math

    ok = math.isfinite(value) and (value > low if strict else value >= low)
    if not ok:
        raise BadInput(name, f"must be a finite number {'>' if strict else '>='} {low:g}, got {value}")
    return value


def _int_list(name: str, text: str, count: int | None = None) -> tuple[int, ...]:
    """A comma list of positive integers (exactly `count` of them when given)."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        values = ()
    if not values or any(v < 1 for v in values) or (count is not None and len(values) != count):
        what = f"{count} " if count else ""
        raise BadInput(name, f"must be {what}comma-separated positive integers (e.g. 20,20,20,160), got {text!r}")
    return values


def _clamp_list(text: str, dims) -> tuple[str, ...]:
    """The items of a --clamp spec (NAME or NAME:K), checked against the dimensions."""
    from toymodel import clamp

    spec = clamp.split(text)
    try:
        clamp.counts(spec, dims)
    except ValueError as err:
        raise BadInput("--clamp", str(err)) from None
    return spec


def _stop_loss(value: float | None) -> float | None:
    if value is not None:
        _finite("--stop-at-loss", value)
    return value


def _fmt(x) -> str:
    return "nan" if x is None else f"{x:.6g}"


def _choice(name: str, value: str, allowed) -> str:
    if value not in allowed:
        raise BadInput(name, f"must be one of {'|'.join(allowed)}, got {value!r}")
    return value


@toy_app.command()
def simulate(
    dims: str = typer.Option(None, help="n_a,n_b,n_c,n_d [default: 20,20,20,160, or from --init-file]"),
    alpha: float = typer.Option(0.1, help="Competition strength (>= 0)."),
    mu1: float = typer.Option(0.1, help="Offset of mechanism 1, ICL (>= 0)."),
    mu2: float = typer.Option(0.0, help="Offset of mechanism 2, CIWL (>= 0)."),
    lr: float = typer.Option(1.0, help="Learning rate (> 0); for flow, time = lr * step."),
    steps: int = typer.Option(16000, help="Training steps (>= 1)."),
    seed: int = typer.Option(7, help="Random draw (7 = the paper's draw; others i.i.d. N(0,1) the same way)."),
    init_file: str = typer.Option(None, help=".npz with keys a b c d a_star b_star c_star d_star."),
    method: str = typer.Option("gd", help="gd | sgd | momentum | adam (optax) | flow (diffrax ODE)."),
    space: str = typer.Option("auto", help="reduced (exact, 8 scalars) | full (the vectors) | auto."),
    aggregate: str = typer.Option("mean", help="mean | sum over tensor entries."),
    clamp: str = typer.Option("", help="Held at the target from step 0: NAME (whole vector) or NAME:K (its first K "
                                       "coordinates), e.g. b:10,c (grafting analogue)."),
    stop_at_loss: float = typer.Option(None, help="End at the first step whose loss is below this (>= 0) [default: never]."),
    every: int = typer.Option(1, help="Record a row every this many steps (>= 1)."),
    out: str = typer.Option("runs/toy", help="Output folder."),
) -> None:
    """Train the toy model once; write trajectory.csv, summary.json and trajectory.png to --out."""
    import toymodel as tm

    # validate everything before touching --out
    for name, value in (("--alpha", alpha), ("--mu1", mu1), ("--mu2", mu2)):
        _finite(name, value)
    _finite("--lr", lr, strict=True)
    if steps < 1:
        raise BadInput("--steps", f"must be an integer >= 1, got {steps}")
    if every < 1:
        raise BadInput("--every", f"must be an integer >= 1, got {every}")
    if seed < 0:
        raise BadInput("--seed", f"must be an integer >= 0, got {seed}")
    _choice("--method", method, tm.METHODS)
    _choice("--space", space, tm.SPACES)
    _choice("--aggregate", aggregate, tm.AGGREGATES)
    if method == "adam" and space == "reduced":
        raise BadInput("--space", "adam is per-coordinate and leaves span{v*, v(0)}: use full or auto")
    stop_at_loss = _stop_loss(stop_at_loss)
    dims_given = _int_list("--dims", dims, 4) if dims is not None else None
    if init_file is not None:
        try:
            draw = tm.load_init_file(init_file)
        except ValueError as err:
            raise BadInput("--init-file", str(err)) from None
        if dims_given is not None and dims_given != draw.dims:
            raise BadInput("--dims", f"must match the init file's dims {draw.dims} or be omitted, got {dims_given}")
    else:
        draw = tm.paper_draw(seed, dims_given or tm.PAPER_DIMS)
    clamped = _clamp_list(clamp, draw.dims)

    params = tm.LossParams(alpha, mu1, mu2, aggregate)
    config = tm.RunConfig(method=method, lr=lr, steps=steps, every=every, clamp=clamped, space=space,
                          stop_at_loss=stop_at_loss)
    traj = tm.simulate(draw, params, config)
    record = {
        "dims": list(draw.dims), "alpha": alpha, "mu1": mu1, "mu2": mu2, "lr": lr, "steps": steps,
        "seed": None if init_file else seed, "init_file": init_file, "method": method,
        "space": config.resolved_space, "aggregate": aggregate, "clamp": list(clamped), "every": every,
        "stop_at_loss": stop_at_loss,
    }
    title = f"α={alpha:g}, μ1={mu1:g}, μ2={mu2:g}, dims={','.join(map(str, draw.dims))}, {method}, lr={lr:g}"
    info = tm.write_run(traj, record, out, title)
    final = info["final"]
    typer.echo(
        f"{info['outcome']}: L1 min {traj.l1_min:.6g} at step {traj.l1_min_step:,}; "
        f"at step {info['final_step']:,}: L1 {_fmt(final.get('l1'))}, L2 {_fmt(final.get('l2'))}  "
        f"({traj.solver['space']} {method}, {traj.solver['wall_time_s']:.2f} s) -> {out}"
    )
    if traj.stopped_at is not None:
        typer.echo(f"stopped at step {traj.stopped_at:,}: loss {_fmt(final.get('loss'))} < {stop_at_loss:g}")
    if traj.diverged_at is not None:
        print(f"coop: error: diverged (non-finite loss) at step {traj.diverged_at}; "
              f"trajectory up to it written to {out}", file=sys.stderr)
        raise typer.Exit(3)


def _cpu_devices() -> None:
    """One JAX CPU device per core, so that a sweep shards its lanes over all of them. Set before
    JAX starts, and only for sweeps: a single-device program (the transformer) runs ~35% slower
    with the host split into several devices."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={os.cpu_count() or 1}".strip()


def _axis(name: str, text: str):
    from toymodel.sweep import parse_axis

    try:
        return tuple(float(v) for v in parse_axis(text))
    except ValueError as err:
        raise BadInput(name, str(err)) from None


def _shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        index, count = -1, 0
    if count < 1 or not 0 <= index < count:
        raise BadInput("--shard", f"must be i/n with n >= 1 and 0 <= i < n (e.g. 0/4), got {text!r}")
    return index, count


def _progress_bar(description: str):
    """A rich progress bar as a `progress(done, total)` callback, and its context manager."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TimeRemainingColumn(), transient=False)
    task = bar.add_task(description, total=None)

    def update(done, total):
        bar.update(task, completed=done, total=total)

    return bar, update


@toy_app.command()
@with_job_options()
def sweep(
    alpha: str = typer.Option("0.1", help="SPEC: a value, a comma list, or start:stop:num."),
    mu1: str = typer.Option("0.1", help="SPEC for mu1."),
    mu2: str = typer.Option("0", help="SPEC for mu2."),
    steps: int = typer.Option(16000, help="GD steps per point (>= 1)."),
    lr: float = typer.Option(1.0, help="Learning rate (> 0)."),
    dims: str = typer.Option("20,20,20,160", help="n_a,n_b,n_c,n_d."),
    seed: int = typer.Option(7, help="Seed of the first draw (7 = the paper's draw)."),
    draws: int = typer.Option(1, help="Random draws per point (seeds seed, seed+1, ...)."),
    aggregate: str = typer.Option("mean", help="mean | sum."),
    clamp: str = typer.Option("", help="As for simulate: NAME or NAME:K held at the target in every lane, e.g. b:10,c."),
    chunk: int = typer.Option(8192, help="Lanes (points x draws) per chunk: the unit of work and of resuming."),
    shard: str = typer.Option("0/1", help="i/n: compute only chunks c with c % n == i (one Slurm array task)."),
    shards: int = typer.Option(None, "--shards", help="Run the sweep as N shard jobs (--executor) and merge them into --out."),
    out: str = typer.Option(..., help="Output folder (re-running the same command resumes it)."),
    job: dict = None,
) -> None:
    """Phase diagram: outcome class and metrics over a grid of (alpha, mu1, mu2) [x draws]."""
    _cpu_devices()
    axes = {name: _axis(f"--{name}", text) for name, text in (("alpha", alpha), ("mu1", mu1), ("mu2", mu2))}
    if steps < 1:
        raise BadInput("--steps", f"must be an integer >= 1, got {steps}")
    _finite("--lr", lr, strict=True)
    dims_t = _int_list("--dims", dims, 4)
    if seed < 0:
        raise BadInput("--seed", f"must be an integer >= 0, got {seed}")
    if draws < 1:
        raise BadInput("--draws", f"must be an integer >= 1, got {draws}")
    _choice("--aggregate", aggregate, ("mean", "sum"))
    clamped = _clamp_list(clamp, dims_t)
    if chunk < 1:
        raise BadInput("--chunk", f"must be an integer >= 1, got {chunk}")
    shard_t = _shard(shard)
    if shards is not None:
        if shards < 1:
            raise BadInput("--shards", f"must be an integer >= 1, got {shards}")
        if shard != "0/1":
            raise BadInput("--shards", "runs every shard itself: leave out --shard")
    options = _job_options(**job, used=shards is not None,
                           needs="--shards")

    from toymodel.plots import plot_sweep
    from toymodel.sweep import SweepConfig, missing_chunks, run_shards, run_sweep, shard_folders, write_results

    config = SweepConfig(axes["alpha"], axes["mu1"], axes["mu2"], steps=steps, lr=lr, dims=dims_t, seed=seed,
                         draws=draws, aggregate=aggregate, chunk=chunk, clamp=clamped)
    if shards is not None:
        bar, progress = _progress_bar(f"sweep as {shards} shard jobs ({options.executor})")
        try:
            with bar:
                timings = run_shards(config, out, shards, options, progress)
        except ValueError as err:  # a shard folder holding another sweep
            raise BadInput("--out", str(err)) from None
        except RuntimeError as err:  # a failed shard job, named with its log
            typer.echo(f"coop: {err}; when the shards are done: coop toy merge {out}/shards/shard_* --out {out}", err=True)
            raise typer.Exit(1) from None
        info = write_results(config, shard_folders(out, shards), out, timings)
        plot_sweep(config, out)
        counts = ", ".join(f"{k} {v}" for k, v in info["outcome_counts"].items())
        typer.echo(f"{config.lanes:,} lanes as {shards} shards in {timings['wall_time_s']:.1f} s; outcomes: {counts} -> {out}")
        return
    bar, progress = _progress_bar(f"sweep {config.lanes:,} lanes x {steps:,} steps")
    try:
        with bar:
            timings = run_sweep(config, out, shard_t, progress)
    except ValueError as err:  # a folder holding another sweep
        raise BadInput("--out", str(err)) from None
    if missing_chunks(config, [out]):
        typer.echo(f"shard {shard_t[0]}/{shard_t[1]} done in {timings['wall_time_s']:.1f} s "
                   f"({timings['chunks_computed']} chunks computed); combine the shards with `coop toy merge`")
        return
    info = write_results(config, [out], out, timings)
    plot_sweep(config, out)
    counts = ", ".join(f"{k} {v}" for k, v in info["outcome_counts"].items())
    typer.echo(f"{config.lanes:,} lanes in {timings['wall_time_s']:.1f} s on {len(timings['devices'])} device(s); "
               f"outcomes: {counts} -> {out}")


def _point_options(alpha: float, mu1: float, mu2: float, dims: str, seed: int):
    for name, value in (("--alpha", alpha), ("--mu1", mu1), ("--mu2", mu2)):
        _finite(name, value)
    if seed < 0:
        raise BadInput("--seed", f"must be an integer >= 0, got {seed}")
    return _int_list("--dims", dims, 4)


@toy_app.command("fixed-points")
def fixed_points_cmd(
    alpha: float = typer.Option(0.1, help="Competition strength (>= 0)."),
    mu1: float = typer.Option(0.1, help="ICL offset (>= 0)."),
    mu2: float = typer.Option(0.0, help="CIWL offset (>= 0)."),
    dims: str = typer.Option("20,20,20,160", help="n_a,n_b,n_c,n_d."),
    seed: int = typer.Option(7, help="Draw whose target norms |v*|² enter the equations (7 = paper)."),
    aggregate: str = typer.Option("mean", help="mean | sum."),
    out: str = typer.Option(..., help="Output folder: fixed_points.json."),
) -> None:
    """Fixed points of the reduced dynamics, their eigenvalues and stability."""
    dims_t = _point_options(alpha, mu1, mu2, dims, seed)
    _choice("--aggregate", aggregate, ("mean", "sum"))
    import toymodel as tm
    from toymodel import analysis, reduced
    from runio import write_json

    draw = tm.paper_draw(seed, dims_t)
    _, _, s, _ = reduced.reduce(draw)
    params = tm.LossParams(alpha, mu1, mu2, aggregate)
    points = analysis.fixed_points(params, s, dims_t)
    write_json(f"{out}/fixed_points.json", {
        "config": {"alpha": alpha, "mu1": mu1, "mu2": mu2, "dims": list(dims_t), "seed": seed, "aggregate": aggregate},
        "coordinates": "m1 = ICL strength, m2 = CIWL strength, z = (p_b p_c)^2 (shared-layer scale); "
                       "p, q = reduced state of a representative (q = 0, p_b = p_c)",
        "closed_form_checks": analysis.closed_form_checks(),
        "fixed_points": points,
    })
    for fp in points:
        typer.echo(f"  m1={fp['m1']:.4f} m2={fp['m2']:.4f}  L1={fp['l1']:.4g} L2={fp['l2']:.3g}  "
                   f"{fp['type']:<32s} ({fp['found_by']})")
    if not any(fp["stable"] for fp in points):
        typer.echo("  no stable finite fixed point: the loss decreases towards mu1*mu2 as the shared layer grows")
    typer.echo(f"-> {out}/fixed_points.json")


def _value_list(name: str, text: str) -> tuple[float, ...]:
    """A comma list of finite values >= 0."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = (float("nan"),)
    for v in values:
        _finite(name, v)
    return values


@toy_app.command()
def portrait(
    alpha: str = typer.Option("0.1", help="Value or comma list (one panel per combination)."),
    mu1: str = typer.Option("0.1", help="Value or comma list."),
    mu2: str = typer.Option("0", help="Value or comma list."),
    dims: str = typer.Option("20,20,20,160", help="n_a,n_b,n_c,n_d."),
    seeds: str = typer.Option("7,8,9,10,11", help="Draws whose free gradient flows are drawn."),
    time: float = typer.Option(16000.0, help="Flow time (= GD steps at lr 1)."),
    clamp: str = typer.Option("", help="As for simulate, applied to the drawn flows: NAME or NAME:K, e.g. b:10,c:10."),
    out: str = typer.Option(..., help="Output folder: portrait.png."),
) -> None:
    """Phase portraits in the (ICL strength, CIWL strength) plane: clamped-flow field, free-flow
    trajectories (diffrax), fixed points by type. Comma lists give a grid of small multiples."""
    import itertools

    alphas, mu1s, mu2s = _value_list("--alpha", alpha), _value_list("--mu1", mu1), _value_list("--mu2", mu2)
    dims_t = _int_list("--dims", dims, 4)
    try:
        seed_list = tuple(int(x) for x in seeds.split(","))
    except ValueError:
        seed_list = (-1,)
    if not seed_list or min(seed_list) < 0:
        raise BadInput("--seeds", f"must be a comma list of integers >= 0, got {seeds!r}")
    _finite("--time", time, strict=True)
    clamped = _clamp_list(clamp, dims_t)
    panels = list(itertools.product(alphas, mu1s, mu2s))
    if len(panels) > 36:
        raise BadInput("--alpha/--mu1/--mu2", f"at most 36 panels, got {len(panels)}")
    import toymodel as tm
    from toymodel.plots import plot_portraits
    from toymodel.portrait import compute_portrait

    bar, progress = _progress_bar(f"portraits ({len(panels)} panels)")
    portraits = []
    with bar:
        progress(0, len(panels))
        for i, (a, m1, m2) in enumerate(panels):
            portraits.append(compute_portrait(tm.LossParams(a, m1, m2), dims=dims_t, seeds=seed_list, time=time,
                                              clamp=clamped))
            progress(i + 1, len(panels))
    varying = [len(x) for x in (alphas, mu1s, mu2s) if len(x) > 1]
    ncols = varying[-1] if varying else 1
    plot_portraits(portraits, f"{out}/portrait.png", ncols=min(ncols, 6))
    typer.echo(f"{len(panels)} panel(s) -> {out}/portrait.png")


@toy_app.command()
def curves(
    run_dirs: list[str] = typer.Argument(..., metavar="RUN_DIR...", help="`coop toy simulate` output folders."),
    labels: str = typer.Option(None, help="Comma-separated legend labels, one per run (default: folder names)."),
    title: str = typer.Option("", help="Figure title."),
    out: str = typer.Option(..., help="Output figure (.png)."),
) -> None:
    """Overlay L1 of several toy runs with their ICL peaks marked; print each run's peak step and depth."""
    from pathlib import Path

    from toymodel.plots import plot_l1_curves
    from toymodel.runs import read_run

    names = [Path(r).name for r in run_dirs] if labels is None else [x.strip() for x in labels.split(",")]
    if len(names) != len(run_dirs):
        raise BadInput("--labels", f"one label per run ({len(run_dirs)}), got {len(names)}")
    if not out.endswith(".png"):
        raise BadInput("--out", f"must be a .png file, got {out!r}")
    runs = []
    for name, folder in zip(names, run_dirs):
        try:
            info, cols = read_run(folder)
        except ValueError as err:
            raise BadInput("RUN_DIR", str(err)) from None
        runs.append((name, cols["step"], cols["l1"], info["l1_min"], info["l1_min_step"]))
    plot_l1_curves(runs, out, title)
    w = max(len(n) for n in names) + 2
    typer.echo(f"{'run':<{w}}{'ICL peak step':>14}{'L1 min':>12}{'L1 end':>12}")
    for name, steps, l1, l1_min, peak in runs:
        typer.echo(f"{name:<{w}}{peak:>14,}{l1_min:>12.4g}{l1[-1]:>12.4g}")
    typer.echo(f"-> {out}")


@toy_app.command()
def merge(
    folders: list[str] = typer.Argument(..., help="Shard folders of one sweep."),
    out: str = typer.Option(..., help="Output folder for the merged result."),
) -> None:
    """Merge the folders of a sharded sweep into one result (identical to a one-shot sweep)."""
    from toymodel.plots import plot_sweep
    from toymodel.sweep import merge_config, write_results

    try:
        config = merge_config(folders)
    except ValueError as err:
        raise BadInput("FOLDERS", str(err)) from None
    info = write_results(config, folders, out, {"merged_from": list(folders)})
    plot_sweep(config, out)
    typer.echo(f"merged {len(folders)} folder(s), {config.n_chunks} chunks -> {out}: {info['outcome_counts']}")

# ---------------------------------------------------------------------------------------------
# coop transformer ...
# ---------------------------------------------------------------------------------------------

# (transformer commands below)

_TF_OPTION = {"train_dist": "--train-dist", "eval_every": "--eval-every", "eval_size": "--eval-size",
              "label_lr_scale": "--label-lr-scale", "label_init_std": "--label-init-std", "weight_decay": "--weight-decay", "label_weight_decay": "--label-weight-decay",
              "stop_when_icl_below": "--stop-when-icl-below", "tie_labels": "--tie-labels",
              "init_layer": "--init-layer", "freeze_layer": "--freeze-layer", "eval_classes": "--eval-classes",
              "eval_exemplars": "--eval-exemplars", "context_exemplar": "--context-exemplar", "icl_labels": "--icl-labels",
              "pos_init": "--pos-init", "zipf": "--zipf", "superclasses": "--superclasses", "class_spread": "--class-spread",
              "match_query_fraction": "--match-query-fraction", "data_seed": "--data-seed"}


@transformer_app.command("train")
@with_job_options()
def transformer_train(
    out: str = typer.Option(..., "--out", help="Run directory (new or empty; or an existing run with --resume)."),
    preset: str = typer.Option("cpu", "--preset", help="cpu (transience in minutes on a CPU) or paper (needs --embeddings)."),
    classes: int = typer.Option(None, "--classes", help="Number of classes K (= labels)."),
    exemplars: int = typer.Option(None, "--exemplars", help="Exemplars per class; 0 draws a fresh one every time."),
    noise: float = typer.Option(None, "--noise", help="Within-class noise eps of the Gaussian clusters."),
    dim: int = typer.Option(None, "--dim", help="Exemplar dimension D."),
    zipf: float = typer.Option(None, "--zipf", help="Training classes drawn with p_k ~ 1/(k+1)^ZIPF (0: uniform; evaluators stay uniform)."),
    superclasses: int = typer.Option(None, "--superclasses", help="Group the Gaussian classes into this many superclasses (0: independent means)."),
    class_spread: float = typer.Option(None, "--class-spread", help="Spread of class means around their superclass centre (> 0)."),
    embeddings: str = typer.Option(None, "--embeddings", help="Array (classes, exemplars, dim) in .npz or .h5/.hdf5."),
    train_dist: str = typer.Option(None, "--train-dist", help="bursty, icl_only, ciwl_only or match_query."),
    match_query_fraction: float = typer.Option(None, "--match-query-fraction", help="Bursty training with this fraction of match-query sequences (0..1)."),
    context_exemplar: str = typer.Option(None, "--context-exemplar", help="The query class's context exemplar: replacement (official: may be the query itself) or distinct."),
    icl_labels: str = typer.Option(None, "--icl-labels", help="ICL evaluator labels: 01 (official) or other (owned by neither class)."),
    pos_init: str = typer.Option(None, "--pos-init", help="Positional init: uniform (official, ±1/sqrt(32)) or normal (std 0.02)."),
    lr: float = typer.Option(None, "--lr", help="Adam learning rate."),
    batch: int = typer.Option(None, "--batch", help="Sequences per step."),
    sequences: int = typer.Option(None, "--sequences", help="Training sequences in total (a multiple of --eval-every)."),
    eval_every: int = typer.Option(None, "--eval-every", help="Evaluate and checkpoint every this many sequences."),
    eval_size: int = typer.Option(None, "--eval-size", help="Sequences in each held-out evaluation set."),
    eval_classes: int = typer.Option(None, "--eval-classes", help="Evaluators use the first this many classes (paper: 1600)."),
    eval_exemplars: int = typer.Option(None, "--eval-exemplars", help="... and the first this many exemplars per class (paper: 5)."),
    tie_labels: bool = typer.Option(None, "--tie-labels/--no-tie-labels", help="One table embeds and reads out labels (cpu) or two (paper)."),
    label_lr_scale: float = typer.Option(None, "--label-lr-scale", help="Scale of the label table's Adam step (paper: 1)."),
    label_init_std: float = typer.Option(None, "--label-init-std", help="Init std of the label table (paper: 0.02)."),
    weight_decay: float = typer.Option(None, "--weight-decay", help="AdamW decoupled weight decay (paper: 0)."),
    label_weight_decay: float = typer.Option(None, "--label-weight-decay", help="The label table's decay (default: --weight-decay)."),
    stop_when_icl_below: float = typer.Option(None, "--stop-when-icl-below", help="End once ICL peaked >= 0.7 and fell below this (0: never)."),
    init_layer: str = typer.Option(None, "--init-layer", help="L=RUN_DIR@STEP[,...]: start L (1, 2, embed, first_half or second_half) from that run's checkpoint."),
    freeze_layer: str = typer.Option(None, "--freeze-layer", help="Parts that get no updates, e.g. 2, second_half or 2,embed (clamped training)."),
    seed: int = typer.Option(0, "--seed", help="Seed of clusters, init, data and evaluation sets."),
    data_seed: int = typer.Option(None, "--data-seed", help="Seed of clusters, data and evaluation sets only (default: --seed; the init stays --seed's)."),
    seeds: str = typer.Option(None, "--seeds", help="Several seeds, e.g. 0,1,2,3,4 or 0:5: one run each in OUT/seed_{s}, as jobs."),
    job: dict = None,
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out (same options as it was started with)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Train the 2-layer attention-only transformer; write metrics.csv, summary.json, curves.png, checkpoints/."""
    from pathlib import Path

    from transformer import run_problems, train
    from transformer.experiments import train_seeds

    given = {k: v for k, v in locals().items() if k in _TRAIN_FIELDS}
    cfg = _train_config(preset, given, seed, embeddings)
    if seeds is not None:
        seed_list = _seed_list(seeds)
        options = _job_options(**job)
        try:  # finished seeds are skipped, unfinished ones resume: no --resume needed
            summaries = train_seeds(cfg, out, seed_list, options)
        except ValueError as err:
            raise BadInput("--out", str(err)) from None
        print(f"{'seed':>5}{'ICL peak':>10}{'at seq':>11}{'ICL end':>9}{'CIWL end':>10}{'flip end':>10}{'IWL end':>9}"
              f"{'wall s':>8}{'steps/s':>9}  transient")
        for sd, sm in zip(seed_list, summaries):
            print(f"{sd:>5}{sm['icl_peak_acc']:>10.3f}{sm['icl_peak_sequences']:>11,}{sm['icl_final_acc']:>9.3f}"
                  f"{sm['ciwl_final_acc']:>10.3f}{sm['flip_final_acc']:>10.3f}{sm['iwl_final_acc']:>9.3f}"
                  f"{sm['wall_time_s']:>8.0f}{sm['steps_per_s']:>9.0f}  {sm['transient']}")
        return
    _job_options(**job, used=False)
    for name, allowed in run_problems(cfg, Path(out), resume):
        raise BadInput(f"--{name}", allowed)
    s = train(cfg, out, resume=resume, progress=not quiet)
    print(f"{out}: {s['sequences_seen']:,} sequences, {s['wall_time_s']:.0f} s wall, {s['steps_per_s']:.0f} steps/s")
    print(f"ICL peak {s['icl_peak_acc']:.3f} at {s['icl_peak_sequences']:,} sequences, end {s['icl_final_acc']:.3f}; "
          f"CIWL end {s['ciwl_final_acc']:.3f}; flip end {s['flip_final_acc']:.3f}; IWL end {s['iwl_final_acc']:.3f}; "
          f"transient: {s['transient']}")


@transformer_app.command("grid", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@with_job_options()
def transformer_grid(
    ctx: typer.Context,
    vary: list[str] = typer.Option(..., "--vary", help="FIELD=V1,V2,... (repeatable): train option and its values, e.g. noise=0.5,0.65."),
    seeds: str = typer.Option("0", "--seeds", help="Seeds of every point: 0,1,2 or START:STOP (0:5)."),
    out: str = typer.Option(..., "--out", help="Grid directory: OUT/<run>/, OUT/grid.csv, OUT/grid.png."),
    job: dict = None,
) -> None:
    """Train the product of the --vary values times the seeds (any `train` option, e.g. --preset
    faithful --lr 1e-4, sets the rest); write grid.csv and grid.png. Finished runs are skipped."""
    import dataclasses

    from transformer.experiments import grid_runs, parse_vary, train_grid

    train_cmd = typer.main.get_command(app).commands["transformer"].commands["train"]
    extra = list(ctx.args)
    for bad in ("--out", "--seeds", "--seed", "--resume"):
        if bad in extra:
            raise BadInput(bad, "is set by the grid (--out is the grid's folder, --seeds its seeds)")
    try:
        params = train_cmd.make_context("train", extra + ["--out", out], resilient_parsing=False).params
    except Exception as err:  # the parser's usage errors (typer's vendored click): one line, exit 2
        if not hasattr(err, "format_message"):
            raise
        raise BadInput("train option", err.format_message().splitlines()[0]) from None
    given = {k: v for k, v in params.items() if k in _TRAIN_FIELDS}
    cfg = _train_config(params["preset"], given, 0, params["embeddings"])
    try:
        axes = parse_vary(vary)
    except ValueError as err:
        raise BadInput("--vary", str(err)) from None
    from transformer import check_config

    for field, values in axes.items():  # every value checked before anything runs
        for v in values:
            for name, allowed in check_config(dataclasses.replace(cfg, **{field: v})):
                raise BadInput("--vary", f"{field}={v}: {_TF_OPTION.get(name, '--' + name.replace('_', '-'))} {allowed}")
    seed_list = _seed_list(seeds)
    options = _job_options(**job)
    runs = grid_runs(cfg, axes, seed_list, out)
    bar, update = _progress_bar(f"grid of {len(runs)} runs")
    try:
        with bar:
            table = train_grid(cfg, axes, seed_list, out, options, progress=lambda done, total, running: update(done, total))
    except ValueError as err:
        raise BadInput("--out", str(err)) from None
    names = list(axes)
    print(f"{'run':<40}{'ICL peak':>9}{'at seq':>11}{'ICL end':>8}{'CIWL end':>9}{'flip max':>9}{'IWL max':>8}  transient")
    for i, name in enumerate(table["run"]):
        print(f"{name:<40}{table['icl_peak'][i]:>9.3f}{table['icl_peak_sequences'][i]:>11,}{table['icl_end'][i]:>8.3f}"
              f"{table['ciwl_end'][i]:>9.3f}{table['flip_peak'][i]:>9.3f}{table['iwl_max'][i]:>8.3f}  {bool(table['transient'][i])}")
    print(f"{len(table['run'])} runs over {', '.join(names)} -> {out}/grid.csv, {out}/grid.png")


_TRAIN_FIELDS = ("classes", "exemplars", "noise", "dim", "train_dist", "lr", "batch", "sequences", "eval_every", "eval_size",
                 "tie_labels", "label_lr_scale", "label_init_std", "weight_decay", "label_weight_decay", "stop_when_icl_below",
                 "init_layer", "freeze_layer", "eval_classes", "eval_exemplars", "context_exemplar", "icl_labels", "pos_init",
                 "zipf", "superclasses", "class_spread", "match_query_fraction", "data_seed")


def _train_config(preset: str, given: dict, seed: int, embeddings: str | None):
    """The TrainConfig of `coop transformer train`'s options (given: field -> value or None), else BadInput."""
    import dataclasses
    from pathlib import Path

    from transformer import PRESETS, TrainConfig, check_config, donor_problems, resolve_embeddings
    from transformer.config import init_layers
    from transformer.presets import NEEDS_EMBEDDINGS

    if preset not in PRESETS:
        raise BadInput("--preset", f"one of {', '.join(PRESETS)}")
    cfg = TrainConfig(**{**PRESETS[preset], **{k: v for k, v in given.items() if v is not None}, "seed": seed})
    for name, allowed in check_config(cfg) + donor_problems(cfg):
        raise BadInput(_TF_OPTION.get(name, f"--{name}"), allowed)
    if given.get("init_layer") is not None:  # absolute paths, so the run resumes from any folder
        cfg = dataclasses.replace(cfg, init_layer=",".join(
            f"{layer}={run.resolve()}" + ("" if step is None else f"@{step}") for layer, run, step in init_layers(cfg)))
    if embeddings is not None:
        for name in ("classes", "exemplars"):
            if given.get(name) is not None and given[name] <= 0:
                raise BadInput(f"--{name}", "must be a positive integer with --embeddings")
        try:
            cfg = resolve_embeddings(dataclasses.replace(cfg, embeddings=str(Path(embeddings).resolve())),
                                     given.get("classes"), given.get("exemplars"))
        except ValueError as err:
            raise BadInput("--embeddings", str(err)) from None
        if given.get("dim") is not None and given["dim"] != cfg.dim:
            raise BadInput("--dim", f"must match the embeddings file's dimension ({cfg.dim}) or be left out")
    elif preset in NEEDS_EMBEDDINGS:
        raise BadInput("--embeddings", f"the {preset} preset trains on real features: give a (classes, exemplars, dim) file")
    return cfg


def _seed_list(text: str) -> list[int]:
    """`0,1,2` or `START:STOP` (STOP excluded) as a list of distinct seeds, else BadInput."""
    try:
        if ":" in text:
            a, b = (int(v) for v in text.split(":"))
            seeds = list(range(a, b))
        else:
            seeds = [int(v) for v in text.split(",")]
    except ValueError:
        raise BadInput("--seeds", f"comma-separated integers (0,1,2) or a range START:STOP (0:5), got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise BadInput("--seeds", f"at least one seed, each once, got {text!r}")
    return seeds


def _job_options(executor, jobs, partition, time, cpus_per_job, gpus_per_job, mem, used: bool = True, needs: str = "--seeds"):
    """JobOptions from the command line and the COOP_* environment, else BadInput. With `used`
    False (a single run, no jobs) any job option given is refused (it needs `needs`)."""
    from runio.jobs import JobOptions

    given = dict(executor=executor, jobs=jobs, partition=partition, time=time, cpus_per_job=cpus_per_job,
                 gpus_per_job=gpus_per_job, mem=mem)
    if not used:
        for name, value in given.items():
            if value is not None:
                raise BadInput(f"--{name.replace('_', '-')}", f"is for several runs: use it with {needs}")
        return None
    try:
        options = JobOptions.from_env(**given)
    except ValueError as err:
        raise BadInput("--executor", str(err)) from None
    explicit = tuple(n for n in ("partition", "time", "cpus_per_job", "gpus_per_job", "mem") if given[n] is not None)
    for name, allowed in options.problems(explicit):
        raise BadInput(f"--{name.replace('_', '-')}", allowed)
    return options


@transformer_app.command("eval")
def transformer_eval(
    run: str = typer.Argument(..., help="A run directory written by `coop transformer train`."),
    step: int = typer.Option(None, "--step", help="Checkpoint step (default: the latest)."),
) -> None:
    """Re-evaluate a checkpoint on the run's held-out evaluation sets and print a table."""
    from pathlib import Path

    from transformer import EVALUATORS
    from transformer.analysis import evaluate_run

    path = Path(run)
    if not (path / "config.json").is_file() or not (path / "checkpoints").is_dir():
        raise BadInput("RUN", f"{run} is not a transformer run directory (no config.json and checkpoints/)")
    if step is not None:
        available = sorted(int(p.stem.split("_")[1]) for p in (path / "checkpoints").glob("params_*.npz"))
        if step not in available:
            shown = ", ".join(map(str, available[:5] + (["..."] if len(available) > 6 else []) + available[5:][-1:]))
            raise BadInput("--step", f"one of the saved steps ({shown})")
    saved_step, ev = evaluate_run(path, step)
    print(f"{run} at step {saved_step}")
    print(f"{'evaluator':<10}{'accuracy':>10}{'loss':>10}")
    for name in EVALUATORS:
        print(f"{name:<10}{ev[f'{name}_acc']:>10.4f}{ev[f'{name}_loss']:>10.4f}")


@contextmanager
def _counter(description: str, total: int):
    """A progress bar over `total` items; yields a callback to call once per item."""
    bar, update = _progress_bar(description)
    done = [0]

    def tick():
        done[0] += 1
        update(done[0], total)

    with bar:
        update(0, total)
        yield tick


def _run(path: str):
    """A transformer run directory for analysis, else BadInput on RUN."""
    from transformer.analysis import Run

    try:
        return Run(path)
    except ValueError as err:
        raise BadInput("RUN_DIR", str(err)) from None


def _steps(run, text: str, option: str) -> list[int]:
    """Comma list of checkpoint steps, or the words peak (ICL peak) and last."""
    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if part == "peak":
            out.append(run.icl_peak_step())
        elif part == "last":
            out.append(run.steps[-1])
        elif part.isdigit() and int(part) in run.steps:
            out.append(int(part))
        else:
            shown = ", ".join(map(str, run.steps[:3])) + f", ..., {run.steps[-1]}"
            raise BadInput(option, f"checkpoint steps of the run ({shown}) or peak / last, got {part!r}")
    if not out:
        raise BadInput(option, "at least one checkpoint step, or peak / last")
    return list(dict.fromkeys(out))


def _out_dir(out: str):
    from pathlib import Path

    path = Path(out)
    if path.exists() and not path.is_dir():
        raise BadInput("--out", f"{out} is a file, not a directory")
    return path


@transformer_app.command("analyze")
def transformer_analyze(
    run_dir: str = typer.Argument(..., metavar="RUN_DIR", help="A run directory written by `coop transformer train`."),
    out: str = typer.Option(..., "--out", help="Output directory (progress.csv, progress.png, ablation.csv, ablation.png)."),
    checkpoints: int = typer.Option(0, "--checkpoints", help="Progress measures at this many checkpoints, evenly spread (0: all)."),
    ablate_at: str = typer.Option("peak,last", "--ablate-at", help="Checkpoints to ablate: steps, or peak (ICL peak) and last."),
) -> None:
    """Progress measures over the checkpoints and Layer-1 ablations, from the model's named activations."""
    import numpy as np

    from runio import write_csv
    from transformer import EVALUATORS
    from transformer import plots
    from transformer.analysis import ablation_table, progress_table

    run = _run(run_dir)
    if checkpoints < 0:
        raise BadInput("--checkpoints", f"must be >= 0 (0: all {len(run.steps)}), got {checkpoints}")
    steps = run.spread(checkpoints) if checkpoints else run.steps
    ablate = _steps(run, ablate_at, "--ablate-at")
    folder = _out_dir(out)
    with _counter("progress measures", len(steps)) as tick:
        cols = progress_table(run, steps, progress=tick)
    write_csv(folder / "progress.csv", cols)
    title = f"{run.path.name}: {run.config.train_dist}, seed {run.config.seed}"
    plots.progress(folder / "progress.png", cols, run.model.heads, title=title)
    rows = ablation_table(run, ablate)
    write_csv(folder / "ablation.csv", {k: [r[k] for r in rows] for k in rows[0]})
    plots.ablation(folder / "ablation.png", rows, EVALUATORS, title=title)
    peak = int(np.argmax(cols["l2_induction"]))
    print(f"progress measures at {len(steps)} checkpoints -> {folder / 'progress.csv'}, {folder / 'progress.png'}")
    print(f"{'sequences':>11}{'L1 prev':>9}{'L1 self':>9}{'y2->x2':>8}{'y2->x1':>8}{'L2 induction':>14}{'ICL':>7}{'flip':>7}")
    for i in sorted({0, peak, len(steps) // 2, len(steps) - 1}):
        print(f"{cols['sequences'][i]:>11,}{cols['l1_prev'][i]:>9.3f}{cols['l1_self'][i]:>9.3f}{cols['l1_y2_prev'][i]:>8.3f}"
              f"{cols['l1_y2_first'][i]:>8.3f}{cols['l2_induction'][i]:>14.3f}"
              f"{cols.get('icl_acc', [np.nan] * len(steps))[i]:>7.3f}{cols.get('flip_acc', [np.nan] * len(steps))[i]:>7.3f}")
    print(f"Layer-1 ablation -> {folder / 'ablation.csv'}, {folder / 'ablation.png'}")
    print(f"{'sequences':>11}  {'ablation':<24}" + "".join(f"{e:>7}" for e in EVALUATORS))
    for r in rows:
        if r["ablated"] in ("none", "layer"):
            what = "none" if r["path"] == "none" else f"{r['path']} {r['mode']} layer"
            print(f"{r['sequences']:>11,}  {what:<24}" + "".join(f"{r[e + '_acc']:>7.3f}" for e in EVALUATORS))


@transformer_app.command("graft")
def transformer_graft(
    run_dir: str = typer.Argument(..., metavar="RUN_DIR", help="A run directory written by `coop transformer train`."),
    layer: str = typer.Option(..., "--layer", help="What to transplant: 1 or 2 (a layer), first_half (embeddings + block 0) or second_half (block 1, final norm, unembedding)."),
    out: str = typer.Option(..., "--out", help="Output directory (graft.csv, graft.png)."),
    checkpoints: int = typer.Option(16, "--checkpoints", help="Use this many checkpoints, evenly spread (the matrix is n x n)."),
) -> None:
    """Put layer L of checkpoint i into the model of checkpoint j, for all i, j; score every evaluator."""
    import numpy as np

    from runio import write_csv
    from transformer import plots
    from transformer.analysis import graft_matrix
    from transformer.config import parse_layer

    run = _run(run_dir)
    try:
        layer = parse_layer(layer, run.model.layers)
    except ValueError as err:
        raise BadInput("--layer", str(err)) from None
    if checkpoints < 2:
        raise BadInput("--checkpoints", f"must be >= 2 (the run has {len(run.steps)}), got {checkpoints}")
    folder = _out_dir(out)
    tag, what = (f"L{layer}", f"Layer {layer}") if isinstance(layer, int) else (layer, layer.replace("_", " "))
    steps = run.spread(checkpoints)
    seq = np.array([run.sequences(s) for s in steps])
    with _counter("grafting", len(steps) ** 2) as tick:
        mats = graft_matrix(run, layer, steps, progress=tick)
    n = len(steps)
    cols = {"source_step": np.repeat(steps, n), "source_sequences": np.repeat(seq, n),
            "target_step": np.tile(steps, n), "target_sequences": np.tile(seq, n)}
    cols.update({k: v.ravel() for k, v in mats.items()})
    write_csv(folder / "graft.csv", cols)
    plots.graft_heatmaps(folder / "graft.png", seq, mats, layer,
                         title=f"{run.path.name}: {what} of checkpoint i in the model of checkpoint j")
    peak = steps.index(min(steps, key=lambda s: abs(s - run.icl_peak_step())))
    print(f"{n} x {n} grafts of {tag} -> {folder / 'graft.csv'}, {folder / 'graft.png'}")
    print(f"{'model j (seq)':>14}{'own flip':>10}{'+ peak ' + tag:>{max(12, len(tag) + 8)}}{'+ last ' + tag:>{max(12, len(tag) + 8)}}{'own ICL':>9}"
          f"{'+ peak':>8}{'+ last':>8}")
    for j in range(n):
        f, c = mats["flip_acc"], mats["icl_acc"]
        w = max(12, len(tag) + 8)
        print(f"{seq[j]:>14,}{f[j, j]:>10.3f}{f[peak, j]:>{w}.3f}{f[-1, j]:>{w}.3f}{c[j, j]:>9.3f}{c[peak, j]:>8.3f}{c[-1, j]:>8.3f}")


@transformer_app.command("curves")
def transformer_curves(
    run_dirs: list[str] = typer.Argument(..., metavar="RUN_DIR...", help="Run directories to overlay."),
    out: str = typer.Option(..., "--out", help="Output figure (.png)."),
    labels: str = typer.Option(None, "--labels", help="Comma-separated legend labels, one per run (default: folder names)."),
    threshold: float = typer.Option(0.8, "--icl-threshold", help="ICL counts as learned at this accuracy (0.5 < t < 1)."),
) -> None:
    """Overlay the evaluator curves of several runs; print sequences to reach ICL and their ratios."""
    from pathlib import Path

    from transformer import plots
    from transformer.analysis import sequences_to
    from transformer.checkpoints import read_metrics

    if not (0.5 < threshold < 1):
        raise BadInput("--icl-threshold", f"must be in (0.5, 1), got {threshold}")
    names = [Path(r).name for r in run_dirs] if labels is None else [x.strip() for x in labels.split(",")]
    if len(names) != len(run_dirs):
        raise BadInput("--labels", f"one label per run ({len(run_dirs)}), got {len(names)}")
    if not out.endswith(".png"):
        raise BadInput("--out", f"a .png file, got {out!r}")
    runs = []
    for r in run_dirs:
        if not (Path(r) / "metrics.csv").is_file():
            raise BadInput("RUN_DIR", f"{r} has no metrics.csv (not a transformer run directory)")
        runs.append(read_metrics(Path(r) / "metrics.csv"))
    marks = {name: sequences_to(rows, "icl_acc", threshold) for name, rows in zip(names, runs)}
    plots.runs_overlay(out, list(zip(names, runs)), threshold=threshold, marks=marks)
    first = marks[names[0]]
    w = max(len(n) for n in names) + 2
    print(f"{'run':<{w}}{'ICL peak':>9}{'ICL end':>9}{'flip end':>9}{'seq to ICL >= ' + format(threshold, 'g'):>20}{'speed-up vs first':>18}")
    for name, rows in zip(names, runs):
        m = marks[name]
        if m is None:
            ratio = "-"
        elif first is None:  # the first run never got there: a lower bound
            ratio = f"> {runs[0][-1]['sequences'] / m:.1f}"
        else:
            ratio = f"{first / m:.2f}"
        reached = f"{m:,}" if m is not None else f"> {rows[-1]['sequences']:,}"
        print(f"{name:<{w}}{max(r['icl_acc'] for r in rows):>9.3f}{rows[-1]['icl_acc']:>9.3f}{rows[-1]['flip_acc']:>9.3f}"
              f"{reached:>20}{ratio:>18}")
    print(f"-> {out}")


# ---------------------------------------------------------------------------------------------
# coop figures: every README figure from scratch
# ---------------------------------------------------------------------------------------------


@app.command("figures")
@with_job_options(skip=("jobs",))
def figures_cmd(
    out: str = typer.Option("figures", "--out", help="Where the figures go."),
    cache: str = typer.Option("runs/figures", "--cache", help="Runs and intermediate outputs (reused by the next call)."),
    jobs: int = typer.Option(2, "--jobs", help="local: recipes run at a time (each training uses about one core)."),
    job: dict = None,
) -> None:
    """Regenerate every figure the README shows, from scratch; finished runs are cached for the next call."""
    import time as clock
    from pathlib import Path

    import gallery

    if jobs < 1:
        raise BadInput("--jobs", f"must be a positive integer, got {jobs}")
    options = _job_options(jobs=jobs, **job)
    for name, value in (("--out", out), ("--cache", cache)):
        if Path(value).exists() and not Path(value).is_dir():
            raise BadInput(name, f"{value} is a file, not a directory")
    bar, update = _progress_bar("figures")
    t0 = clock.perf_counter()
    with bar:
        def progress(done, total, running):
            update(done, total)
            bar.update(bar.task_ids[0], description=f"figures ({', '.join(running)})" if running else "figures")

        try:
            records = gallery.make_all(Path(out), Path(cache), jobs=jobs, progress=progress, options=options)
        except RuntimeError as err:  # a failed recipe: one line naming it and its log
            print(f"coop: {err}", file=sys.stderr)
            raise typer.Exit(1) from None
    wall = clock.perf_counter() - t0
    for name, rec in records.items():
        print(f"{name:<20}" + ("cached" if rec.get("cached") else f"{rec['seconds']:8.1f} s" + (" (resumed)" if rec["resumed"] else "")))
    print(f"{sum(len(r.figures) for r in gallery.RECIPES)} figures in {out}/, {wall:.0f} s wall")


# ---------------------------------------------------------------------------------------------
# coop compare: the toy model fitted to a transformer run
# ---------------------------------------------------------------------------------------------

# (compare command below)


def _fixed_params(items, names) -> dict:
    """--fix NAME=VALUE items (each may be a comma list) as a dict, else BadInput."""
    import math

    fixed = {}
    for item in items or []:
        for part in item.split(","):
            name, sep, text = part.partition("=")
            name = name.strip()
            try:
                value = float(text)
            except ValueError:
                value = float("nan")
            if not sep or name not in names or not math.isfinite(value):
                raise BadInput("--fix", f"must be NAME=VALUE with NAME in {','.join(names)} and a finite value, "
                                        f"got {part!r}")
            if name in fixed:
                raise BadInput("--fix", f"{name} given twice")
            fixed[name] = value
    return fixed


@app.command("compare")
def compare(
    source: str = typer.Argument(..., metavar="RUN_DIR|CURVES.csv",
                                 help="A transformer run directory (its metrics.csv) or a CSV with columns "
                                      "sequences,icl_loss,ciwl_loss."),
    out: str = typer.Option(..., "--out", help="Output folder: fit.json, overlay.png, phase.png."),
    fix: list[str] = typer.Option(None, "--fix", help="NAME=VALUE (repeat, or a comma list): hold a parameter fixed. "
                                                      "Names: alpha, mu1, mu2, tau, nd_ratio, A1, B1, A2, B2."),
    starts: int = typer.Option(1024, "--starts", help="Screening starts, simulated in one vmapped batch (>= 1)."),
    refine: int = typer.Option(8, "--refine", help="Best starts refined by least squares (>= 1)."),
    from_sequences: float = typer.Option(None, "--from-sequences",
                                         help="Fit rows with sequences >= this (default: all but the untrained rows at 0)."),
    weights: str = typer.Option("balanced", "--weights", help="balanced (residuals / each curve's SD) | none."),
    losses: str = typer.Option("context", "--losses", help="A run's curves: context (in-context losses) | full (cross-entropy over all labels)."),
    fit_until: float = typer.Option(None, "--fit-until", help="Fit rows up to this many sequences only; predict the rest."),
    seed: int = typer.Option(7, "--seed", help="The toy's draw (7 = the paper's)."),
    max_steps: int = typer.Option(40000, "--max-steps", help="Toy step budget: tau >= last sequences / max-steps."),
    grid: int = typer.Option(40, "--grid", help="Phase diagram points per axis (2..200)."),
) -> None:
    """Fit the toy model's L1, L2 to a run's ICL and CIWL evaluator losses; write fit.json, overlay.png, phase.png."""
    import math
    import time

    started = time.perf_counter()
    from compare import fit as fitmod
    from compare.report import write_report

    if starts < 1:
        raise BadInput("--starts", f"must be an integer >= 1, got {starts}")
    if refine < 1:
        raise BadInput("--refine", f"must be an integer >= 1, got {refine}")
    if from_sequences is not None and not (math.isfinite(from_sequences) and from_sequences >= 0):
        raise BadInput("--from-sequences", f"must be a finite number >= 0, got {from_sequences}")
    _choice("--weights", weights, fitmod.WEIGHTS)
    _choice("--losses", losses, fitmod.LOSSES)
    if seed < 0:
        raise BadInput("--seed", f"must be an integer >= 0, got {seed}")
    if max_steps < 1000 or max_steps % 10:
        raise BadInput("--max-steps", f"must be an integer >= 1000 and a multiple of 10, got {max_steps}")
    if not 2 <= grid <= 200:
        raise BadInput("--grid", f"must be an integer from 2 to 200, got {grid}")
    fixed = _fixed_params(fix, fitmod.PARAMS)
    try:
        config = fitmod.FitConfig(fixed=fixed, starts=starts, refine=refine, weights=weights, seed=seed,
                                  max_steps=max_steps)
    except ValueError as err:
        raise BadInput("--fix", str(err)) from None
    if fit_until is not None and not math.isfinite(fit_until):
        raise BadInput("--fit-until", f"must be a finite number of sequences, got {fit_until}")
    try:
        curves = fitmod.load_curves(source, from_sequences, fit_until, losses)
    except ValueError as err:
        raise BadInput("--fit-until" if "fit_until" in str(err) else "RUN_DIR|CURVES.csv", str(err)) from None
    lo, hi = fitmod.bounds(curves, config)["tau"]
    if "tau" in fixed and not lo <= fixed["tau"] <= hi:
        raise BadInput("--fix", f"tau must lie in [{lo:.4g}, {hi:.4g}] (last sequences / --max-steps .. / 500), "
                                f"got {fixed['tau']}")

    result = fitmod.fit(curves, config)
    t_fit = time.perf_counter() - started
    phase = fitmod.phase_grid(result, grid)
    prediction = None
    if fit_until is not None:
        from compare.predict import predict

        prediction = predict(result, curves)
    write_report(result, phase, out, started, prediction)

    p, se = result.params, result.se
    typer.echo(f"{source}: {int(curves.used.sum())} rows from {curves.s[0]:,.0f} sequences, weights {weights}: "
               f"R² ICL {result.r2['icl']:.4f}, CIWL {result.r2['ciwl']:.4f}")
    typer.echo("  " + "  ".join(f"{k} {p[k]:.4g} " + (f"± {se[k]:.2g}" if k in se else "(fixed)")
                                for k in fitmod.PARAMS))
    if result.poorly_determined:
        typer.echo("  poorly determined: " + "; ".join(f"{k} ({why})" for k, why in result.poorly_determined.items()))
    toy = result.toy
    typer.echo(f"  toy at the fit, {toy['steps']:,} steps: {toy['outcome']} (L1 min {toy['l1_min']:.3g} at step "
               f"{toy['l1_min_step']:,} = {toy['l1_min_sequences']:,.0f} sequences; measured ICL loss min at "
               f"{toy['measured_icl_loss_min_sequences']:,.0f})")
    if prediction is not None:
        fmt = lambda v: "none (persistent)" if v is None else f"{v:,.0f}"  # noqa: E731
        err = "" if prediction.fade_error is None else f" ({100 * prediction.fade_error:+.0f}%)"
        typer.echo(f"  held out after {fit_until:,.0f} sequences ({int(prediction.held_out.sum())} rows): predicted R² "
                   f"ICL {prediction.r2_held_out['icl']:.4f}, CIWL {prediction.r2_held_out['ciwl']:.4f}; ICL accuracy < 0.6 "
                   f"at: measured {fmt(prediction.measured_fade)}, predicted {fmt(prediction.predicted_fade)}{err}")
    t = result.timing
    typer.echo(f"fit {t_fit:.1f} s (screen {t['screen_s']:.1f} s, refine {t['refine_s']:.1f} s), phase diagram "
               f"{phase['wall_time_s']:.1f} s, total {time.perf_counter() - started:.1f} s -> {out}")


if __name__ == "__main__":
    main()
