"""Figures of the mechanistic analysis: progress measures, ablation table, Layer 2's readout, grafting heatmaps,
runs overlaid."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from runio import save_figure  # noqa: E402

MILLION = 1e6


def _label(evaluator: str) -> str:
    return "flip" if evaluator == "flip" else evaluator.upper()


def _finish(fig, path, title: str = "", size: int = 12) -> None:
    if title:
        fig.suptitle(title, fontsize=size)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)


def progress(path, cols: dict[str, np.ndarray], heads: int, title: str = "") -> None:
    """Layer-1 label-token attention, Layer-2 induction strength and accuracies against sequences seen."""
    seq = cols["sequences"] / MILLION
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    ax = axes[0]
    for h in range(heads):
        ax.plot(seq, cols[f"l1_prev_h{h}"], color="C0", lw=0.6, alpha=0.45)
        ax.plot(seq, cols[f"l1_self_h{h}"], color="C3", lw=0.6, alpha=0.45)
    ax.plot(seq, cols["l1_prev"], color="C0", lw=2.2, label="to its exemplar (previous token)")
    ax.plot(seq, cols["l1_self"], color="C3", lw=2.2, label="to itself")
    ax.plot(seq, cols["l1_other"], color="grey", lw=1.4, ls="--", label="elsewhere")
    ax.plot(seq, cols["l1_y2_first"], color="C4", lw=1.4, ls="-.", label="second label → first token x1")
    ax.set(xlabel="sequences seen (M)", ylabel="attention (mean over heads; thin: each head)", ylim=(-0.02, 1.02),
           title="Layer 1: attention from the label tokens")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    ax = axes[1]
    for h in range(heads):
        ax.plot(seq, cols[f"l2_induction_h{h}"], color="C2", lw=0.6, alpha=0.5)
    ax.plot(seq, cols["l2_induction"], color="C2", lw=2.2, label="sum over heads")
    ax.axhline(0, color="k", lw=0.6)
    ax.set(xlabel="sequences seen (M)", ylabel="attention to paired label − to other label",
           title="Layer 2: induction strength on the flip evaluator")
    ax.legend(fontsize=8)
    ax = axes[2]
    for name, color in (("icl", "C0"), ("ciwl", "C1"), ("flip", "C2"), ("iwl", "C3")):
        if f"{name}_acc" in cols:
            ax.plot(seq, cols[f"{name}_acc"], color=color, label=_label(name))
    ax.axhline(0.5, color="grey", lw=0.6, ls=":")
    ax.set(xlabel="sequences seen (M)", ylabel="accuracy", ylim=(-0.02, 1.02), title="evaluators")
    ax.legend(fontsize=8)
    _finish(fig, path, title)


def ablation(path, rows: list[dict], evaluators, title: str = "") -> None:
    """One accuracy table per ablated checkpoint: rows = ablations, columns = evaluators."""
    steps = sorted({r["step"] for r in rows})
    per = [[r for r in rows if r["step"] == s] for s in steps]
    n = len(per[0])
    fig, axes = plt.subplots(1, len(steps), figsize=(4.2 * len(steps) + 1.5, 0.26 * n + 1.6), squeeze=False)
    for ax, group in zip(axes[0], per):
        acc = np.array([[r[f"{e}_acc"] for e in evaluators] for r in group])
        ax.imshow(acc, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for i in range(acc.shape[0]):
            for j in range(acc.shape[1]):
                ax.text(j, i, f"{acc[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if acc[i, j] < 0.6 else "black")
        ax.set_xticks(range(len(evaluators)), [_label(e) for e in evaluators], fontsize=8)
        ax.set_yticks(range(n), [f"{r['path']} {r['mode']} {r['ablated']}" if r["path"] != "none" else "no ablation"
                                 for r in group], fontsize=7)
        ax.set_title(f"Layer 1 ablated, {group[0]['sequences'] / MILLION:.2f}M sequences", fontsize=9)
    _finish(fig, path, title, size=10)


def readout(path, rows: list[dict], reference: dict[str, float] | None = None, title: str = "") -> None:
    """Layer 2 reading an ablated Layer 1 (`transformer.readout` rows, zero-ablation): per checkpoint,
    CIWL and ICL accuracy under each variant; `reference` {variant: CIWL accuracy at the end of training}
    drawn as markers on the last checkpoint's panel."""
    from transformer.readout import VARIANT_LABELS

    steps = sorted({r["step"] for r in rows})
    variants = list(VARIANT_LABELS)
    fig, axes = plt.subplots(1, len(steps), figsize=(5.2 * len(steps), 4.2), squeeze=False, sharey=True)
    x = np.arange(len(variants))
    for ax, step in zip(axes[0], steps):
        group = {r["variant"]: r for r in rows if r["step"] == step and r["mode"] in ("none", "zero")}
        for k, (name, color) in enumerate((("ciwl", "C1"), ("icl", "C0"))):
            ax.bar(x + (k - 0.5) * 0.38, [group[v][f"{name}_acc"] for v in variants], 0.38, color=color,
                   label=_label(name))
        if reference and step == steps[-1]:
            ref = [reference.get(v, np.nan) for v in variants]
            ax.plot(x - 0.19, ref, "kD", ms=5, mfc="none", label="paper, CIWL (end of training)")
        ax.axhline(0.5, color="grey", lw=0.6, ls=":")
        ax.set_xticks(x, [VARIANT_LABELS[v] for v in variants], fontsize=8, rotation=30, ha="right")
        ax.set(ylim=(0, 1.02), title=f"{group['intact']['sequences'] / MILLION:.2f}M sequences")
    axes[0][0].set_ylabel("accuracy (Layer 1 zero-ablated)")
    axes[0][-1].legend(fontsize=8, loc="lower left")
    _finish(fig, path, title, size=10)


