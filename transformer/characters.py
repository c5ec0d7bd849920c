"""Exemplars with the structure of the paper's: characters -> variants -> drawings in a few latent
directions, seen as high-dimensional non-negative features.

The paper's exemplars (arXiv:2503.05631, following arXiv:2205.05055) are frozen ImageNet ResNet-18
features of Omniglot: 12,800 classes = 1,600 characters x 8 rotations/flips, 20 drawings per class,
each a 512-d post-ReLU pooled feature (non-negative, never centred), read by the model through a
learned linear map. Drawings of a character vary along a few directions, the same ones that tell
characters apart, and every class has 7 close siblings. This source keeps that structure:

    character c:      u_c ~ N(0, I/L)                                   L = latent_dim
    class (c, v):     m_cv = (u_c + s w_cv) / sqrt(1 + s^2),  w_cv ~ N(0, I/L)     s = variant_spread
    drawing:          h = (m_cv + eps z) / sqrt(1 + eps^2),   z ~ N(0, I/L)        eps = noise
    feature:          x = relu(A h + shift),  A (D, L) with N(0, 1) entries       D = dim

so |h| ~ 1, each feature coordinate is relu(N(0, |h|^2) + shift), and every feature shares the
non-negative mean direction (`shift` sets its size). Class k is variant k mod V of character k // V:
siblings are consecutive, so the evaluators' first classes come in whole sibling groups.

The table is a pure function of its knobs and seed (numpy's PCG64), cached as an HDF5 file whose
name is a digest of them (`table`); the model reads it like any embeddings file.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import NamedTuple

import h5py
import numpy as np

from runio import atomic_path


class CharacterSpec(NamedTuple):
    """The knobs of a characters table (see the module docstring for what each one is)."""

    classes: int
    variants: int
    exemplars: int
    latent_dim: int
    noise: float
    variant_spread: float
    dim: int
    shift: float
    seed: int

    @property
    def characters(self) -> int:
        return self.classes // self.variants

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self._asdict(), sort_keys=True).encode()).hexdigest()[:16]


def problems(spec: CharacterSpec) -> list[tuple[str, str]]:
    """(knob, what is allowed) for what relates the knobs of `spec` (each knob's own range is
    `TrainConfig`'s); empty if they fit."""
    bad = []
    if spec.variants >= 1 and spec.classes % spec.variants:
        bad.append(("variants", f"must divide the number of classes ({spec.classes})"))
    if spec.exemplars < 1:
        bad.append(("exemplars", "must be >= 1 with the characters source (a fixed set of drawings per class)"))
    return bad


def generate(spec: CharacterSpec) -> np.ndarray:
    """The (classes, exemplars, dim) float32 feature table of `spec`."""
    rng = np.random.default_rng([spec.seed, 0xC0FFEE])
    L, s, eps = spec.latent_dim, spec.variant_spread, spec.noise
    u = rng.standard_normal((spec.characters, L)) / np.sqrt(L)
    w = rng.standard_normal((spec.classes, L)) / np.sqrt(L)
    means = (np.repeat(u, spec.variants, axis=0) + s * w) / np.sqrt(1.0 + s**2)
    z = rng.standard_normal((spec.classes, spec.exemplars, L)) / np.sqrt(L)
    h = (means[:, None, :] + eps * z) / np.sqrt(1.0 + eps**2)
    A = rng.standard_normal((L, spec.dim))
    x = h.astype(np.float32) @ A.astype(np.float32)
    x += np.float32(spec.shift)
    return np.maximum(x, 0.0, out=x)


def cache_dir() -> Path:
    """Where tables are cached: $COOP_DATA_CACHE, else ~/.cache/coopetition/characters."""
    return Path(os.environ.get("COOP_DATA_CACHE") or Path.home() / ".cache" / "coopetition" / "characters")


def write_table(path: str | os.PathLike, table: np.ndarray, spec: CharacterSpec) -> None:
    """Write `table` as HDF5 dataset `embeddings` with `spec` in its attributes, atomically."""
    with atomic_path(path, suffix=".h5") as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("embeddings", data=table)
        f["embeddings"].attrs["spec"] = json.dumps(spec._asdict(), sort_keys=True)


def read_table(path: str | os.PathLike, spec: CharacterSpec) -> np.ndarray | None:
    """The table cached at `path` if it exists and was made from `spec`, else None."""
    try:
        with h5py.File(path, "r") as f:
            if json.loads(f["embeddings"].attrs["spec"]) != json.loads(json.dumps(spec._asdict())):
                return None
            return np.asarray(f["embeddings"])
    except (OSError, KeyError):
        return None


def table(spec: CharacterSpec, directory: str | os.PathLike | None = None) -> np.ndarray:
    """The table of `spec`, read from its cache file in `directory` (default `cache_dir()`), or
    generated and cached there."""
    path = Path(directory or cache_dir()) / f"characters-{spec.digest()}.h5"
    cached = read_table(path, spec)
    if cached is not None:
        return cached
    arr = generate(spec)
    write_table(path, arr, spec)
    return arr
