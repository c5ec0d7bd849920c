"""Evaluator curves of several runs side by side: a run directory's metrics.csv or any CSV with the
same column names (the official run in `reference/`), overlaid per evaluator or drawn one panel per
run (`coop transformer curves`). Reads only."""

from __future__ import annotations

from pathlib import Path

from runio.options import ConfigError
from transformer import plots
from transformer.rundir import RunDir, read_metrics
from transformer.choices import EVALUATORS


def sequences_to(rows: list[dict], column: str, threshold: float) -> int | None:
    """The first evaluated sequence count at which `column` reaches `threshold` (None: never)."""
    for r in rows:
        if r[column] >= threshold:
            return int(r["sequences"])
    return None


OVERLAY_PANELS = ("evaluator", "run")


def curve_rows(path: str | Path, evaluators: tuple[str, ...]) -> list[dict]:
    """The metrics rows of a run directory (its metrics.csv) or of a CSV file with the same column
    names (`sequences` and `{evaluator}_acc`, e.g. the official run in reference/); ConfigError
    naming the missing column or file, or the cell that is not a number."""
    path = Path(path)
    file = RunDir(path).metrics_file if path.is_dir() else path
    if not file.is_file():
        raise ConfigError("RUN_DIR", f"{path} is neither a run directory with metrics.csv nor a CSV file")
    try:
        rows = read_metrics(file)
    except ValueError as err:
        raise ConfigError("RUN_DIR", f"{file}: {err}") from None
    if not rows:
        raise ConfigError("RUN_DIR", f"{file} has no rows")
    missing = [c for c in ("sequences", *(f"{e}_acc" for e in evaluators)) if c not in rows[0]]
    if missing:
        raise ConfigError("RUN_DIR", f"{file} has no column {', '.join(missing)} (columns: {', '.join(rows[0])})")
    return rows


def parse_scale(scale: str | None, runs: int) -> list[float]:
    """`--scale`: one positive factor per run for its sequences axis (None: all 1); ConfigError otherwise."""
    if scale is None:
        return [1.0] * runs
    try:
        factors = [float(x) for x in scale.split(",")]
    except ValueError:
        factors = []
    if len(factors) != runs or not all(0 < f < float("inf") for f in factors):
        raise ConfigError("scale", f"one positive number per run ({runs}), comma-separated, got {scale!r}")
    return factors


def overlay(run_dirs: list[str], labels: str | None, threshold: float, out: str,
            evaluators: str = "icl,flip,ciwl", panels: str = "evaluator", scale: str | None = None,
            unit: str = "sequences seen") -> tuple[list[str], list, dict]:
    """Draw the evaluator curves of `run_dirs` (run directories or metrics CSV files) in the figure
    `out`: one panel per evaluator, the runs overlaid, or one panel per run with its `evaluators`;
    with `scale` (one factor per run, e.g. each run's lr / 1e-4) each run's sequences are multiplied
    by its factor and the axis is called `unit`; returns (names, metrics rows per run, on the scaled
    axis, and where each reached ICL accuracy `threshold`). ConfigError on bad input."""
    if not (0.5 < threshold < 1):
        raise ConfigError("threshold", f"must be in (0.5, 1), got {threshold}")
    names = [Path(r).stem if Path(r).is_file() else Path(r).name for r in run_dirs] if labels is None \
        else [x.strip() for x in labels.split(",")]
    if len(names) != len(run_dirs):
        raise ConfigError("labels", f"one label per run ({len(run_dirs)}), got {len(names)}")
    if not out.endswith(".png"):
        raise ConfigError("out", f"a .png file, got {out!r}")
    chosen = tuple(e.strip() for e in evaluators.split(","))
    if not chosen or any(e not in EVALUATORS for e in chosen) or len(set(chosen)) != len(chosen):
        raise ConfigError("evaluators", f"comma list of distinct names from {','.join(EVALUATORS)}, got {evaluators!r}")
    if panels not in OVERLAY_PANELS:
        raise ConfigError("panels", f"one of {', '.join(OVERLAY_PANELS)}, got {panels!r}")
    factors = parse_scale(scale, len(run_dirs))
    runs = [[{**row, "sequences": row["sequences"] * f} for row in curve_rows(r, tuple(dict.fromkeys(("icl", "flip", *chosen))))]
            for r, f in zip(run_dirs, factors)]
    marks = {name: sequences_to(rows, "icl_acc", threshold) for name, rows in zip(names, runs)}
    metrics = tuple(f"{e}_acc" for e in chosen)
    if panels == "evaluator":
        plots.runs_overlay(out, list(zip(names, runs)), metrics=metrics, threshold=threshold, marks=marks, xlabel=f"{unit} (M)")
    else:
        plots.runs_beside(out, list(zip(names, runs)), metrics=metrics, xlabel=f"{unit} (M)")
    return names, runs, marks


def overlay_lines(names: list[str], runs: list, marks: dict, threshold: float, out: str) -> list[str]:
    """What `coop transformer curves` prints: ICL peak and end, flip end, sequences to ICL (on the
    scaled axis), speed-up."""
    first = marks[names[0]]
    w = max(len(n) for n in names) + 2
    lines = [f"{'run':<{w}}{'ICL peak':>9}{'ICL end':>9}{'flip end':>9}{'seq to ICL >= ' + format(threshold, 'g'):>20}"
             f"{'speed-up vs first':>18}"]
    for name, rows in zip(names, runs):
        m = marks[name]
        if m is None:
            ratio = "-"
        elif first is None:  # the first run never got there: a lower bound
            ratio = f"> {runs[0][-1]['sequences'] / m:.1f}"
        else:
            ratio = f"{first / m:.2f}"
        reached = f"{m:,.0f}" if m is not None else f"> {rows[-1]['sequences']:,.0f}"
        lines.append(f"{name:<{w}}{max(r['icl_acc'] for r in rows):>9.3f}{rows[-1]['icl_acc']:>9.3f}"
                     f"{rows[-1]['flip_acc']:>9.3f}{reached:>20}{ratio:>18}")
    return lines + [f"-> {out}"]
