"""Checkpoints on disk (the arrays in a run directory's `checkpoints/`, laid out by `rundir`): save
and load them, donor layers for `init_layer`, and whether a run may start or resume.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from runio import atomic_path
from transformer.config import TrainConfig, in_layer, init_layers, keys
from transformer.model import init_params
from transformer.rundir import COLUMNS, LEGACY_COLUMNS, RunDir


def metrics_rows(table: np.ndarray, columns: list[str] | None) -> list[dict]:
    """Rows of a checkpoint's metrics array; `columns` its saved column names (None: LEGACY_COLUMNS, a
    checkpoint from before the names were saved). Columns it lacks are NaN."""
    columns = LEGACY_COLUMNS if columns is None else list(columns)
    rows = []
    for r in table.tolist():
        row = {c: float("nan") for c in COLUMNS} | dict(zip(columns, r))
        row["step"], row["sequences"] = int(row["step"]), int(row["sequences"])
        rows.append(row)
    return rows


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)


def _flat(tree) -> dict[str, np.ndarray]:
    return {f"{i:04d}": np.asarray(a) for i, a in enumerate(jax.tree_util.tree_leaves(tree))}


def _unflat(like, arrays: dict[str, np.ndarray]):
    leaves, treedef = jax.tree_util.tree_flatten(like)
    if len(arrays) != len(leaves):
        raise ValueError("checkpoint does not match this configuration")
    return jax.tree_util.tree_unflatten(treedef, [jnp.asarray(arrays[f"{i:04d}"], l.dtype) for i, l in enumerate(leaves)])


@functools.lru_cache(maxsize=4)
def _read_params(path: str, mtime_ns: int) -> tuple[dict[str, np.ndarray], int]:
    """A checkpoint file's parameters and step, read once per version of the file: a donor named by
    `init_layer` is checked when the config is built and copied in when training starts."""
    with np.load(path) as f:
        return {k[len("params/") :]: f[k] for k in f.files if k.startswith("params/")}, int(f["step"])


def load_checkpoint(run: Path, cfg: TrainConfig, step: int | None = None):
    """(params, step) of run's checkpoint at `step` (None: the latest)."""
    path = RunDir(run).params_file(step)
    if not path.is_file():
        raise FileNotFoundError(path)
    arrays, saved_step = _read_params(str(path), path.stat().st_mtime_ns)
    if set(arrays) != set(jax.eval_shape(lambda: init_params(keys(cfg.seed)["init"], cfg.model_config()))):
        raise ValueError(f"{path} does not match the run's model")
    return {n: jnp.asarray(a) for n, a in arrays.items()}, saved_step


def layer_source(cfg: TrainConfig, layer: int | str, run: Path, step: int | None) -> dict[str, np.ndarray]:
    """Layer `layer`'s parameters from `run`'s checkpoint at `step`; ValueError (one line) if the run,
    the checkpoint or the layer's shapes do not fit `cfg`."""
    other = RunDir(run).config()
    arch = ("classes", "dim", "d_model", "heads", "layers", "tie_labels")
    differ = [f"{k} {getattr(other, k)} vs {getattr(cfg, k)}" for k in arch if getattr(other, k) != getattr(cfg, k)]
    if differ:
        raise ValueError(f"{run} is a run of another model ({', '.join(differ)})")
    try:
        params, _ = load_checkpoint(run, other, step)
    except FileNotFoundError:
        raise ValueError(f"{run} has no checkpoint at step {step} (see its checkpoints/ folder)") from None
    mine = jax.eval_shape(lambda: init_params(jax.random.PRNGKey(0), cfg.model_config()))
    names = [n for n in mine if in_layer(n, layer)]
    if any(n not in params or params[n].shape != mine[n].shape for n in names):
        raise ValueError(f"layer {layer} of {run} does not have this model's shapes")
    return {n: np.asarray(params[n]) for n in names}


def donor_problems(cfg: TrainConfig) -> list[tuple[str, str]]:
    """Why the donor checkpoints named by `cfg.init_layer` cannot be used (missing, or another model)."""
    try:
        for layer, run, step in init_layers(cfg):
            layer_source(cfg, layer, run, step)
    except ValueError as err:
        return [("init_layer", str(err))]
    return []


def run_problems(cfg: TrainConfig, out: Path, resume: bool) -> list[tuple[str, str]]:
    """Why training into `out` must not start (checked before anything is written)."""
    run = RunDir(out)
    if resume:
        if not run.resumable or not run.started:
            return [("resume", f"{out} holds no run to resume (no config.json and checkpoints/latest.npz)")]
        saved = dataclasses.asdict(run.config())
        mine = dataclasses.asdict(cfg)
        diff = sorted(k for k in set(saved) | set(mine) if saved.get(k) != mine.get(k))
        if diff == ["sequences"] and mine["sequences"] > saved["sequences"]:
            return []  # extending: the learning rate is constant, so this is the longer run from the start
        if diff:
            return [("resume", f"{out} was run with a different config ({', '.join(diff)} differ; "
                               f"only a larger `sequences` may extend a run)")]
    elif out.exists() and any(out.iterdir()):
        return [("out", f"{out} is not empty; choose a new directory or pass `resume`")]
    return []

