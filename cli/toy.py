"""`coop toy ...`: the toy model's commands (options declared in `toymodel.commands`)."""

from __future__ import annotations

import sys

import typer

from cli.jobs import with_job_options
from cli.output import echo, progress_bar
from runio.jobs import JobOptions
from runio.options import with_fields
from toymodel import commands as toy

app = typer.Typer(no_args_is_help=True, help="The toy model: four vectors, two mechanisms, one competition.")


@app.command()
@with_fields(toy.Simulate, "options")
def simulate(options: dict = None) -> None:
    """Train the toy model once; write trajectory.csv, summary.json and trajectory.png to --out."""
    opts = toy.Simulate(**options)
    traj, info = opts.run()  # validated before anything is written
    echo(toy.simulate_lines(opts, traj, info))
    if traj.diverged_at is not None:
        print(f"coop: error: diverged (non-finite loss) at step {traj.diverged_at}; "
              f"trajectory up to it written to {opts.out}", file=sys.stderr)
        raise typer.Exit(3)


@app.command()
@with_job_options()
@with_fields(toy.Sweep, "options")
def sweep(options: dict = None, job: dict = None) -> None:
    """Phase diagram: outcome class and metrics over a grid of (alpha, mu1, mu2) [x draws]."""
    toy.cpu_devices()  # before jax starts
    opts = toy.Sweep(**options)
    config = opts.config()
    job_options = JobOptions.from_cli(job, used=opts.shards is not None, needs="shards")
    sharded = opts.shards is not None
    try:
        with progress_bar(f"sweep as {opts.shards} shard jobs ({job_options.executor})" if sharded
                          else f"sweep {config.lanes:,} lanes x {opts.steps:,} steps") as progress:
            timings = toy.sweep(opts, config, job_options, progress)
    except RuntimeError as err:  # a failed shard job, named with its log
        if not sharded:
            raise
        out = opts.out
        typer.echo(f"coop: {err}; when the shards are done: coop toy merge {out}/shards/shard_* --out {out}", err=True)
        raise typer.Exit(1) from None
    echo(toy.sweep_lines(opts, config, timings))


@app.command("fixed-points")
@with_fields(toy.FixedPoints, "options")
def fixed_points_cmd(options: dict = None) -> None:
    """Fixed points of the reduced dynamics, their eigenvalues and stability."""
    opts = toy.FixedPoints(**options)
    echo(toy.fixed_point_lines(opts, opts.run()))


@app.command()
@with_fields(toy.Portrait, "options")
def portrait(options: dict = None) -> None:
    """Phase portraits in the (ICL strength, CIWL strength) plane: clamped-flow field, free-flow
    trajectories (diffrax), fixed points by type. Comma lists give a grid of small multiples."""
    opts = toy.Portrait(**options)
    panels = opts.panels()[0]
    with progress_bar(f"portraits ({len(panels)} panels)") as progress:
        count = opts.run(progress)
    typer.echo(f"{count} panel(s) -> {opts.out}/portrait.png")


@app.command()
def curves(
    run_dirs: list[str] = typer.Argument(..., metavar="RUN_DIR...", help="`coop toy simulate` output folders."),
    labels: str = typer.Option(None, help="Comma-separated legend labels, one per run (default: folder names)."),
    title: str = typer.Option("", help="Figure title."),
    out: str = typer.Option(..., help="Output figure (.png)."),
) -> None:
    """Overlay L1 of several toy runs with their ICL peaks marked; print each run's peak step and depth."""
    echo(toy.curves_lines(toy.curves(run_dirs, labels, title, out), out))


@app.command()
def merge(
    folders: list[str] = typer.Argument(..., help="Shard folders of one sweep."),
    out: str = typer.Option(..., help="Output folder for the merged result."),
) -> None:
    """Merge the folders of a sharded sweep into one result (identical to a one-shot sweep)."""
    config, info = toy.merge(folders, out)
    typer.echo(f"merged {len(folders)} folder(s), {config.n_chunks} chunks -> {out}: {info['outcome_counts']}")
