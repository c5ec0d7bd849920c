"""The figures of the toy-vs-transformer fit (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import BoundaryNorm, ListedColormap  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from runio import save_figure  # noqa: E402
from toymodel.outcomes import OUTCOMES  # noqa: E402
from toymodel.plots import AXIS_LABELS, COLORS, OUTCOME_COLORS, grid_extent  # noqa: E402

__all__ = ["plot_fit", "plot_atlas", "run_labels", "label_offsets"]


def plot_fit(result, toy_curves: dict, grid: dict, overlay_path, phase_path, prediction=None) -> None:
    """The two figures of `coop compare` (see `compare.fit`, docs/compare.md).

    overlay: measured ICL / CIWL evaluator losses (dots; rows not fitted hollow) and the mapped toy
    L1 / L2 (lines) on one sequences axis, R^2 in the legend, toy steps on the top axis, residuals
    below. phase: outcome classes over (alpha, mu1) at the fitted mu2 and nd_ratio (`grid` from
    `compare.toy.phase_grid`), the fitted point marked with +- 1 standard error. With a
    `prediction` (`compare.predict`): the held-out rows as squares, the toy's prediction dashed after
    the cut (a vertical line), their R^2 in the legend, and the measured and predicted fades."""
    p, cur = result.params, result.curves
    colors = {"icl": COLORS["l1"], "ciwl": COLORS["l2"]}
    names = {"icl": ("ICL evaluator", "$L_1$"), "ciwl": ("CIWL evaluator", "$L_2$")}
    maps = {"icl": (p["A1"], p["B1"]), "ciwl": (p["A2"], p["B2"])}
    what = "error" if cur.losses == "error" else "loss"

    fig, (ax, axr) = plt.subplots(2, 1, figsize=(8.2, 6.6), sharex=True, height_ratios=(3, 1.3))
    fitted_vals = np.concatenate([cur.y(k) for k in ("icl", "ciwl")] + [toy_curves[k] for k in ("icl", "ciwl")])
    top = 1.12 * float(np.nanmax(np.where(np.isfinite(fitted_vals), fitted_vals, np.nan)))
    top = min(top, 1.12 * float(np.max([cur.y(k).max() for k in ("icl", "ciwl")])) + 0.5)
    dilution = " / √(1 + κ² u₁²)" if result.config.interaction != "none" else ""  # compare.maps.interaction_scale
    for k in ("icl", "ciwl"):
        a, b = maps[k]
        ax.plot(cur.s, cur.y(k), "o", ms=3.6, color=colors[k],
                label=f"{names[k][0]} {what} (measured), $R^2$ = {result.r2[k]:.3f}")
        link = result.config.link
        ax.plot(toy_curves["sequences"], toy_curves[k], color=colors[k], lw=1.8, alpha=0.85,
                label=f"toy: {a:.3g}·{names[k][1]} + {b:.3g}" if link == "affine" else
                f"toy: Φ(Φ⁻¹({b:.3g})·(1 − √({names[k][1]}/ref)){dilution if k == 'ciwl' else ''})")
        if prediction is not None:
            held = prediction.held_out
            ax.plot(cur.sequences[held], getattr(cur, k)[held], "s", ms=3.4, mfc="none", color=colors[k],
                    label=f"{names[k][0]} {what}, held out: predicted $R^2$ = {prediction.r2_held_out[k]:.3f}")
            after = prediction.toy["sequences"] >= prediction.until
            ax.plot(prediction.toy["sequences"][after], prediction.toy[k][after], color=colors[k], lw=1.6, ls="--")
            axr.plot(cur.sequences[held], getattr(cur, k)[held] - prediction.predicted[k][held], "s", ms=2.8,
                     mfc="none", color=colors[k])
        out = ~cur.used & ~cur.held_out
        if out.any():
            ax.plot(cur.sequences[out], np.minimum(getattr(cur, k)[out], top * 0.985), "o", ms=4.5, mfc="none",
                    color=colors[k])
        axr.plot(cur.s, cur.y(k) - result.fitted[k], "o-", ms=2.8, lw=0.8, color=colors[k], label=names[k][0])
    if prediction is not None:
        for a in (ax, axr):
            a.axvline(prediction.until, color="#333333", lw=1.1)
        ax.text(prediction.until, 0.03, " fit until | predicted ", transform=ax.get_xaxis_transform(), fontsize=7.5,
                ha="center", va="bottom", color="#333333")
        for when, style, kind in ((prediction.measured_fade, "-.", "measured"), (prediction.predicted_fade, "--", "predicted")):
            if when is not None:
                ax.axvline(when, color="#7a3b9a", ls=style, lw=1, label=f"ICL accuracy < 0.6 ({kind}): {when:,.0f}")
    dropped_rows = ~cur.used & ~cur.held_out
    if dropped_rows.any():
        dropped = " / ".join(f"{getattr(cur, k)[dropped_rows][0]:.3g}" for k in ("icl", "ciwl"))
        ax.plot([], [], "o", ms=4.5, mfc="none", color="#555555",
                label=f"not fitted (sequences < {cur.s[0]:,.0f}; first: {dropped}; clipped to the axis)")
    peak = result.toy["l1_min_sequences"]
    ax.axvline(peak, color=COLORS["l1"], ls=":", lw=1)
    ax.text(peak, 0.985, f" toy ICL peak (step {result.toy['l1_min_step']:,})", transform=ax.get_xaxis_transform(),
            fontsize=7.5, color=COLORS["l1"], va="top")
    ax.set_ylim(min(0.0, float(np.min([cur.y(k).min() for k in ("icl", "ciwl")]))), top)
    ax.set_ylabel({"error": "evaluator error (1 − in-context accuracy)", "context": "evaluator loss (in-context cross-entropy)",
                   "full": "evaluator loss (cross-entropy)"}.get(cur.losses, "evaluator loss"))
    ax.legend(fontsize=8, frameon=False, loc="upper center", bbox_to_anchor=(0.5, 0.95))
    ax.grid(alpha=0.25)
    tau = p["tau"]
    sec = ax.secondary_xaxis("top", functions=(lambda s: s / tau, lambda t: t * tau))
    sec.set_xlabel(f"toy GD step (τ = {tau:.4g} sequences per step)", fontsize=9)
    own = result.toy["outcome"].replace("_", " ")
    v = result.verdict
    spread = "".join(f", σ{i}={p[f'sigma{i}']:.3g}" for i in (1, 2) if p[f"sigma{i}"] or f"sigma{i}" in result.se)
    spread += f", κ={p['kappa']:.3g}" if result.config.interaction != "none" else ""
    verdict = (f"toy's curves: {v['toy'].replace('_', ' ')} (measured: {v['measured'].replace('_', ' ')}); toy's own "
               f"class: {own}" if v["toy"] is not None else f"toy outcome: {own}")
    ax.set_title(f"α={p['alpha']:.3g}, μ₁={p['mu1']:.3g}, μ₂={p['mu2']:.3g}, n_d/n_a={p['nd_ratio']:.3g}{spread}\n"
                 f"{verdict}", fontsize=9.5)
    axr.axhline(0, color="#888888", lw=0.8)
    axr.set_ylabel("measured − fitted")
    axr.set_xlabel("sequences seen")
    axr.legend(fontsize=8, frameon=False, ncol=2)
    axr.grid(alpha=0.25)
    fig.tight_layout()
    save_figure(fig, overlay_path)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6.2, 6.4))
    x, y = grid["alpha"], grid["mu1"]
    ax.imshow(grid["outcome"].T, origin="lower", aspect="auto", cmap=ListedColormap(OUTCOME_COLORS),
              norm=BoundaryNorm(np.arange(-0.5, 4.5), 4), extent=grid_extent(x, y), interpolation="nearest")
    se = result.se
    ax.errorbar([p["alpha"]], [p["mu1"]], xerr=[[se.get("alpha") or 0.0]], yerr=[[se.get("mu1") or 0.0]],
                fmt="*", ms=15, color="black", mfc="white", mew=1.5, capsize=4, lw=1.2, zorder=5,
                label=f"fit (±1 se): α={p['alpha']:.3g}, μ₁={p['mu1']:.3g}")
    handles = [Patch(color=c, label=n.replace("_", " ")) for c, n in zip(OUTCOME_COLORS, OUTCOMES)]
    handles += ax.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.11), ncol=2, fontsize=8.5, frameon=False)
    ax.set_xlim(x[0], x[-1])
    ax.set_ylim(y[0], y[-1])
    ax.set_xlabel(AXIS_LABELS["alpha"])
    ax.set_ylabel(AXIS_LABELS["mu1"])
    ax.set_title(f"Toy's own class (losses vs reference) after {grid['steps']:,} GD steps (the fit's span) at the fitted\n"
                 f"μ₂ = {grid['mu2']:.3g}, effective n_d/n_a = {grid['nd_ratio']:.3g}, draw seed {result.config.seed}",
                 fontsize=9.5)
    fig.tight_layout()
    save_figure(fig, phase_path)
    plt.close(fig)


def _log_edges(x: np.ndarray) -> np.ndarray:
    """Cell edges of a log-spaced axis: geometric midpoints, and half a step beyond each end."""
    r = np.sqrt(x[1] / x[0])
    return np.concatenate([[x[0] / r], np.sqrt(x[1:] * x[:-1]), [x[-1] * r]])


LABEL_SIZE = 7  # the atlas's point labels, in points


def run_labels(rows) -> dict:
    """Each atlas row's label: the values of the knobs in which the runs differ ("noise 0.45"), and
    the run's length in millions of sequences (its last row's, else its config's) where it is not
    the most common one ("noise 0.6, 25.6M"; a run stopped early shows where it stopped); the run's
    directory name when the runs do not differ in any knob."""
    knobs = [k for k in (rows[0].knobs if rows else {}) if k != "sequences"]
    lengths = [r.length if r.length is not None else r.knobs.get("sequences") for r in rows]
    usual = max(set(lengths), key=lengths.count) if lengths else None

    def text(k, v):
        return f"{k.replace('_', ' ')} {v:g}" if isinstance(v, (int, float)) else f"{k.replace('_', ' ')} {v}"

    out = {}
    for r, n in zip(rows, lengths):
        parts = [text(k, r.knobs.get(k)) for k in knobs]
        if n != usual and isinstance(n, (int, float)):
            parts.append(f"{n / 1e6:.3g}M")
        out[r.run] = ", ".join(parts) or Path(r.run).name
    return out


def label_offsets(points: np.ndarray, texts: list[str], size: float, frame=None) -> list[tuple[float, float]]:
    """Offsets (in points) of labels for markers at `points` (N x 2, in points) such that no two
    label boxes overlap, no label covers a marker and every label stays inside `frame` (x0, y0, x1,
    y1 in points; None: anywhere), where there is room: each label, taken from the top of the
    figure down, takes the nearest free place right of its marker (just above, just below, then one
    line further up or down at a time) or, when nearer, left of it. Box sizes are estimated from the
    text (0.6 em per character, 1.25 em per line)."""
    h = 1.25 * size
    marker = 8.0  # half a marker's size, its ring included
    boxes, offsets = [], [(marker, 3.0)] * len(texts)

    def free(x0, y0, w):
        x1, y1 = x0 + w, y0 + h
        if frame is not None and not (frame[0] <= x0 and x1 <= frame[2] and frame[1] <= y0 and y1 <= frame[3]):
            return False
        if any(x0 < b[2] and b[0] < x1 and y0 < b[3] and b[1] < y1 for b in boxes):
            return False
        return not any(x0 - marker < px < x1 + marker and y0 - marker < py < y1 + marker for px, py in points)

    ladder = [3.0, -h - 3.0] + [dy for k in range(1, 16) for dy in (3.0 + k * h, -h - 3.0 - k * h)]
    for i in sorted(range(len(texts)), key=lambda j: -points[j][1]):
        w = 0.6 * size * len(texts[i])
        px, py = points[i]
        cands = sorted(((dx, dy) for dx in (marker, -marker - w) for dy in ladder),
                       key=lambda c: abs(c[1] + h / 2) + (h if c[0] < 0 else 0))  # nearest first; right before left
        dx, dy = next(((dx, dy) for dx, dy in cands if free(px + dx, py + dy, w)), (marker, 3.0))
        boxes.append((px + dx, py + dy, px + dx + w, py + dy + h))
        offsets[i] = (dx, dy)
    return offsets


def plot_atlas(rows, bg, path) -> None:
    """`compare.atlas`'s figure: each run's fitted (alpha, mu1) (±1 se) filled with its observed
    outcome's colour and ringed with the toy's outcome at its own fitted point, over one slice of the
    toy's outcome classes (`bg`, from `compare.atlas.background`, or None); runs whose R² is below
    the atlas's bar drawn as crosses."""
    fig, ax = plt.subplots(figsize=(6.6, 6.6))
    ax.set_xscale("log")
    ax.set_yscale("log")
    lo = (1e-3, 1e-3)
    if bg is not None:
        x, y = bg["alpha"], bg["mu1"]  # log-spaced: cells between geometric midpoints
        ax.pcolormesh(_log_edges(x), _log_edges(y), bg["outcome"].T, cmap=ListedColormap(OUTCOME_COLORS), alpha=0.45,
                      norm=BoundaryNorm(np.arange(-0.5, 4.5), 4), shading="flat")
        ax.set_xlim(x[0], x[-1])
        ax.set_ylim(y[0], y[-1])
        lo = (x[0], y[0])
    color = dict(zip(OUTCOMES, OUTCOME_COLORS))
    label = run_labels(rows)
    fitted = [r for r in rows if r.result is not None]
    at = []
    for r in fitted:
        p, se = r.result.params, r.result.se
        a, m = max(p["alpha"], lo[0]), max(p["mu1"], lo[1])  # a fitted 0 sits on the axis
        sa, sm = se.get("alpha") or 0.0, se.get("mu1") or 0.0
        ax.errorbar([a], [m], xerr=[[min(sa, a - lo[0])], [sa]], yerr=[[min(sm, m - lo[1])], [sm]],
                    fmt="none", ecolor="#444444", lw=0.8, capsize=2, zorder=4)
        ax.plot([a], [m], "X" if r.problem else "o", ms=11, mfc=color[r.observed],
                mec=color.get(r.toy, "black"), mew=2.6, zorder=5)
        at.append((a, m))
    if fitted:
        fig.canvas.draw()  # fixes the limits, so that data map to points
        pts = ax.transData.transform(np.array(at)) * 72.0 / fig.dpi
        frame = ax.get_window_extent().extents * 72.0 / fig.dpi
        for r, xy, off in zip(fitted, at, label_offsets(pts, [label[r.run] for r in fitted], LABEL_SIZE, frame)):
            moved = off[1] > 3.0 + 1e-6 or off[1] < -1.25 * LABEL_SIZE - 3.0 - 1e-6  # not next to its marker
            lead = dict(arrowstyle="-", color="#555555", lw=0.6, shrinkA=0, shrinkB=6) if moved else None
            ax.annotate(label[r.run], xy, xytext=off, textcoords="offset points", fontsize=LABEL_SIZE,
                        va="bottom", arrowprops=lead, zorder=6)
    handles = [Patch(color=c, label=n.replace("_", " ")) for c, n in zip(OUTCOME_COLORS, OUTCOMES)]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.11), ncol=2, fontsize=8.5, frameon=False,
              title="fill: observed outcome; ring: toy at the fitted point; background: toy slice; X: R² below the bar",
              title_fontsize=7.5)
    ax.set_xlabel(AXIS_LABELS["alpha"])
    ax.set_ylabel(AXIS_LABELS["mu1"])
    title = "Transformer runs on the toy's phase diagram"
    if bg is not None:
        title += f"\nslice at μ₂ = {bg['mu2']:.3g}, n_d/n_a = {bg['nd_ratio']:.3g}, {bg['steps']:,} steps (medians of the fits)"
    ax.set_title(title, fontsize=9.5)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
