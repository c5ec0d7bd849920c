"""A simulated run on disk: `trajectory.csv`, `summary.json`, `trajectory.png` (all written atomically)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import jax
import numpy as np

from .dynamics import Trajectory
from runio import write_csv, write_json
from .metrics import COLUMNS
from .outcomes import LEARNED, OUTCOMES
from .plots import plot_trajectory

OUTCOME_RULE = (
    f"relative loss r = L / L(mechanism tensor = 0); a mechanism is learned when r <= {LEARNED}. "
    "persistent_icl: ICL learned at some step and at the end; transient_icl: learned at some step, "
    "not at the end; ciwl_only: ICL never learned, CIWL learned at the end; no_learning: neither."
)


def _finite_or_none(x):
    x = float(x)
    return x if math.isfinite(x) else None


def summary(traj: Trajectory, config: dict) -> dict:
    """The summary.json content: config, outcome and its rule, L1 minimum, final values, solver."""
    return {
        "config": config,
        "outcome": traj.outcome,
        "outcome_classes": list(OUTCOMES),
        "outcome_thresholds": {"learned_relative_loss": LEARNED, "rule": OUTCOME_RULE},
        "l1_min": _finite_or_none(traj.l1_min),
        "l1_min_step": traj.l1_min_step,
        "icl_steps": traj.icl_steps,
        "l1_ref": traj.l1_ref,
        "l2_ref": traj.l2_ref,
        "final_step": int(traj.steps[-1]) if len(traj.steps) else 0,
        "final": {name: _finite_or_none(traj.columns[name][-1]) for name in COLUMNS} if len(traj.steps) else {},
        "diverged_at": traj.diverged_at,
        "stopped_at": traj.stopped_at,
        "solver": traj.solver,
        "wall_time_s": traj.solver.get("wall_time_s"),
        "final_state": traj.final_state,
        "versions": {"jax": jax.__version__, "numpy": np.__version__},
    }


def write_run(traj: Trajectory, config: dict, out: str | Path, title: str = "") -> dict:
    """Write the three outputs of `coop toy simulate` into `out`; returns the summary."""
    out = Path(out)
    write_csv(out / "trajectory.csv", {"step": traj.steps, **traj.columns})
    info = summary(traj, config)
    write_json(out / "summary.json", info)
    if len(traj.steps) > 1:
        plot_trajectory(traj, out / "trajectory.png", title)
    return info


def read_run(folder: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """(summary, columns) of a run folder written by `write_run`; ValueError if it is not one."""
    folder = Path(folder)
    if not (folder / "summary.json").is_file() or not (folder / "trajectory.csv").is_file():
        raise ValueError(f"{folder} is not a toy run folder (needs summary.json and trajectory.csv)")
    table = np.genfromtxt(folder / "trajectory.csv", delimiter=",", names=True, ndmin=1)
    return json.loads((folder / "summary.json").read_text()), {name: table[name] for name in table.dtype.names}