def _part(layer) -> str:
    return f"Layer {layer}" if isinstance(layer, int) else str(layer).replace("_", " ")


def graft_heatmaps(path, sequences: np.ndarray, matrices: dict[str, np.ndarray], layer: int | str, title: str = "") -> None:
    """Flip and ICL accuracy of model j carrying layer `layer` from checkpoint i."""
    seq = np.asarray(sequences) / MILLION
    names = [n for n in ("flip_acc", "icl_acc", "ciwl_acc") if n in matrices]
    fig, axes = plt.subplots(1, len(names), figsize=(5.0 * len(names), 4.4), squeeze=False)
    n = len(seq)
    ticks = np.unique(np.round(np.linspace(0, n - 1, min(n, 7))).astype(int))
    for ax, name in zip(axes[0], names):
        im = ax.imshow(matrices[name], vmin=0, vmax=1, cmap="viridis", origin="lower")
        ax.plot([-0.5, n - 0.5], [-0.5, n - 0.5], color="white", lw=0.7, ls="--")
        ax.set_xticks(ticks, [f"{seq[t]:.1f}" for t in ticks])
        ax.set_yticks(ticks, [f"{seq[t]:.1f}" for t in ticks])
        ax.set(xlabel="model from checkpoint j (M sequences)", ylabel=f"{_part(layer)} from checkpoint i (M sequences)",
               title=f"{_label(name[:-4])} accuracy")
        fig.colorbar(im, ax=ax, fraction=0.046)
    _finish(fig, path, title or f"Grafting {_part(layer)}: diagonal = the run itself")


