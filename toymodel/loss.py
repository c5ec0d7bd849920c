"""The toy model's loss, written directly from the tensors.

    L1(a,b,c) = 1/2 · agg( (a*⊗b*⊗c* − a⊗b⊗c)² )     mechanism 1 (ICL)
    L2(d,b,c) = 1/2 · agg( (d*⊗b*⊗c* − d⊗b⊗c)² )     mechanism 2 (CIWL)
    C(a,d)    = 1/2 · agg( (a⊗d)² )                   competition (shared Layer 1)
    L         = (L1 + mu1)(L2 + mu2) + alpha · C

`agg` is the mean over all tensor entries (`aggregate="mean"`, the paper's choice) or their sum.
This module is the reference: it builds the tensors, so it is obviously right, and it is what the
fast reduced form (`toymodel.reduced`) is tested against.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import jax.numpy as jnp

VECTOR_NAMES = ("a", "b", "c", "d")
AGGREGATES = ("mean", "sum")


class Vectors(NamedTuple):
    """The four vectors (a pytree): a (n_a,), b (n_b,), c (n_c,), d (n_d,)."""

    a: jnp.ndarray
    b: jnp.ndarray
    c: jnp.ndarray
    d: jnp.ndarray


@dataclass(frozen=True)
class LossParams:
    """Hyperparameters of the loss: competition strength and the two mechanisms' offsets."""

    alpha: float = 0.1
    mu1: float = 0.1
    mu2: float = 0.0
    aggregate: str = "mean"

    def __post_init__(self):
        if self.aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {AGGREGATES}, got {self.aggregate!r}")

    def to_dict(self) -> dict:
        return asdict(self)


class Aggregation(NamedTuple):
    """How many entries each term aggregates over: N1 = n_a n_b n_c, N2 = n_d n_b n_c, NC = n_a n_d
    for the mean, 1 for the sum. The terms' constants are k = 1/N (`k`)."""

    n1: int
    n2: int
    nc: int

    @property
    def k(self) -> tuple[float, float, float]:
        """(k1, k2, kc): L1 = k1/2 |T1* − T1|², L2 = k2/2 |T2* − T2|², C = kc/2 |a⊗d|²."""
        return (1.0 / self.n1, 1.0 / self.n2, 1.0 / self.nc)


def aggregation(dims, aggregate: str) -> Aggregation:
    """The entry counts of L1, L2 and C for dimensions (n_a, n_b, n_c, n_d) under `aggregate`."""
    n_a, n_b, n_c, n_d = dims
    if aggregate == "mean":
        return Aggregation(n_a * n_b * n_c, n_d * n_b * n_c, n_a * n_d)
    return Aggregation(1, 1, 1)


def _agg(x: jnp.ndarray, aggregate: str) -> jnp.ndarray:
    return jnp.mean(x) if aggregate == "mean" else jnp.sum(x)


def outer3(u: jnp.ndarray, v: jnp.ndarray, w: jnp.ndarray) -> jnp.ndarray:
    """u ⊗ v ⊗ w, shape (len(u), len(v), len(w))."""
    return u[:, None, None] * v[None, :, None] * w[None, None, :]


def l1(v: Vectors, target: Vectors, aggregate: str = "mean") -> jnp.ndarray:
    """Mechanism-1 (ICL) loss: 1/2 agg((a*⊗b*⊗c* − a⊗b⊗c)²)."""
    diff = outer3(target.a, target.b, target.c) - outer3(v.a, v.b, v.c)
    return 0.5 * _agg(diff**2, aggregate)


def l2(v: Vectors, target: Vectors, aggregate: str = "mean") -> jnp.ndarray:
    """Mechanism-2 (CIWL) loss: 1/2 agg((d*⊗b*⊗c* − d⊗b⊗c)²)."""
    diff = outer3(target.d, target.b, target.c) - outer3(v.d, v.b, v.c)
    return 0.5 * _agg(diff**2, aggregate)


def competition(v: Vectors, aggregate: str = "mean") -> jnp.ndarray:
    """Competition between the mechanisms for the shared layer: 1/2 agg((a⊗d)²)."""
    return 0.5 * _agg(jnp.outer(v.a, v.d) ** 2, aggregate)


def loss_terms(v: Vectors, target: Vectors, params: LossParams) -> dict:
    """All terms at once: {'loss', 'l1', 'l2', 'competition'} (scalars)."""
    t1 = l1(v, target, params.aggregate)
    t2 = l2(v, target, params.aggregate)
    comp = competition(v, params.aggregate)
    total = (t1 + params.mu1) * (t2 + params.mu2) + params.alpha * comp
    return {"loss": total, "l1": t1, "l2": t2, "competition": comp}


def total_loss(v: Vectors, target: Vectors, params: LossParams) -> jnp.ndarray:
    """L = (L1 + mu1)(L2 + mu2) + alpha·C."""
    return loss_terms(v, target, params)["loss"]
