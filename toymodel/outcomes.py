"""Outcome classes of a trajectory, and the thresholds that define them.

Losses are judged relative to the loss of the mechanism when it has learned nothing (its tensor
is zero): r1 = L1 / L1(a⊗b⊗c = 0) = L1 / (½·agg(T1*²)), and likewise r2 for L2. A mechanism
counts as **learned** at a step when its relative loss is <= LEARNED (0.1: 90% of its target
tensor's energy reconstructed). With mu1 = mu2 = alpha = 0 from a random start the relative loss
of each mechanism approaches 0; on the paper's draw the ICL minimum is r1 = 0.005.

Exactly one class per trajectory:
- `persistent_icl`: ICL learned at some step and still learned at the end.
- `transient_icl`:  ICL learned at some step, no longer learned at the end.
- `ciwl_only`:      ICL never learned; CIWL learned at the end.
- `no_learning`:    neither (e.g. stalled on a saddle for the whole run).
"""

from __future__ import annotations

import numpy as np

__all__ = ["LEARNED", "OUTCOMES", "outcome_code", "outcome_name", "classify"]

LEARNED = 0.1
OUTCOMES = ("persistent_icl", "transient_icl", "ciwl_only", "no_learning")


def outcome_code(r1_min, r1_final, r2_final):
    """Integer code (index into OUTCOMES) from relative losses; works elementwise on arrays.

    Non-finite inputs (a diverged run) count as not learned.
    """
    r1_min, r1_final, r2_final = (np.nan_to_num(np.asarray(x, np.float64), nan=np.inf) for x in (r1_min, r1_final, r2_final))
    emerged = r1_min <= LEARNED
    kept = r1_final <= LEARNED
    ciwl = r2_final <= LEARNED
    code = np.select(
        [emerged & kept, emerged & ~kept, ~emerged & ciwl],
        [0, 1, 2],
        default=3,
    )
    return code if code.ndim else int(code)


def classify(l1_min, l1_final, l2_final, l1_ref, l2_ref):
    """The outcome rule on absolute losses: `outcome_code` of L1 min, final L1 and final L2 relative
    to their reference values L1_ref, L2_ref (`toymodel.metrics.reference_losses`); elementwise."""
    return outcome_code(np.asarray(l1_min) / l1_ref, np.asarray(l1_final) / l1_ref, np.asarray(l2_final) / l2_ref)


def outcome_name(r1_min, r1_final, r2_final) -> str:
    """The class name of one trajectory (see `outcome_code`)."""
    return OUTCOMES[outcome_code(r1_min, r1_final, r2_final)]
