"""What `coop compare` does: its inputs read (`prepare`: the checks that need the data, `ConfigError`
naming the parameter; the options are declared and checked in `compare.config`), the fit run
(`compare_run`), and what it writes: fit.json (the fit, its phase diagram, timings) and the two
figures."""

from __future__ import annotations

import time
from pathlib import Path

from runio import write_json
from runio.options import ConfigError

from toymodel.outcomes import OUTCOMES

from .atlas import atlas_rows, write_atlas
from .config import PARAMS, Compare, FitConfig, fixed_params
from .curves import CurvesError, load_curves
from .fit import fit
from .plots import plot_fit
from .predict import predict
from .result import FitResult, toy_on_sequences
from .screen import bounds
from .toy import phase_grid

__all__ = ["fit_report", "write_report", "fixed_params", "prepare", "compare_run", "summary_lines", "compare_command"]


def fit_report(result: FitResult, phase: dict, started: float, prediction=None) -> dict:
    """fit.json's content: `FitResult.to_dict()` with the phase diagram (`compare.toy.phase_grid`)
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


# the parameter of `coop compare` that gives each input `compare.curves.load_curves` can refuse, where
# its name differs (the others are `Compare`'s fields of the same name)
PARAMETERS = {"source": "RUN_DIR|CURVES.csv", "until": "fit_until"}


def prepare(source, options: Compare, config: FitConfig):
    """The curves `coop compare` fits from `source`, else ConfigError naming the source or the field
    whose check needs the data (the columns, `fit_until` inside the run's rows, enough rows for the
    free parameters, a fixed tau inside the bounds the run's span gives); nothing is written.
    `options` and `config` checked themselves when made."""
    try:
        curves = load_curves(source, options.from_sequences, options.fit_until, options.losses, icl=options.icl,
                             ciwl=options.ciwl, sequences=options.sequences, kind=options.curves, chance=options.chance)
    except CurvesError as err:
        raise ConfigError(PARAMETERS.get(err.parameter, err.parameter), str(err)) from None
    if config.link == "probit" and curves.chance is None:
        raise ConfigError("link", "probit maps to error rates: needs accuracy or error curves (`curves` accuracy|error, "
                                  f"or a run directory with `losses` error), got {curves.kind} curves")
    if config.interaction != "none" and curves.chance is None:
        raise ConfigError("interaction", f"{config.interaction} needs the probit link, which needs accuracy or error "
                                         f"curves, got {curves.kind} curves")
    nonlinear, linear = config.free_params(curves.chance is not None)
    n_free = len(nonlinear) + len(linear)
    if curves.used.sum() < n_free:
        raise ConfigError(PARAMETERS["source"], f"{int(curves.used.sum())} row(s) to fit, fewer than its {n_free} free "
                                                "parameters (fix some with `fix`, or give more rows)")
    lo, hi = bounds(curves, config)["tau"]
    tau = config.fixed.get("tau")
    if tau is not None and not lo <= tau <= hi:
        raise ConfigError("fix", f"tau must lie in [{lo:.4g}, {hi:.4g}] (last sequences / `max_steps` .. / 500), "
                                 f"got {tau}")
    return curves


def compare_run(config, curves, grid: int, out, started: float) -> tuple:
    """Fit, compute the phase diagram (and with a cut in `curves`, the prediction of the held-out
    rows), write fit.json and the figures into `out`; returns (result, phase, fit seconds, prediction
    or None). `started`: the command's `time.perf_counter()` at its start."""
    result = fit(curves, config)
    t_fit = time.perf_counter() - started
    phase = phase_grid(result, grid)
    prediction = None
    if curves.until is not None:
        prediction = predict(result, curves)
    write_report(result, phase, out, started, prediction)
    return result, phase, t_fit, prediction


def summary_lines(source, curves, result: FitResult, phase: dict, t_fit: float, started: float, weights: str,
                  out, prediction=None) -> list[str]:
    """What `coop compare` prints: R², the parameters with their errors, the toy's verdict, the times."""
    p, se = result.params, result.se
    lines = [f"{source}: {int(curves.used.sum())} rows from {curves.s[0]:,.0f} sequences, weights {weights}: "
             f"R² ICL {result.r2['icl']:.4f}, CIWL {result.r2['ciwl']:.4f}",
             "  " + "  ".join(f"{k} {p[k]:.4g} " + (f"± {se[k]:.2g}" if k in se else "(fixed)" if k in result.config.fixed
                                                     else f"(from B{k[1]}, anchored at chance)" if result.config.link == "affine"
                                                     else f"(chord from B{k[1]}, probit link)") for k in PARAMS
                                if not (k.startswith("sigma") or k == "kappa") or k in se or k in result.config.fixed)]
    if result.poorly_determined:
        lines.append("  poorly determined: " + "; ".join(f"{k} ({why})" for k, why in result.poorly_determined.items()))
    toy = result.toy
    what = "error" if curves.losses == "error" else "loss"
    lines.append(f"  toy at the fit, {toy['steps']:,} steps, its own class (losses vs reference): {toy['outcome']} (L1 min {toy['l1_min']:.3g} at step "
                 f"{toy['l1_min_step']:,} = {toy['l1_min_sequences']:,.0f} sequences; measured ICL {what} min at "
                 f"{toy['measured_icl_loss_min_sequences']:,.0f})")
    v = result.verdict
    if v["toy"] is not None:
        lines.append(f"  in the curves' terms (transformer.outcomes): toy {v['toy']} (ICL accuracy peaks "
                     f"{v['toy_icl_peak_acc']:.3f} at {v['toy_icl_peak_sequences']:,.0f}, ends {v['toy_icl_final_acc']:.3f}; "
                     f"CIWL ends {v['toy_ciwl_final_acc']:.3f}); measured {v['measured']}"
                     + ("" if v["agrees"] else " (they differ)"))
    if prediction is not None:
        fmt = lambda v: "none (persistent)" if v is None else f"{v:,.0f}"  # noqa: E731
        err = "" if prediction.fade_error is None else f" ({100 * prediction.fade_error:+.0f}%)"
        lines.append(f"  held out after {prediction.until:,.0f} sequences ({int(prediction.held_out.sum())} rows): "
                     f"predicted R² ICL {prediction.r2_held_out['icl']:.4f}, CIWL {prediction.r2_held_out['ciwl']:.4f} "
                     f"(mean |error| {prediction.mae_held_out['icl']:.4f}, {prediction.mae_held_out['ciwl']:.4f}); "
                     f"ICL accuracy < 0.6 at: measured {fmt(prediction.measured_fade)}, predicted "
                     f"{fmt(prediction.predicted_fade)}{err}")
    t = result.timing
    lines.append(f"fit {t_fit:.1f} s (screen {t['screen_s']:.1f} s, refine {t['refine_s']:.1f} s), phase diagram "
                 f"{phase['wall_time_s']:.1f} s, total {time.perf_counter() - started:.1f} s -> {out}")
    return lines


def compare_command(sources: list[str], out, options: dict, fit: dict) -> list[str]:
    """`coop compare`: one run (or CSV) -> fit.json, overlay.png, phase.png (and with --fit-until the
    held-out prediction); several run directories -> the atlas (`compare.atlas`: atlas.csv,
    atlas.png). `options`: `Compare`'s fields, `fit`: FitConfig's options. Returns the lines to
    print; ConfigError (one line) before anything is written."""
    started = time.perf_counter()
    opts = Compare(**options)
    config = opts.fit_config(**fit)
    if len(sources) == 1:
        curves = prepare(sources[0], opts, config)
        result, phase, t_fit, prediction = compare_run(config, curves, opts.grid, out, started)
        return summary_lines(sources[0], curves, result, phase, t_fit, started, config.weights, out, prediction)
    if opts.fit_until is not None:
        raise ConfigError("fit_until", "predicts one run: give a single RUN_DIR with it")
    if opts.from_sequences is not None:
        raise ConfigError("from_sequences", "the atlas fits every run by one rule: leave it out with several runs")
    try:
        rows = atlas_rows(sources, config, opts.losses)
    except ValueError as err:
        raise ConfigError("RUN_DIR", str(err)) from None
    agree = write_atlas(rows, out)
    lines = [f"{'run':<40}{'observed':>16}{'toy':>16}{'R² ICL':>8}{'R² CIWL':>9}  note"]
    for r in rows:
        r2 = r.result.r2 if r.result else {"icl": float("nan"), "ciwl": float("nan")}
        lines.append(f"{Path(r.run).name:<40}{r.observed:>16}{r.toy:>16}{r2['icl']:>8.3f}{r2['ciwl']:>9.3f}  {r.problem}")
    for knob, d in agree["directions"].items():
        lines.append(f"along {knob} (Spearman ρ over {d['runs']} fitted runs; + grows with {knob}): outcome observed "
                     f"{d['observed']:+.2f}, toy {d['toy']:+.2f} (persistent < transient < CIWL only); "
                     f"log α {d['log_alpha']:+.2f}, log μ1 {d['log_mu1']:+.2f}, log μ2 {d['log_mu2']:+.2f}")
    lines.append(f"toy outcome = observed in {agree['agree']} of {agree['fitted']} fitted runs ({agree['runs']} runs); "
                 f"{time.perf_counter() - started:.1f} s -> {out}/atlas.csv, atlas.png, atlas.json")
    return lines
