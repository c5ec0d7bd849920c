"""What is tracked along a trajectory, computed from per-vector quantities of the state.

For each vector v with target v*: x = v·v*, y = |v|², s = |v*|², and three squared distances the
state spaces compute exactly (`toymodel.dynamics`): |g|² of the gradient on v's free coordinates,
|v − v*|², and |v − (x/s) v*|² (the part of v orthogonal to v*). From these:
- `norm_v` = sqrt(y), `cos_v` = x / sqrt(y s) (cosine to the target);
- `grad_norm_v` = |∇_v L| over the coordinates that are updated (0 for a wholly clamped vector;
  a partially clamped one counts only its free coordinates, since the clamped ones never move);
- `dist_v` = |v − v*|, `one_minus_cos2_v` = 1 − cos²(v, v*) = |v − (x/s) v*|² / y (1 when v = 0, where cos is 0);
- `icl_strength`  = <a⊗b⊗c, a*⊗b*⊗c*> / |a*⊗b*⊗c*|² = x_a x_b x_c / (s_a s_b s_c)  (1 = learned),
- `ciwl_strength` = x_d x_b x_c / (s_d s_b s_c).
"""

from __future__ import annotations

import numpy as np

from .loss import VECTOR_NAMES, aggregation

LOSS_COLUMNS = ("loss", "l1", "l2", "competition")
PER_VECTOR = ("norm", "cos", "grad_norm", "dist", "one_minus_cos2")
COLUMNS = (
    LOSS_COLUMNS
    + tuple(f"norm_{v}" for v in VECTOR_NAMES)
    + tuple(f"cos_{v}" for v in VECTOR_NAMES)
    + ("icl_strength", "ciwl_strength")
    + tuple(f"{what}_{v}" for what in PER_VECTOR[2:] for v in VECTOR_NAMES)
)


def columns(terms: np.ndarray, x, y, s, grad2, dist2, perp2) -> dict[str, np.ndarray]:
    """Tracked columns from the loss terms (R, 4) = [loss, l1, l2, competition], per-vector x, y,
    |g|², |v − v*|², |v − (x/s) v*|² (each (R, 4)) and the target norms² s (4,)."""
    terms, x, y, grad2, dist2, perp2 = (np.asarray(a, np.float64) for a in (terms, x, y, grad2, dist2, perp2))
    s = np.asarray(s, np.float64)
    out = {name: terms[:, i] for i, name in enumerate(LOSS_COLUMNS)}
    norm = np.sqrt(y)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(norm > 0, x / (norm * np.sqrt(s)), 0.0)
        one_minus_cos2 = np.where(y > 0, perp2 / y, 1.0)
    per_vector = {"norm": norm, "cos": cos, "grad_norm": np.sqrt(grad2), "dist": np.sqrt(dist2),
                  "one_minus_cos2": one_minus_cos2}
    for what, values in per_vector.items():
        for i, v in enumerate(VECTOR_NAMES):
            out[f"{what}_{v}"] = values[:, i]
    out["icl_strength"] = x[:, 0] * x[:, 1] * x[:, 2] / (s[0] * s[1] * s[2])
    out["ciwl_strength"] = x[:, 3] * x[:, 1] * x[:, 2] / (s[3] * s[1] * s[2])
    return {name: out[name] for name in COLUMNS}


def reference_losses(s: np.ndarray, dims, aggregate: str) -> tuple[float, float]:
    """L1 and L2 when the mechanism's tensor is zero: ½·agg(T*²); the scale for relative losses."""
    n1, n2, _ = aggregation(dims, aggregate)
    return 0.5 * s[0] * s[1] * s[2] / n1, 0.5 * s[3] * s[1] * s[2] / n2
