"""What `coop compare` does: its inputs checked (`prepare`: `ConfigError` naming the option), the
fit run (`compare_run`), and what it writes: fit.json (the fit, its phase diagram, timings) and
the two figures."""

from __future__ import annotations

import math
import time
from pathlib import Path

from runio import write_json

from runio.options import ConfigError

from . import fit as fitmod
from .config import fixed_params
from .fit import OUTCOMES, FitResult, toy_on_sequences
from .plots import plot_fit

__all__ = ["fit_report", "write_report", "fixed_params", "prepare", "compare_run", "summary_lines", "compare_command"]


def fit_report(result: FitResult, phase: dict, started: float, prediction=None) -> dict:
    """fit.json's content: `FitResult.to_dict()` with the phase diagram (`compare.fit.phase_grid`)
    and the phase and command times (`started`: the command's `time.perf_counter()` at its start)."""
    info = result.to_dict()
    info["phase_diagram"] = {"alpha": phase["alpha"], "mu1": phase["mu1"], "outcome": phase["outcome"],
                             "outcomes": list(OUTCOMES), "mu2": phase["mu2"], "nd_ratio": phase["nd_ratio"],
                             "steps": phase["steps"], "wall_time_s": phase["wall_time_s"]}
    if prediction is not None:
        info["prediction"] = prediction.to_dict()
    info["timing"]["phase_s"] = phase["wall_time_s"]
    info["timing"]["command_s"] = time.perf_counter() - started
    return info


def write_report(result: FitResult, phase: dict, out, started: float, prediction=None) -> dict:
    """Write out/fit.json, out/overlay.png and out/phase.png (`compare.plots.plot_fit`; with a
    `compare.predict.Prediction`, fit.json's "prediction" and the held-out part in the overlay);
    returns fit.json's content."""
    out = Path(out)
    info = fit_report(result, phase, started, prediction)
    write_json(out / "fit.json", info)
    plot_fit(result, toy_on_sequences(result), phase, out / "overlay.png", out / "phase.png", prediction)
    return info


def prepare(source, fix, starts: int, refine: int, from_sequences: float | None, weights: str, seed: int,
            max_steps: int, grid: int, losses: str = "context", fit_until: float | None = None) -> tuple:
    """(FitConfig, curves) of `coop compare`'s inputs, else ConfigError naming the option; nothing is
    written. `source` None checks the options only (curves None: the atlas reads its runs itself)."""
    if starts < 1:
        raise ConfigError("--starts", f"must be an integer >= 1, got {starts}")
    if refine < 1:
        raise ConfigError("--refine", f"must be an integer >= 1, got {refine}")
    if from_sequences is not None and not (math.isfinite(from_sequences) and from_sequences >= 0):
        raise ConfigError("--from-sequences", f"must be a finite number >= 0, got {from_sequences}")
    if weights not in fitmod.WEIGHTS:
        raise ConfigError("--weights", f"must be one of {'|'.join(fitmod.WEIGHTS)}, got {weights!r}")
    if seed < 0:
        raise ConfigError("--seed", f"must be an integer >= 0, got {seed}")
    if max_steps < 1000 or max_steps % 10:
        raise ConfigError("--max-steps", f"must be an integer >= 1000 and a multiple of 10, got {max_steps}")
    if not 2 <= grid <= 200:
        raise ConfigError("--grid", f"must be an integer from 2 to 200, got {grid}")
    if losses not in fitmod.LOSSES:
        raise ConfigError("--losses", f"must be one of {'|'.join(fitmod.LOSSES)}, got {losses!r}")
    if fit_until is not None and not math.isfinite(fit_until):
        raise ConfigError("--fit-until", f"must be a finite number of sequences, got {fit_until}")
    fixed = fixed_params(fix)
    try:
        config = fitmod.FitConfig(fixed=fixed, starts=starts, refine=refine, weights=weights, seed=seed,
                                  max_steps=max_steps)
    except ValueError as err:
        raise ConfigError("--fix", str(err)) from None
    if source is None:
        return config, None
    try:
        curves = fitmod.load_curves(source, from_sequences, fit_until, losses)
    except ValueError as err:
        raise ConfigError("--fit-until" if "fit_until" in str(err) else "RUN_DIR|CURVES.csv", str(err)) from None
    lo, hi = fitmod.bounds(curves, config)["tau"]
    if "tau" in fixed and not lo <= fixed["tau"] <= hi:
        raise ConfigError("--fix", f"tau must lie in [{lo:.4g}, {hi:.4g}] (last sequences / --max-steps .. / 500), "
                                   f"got {fixed['tau']}")
    return config, curves


