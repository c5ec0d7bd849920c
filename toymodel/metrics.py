"""What is tracked along a trajectory, computed from the per-vector invariants.

For each vector v with target v*: x = v·v*, y = |v|², s = |v*|². From these:
- `norm_v` = sqrt(y), `cos_v` = x / sqrt(y s) (cosine to the target);
- `icl_strength`  = <a⊗b⊗c, a*⊗b*⊗c*> / |a*⊗b*⊗c*|² = x_a x_b x_c / (s_a s_b s_c)  (1 = learned),
- `ciwl_strength` = x_d x_b x_c / (s_d s_b s_c).
"""

from __future__ import annotations

import numpy as np

from .loss import VECTOR_NAMES

LOSS_COLUMNS = ("loss", "l1", "l2", "competition")
COLUMNS = (
    LOSS_COLUMNS
    + tuple(f"norm_{v}" for v in VECTOR_NAMES)
    + tuple(f"cos_{v}" for v in VECTOR_NAMES)
    + ("icl_strength", "ciwl_strength")
)


def columns(stats: np.ndarray, s: np.ndarray) -> dict[str, np.ndarray]:
    """Tracked columns from stats (R, 12) = [loss, l1, l2, competition, x_a..x_d, y_a..y_d] and s (4,)."""
    stats = np.asarray(stats, np.float64)
    x, y = stats[:, 4:8], stats[:, 8:12]
    out = {name: stats[:, i] for i, name in enumerate(LOSS_COLUMNS)}
    norm = np.sqrt(y)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(norm > 0, x / (norm * np.sqrt(s)), 0.0)
    for i, v in enumerate(VECTOR_NAMES):
        out[f"norm_{v}"] = norm[:, i]
        out[f"cos_{v}"] = cos[:, i]
    out["icl_strength"] = x[:, 0] * x[:, 1] * x[:, 2] / (s[0] * s[1] * s[2])
    out["ciwl_strength"] = x[:, 3] * x[:, 1] * x[:, 2] / (s[3] * s[1] * s[2])
    return out


def reference_losses(s: np.ndarray, dims, aggregate: str) -> tuple[float, float]:
    """L1 and L2 when the mechanism's tensor is zero: ½·agg(T*²); the scale for relative losses."""
    n_a, n_b, n_c, n_d = dims
    n1, n2 = (n_a * n_b * n_c, n_d * n_b * n_c) if aggregate == "mean" else (1, 1)
    return 0.5 * s[0] * s[1] * s[2] / n1, 0.5 * s[3] * s[1] * s[2] / n2
