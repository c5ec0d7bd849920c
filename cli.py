"""`coop`: the command-line interface. A thin typer layer: parse, call the library, print.

Options are declared once, as fields of the library's config dataclasses (`runio.options.option`:
help, allowed values), and generated here from them (`with_fields`): `transformer.config.TrainConfig`,
`toymodel.commands` (the toy commands' options), `compare.config` (`coop compare`'s),
`runio.jobs.JobOptions`. The library validates them: a bad value raises `runio.options.ConfigError`,
which `main` prints as one line naming the option and what is allowed, with exit code 2 and no
traceback, before anything is written.

Compiled programs are kept between runs (JAX's persistent compilation cache, `runio.jaxcache`).

Start-up: this module imports only typer and those light declarations (no jax, sympy or
matplotlib); each command imports what it runs inside its body, so `coop --help` is fast.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack, contextmanager

import typer

from compare.config import Compare, FitConfig
from runio.jaxcache import use_compilation_cache
from runio.jobs import JobOptions
from runio.options import ConfigError, with_fields
from toymodel import commands as toy
from transformer.config import TrainConfig

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

def main() -> None:
    """Console-script entry point: one-line errors with exit code 2 for bad input or bad usage."""
    use_compilation_cache()  # before jax starts (runio.jaxcache)
    command = typer.main.get_command(app)
    try:
        code = command.main(args=sys.argv[1:], prog_name="coop", standalone_mode=False)
    except ConfigError as err:
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


def with_job_options(*, skip: tuple[str, ...] = ()):
    """The job layer's options (`JobOptions`' fields but `skip`; default None, so the COOP_*
    environment applies), handed to the command as one dict `job`."""
    return with_fields(JobOptions, "job", skip=skip, default=None)


def _echo(lines) -> None:
    for line in lines:
        print(line)


def _progress_bar(description: str):
    """A rich progress bar as a `progress(done, total)` callback, and its context manager."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TimeRemainingColumn(), transient=False)
    task = bar.add_task(description, total=None)

    def update(done, total):
        bar.update(task, completed=done, total=total)

    return bar, update


@contextmanager
def _counter(description: str):
    """A progress bar over items, shown from `start(total)` on (the library calls it once the inputs
    are valid); `start` returns the callback to call once per item."""
    bar, update = _progress_bar(description)
    done = [0]
    with ExitStack() as stack:
        def start(total):
            stack.enter_context(bar)
            update(0, total)

            def tick():
                done[0] += 1
                update(done[0], total)

            return tick

        yield start


# ---- coop toy ... -----------------------------------------------------------------------------------


@toy_app.command()
@with_fields(toy.Simulate, "options")
def simulate(options: dict = None) -> None:
    """Train the toy model once; write trajectory.csv, summary.json and trajectory.png to --out."""
    opts = toy.Simulate(**options)
    traj, info = opts.run()  # validated before anything is written
    _echo(toy.simulate_lines(opts, traj, info))
    if traj.diverged_at is not None:
        print(f"coop: error: diverged (non-finite loss) at step {traj.diverged_at}; "
              f"trajectory up to it written to {opts.out}", file=sys.stderr)
        raise typer.Exit(3)


@toy_app.command()
@with_job_options()
@with_fields(toy.Sweep, "options")
def sweep(options: dict = None, job: dict = None) -> None:
    """Phase diagram: outcome class and metrics over a grid of (alpha, mu1, mu2) [x draws]."""
    toy.cpu_devices()  # before jax starts
    opts = toy.Sweep(**options)
    config = opts.config()
    job_options = JobOptions.from_cli(job, used=opts.shards is not None, needs="--shards")
    sharded = opts.shards is not None
    bar, progress = _progress_bar(f"sweep as {opts.shards} shard jobs ({job_options.executor})" if sharded
                                  else f"sweep {config.lanes:,} lanes x {opts.steps:,} steps")
    try:
        with bar:
            timings = toy.sweep(opts, config, job_options, progress)
    except RuntimeError as err:  # a failed shard job, named with its log
        if not sharded:
            raise
        out = opts.out
        typer.echo(f"coop: {err}; when the shards are done: coop toy merge {out}/shards/shard_* --out {out}", err=True)
        raise typer.Exit(1) from None
    _echo(toy.sweep_lines(opts, config, timings))


