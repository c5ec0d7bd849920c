"""`coop figures`: every README figure from scratch (the recipes are `gallery`'s)."""

from __future__ import annotations

import sys

import typer

from cli.jobs import with_job_options
from cli.output import progress_bar
from runio.jobs import JobOptions
from runio.options import ConfigError


@with_job_options(skip=("jobs",))
def figures(
    out: str = typer.Option("figures", "--out", help="Where the figures go."),
    cache: str = typer.Option("runs/figures", "--cache", help="Runs and intermediate outputs (reused by the next call)."),
    jobs: int = typer.Option(2, "--jobs", help="local: recipes run at a time (each training uses about one core)."),
    only: str = typer.Option(None, "--only", help="Only these recipes (comma list, or the groups faithful, paper_data) and what they need."),
    job: dict = None,
) -> None:
    """Regenerate every figure the README shows, from scratch; finished runs are cached for the next call."""
    import time as clock
    from pathlib import Path

    import gallery

    if jobs < 1:
        raise ConfigError("jobs", f"must be a positive integer, got {jobs}")
    options = JobOptions.from_cli({**job, "jobs": jobs})
    recipes = gallery.select(only)
    gallery.check_folders(out, cache)
    t0 = clock.perf_counter()
    with progress_bar("figures") as progress:
        try:
            records = gallery.make_all(Path(out), Path(cache), jobs=jobs, progress=progress, recipes=recipes, options=options)
        except RuntimeError as err:  # a failed recipe: one line naming it and its log
            print(f"coop: {err}", file=sys.stderr)
            raise typer.Exit(1) from None
    wall = clock.perf_counter() - t0
    for name, rec in records.items():
        print(f"{name:<20}" + ("cached" if rec.get("cached") else f"{rec['seconds']:8.1f} s" + (" (resumed)" if rec["resumed"] else "")))
    print(f"{sum(len(r.figures) for r in recipes)} figures in {out}/, {wall:.0f} s wall")
