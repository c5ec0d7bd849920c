"""`coop transformer ...`: the 2-layer transformer's commands (train options declared in
`transformer.config.TrainConfig`)."""

from __future__ import annotations

import typer

from cli.jobs import with_job_options
from cli.output import echo, progress_bar
from runio.jobs import JobOptions
from runio.options import ConfigError, with_fields
from transformer.config import TrainConfig

app = typer.Typer(no_args_is_help=True, help="The 2-layer attention-only transformer on bursty sequences.")


@app.command("train")
@with_job_options()
@with_fields(TrainConfig, "given", default=None)  # None: not given, the preset's value applies
def transformer_train(
    out: str = typer.Option(..., "--out", help="Run directory (new or empty; or an existing run with --resume)."),
    preset: str = typer.Option("cpu", "--preset", help="cpu (transience in minutes on a CPU), faithful (the paper's model on paper-like exemplars), faithful-gaussian, or paper (needs --embeddings)."),
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
            raise ConfigError("out", str(err)) from None
        return echo(seed_lines(seed_list, summaries))
    JobOptions.from_cli(job, used=False)
    from transformer.experiments import train_lines, train_one

    echo(train_lines(out, train_one(cfg, out, resume, progress=not quiet)))


@app.command("data")
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
        raise ConfigError("queries", "must be an integer >= 10")
    cfg = build_config(preset, given)
    target = out_dir(out) / "data.json"
    props = source_report(cfg, queries)
    write_json(target, {"properties": props, "config": dataclasses.asdict(cfg)})
    echo(report_lines(props) + [f"-> {target}"])


@app.command("grid")
@with_job_options()
@with_fields(TrainConfig, "given", default=None, skip=("seed",))  # the grid's seeds are --seeds
def transformer_grid(
    vary: list[str] = typer.Option(..., "--vary", help="FIELD=V1,V2,... (repeatable): train option and its values, e.g. noise=0.5,0.65."),
    seeds: str = typer.Option("0", "--seeds", help="Seeds of every point: 0,1,2 or START:STOP (0:5)."),
    out: str = typer.Option(..., "--out", help="Grid directory: OUT/<run>/, OUT/grid.csv, OUT/grid.png."),
    preset: str = typer.Option("cpu", "--preset", help="The preset every run starts from (any train option overrides it)."),
    given: dict = None,
    job: dict = None,
) -> None:
    """Train the product of the --vary values times the seeds (train's options, e.g. --preset
    faithful --lr 1e-4, set the rest); write grid.csv and grid.png. Finished runs are skipped."""
    from transformer.experiments import grid_axes, grid_lines, grid_runs, parse_seeds, train_grid
    from transformer.presets import build_config

    cfg = build_config(preset, given)
    axes = grid_axes(cfg, vary)
    seed_list = parse_seeds(seeds)
    options = JobOptions.from_cli(job)
    runs = grid_runs(cfg, axes, seed_list, out)
    try:
        with progress_bar(f"grid of {len(runs)} runs") as progress:
            table = train_grid(cfg, axes, seed_list, out, options, progress=progress)
    except ValueError as err:
        raise ConfigError("out", str(err)) from None
    echo(grid_lines(table, axes, out))


@app.command("eval")
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


@app.command("analyze")
def transformer_analyze(
    run_dir: str = typer.Argument(..., metavar="RUN_DIR", help="A run directory written by `coop transformer train`."),
    out: str = typer.Option(..., "--out", help="Output directory (progress.csv, progress.png, ablation.csv, ablation.png, readout.csv, readout.png)."),
    checkpoints: int = typer.Option(0, "--checkpoints", help="Progress measures at this many checkpoints, evenly spread (0: all)."),
    ablate_at: str = typer.Option("peak,last", "--ablate-at", help="Checkpoints to ablate: steps, or peak (ICL peak) and last."),
) -> None:
    """Progress measures over the checkpoints and Layer-1 ablations, from the model's named activations."""
    from pathlib import Path

    from transformer.analysis import analyze, analyze_lines, open_run

    run = open_run(run_dir)
    with progress_bar("progress measures") as progress:
        cols, rows, readout = analyze(run, checkpoints, ablate_at, out, progress=progress)
    from transformer.readout import readout_lines

    echo(analyze_lines(cols, rows, Path(out)) + [f"Layer 2 reading Layer 1 -> {Path(out) / 'readout.csv'}, readout.png"]
         + readout_lines(readout))


@app.command("graft")
def transformer_graft(
    run_dir: str = typer.Argument(..., metavar="RUN_DIR", help="A run directory written by `coop transformer train`."),
    layer: str = typer.Option(..., "--layer", help="What to transplant: 1 or 2 (a layer), first_half (embeddings + block 0) or second_half (block 1, final norm, unembedding)."),
    out: str = typer.Option(..., "--out", help="Output directory (graft.csv, graft.png)."),
    checkpoints: int = typer.Option(16, "--checkpoints", help="Use this many checkpoints, evenly spread (the matrix is n x n)."),
) -> None:
    """Put layer L of checkpoint i into the model of checkpoint j, for all i, j; score every evaluator."""
    from transformer.analysis import graft_lines, graft_report, open_run

    run = open_run(run_dir)
    with progress_bar("grafting") as progress:
        g = graft_report(run, layer, checkpoints, out, progress=progress)
    echo(graft_lines(g))


@app.command("curves")
def transformer_curves(
    run_dirs: list[str] = typer.Argument(..., metavar="RUN_DIR...",
                                         help="Run directories, or CSV files with metrics.csv's column names."),
    out: str = typer.Option(..., "--out", help="Output figure (.png)."),
    labels: str = typer.Option(None, "--labels", help="Comma-separated legend labels, one per run (default: folder names)."),
    threshold: float = typer.Option(0.8, "--icl-threshold", help="ICL counts as learned at this accuracy (0.5 < t < 1)."),
    evaluators: str = typer.Option("icl,flip,ciwl", "--evaluators", help="Comma list of train,icl,ciwl,flip,iwl to draw."),
    panels: str = typer.Option("evaluator", "--panels", help="evaluator (one panel each, runs overlaid) or run (one "
                               "panel per run, e.g. beside the official run in reference/)."),
    scale: str = typer.Option(None, "--scale", help="Comma list, one positive factor per run: its sequences are "
                              "multiplied by it (e.g. each run's lr / 1e-4, to compare in lr x sequences)."),
    unit: str = typer.Option("sequences seen", "--unit", help="The x axis's name (with --scale, e.g. "
                             "'sequences x lr / 1e-4')."),
) -> None:
    """Overlay the evaluator curves of several runs; print sequences to reach ICL and their ratios."""
    from transformer.overlay import overlay, overlay_lines

    names, runs, marks = overlay(run_dirs, labels, threshold, out, evaluators, panels, scale, unit)
    echo(overlay_lines(names, runs, marks, threshold, out))
