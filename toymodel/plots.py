"""Figures of the toy model (matplotlib, Agg backend): trajectories, L1 overlays, phase diagrams, portraits."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from runio import save_figure  # noqa: E402

COLORS = {"l1": "#1f6fb4", "l2": "#d9541e", "competition": "#6a6a6a", "loss": "#111111"}
LABELS = {
    "l1": "$L_1$ (mechanism 1, ICL)",
    "l2": "$L_2$ (mechanism 2, CIWL)",
    "competition": "$C$ (competition)",
    "loss": "$L$ (total)",
}


def plot_trajectory(traj, path, title: str = "") -> None:
    """Two panels against training step: the losses on a log axis with the ICL peak (minimum of
    L1) marked, and the two mechanism strengths (1 = learned)."""
    steps = traj.steps
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(7.5, 6.2), sharex=True, height_ratios=(3, 2))
    floor = max(1e-10, 0.01 * min(traj.l1_min, np.nanmin(traj.columns["l1"])))
    for name in ("l1", "l2", "competition"):
        y = np.clip(traj.columns[name], floor, None)
        ax.plot(steps, y, color=COLORS[name], lw=1.8, label=LABELS[name])
    ax.set_yscale("log")
    ax.set_ylim(bottom=floor)
    ax.set_ylabel("loss term (log scale)")
    peak = traj.l1_min_step
    for a in (ax, ax2):
        a.axvline(peak, color=COLORS["l1"], ls=":", lw=1)
        a.grid(alpha=0.25, which="major")
    ax.plot([peak], [traj.l1_min], "o", color=COLORS["l1"], ms=6, zorder=5)
    ax.annotate(
        f"ICL peak: $L_1$ = {traj.l1_min:.4g}\nat step {peak:,}",
        xy=(peak, traj.l1_min), xytext=(10, -6), textcoords="offset points", fontsize=9, va="top",
        color=COLORS["l1"],
    )
    if np.nanmin(traj.columns["l2"]) < floor:
        ax.text(0.99, 0.02, f"values below {floor:.0e} drawn at the axis floor", transform=ax.transAxes,
                ha="right", va="bottom", fontsize=7.5, color="#555555")
    ax.legend(loc="upper right", fontsize=9, frameon=False)
    ax.set_title(title or "Toy model trajectory", fontsize=11)

    ax2.plot(steps, traj.columns["icl_strength"], color=COLORS["l1"], lw=1.8, label="ICL strength $a\\otimes b\\otimes c$")
    ax2.plot(steps, traj.columns["ciwl_strength"], color=COLORS["l2"], lw=1.8, label="CIWL strength $d\\otimes b\\otimes c$")
    ax2.axhline(1.0, color="#999999", lw=0.8, ls="--")
    ax2.set_ylabel("overlap with target\n(1 = learned)")
    ax2.set_xlabel("training step")
    ax2.legend(loc="center right", fontsize=9, frameon=False)
    ax2.text(0.01, 0.95, f"outcome: {traj.outcome.replace('_', ' ')}", transform=ax2.transAxes, va="top", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def plot_l1_curves(runs: list, path, title: str = "") -> None:
    """L1 against training step for several runs, log scale, each ICL peak (L1 minimum) marked.
    `runs`: [(label, steps, l1, l1_min, l1_min_step)]."""
    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    cmap = plt.get_cmap("viridis")
    for i, (label, steps, l1, l1_min, peak) in enumerate(runs):
        color = cmap(0.85 * i / max(1, len(runs) - 1))
        ax.plot(steps, l1, color=color, lw=1.8, label=f"{label}: peak $L_1$ = {l1_min:.3g} at step {peak:,}")
        ax.plot([peak], [l1_min], "o", color=color, ms=6, zorder=5)
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("$L_1$ (mechanism 1, ICL), log scale")
    ax.grid(alpha=0.25, which="major")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), fontsize=9, frameon=False)
    ax.set_title(title or "ICL loss $L_1$", fontsize=11)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


OUTCOME_COLORS = ("#2a9d8f", "#e9c46a", "#e76f51", "#bbbbbb")  # persistent, transient, ciwl_only, none
AXIS_LABELS = {"alpha": "competition α", "mu1": "ICL offset μ₁", "mu2": "CIWL offset μ₂"}


def _grid_extent(x, y):
    """imshow extent with cells centred on the grid values (uniform or not: cells span midpoints)."""
    def edges(v):
        v = np.asarray(v, float)
        if v.size == 1:
            return v[0] - 0.5, v[0] + 0.5
        return v[0] - (v[1] - v[0]) / 2, v[-1] + (v[-1] - v[-2]) / 2
    return (*edges(x), *edges(y))


def _squeeze_to_plane(arr, varying):
    """Index the fixed axes at 0, leaving (x, y) = (first varying, second varying)."""
    from .sweep import AXES

    index = tuple(slice(None) if a in varying else 0 for a in AXES)
    return arr[index]


def plot_phase_diagram(res: dict, config, varying, path, boundaries=None) -> None:
    """Outcome class over the plane of the two varying axes (categorical colours, legend).

    `boundaries`: optional list of (x, y, label) curves drawn over the classes."""
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch

    from .outcomes import OUTCOMES
    from .sweep import AXES

    xa, ya = varying
    x, y = res[xa], res[ya]
    codes = _squeeze_to_plane(res["outcome"], varying)  # (nx, ny)
    fig, ax = plt.subplots(figsize=(6.2, 6.4))
    cmap = ListedColormap(OUTCOME_COLORS)
    ax.imshow(codes.T, origin="lower", aspect="auto", cmap=cmap, norm=BoundaryNorm(np.arange(-0.5, 4.5), 4),
              extent=_grid_extent(x, y), interpolation="nearest")
    for bx, by, label in boundaries or []:
        ax.plot(bx, by, color="black", lw=3.5, solid_capstyle="butt", clip_on=False, zorder=5, label=label)
    handles = [Patch(color=c, label=n.replace("_", " ")) for c, n in zip(OUTCOME_COLORS, OUTCOMES)]
    if boundaries:
        handles += ax.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=8.5, frameon=False)
    ax.set_xlabel(AXIS_LABELS[xa])
    ax.set_ylabel(AXIS_LABELS[ya])
    fixed = ", ".join(f"{AXIS_LABELS[a].split()[-1]} = {getattr(config, a)[0]:g}" for a in AXES if a not in varying)
    draws = f", {config.draws} draws (majority class)" if config.draws > 1 else (
        ", paper draw" if config.seed == 7 else f", draw seed {config.seed}")
    ax.set_title(f"Outcome after {config.steps:,} GD steps (lr {config.lr:g}); {fixed}{draws}", fontsize=9.5)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def plot_outcome_fractions(res: dict, config, varying, path) -> None:
    """One panel per outcome class: the fraction of draws ending in it, over the plane."""
    from .outcomes import OUTCOMES

    xa, ya = varying
    x, y = res[xa], res[ya]
    frac = _squeeze_to_plane(res["outcome_fraction"], varying)  # (nx, ny, 4)
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.8), sharey=True)
    for i, (ax, name) in enumerate(zip(axes, OUTCOMES)):
        im = ax.imshow(frac[..., i].T, origin="lower", aspect="auto", cmap="viridis", vmin=0, vmax=1,
                       extent=_grid_extent(x, y), interpolation="nearest")
        ax.set_title(name.replace("_", " "), fontsize=10)
        ax.set_xlabel(AXIS_LABELS[xa])
    axes[0].set_ylabel(AXIS_LABELS[ya])
    fig.colorbar(im, ax=axes, fraction=0.015, pad=0.01, label=f"fraction of {config.draws} draws")
    fig.suptitle(f"Outcome fractions over random draws (seeds {config.seed}..{config.seed + config.draws - 1}), "
                 f"{config.steps:,} GD steps", fontsize=10.5)
    save_figure(fig, path)
    plt.close(fig)


FIXED_POINT_STYLE = {
    "stable": dict(marker="o", color="black", markerfacecolor="black"),
    "marginally stable": dict(marker="o", color="black", markerfacecolor="white"),
    "saddle": dict(marker="X", color="#b00020", markerfacecolor="#b00020"),
    "unstable": dict(marker="s", color="#b00020", markerfacecolor="white"),
    "degenerate saddle (higher order)": dict(marker="D", color="#b00020", markerfacecolor="white"),
}


def plot_portraits(portraits: list, path, ncols: int) -> None:
    """Small multiples of phase portraits (see `toymodel.portrait`)."""
    from matplotlib.lines import Line2D

    n = len(portraits)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.3 * ncols, 4.1 * nrows), squeeze=False)
    cmap = plt.get_cmap("plasma")
    for ax, por in zip(axes.flat, portraits):
        speed = np.hypot(por.u, por.v)
        ax.streamplot(por.m1, por.m2, por.u, por.v, color=np.log10(speed + 1e-12), cmap="Greys", density=1.1,
                      linewidth=0.7, arrowsize=0.8)
        for i, (seed, m1, m2) in enumerate(por.trajectories):
            color = cmap(0.1 + 0.7 * i / max(1, len(por.trajectories) - 1))
            ax.plot(m1, m2, color=color, lw=1.6, alpha=0.95)
            ax.plot(m1[0], m2[0], "o", color=color, ms=3)
            ax.annotate("", xy=(m1[-1], m2[-1]), xytext=(m1[-2], m2[-2]),
                        arrowprops=dict(arrowstyle="-|>", color=color, lw=1.2))
        for fp in por.fixed_points:
            style = FIXED_POINT_STYLE.get(fp["type"], FIXED_POINT_STYLE["unstable"])
            if fp.get("line") == "m2":
                ax.axhline(1.0, color="black", lw=2.5, alpha=0.6, zorder=5)
            elif fp.get("line") == "m1":
                ax.axvline(1.0, color="black", lw=2.5, alpha=0.6, zorder=5)
            else:
                ax.plot(fp["m1"], fp["m2"], ms=8, ls="none", markeredgewidth=1.5, zorder=6, **style)
        p = por.params
        ax.set_title(f"α={p.alpha:g}, μ₁={p.mu1:g}, μ₂={p.mu2:g}", fontsize=10)
        ax.set_xlim(por.m1[0], por.m1[-1])
        ax.set_ylim(por.m2[0], por.m2[-1])
        ax.set_xlabel("ICL strength m₁")
        ax.set_ylabel("CIWL strength m₂")
        ax.set_aspect("equal")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    handles = [Line2D([], [], color="grey", lw=0.8, label="flow with b, c clamped at target"),
               Line2D([], [], color=cmap(0.1), lw=1.6, label="gradient flow (draws), projected" + (
                   f", clamp {','.join(portraits[0].clamp)}" if portraits[0].clamp else ", free"))]
    handles += [Line2D([], [], ls="none", ms=7, label=name, **style) for name, style in FIXED_POINT_STYLE.items()
                if any(fp["type"] == name for por in portraits for fp in por.fixed_points)]
    fig.legend(handles=handles, loc="lower center", ncol=min(4, len(handles)), fontsize=8.5, frameon=False,
               bbox_to_anchor=(0.5, -0.01))
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    save_figure(fig, path)
    plt.close(fig)


def plot_fit(result, toy_curves: dict, grid: dict, overlay_path, phase_path) -> None:
    """The two figures of `coop compare` (see `toymodel.fit`).

    overlay: measured ICL / CIWL evaluator losses (dots; rows not fitted hollow) and the mapped toy
    L1 / L2 (lines) on one sequences axis, R^2 in the legend, toy steps on the top axis, residuals
    below. phase: outcome classes over (alpha, mu1) at the fitted mu2 and nd_ratio (`grid` from
    `toymodel.fit.phase_grid`), the fitted point marked with +- 1 standard error."""
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch

    from .outcomes import OUTCOMES

    p, cur = result.params, result.curves
    colors = {"icl": COLORS["l1"], "ciwl": COLORS["l2"]}
    names = {"icl": ("ICL evaluator", "$L_1$"), "ciwl": ("CIWL evaluator", "$L_2$")}
    maps = {"icl": (p["A1"], p["B1"]), "ciwl": (p["A2"], p["B2"])}

    fig, (ax, axr) = plt.subplots(2, 1, figsize=(8.2, 6.6), sharex=True, height_ratios=(3, 1.3))
    fitted_vals = np.concatenate([cur.y(k) for k in ("icl", "ciwl")] + [toy_curves[k] for k in ("icl", "ciwl")])
    top = 1.12 * float(np.nanmax(np.where(np.isfinite(fitted_vals), fitted_vals, np.nan)))
    top = min(top, 1.12 * float(np.max([cur.y(k).max() for k in ("icl", "ciwl")])) + 0.5)
    for k in ("icl", "ciwl"):
        a, b = maps[k]
        ax.plot(cur.s, cur.y(k), "o", ms=3.6, color=colors[k],
                label=f"{names[k][0]} loss (measured), $R^2$ = {result.r2[k]:.3f}")
        ax.plot(toy_curves["sequences"], toy_curves[k], color=colors[k], lw=1.8, alpha=0.85,
                label=f"toy: {a:.3g}·{names[k][1]} + {b:.3g}")
        out = ~cur.used
        if out.any():
            ax.plot(cur.sequences[out], np.minimum(getattr(cur, k)[out], top * 0.985), "o", ms=4.5, mfc="none",
                    color=colors[k])
        axr.plot(cur.s, cur.y(k) - result.fitted[k], "o-", ms=2.8, lw=0.8, color=colors[k], label=names[k][0])
    if (~cur.used).any():
        dropped = " / ".join(f"{getattr(cur, k)[~cur.used][0]:.3g}" for k in ("icl", "ciwl"))
        ax.plot([], [], "o", ms=4.5, mfc="none", color="#555555",
                label=f"not fitted (sequences < {cur.s[0]:,.0f}; first: {dropped}; clipped to the axis)")
    peak = result.toy["l1_min_sequences"]
    ax.axvline(peak, color=COLORS["l1"], ls=":", lw=1)
    ax.text(peak, 0.985, f" toy ICL peak (step {result.toy['l1_min_step']:,})", transform=ax.get_xaxis_transform(),
            fontsize=7.5, color=COLORS["l1"], va="top")
    ax.set_ylim(min(0.0, float(np.min([cur.y(k).min() for k in ("icl", "ciwl")]))), top)
    ax.set_ylabel("evaluator loss (cross-entropy)")
    ax.legend(fontsize=8, frameon=False, loc="upper center", bbox_to_anchor=(0.5, 0.95))
    ax.grid(alpha=0.25)
    tau = p["tau"]
    sec = ax.secondary_xaxis("top", functions=(lambda s: s / tau, lambda t: t * tau))
    sec.set_xlabel(f"toy GD step (τ = {tau:.4g} sequences per step)", fontsize=9)
    verdict = result.toy["outcome"].replace("_", " ")
    ax.set_title(f"α={p['alpha']:.3g}, μ₁={p['mu1']:.3g}, μ₂={p['mu2']:.3g}, n_d/n_a={p['nd_ratio']:.3g}; "
                 f"toy outcome: {verdict}", fontsize=9.5)
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
              norm=BoundaryNorm(np.arange(-0.5, 4.5), 4), extent=_grid_extent(x, y), interpolation="nearest")
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
    ax.set_title(f"Toy outcome after {grid['steps']:,} GD steps (the fit's span) at the fitted\n"
                 f"μ₂ = {grid['mu2']:.3g}, effective n_d/n_a = {grid['nd_ratio']:.3g}, draw seed {result.config.seed}",
                 fontsize=9.5)
    fig.tight_layout()
    save_figure(fig, phase_path)
    plt.close(fig)