def compare_run(config, curves, grid: int, out, started: float) -> tuple:
    """Fit, compute the phase diagram (and with a cut in `curves`, the prediction of the held-out
    rows), write fit.json and the figures into `out`; returns (result, phase, fit seconds, prediction
    or None). `started`: the command's `time.perf_counter()` at its start."""
    result = fitmod.fit(curves, config)
    t_fit = time.perf_counter() - started
    phase = fitmod.phase_grid(result, grid)
    prediction = None
    if curves.until is not None:
        from .predict import predict

        prediction = predict(result, curves)
    write_report(result, phase, out, started, prediction)
    return result, phase, t_fit, prediction


def summary_lines(source, curves, result: FitResult, phase: dict, t_fit: float, started: float, weights: str,
                  out, prediction=None) -> list[str]:
    """What `coop compare` prints: R², the parameters with their errors, the toy's verdict, the times."""
    p, se = result.params, result.se
    lines = [f"{source}: {int(curves.used.sum())} rows from {curves.s[0]:,.0f} sequences, weights {weights}: "
             f"R² ICL {result.r2['icl']:.4f}, CIWL {result.r2['ciwl']:.4f}",
             "  " + "  ".join(f"{k} {p[k]:.4g} " + (f"± {se[k]:.2g}" if k in se else "(fixed)") for k in fitmod.PARAMS)]
    if result.poorly_determined:
        lines.append("  poorly determined: " + "; ".join(f"{k} ({why})" for k, why in result.poorly_determined.items()))
    toy = result.toy
    lines.append(f"  toy at the fit, {toy['steps']:,} steps: {toy['outcome']} (L1 min {toy['l1_min']:.3g} at step "
                 f"{toy['l1_min_step']:,} = {toy['l1_min_sequences']:,.0f} sequences; measured ICL loss min at "
                 f"{toy['measured_icl_loss_min_sequences']:,.0f})")
    if prediction is not None:
        fmt = lambda v: "none (persistent)" if v is None else f"{v:,.0f}"  # noqa: E731
        err = "" if prediction.fade_error is None else f" ({100 * prediction.fade_error:+.0f}%)"
        lines.append(f"  held out after {prediction.until:,.0f} sequences ({int(prediction.held_out.sum())} rows): "
                     f"predicted R² ICL {prediction.r2_held_out['icl']:.4f}, CIWL {prediction.r2_held_out['ciwl']:.4f}; "
                     f"ICL accuracy < 0.6 at: measured {fmt(prediction.measured_fade)}, predicted "
                     f"{fmt(prediction.predicted_fade)}{err}")
    t = result.timing
    lines.append(f"fit {t_fit:.1f} s (screen {t['screen_s']:.1f} s, refine {t['refine_s']:.1f} s), phase diagram "
                 f"{phase['wall_time_s']:.1f} s, total {time.perf_counter() - started:.1f} s -> {out}")
    return lines


def compare_command(sources: list[str], fix, starts: int, refine: int, from_sequences, weights: str, seed: int,
                    max_steps: int, grid: int, losses: str, fit_until, out) -> list[str]:
    """`coop compare`: one run (or CSV) -> fit.json, overlay.png, phase.png (and with `fit_until`
    the held-out prediction); several run directories -> the atlas (`compare.atlas`: atlas.csv,
    atlas.png). Returns the lines to print; ConfigError (one line) before anything is written."""
    started = time.perf_counter()
    if len(sources) == 1:
        config, curves = prepare(sources[0], fix, starts, refine, from_sequences, weights, seed, max_steps, grid,
                                 losses, fit_until)
        result, phase, t_fit, prediction = compare_run(config, curves, grid, out, started)
        return summary_lines(sources[0], curves, result, phase, t_fit, started, weights, out, prediction)
    if fit_until is not None:
        raise ConfigError("--fit-until", "predicts one run: give a single RUN_DIR with it")
    if from_sequences is not None:
        raise ConfigError("--from-sequences", "the atlas fits every run by one rule: leave it out with several runs")
    config, _ = prepare(None, fix, starts, refine, from_sequences, weights, seed, max_steps, grid, losses)
    from .atlas import atlas_rows, write_atlas

    try:
        rows = atlas_rows(sources, config, losses)
    except ValueError as err:
        raise ConfigError("RUN_DIR", str(err)) from None
    agree = write_atlas(rows, out)
    lines = [f"{'run':<40}{'observed':>16}{'toy':>16}{'R² ICL':>8}{'R² CIWL':>9}  note"]
    for r in rows:
        r2 = r.result.r2 if r.result else {"icl": float("nan"), "ciwl": float("nan")}
        lines.append(f"{Path(r.run).name:<40}{r.observed:>16}{r.toy:>16}{r2['icl']:>8.3f}{r2['ciwl']:>9.3f}  {r.problem}")
    lines.append(f"toy outcome = observed in {agree['agree']} of {agree['fitted']} fitted runs ({agree['runs']} runs); "
                 f"{time.perf_counter() - started:.1f} s -> {out}/atlas.csv, atlas.png")
    return lines
