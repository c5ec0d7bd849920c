"""Initial vectors and targets: the paper's random draw, and init files.

The paper's draw (seed 7): `key = PRNGKey(seed)`; for each vector a, b, c, d in that order with its
dimension n: `key, sub = split(key); k1, k2 = split(sub); target = normal(k1, (n,)); init =
normal(k2, (n,))`, with jax's older, non-partitionable threefry mode and float32 normals (then
cast to float64). Any other seed draws i.i.d. N(0, 1) the same way.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .loss import VECTOR_NAMES, Vectors
from .precision import float64

PAPER_DIMS = (20, 20, 20, 160)
PAPER_SEED = 7
INIT_FILE_KEYS = tuple(VECTOR_NAMES) + tuple(f"{n}_star" for n in VECTOR_NAMES)


class Draw(NamedTuple):
    """A problem instance: where training starts (`init`) and what it should reach (`target`)."""

    init: Vectors
    target: Vectors

    @property
    def dims(self) -> tuple[int, int, int, int]:
        return tuple(int(v.shape[0]) for v in self.init)


def _check_dims(dims) -> tuple[int, int, int, int]:
    dims = tuple(int(n) for n in dims)
    if len(dims) != 4 or any(n < 1 for n in dims):
        raise ValueError(f"dims must be four positive integers (n_a, n_b, n_c, n_d), got {dims}")
    return dims


@float64
def paper_draw(seed: int = PAPER_SEED, dims=PAPER_DIMS) -> Draw:
    """Targets and initial vectors drawn as in the paper (see the module docstring)."""
    dims = _check_dims(dims)
    with jax.threefry_partitionable(False):
        key = jax.random.PRNGKey(seed)
        init, target = [], []
        for n in dims:
            key, sub = jax.random.split(key)
            k1, k2 = jax.random.split(sub)
            target.append(jax.random.normal(k1, (n,), jnp.float32).astype(jnp.float64))
            init.append(jax.random.normal(k2, (n,), jnp.float32).astype(jnp.float64))
    return Draw(Vectors(*init), Vectors(*target))


@float64
def load_init_file(path: str | os.PathLike) -> Draw:
    """Read a draw from an .npz with keys `a b c d a_star b_star c_star d_star` (1-d float arrays).

    Raises ValueError naming what is wrong (missing file, missing keys, shapes, non-finite values).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: np.asarray(data[k]) for k in data.files}
    except Exception as err:  # zip/format errors from numpy come in many types
        raise ValueError(f"not a readable .npz file: {path} ({type(err).__name__})") from None
    missing = [k for k in INIT_FILE_KEYS if k not in arrays]
    if missing:
        raise ValueError(f"{path} lacks keys {', '.join(missing)} (needs {' '.join(INIT_FILE_KEYS)})")
    for name in VECTOR_NAMES:
        v, t = arrays[name], arrays[f"{name}_star"]
        if v.ndim != 1 or v.shape != t.shape or v.shape[0] < 1:
            raise ValueError(
                f"{name} and {name}_star must be non-empty 1-d arrays of one length, got shapes "
                f"{v.shape} and {t.shape}"
            )
        if not (np.issubdtype(v.dtype, np.number) and np.issubdtype(t.dtype, np.number)):
            raise ValueError(f"{name} and {name}_star must be numeric")
        if not (np.all(np.isfinite(v)) and np.all(np.isfinite(t))):
            raise ValueError(f"{name} or {name}_star has nan or inf entries")
        if not np.any(t):
            raise ValueError(f"{name}_star is the zero vector (targets must be non-zero)")
    init = Vectors(*(jnp.asarray(arrays[n], jnp.float64) for n in VECTOR_NAMES))
    target = Vectors(*(jnp.asarray(arrays[f"{n}_star"], jnp.float64) for n in VECTOR_NAMES))
    return Draw(init, target)


def save_init_file(draw: Draw, path: str | os.PathLike) -> None:
    """Write a draw in the init-file format read by `load_init_file`."""
    arrays = {n: np.asarray(v) for n, v in zip(VECTOR_NAMES, draw.init)}
    arrays.update({f"{n}_star": np.asarray(t) for n, t in zip(VECTOR_NAMES, draw.target)})
    np.savez(path, **arrays)
