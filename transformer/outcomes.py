"""What a run's metrics show: ICL's peak and end (`transience`), the paper's signatures, the early-stop rule."""

from __future__ import annotations

import numpy as np


TRANSIENT_PEAK, TRANSIENT_END = 0.7, 0.6


TRANSIENT_RULE = (
    f"transient = (max ICL accuracy >= {TRANSIENT_PEAK}) and (ICL accuracy at the last evaluation <= "
    f"{TRANSIENT_END}) and the peak comes before the last evaluation"
)


def transience(rows: list[dict]) -> dict:
    """ICL peak/end and the `transient` verdict (TRANSIENT_RULE) from metrics rows."""
    icl = np.array([r["icl_acc"] for r in rows])
    peak = int(np.argmax(icl))
    last = rows[-1]
    out = {
        "icl_peak_acc": float(icl[peak]),
        "icl_peak_sequences": int(rows[peak]["sequences"]),
        "icl_final_acc": float(last["icl_acc"]),
        "transient": bool(icl[peak] >= TRANSIENT_PEAK and last["icl_acc"] <= TRANSIENT_END and peak < len(rows) - 1),
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
    "ciwl_wins": "CIWL accuracy at the end >= 0.95",
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
        "icl_fades": bool(icl[-1] <= 0.6 and icl[peak] >= TRANSIENT_PEAK and peak < len(rows) - 1),
        "ciwl_wins": bool(rows[-1]["ciwl_acc"] >= 0.95),
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