@toy_app.command("fixed-points")
@with_fields(toy.FixedPoints, "options")
def fixed_points_cmd(options: dict = None) -> None:
    """Fixed points of the reduced dynamics, their eigenvalues and stability."""
    opts = toy.FixedPoints(**options)
    _echo(toy.fixed_point_lines(opts, opts.run()))


@toy_app.command()
@with_fields(toy.Portrait, "options")
def portrait(options: dict = None) -> None:
    """Phase portraits in the (ICL strength, CIWL strength) plane: clamped-flow field, free-flow
    trajectories (diffrax), fixed points by type. Comma lists give a grid of small multiples."""
    opts = toy.Portrait(**options)
    panels = opts.panels()[0]  # validated before the bar appears
    bar, progress = _progress_bar(f"portraits ({len(panels)} panels)")
    with bar:
        count = opts.run(progress)
    typer.echo(f"{count} panel(s) -> {opts.out}/portrait.png")


@toy_app.command()
def curves(
    run_dirs: list[str] = typer.Argument(..., metavar="RUN_DIR...", help="`coop toy simulate` output folders."),
    labels: str = typer.Option(None, help="Comma-separated legend labels, one per run (default: folder names)."),
    title: str = typer.Option("", help="Figure title."),
    out: str = typer.Option(..., help="Output figure (.png)."),
) -> None:
    """Overlay L1 of several toy runs with their ICL peaks marked; print each run's peak step and depth."""
    _echo(toy.curves_lines(toy.curves(run_dirs, labels, title, out), out))


@toy_app.command()
def merge(
    folders: list[str] = typer.Argument(..., help="Shard folders of one sweep."),
    out: str = typer.Option(..., help="Output folder for the merged result."),
) -> None:
    """Merge the folders of a sharded sweep into one result (identical to a one-shot sweep)."""
    config, info = toy.merge(folders, out)
    typer.echo(f"merged {len(folders)} folder(s), {config.n_chunks} chunks -> {out}: {info['outcome_counts']}")


# ---- coop transformer ... ---------------------------------------------------------------------------


