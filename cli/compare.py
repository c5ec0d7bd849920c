"""`coop compare`: the toy model fitted to a transformer run (options declared in `compare.config`)."""

from __future__ import annotations

import typer

from cli.output import echo
from compare.config import Compare, FitConfig
from runio.options import with_fields


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

    echo(compare_command(sources, out, options, fit))
