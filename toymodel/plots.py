"""Figures of the toy model (matplotlib, Agg backend): trajectories, L1 overlays, phase diagrams, portraits."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import BoundaryNorm, ListedColormap  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from runio import save_figure  # noqa: E402

from .outcomes import OUTCOMES  # noqa: E402
from .sweep import AXES, closed_form_lines  # noqa: E402

__all__ = ["plot_trajectory", "plot_l1_curves", "plot_sweep", "plot_phase_diagram", "plot_outcome_fractions",
           "plot_portraits", "grid_extent", "COLORS", "OUTCOME_COLORS", "AXIS_LABELS"]

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


def grid_extent(x, y):
    """imshow extent with cells centred on the grid values (uniform or not: cells span midpoints)."""
    def edges(v):
        v = np.asarray(v, float)
        if v.size == 1:
            return v[0] - 0.5, v[0] + 0.5
        return v[0] - (v[1] - v[0]) / 2, v[-1] + (v[-1] - v[-2]) / 2
    return (*edges(x), *edges(y))


def _squeeze_to_plane(arr, varying):
    """Index the fixed axes at 0, leaving (x, y) = (first varying, second varying)."""
    index = tuple(slice(None) if a in varying else 0 for a in AXES)
    return arr[index]


def plot_sweep(config, out) -> None:
    """The figures of a sweep folder that `toymodel.sweep.write_results` has written (read from its
    sweep.npz): phase_diagram.png when two axes vary (with `sweep.closed_form_lines`), and
    outcome_fractions.png too with more than one draw."""
    out = Path(out)
    varying = [a for a in AXES if len(getattr(config, a)) > 1]
    if len(varying) != 2:
        return
    with np.load(out / "sweep.npz") as data:
        res = {k: data[k] for k in data.files}
    plot_phase_diagram(res, config, varying, out / "phase_diagram.png", closed_form_lines(config, varying))
    if config.draws > 1:
        plot_outcome_fractions(res, config, varying, out / "outcome_fractions.png")


def plot_phase_diagram(res: dict, config, varying, path, boundaries=None) -> None:
    """Outcome class over the plane of the two varying axes (categorical colours, legend).

    `boundaries`: optional list of (x, y, label) curves drawn over the classes."""
    xa, ya = varying
    x, y = res[xa], res[ya]
    codes = _squeeze_to_plane(res["outcome"], varying)  # (nx, ny)
    fig, ax = plt.subplots(figsize=(6.2, 6.4))
    cmap = ListedColormap(OUTCOME_COLORS)
    ax.imshow(codes.T, origin="lower", aspect="auto", cmap=cmap, norm=BoundaryNorm(np.arange(-0.5, 4.5), 4),
              extent=grid_extent(x, y), interpolation="nearest")
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
    xa, ya = varying
    x, y = res[xa], res[ya]
    frac = _squeeze_to_plane(res["outcome_fraction"], varying)  # (nx, ny, 4)
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.8), sharey=True)
    for i, (ax, name) in enumerate(zip(axes, OUTCOMES)):
        im = ax.imshow(frac[..., i].T, origin="lower", aspect="auto", cmap="viridis", vmin=0, vmax=1,
                       extent=grid_extent(x, y), interpolation="nearest")
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
