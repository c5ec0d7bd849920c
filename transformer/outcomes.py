"""What a run's metrics show: its outcome class (`outcome`, the one rule for a transformer run and
for the toy's curves mapped to accuracies in `compare`), ICL's peak and end (`transience`), the
paper's signatures, the early-stop rule."""

from __future__ import annotations

import numpy as np


TRANSIENT_PEAK, TRANSIENT_END = 0.7, 0.6
CIWL_LEARNED = 0.95  # CIWL accuracy at the end at which CIWL counts as learned
OUTCOME_RULE = (
    f"transient_icl: ICL accuracy peaked >= {TRANSIENT_PEAK} before the last evaluation and ends <= {TRANSIENT_END}; "
    f"persistent_icl: it peaked >= {TRANSIENT_PEAK} and did not fade; ciwl_only: ICL never reached {TRANSIENT_PEAK} "
    f"and CIWL accuracy ends >= {CIWL_LEARNED}; no_learning: otherwise"
)


TRANSIENT_RULE = (
    f"transient = (max ICL accuracy >= {TRANSIENT_PEAK}) and (ICL accuracy at the last evaluation <= "
    f"{TRANSIENT_END}) and the peak comes before the last evaluation"
)


def outcome(icl_acc, ciwl_acc) -> str:
    """The outcome class (OUTCOME_RULE; the toy's class names) of ICL and CIWL accuracy curves, in
    evaluation order."""
    icl = np.asarray(icl_acc, np.float64)
    peak = int(np.argmax(icl))
    if icl[peak] >= TRANSIENT_PEAK:
        return "transient_icl" if icl[-1] <= TRANSIENT_END and peak < icl.size - 1 else "persistent_icl"
    return "ciwl_only" if float(np.asarray(ciwl_acc)[-1]) >= CIWL_LEARNED else "no_learning"


def transience(rows: list[dict]) -> dict:
    """ICL peak/end and the `transient` verdict (TRANSIENT_RULE) from metrics rows."""
    icl = np.array([r["icl_acc"] for r in rows])
    peak = int(np.argmax(icl))
    last = rows[-1]
    out = {
        "icl_peak_acc": float(icl[peak]),
        "icl_peak_sequences": int(rows[peak]["sequences"]),
        "icl_final_acc": float(last["icl_acc"]),
        "transient": outcome(icl, [r["ciwl_acc"] for r in rows]) == "transient_icl",
        "transient_rule": TRANSIENT_RULE,
    }
    for name in ("train", "ciwl", "flip", "iwl"):
        vals = np.array([r[f"{name}_acc"] for r in rows])
        out[f"{name}_final_acc"] = float(vals[-1])
        out[f"{name}_max_acc"] = float(vals.max())
        out[f"{name}_acc_at_icl_peak"] = float(vals[peak])
    return out


SIGNATURES = {
    "icl_rises": "ICL accuracy peaks >= 0.9",
    "icl_fades": "ICL accuracy at the end <= 0.6, after a peak >= 0.7 (ICL did emerge)",
    "ciwl_wins": f"CIWL accuracy at the end >= {CIWL_LEARNED}",
    "flip_high": "flip accuracy >= 0.8 at some evaluation (ICL dominates)",
    "flip_low": "flip accuracy at the end <= 0.1",
    "iwl_low": "IWL (full) accuracy <= 0.2 at every evaluation",
}


def signatures(rows: list[dict]) -> dict[str, bool]:
    """Which of the paper's transformer signatures (SIGNATURES) metrics rows show, plus `all`."""
    icl = np.array([r["icl_acc"] for r in rows])
    flip = np.array([r["flip_acc"] for r in rows])
    peak = int(np.argmax(icl))
    out = {
        "icl_rises": bool(icl[peak] >= 0.9),
        "icl_fades": outcome(icl, [r["ciwl_acc"] for r in rows]) == "transient_icl",
        "ciwl_wins": bool(rows[-1]["ciwl_acc"] >= CIWL_LEARNED),
        "flip_high": bool(flip.max() >= 0.8),
        "flip_low": bool(flip[-1] <= 0.1),
        "iwl_low": bool(max(r["iwl_acc"] for r in rows) <= 0.2),
    }
    out["all"] = all(out.values())
    return out


def first_learned(rows: list[dict], level: float = 0.75) -> str:
    """Which of ICL and CIWL reached accuracy `level` first ("ICL", "CIWL", "both" at one evaluation, or "neither")."""
    for r in rows:
        icl, ciwl = r["icl_acc"] >= level, r["ciwl_acc"] >= level
        if icl or ciwl:
            return "both" if icl and ciwl else "ICL" if icl else "CIWL"
    return "neither"


def faded(rows: list[dict], below: float) -> bool:
    """Early-stop rule: ICL once reached TRANSIENT_PEAK and is now below `below` (0 disables)."""
    if below <= 0:
        return False
    icl = [r["icl_acc"] for r in rows]
    return max(icl) >= TRANSIENT_PEAK and icl[-1] < below

