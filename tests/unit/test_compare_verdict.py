"""The verdict in the curves' own terms: one outcome rule (`transformer.outcomes.outcome`) for a
transformer run, the atlas, and the toy's fitted curves mapped to accuracies."""

from __future__ import annotations

import numpy as np
import pytest

from compare.curves import Curves
from compare.result import curve_verdict
from transformer.outcomes import CIWL_LEARNED, outcome, signatures, transience


@pytest.mark.parametrize("icl,ciwl_end,expected", [
    ([0.5, 0.77, 0.59], 0.97, "transient_icl"),  # peaks >= 0.7, ends <= 0.6
    ([0.5, 0.77, 0.65], 0.97, "persistent_icl"),  # did not fade far enough
    ([0.5, 0.6, 0.8], 0.97, "persistent_icl"),  # the peak is the last evaluation
    ([0.5, 0.69, 0.5], 0.96, "ciwl_only"),  # ICL never reached 0.7
    ([0.5, 0.69, 0.5], 0.93, "no_learning"),  # CIWL below the one threshold, 0.95
])
def test_the_outcome_rule(icl, ciwl_end, expected):
    assert outcome(icl, [0.5, 0.6, ciwl_end]) == expected


def test_the_transformer_and_the_atlas_use_the_one_rule():
    from compare.atlas import observed_outcome

    rows = [{"sequences": i, "icl_acc": a, "ciwl_acc": c, "train_acc": 0.5, "flip_acc": 0.5, "iwl_acc": 0.0}
            for i, (a, c) in enumerate(zip([0.5, 0.77, 0.59], [0.5, 0.8, 0.93]))]
    assert CIWL_LEARNED == 0.95
    assert transience(rows)["transient"] and signatures(rows)["icl_fades"] and not signatures(rows)["ciwl_wins"]
    assert observed_outcome(rows) == "transient_icl"
    faded_only = [{**r, "icl_acc": min(r["icl_acc"], 0.65)} for r in rows]
    assert observed_outcome(faded_only) == "no_learning"  # 0.93 < 0.95: the atlas's old 0.9 would say ciwl_only


def test_the_toys_curves_are_classified_as_accuracies():
    """A toy whose mapped ICL error dips to 0.23 (accuracy 0.77) and returns to 0.45 is transient in
    the curves' terms, whatever its losses relative to their reference levels."""
    seq = np.arange(1, 11) * 1.0
    icl_err = np.array([0.5, 0.45, 0.3, 0.23, 0.3, 0.4, 0.45, 0.45, 0.45, 0.45])
    ciwl_err = np.linspace(0.5, 0.03, 10)
    curves = Curves(seq, icl_err, ciwl_err, np.ones(10, bool), "toy", chance=0.5, kind="accuracy")
    v = curve_verdict(curves, {"sequences": seq, "icl": icl_err, "ciwl": ciwl_err})
    assert v["toy"] == v["measured"] == "transient_icl" and v["agrees"]
    assert v["toy_icl_peak_acc"] == pytest.approx(0.77) and v["toy_icl_peak_sequences"] == 4.0
    assert v["toy_ciwl_final_acc"] == pytest.approx(0.97)
    lasting = curve_verdict(curves, {"sequences": seq, "icl": np.minimum(icl_err, 0.25), "ciwl": ciwl_err})
    assert lasting["toy"] == "persistent_icl" and not lasting["agrees"]
    loss = Curves(seq, icl_err, ciwl_err, np.ones(10, bool), "toy")
    assert curve_verdict(loss, {"sequences": seq, "icl": icl_err, "ciwl": ciwl_err})["toy"] is None
