"""Figures of the toy model (matplotlib, Agg backend): the trajectory figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .files import save_figure  # noqa: E402

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