@transformer_app.command("train")
@with_job_options()
@with_fields(TrainConfig, "given", default=None)  # None: not given, the preset's value applies
def transformer_train(
    out: str = typer.Option(..., "--out", help="Run directory (new or empty; or an existing run with --resume)."),
    preset: str = typer.Option("cpu", "--preset", help="cpu (transience in minutes on a CPU) or paper (needs --embeddings)."),
    seeds: str = typer.Option(None, "--seeds", help="Several seeds, e.g. 0,1,2,3,4 or 0:5: one run each in OUT/seed_{s}, as jobs."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out (same options as it was started with; a larger --sequences extends it)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    given: dict = None,
    job: dict = None,
) -> None:
    """Train the 2-layer attention-only transformer; write metrics.csv, summary.json, curves.png, checkpoints/."""
    from transformer.presets import build_config

    cfg = build_config(preset, given)
    if seeds is not None:
        from transformer.experiments import parse_seeds, seed_lines, train_seeds

        seed_list, options = parse_seeds(seeds), JobOptions.from_cli(job)
        try:  # finished seeds are skipped, unfinished ones resume: no --resume needed
            summaries = train_seeds(cfg, out, seed_list, options)
        except ValueError as err:
            raise ConfigError("--out", str(err)) from None
        return _echo(seed_lines(seed_list, summaries))
    JobOptions.from_cli(job, used=False)
    from transformer.experiments import train_lines, train_one

    _echo(train_lines(out, train_one(cfg, out, resume, progress=not quiet)))


@transformer_app.command("data")
@with_fields(TrainConfig, "given", default=None)
def transformer_data(
    out: str = typer.Option(..., "--out", help="Folder for data.json (created if missing)."),
    preset: str = typer.Option("cpu", "--preset", help="The preset whose data to measure (any train option overrides it)."),
    queries: int = typer.Option(2000, "--queries", help="Queries the readouts are measured on (>= 10)."),
    given: dict = None,
) -> None:
    """Measure the exemplar source a training would use, before training: readouts over all classes
    (pure IWL), 2-class discrimination (CIWL), exemplar matching (ICL), cosines; write data.json."""
    import dataclasses

    from runio import write_json
    from runio.options import out_dir
    from transformer.datareport import report_lines, source_report
    from transformer.presets import build_config

    if queries < 10:
        raise ConfigError("--queries", "must be an integer >= 10")
    cfg = build_config(preset, given)
    target = out_dir(out) / "data.json"
    props = source_report(cfg, queries)
    write_json(target, {"properties": props, "config": dataclasses.asdict(cfg)})
    _echo(report_lines(props) + [f"-> {target}"])


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
    from transformer.experiments import grid_axes, grid_lines, grid_runs, parse_seeds, train_grid
    from transformer.presets import build_config

    train_cmd = typer.main.get_command(app).commands["transformer"].commands["train"]
    extra = list(ctx.args)
    for bad in ("--out", "--seeds", "--seed", "--resume"):
        if bad in extra:
            raise ConfigError(bad, "is set by the grid (--out is the grid's folder, --seeds its seeds)")
    try:  # the train command's own parser reads the train options
        params = train_cmd.make_context("train", extra + ["--out", out], resilient_parsing=False).params
    except Exception as err:  # the parser's usage errors (typer's vendored click): one line, exit 2
        if not hasattr(err, "format_message"):
            raise
        raise ConfigError("train option", err.format_message().splitlines()[0]) from None
    cfg = build_config(params["preset"], params)  # the train options among the parsed ones
    axes = grid_axes(cfg, vary)
    seed_list = parse_seeds(seeds)
    options = JobOptions.from_cli(job)
    runs = grid_runs(cfg, axes, seed_list, out)
    bar, update = _progress_bar(f"grid of {len(runs)} runs")
    try:
        with bar:
            table = train_grid(cfg, axes, seed_list, out, options, progress=lambda done, total, running: update(done, total))
    except ValueError as err:
        raise ConfigError("--out", str(err)) from None
    _echo(grid_lines(table, axes, out))


@transformer_app.command("eval")
def transformer_eval(
    run: str = typer.Argument(..., help="A run directory written by `coop transformer train`."),
    step: int = typer.Option(None, "--step", help="Checkpoint step (default: the latest)."),
) -> None:
    """Re-evaluate a checkpoint on the run's held-out evaluation sets and print a table."""
    from transformer.choices import EVALUATORS
    from transformer.analysis import evaluate_run, saved_step

    saved_step(run, step)
    at, ev = evaluate_run(run, step)
    print(f"{run} at step {at}")
    print(f"{'evaluator':<10}{'accuracy':>10}{'loss':>10}")
    for name in EVALUATORS:
        print(f"{name:<10}{ev[f'{name}_acc']:>10.4f}{ev[f'{name}_loss']:>10.4f}")


@transformer_app.command("analyze")
def transformer_analyze(
    run_dir: str = typer.Argument(..., metavar="RUN_DIR", help="A run directory written by `coop transformer train`."),
    out: str = typer.Option(..., "--out", help="Output directory (progress.csv, progress.png, ablation.csv, ablation.png, readout.csv)."),
    checkpoints: int = typer.Option(0, "--checkpoints", help="Progress measures at this many checkpoints, evenly spread (0: all)."),
    ablate_at: str = typer.Option("peak,last", "--ablate-at", help="Checkpoints to ablate: steps, or peak (ICL peak) and last."),
) -> None:
    """Progress measures over the checkpoints and Layer-1 ablations, from the model's named activations."""
    from pathlib import Path

    from transformer.analysis import analyze, analyze_lines, open_run

    run = open_run(run_dir)
    with _counter("progress measures") as start:
        cols, rows, readout = analyze(run, checkpoints, ablate_at, out, progress=start)
    from transformer.readout import readout_lines

    _echo(analyze_lines(cols, rows, Path(out)) + [f"Layer 2 reading Layer 1 -> {Path(out) / 'readout.csv'}"]
          + readout_lines(readout))


@transformer_app.command("graft")
def transformer_graft(
    run_dir: str = typer.Argument(..., metavar="RUN_DIR", help="A run directory written by `coop transformer train`."),
    layer: str = typer.Option(..., "--layer", help="What to transplant: 1 or 2 (a layer), first_half (embeddings + block 0) or second_half (block 1, final norm, unembedding)."),
    out: str = typer.Option(..., "--out", help="Output directory (graft.csv, graft.png)."),
    checkpoints: int = typer.Option(16, "--checkpoints", help="Use this many checkpoints, evenly spread (the matrix is n x n)."),
) -> None:
    """Put layer L of checkpoint i into the model of checkpoint j, for all i, j; score every evaluator."""
    from transformer.analysis import graft_lines, graft_report, open_run

    run = open_run(run_dir)
    with _counter("grafting") as start:
        g = graft_report(run, layer, checkpoints, out, progress=start)
    _echo(graft_lines(g))


@transformer_app.command("curves")
def transformer_curves(
    run_dirs: list[str] = typer.Argument(..., metavar="RUN_DIR...", help="Run directories to overlay."),
    out: str = typer.Option(..., "--out", help="Output figure (.png)."),
    labels: str = typer.Option(None, "--labels", help="Comma-separated legend labels, one per run (default: folder names)."),
    threshold: float = typer.Option(0.8, "--icl-threshold", help="ICL counts as learned at this accuracy (0.5 < t < 1)."),
) -> None:
    """Overlay the evaluator curves of several runs; print sequences to reach ICL and their ratios."""
    from transformer.analysis import overlay, overlay_lines

    names, runs, marks = overlay(run_dirs, labels, threshold, out)
    _echo(overlay_lines(names, runs, marks, threshold, out))


# ---- coop figures: every README figure from scratch -------------------------------------------------


@app.command("figures")
@with_job_options(skip=("jobs",))
def figures_cmd(
    out: str = typer.Option("figures", "--out", help="Where the figures go."),
    cache: str = typer.Option("runs/figures", "--cache", help="Runs and intermediate outputs (reused by the next call)."),
    jobs: int = typer.Option(2, "--jobs", help="local: recipes run at a time (each training uses about one core)."),
    only: str = typer.Option(None, "--only", help="Only these recipes (comma list, or faithful) and what they need."),
    job: dict = None,
) -> None:
    """Regenerate every figure the README shows, from scratch; finished runs are cached for the next call."""
    import time as clock
    from pathlib import Path

    import gallery

    if jobs < 1:
        raise ConfigError("--jobs", f"must be a positive integer, got {jobs}")
    options = JobOptions.from_cli({**job, "jobs": jobs})
    recipes = gallery.select(only)
    gallery.check_folders(out, cache)
    bar, update = _progress_bar("figures")
    t0 = clock.perf_counter()
    with bar:
        def progress(done, total, running):
            update(done, total)
            bar.update(bar.task_ids[0], description=f"figures ({', '.join(running)})" if running else "figures")

        try:
            records = gallery.make_all(Path(out), Path(cache), jobs=jobs, progress=progress, recipes=recipes, options=options)
        except RuntimeError as err:  # a failed recipe: one line naming it and its log
            print(f"coop: {err}", file=sys.stderr)
            raise typer.Exit(1) from None
    wall = clock.perf_counter() - t0
    for name, rec in records.items():
        print(f"{name:<20}" + ("cached" if rec.get("cached") else f"{rec['seconds']:8.1f} s" + (" (resumed)" if rec["resumed"] else "")))
    print(f"{sum(len(r.figures) for r in recipes)} figures in {out}/, {wall:.0f} s wall")


# ---- coop compare: the toy model fitted to a transformer run ----------------------------------------


@app.command("compare")
@with_fields(Compare, "options")
@with_fields(FitConfig, "fit")
def compare(
    sources: list[str] = typer.Argument(..., metavar="RUN_DIR|CURVES.csv ...",
                                        help="A transformer run directory (its metrics.csv), a CSV/TSV (columns: "
                                             "--sequences, --icl, --ciwl, holding --curves) or the official code's "
                                             "log.h5; several run directories: an atlas."),
    out: str = typer.Option(..., "--out", help="Output folder: fit.json, overlay.png, phase.png (several runs: atlas.csv, atlas.png)."),
    fit: dict = None,
    options: dict = None,
) -> None:
    """Fit the toy model's L1, L2 to a run's ICL and CIWL evaluator curves (fit.json, overlay.png, phase.png); several runs: an atlas."""
    from compare.report import compare_command

    _echo(compare_command(sources, out, options, fit))


# ---- coop explore: the toy model live in a browser --------------------------------------------------


@app.command("explore")
def explore(
    port: int = typer.Option(8050, "--port", help="Port to serve on (1-65535)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to serve on (default: loopback only)."),
) -> None:
    """The toy model live in a browser: move alpha, mu1, mu2 and watch the curves and the phase diagram; Ctrl-C stops it."""
    toy.cpu_devices()  # before jax starts: the phase diagram's sweep uses every core
    from explore.server import serve

    serve(host, port)


if __name__ == "__main__":
    main()