def runs_overlay(path, runs: list[tuple[str, list[dict]]], metrics=("icl_acc", "flip_acc", "ciwl_acc"),
                 threshold: float | None = None, marks: dict[str, int | None] | None = None, title: str = "",
                 xlabel: str = "sequences seen (M)") -> None:
    """Accuracy curves of several runs, one panel per metric; `marks` (label -> sequences) drawn as dots."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.0 * len(metrics), 3.9), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for k, (label, rows) in enumerate(runs):
            seq = np.array([r["sequences"] for r in rows]) / MILLION
            ax.plot(seq, [r[metric] for r in rows], color=f"C{k}", label=label, lw=1.6)
            if marks and metric == "icl_acc" and marks.get(label) is not None:
                ax.plot(marks[label] / MILLION, threshold, "o", color=f"C{k}", ms=6)
        if threshold is not None and metric == "icl_acc":
            ax.axhline(threshold, color="grey", lw=0.7, ls="--")
        ax.axhline(0.5, color="grey", lw=0.5, ls=":")
        name = metric[:-4]
        ax.set(xlabel=xlabel, ylabel=f"{name.upper() if name != 'flip' else 'flip'} accuracy", ylim=(-0.02, 1.02))
        ax.legend(fontsize=8)
    _finish(fig, path, title)


def runs_beside(path, runs: list[tuple[str, list[dict]]], metrics=("train_acc", "icl_acc", "ciwl_acc", "flip_acc", "iwl_acc"),
                title: str = "", xlabel: str = "sequences seen (M)") -> None:
    """One panel per run, its evaluators' accuracies against sequences (each panel its own x range)."""
    styles = {"train": ("k", "train"), "icl": ("C0", "ICL"), "ciwl": ("C1", "CIWL"), "flip": ("C2", "flip"), "iwl": ("C3", "IWL")}
    fig, axes = plt.subplots(1, len(runs), figsize=(5.0 * len(runs), 3.9), squeeze=False, sharey=True)
    for ax, (label, rows) in zip(axes[0], runs):
        seq = np.array([r["sequences"] for r in rows]) / MILLION
        for metric in metrics:
            color, name = styles[metric[:-4]]
            ax.plot(seq, [r[metric] for r in rows], color=color, label=name, lw=1.0 if name == "train" else 1.6)
        ax.axhline(0.5, color="grey", lw=0.5, ls=":")
        ax.set(xlabel=xlabel, title=label, ylim=(-0.02, 1.02))
    axes[0][0].set_ylabel("accuracy (in-context; IWL full)")
    axes[0][0].legend(fontsize=8)
    _finish(fig, path, title)


def plot_curves(path, rows: list[dict], title: str = "") -> None:
    """Every evaluator's accuracy and loss against sequences seen (a run's curves.png)."""
    seqs = np.array([r["sequences"] for r in rows])
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    styles = {"train": ("k", "train"), "icl": ("C0", "ICL"), "ciwl": ("C1", "CIWL"), "flip": ("C2", "flip"), "iwl": ("C3", "IWL (full acc.)")}
    for name, (color, label) in styles.items():
        ax.plot(seqs, [r[f"{name}_acc"] for r in rows], color=color, label=label, lw=1.6 if name != "train" else 1.0)
        ax2.plot(seqs, [r[f"{name}_loss"] for r in rows], color=color, label=label)
    ax.axhline(0.5, color="grey", lw=0.6, ls=":")
    ax.set(xlabel="sequences seen", ylabel="accuracy (in-context; IWL full)", ylim=(-0.02, 1.02), title=title)
    ax2.set(xlabel="sequences seen", ylabel="cross-entropy", yscale="log", title="loss")
    ax.legend(loc="center right", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)



def grid_curves(path, runs: list[tuple[dict, int, list[dict]]], title: str = "") -> None:
    """ICL accuracy (CIWL dashed) against sequences, one panel per grid point, its seeds overlaid."""
    points: dict[str, list] = {}
    for point, seed, rows in runs:
        points.setdefault(", ".join(f"{k}={v}" for k, v in point.items()) or "base", []).append((seed, rows))
    cols = min(4, len(points))
    nrows = (len(points) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(3.3 * cols, 2.5 * nrows), sharey=True, squeeze=False)
    for ax, (label, seeds) in zip(axes.flat, points.items()):
        for i, (seed, rows) in enumerate(seeds):
            s = np.array([r["sequences"] for r in rows]) / MILLION
            ax.plot(s, [r["icl_acc"] for r in rows], color=f"C{i}", lw=1.2, label=f"seed {seed}")
            ax.plot(s, [r["ciwl_acc"] for r in rows], color=f"C{i}", lw=0.8, ls="--")
        ax.axhline(0.5, color="grey", lw=0.5, ls=":")
        ax.set_title(label, fontsize=8)
        ax.set_ylim(-0.02, 1.02)
    for ax in axes.flat[len(points):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6, loc="lower right")
    axes.flat[0].set_ylabel("ICL (solid), CIWL (dashed)")
    fig.supxlabel("sequences seen (millions)")
    _finish(fig, path, title, size=10)
