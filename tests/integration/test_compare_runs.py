"""`compare` on runs this project trains: their curves read (error rates, in-context and full
losses, re-scored in memory for runs that predate a column) and an atlas of several runs."""

from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import pytest

from compare.config import FitConfig
from compare.curves import load_curves


def test_a_runs_in_context_losses_and_their_rescoring(tmp_path):
    """A run's curves are its evaluators' error rates by default (1 - accuracy; `losses="context"`: the
    in-context losses, `"full"`: the full cross-entropy);
    a run whose metrics.csv predates the in-context columns gets them re-scored from its checkpoints
    in memory, equal to what training wrote, and nothing is written into the run."""
    from transformer.config import TrainConfig
    from transformer.train import train

    cfg = TrainConfig(classes=16, dim=8, d_model=16, heads=2, batch=8, sequences=10 * 400, eval_every=400, eval_size=200,
                      noise=0.3, lr=3e-3, seed=3, stop_when_icl_below=0.0)
    run = tmp_path / "run"
    train(cfg, run, progress=False)
    ctx = load_curves(run, losses="context")
    full = load_curves(run, losses="full")
    error = load_curves(run)
    with open(run / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert error.losses == "error"  # the default: 1 - in-context accuracy of each evaluator
    assert np.allclose(error.icl, [1 - float(r["icl_acc"]) for r in rows])
    assert np.allclose(error.ciwl, [1 - float(r["ciwl_acc"]) for r in rows])
    assert ctx.losses == "context" and np.allclose(ctx.icl, [float(r["icl_ctx_loss"]) for r in rows])
    assert np.allclose(full.ciwl, [float(r["ciwl_loss"]) for r in rows]) and not np.allclose(full.icl, ctx.icl)
    assert np.allclose(ctx.icl_acc, [float(r["icl_acc"]) for r in rows])
    legacy = [c for c in rows[0] if not c.endswith("_ctx_loss")]
    with open(run / "metrics.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, legacy, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    before = sorted(p.name for p in run.iterdir())
    again = load_curves(run, losses="context")
    assert sorted(p.name for p in run.iterdir()) == before  # re-scored in memory: reading never writes
    assert np.allclose(again.icl, ctx.icl, atol=2e-5) and np.allclose(again.ciwl, ctx.ciwl, atol=2e-5)


def test_atlas_fits_every_run_and_keeps_the_ones_it_cannot_fit(tmp_path):
    from compare.atlas import atlas_rows, write_atlas
    from transformer.config import TrainConfig
    from transformer.train import train

    base = TrainConfig(classes=16, dim=8, d_model=16, heads=2, batch=8, sequences=12 * 400, eval_every=400, eval_size=200,
                       noise=0.3, lr=3e-3, seed=3, stop_when_icl_below=0.0)
    runs = []
    for i, noise in enumerate((0.3, 0.6)):
        train(dataclasses.replace(base, noise=noise), tmp_path / f"r{i}", progress=False)
        runs.append(tmp_path / f"r{i}")
    rows = atlas_rows(runs, FitConfig(starts=16, refine=1, max_steps=20_000))
    assert [r.knobs for r in rows] == [{"noise": 0.3}, {"noise": 0.6}]  # only what differs
    summary = write_atlas(rows, tmp_path / "atlas")
    with open(tmp_path / "atlas" / "atlas.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [t["run"] for t in table] == [str(r) for r in runs] and (tmp_path / "atlas" / "atlas.png").is_file()
    for t, r in zip(table, rows):
        assert t["observed"] == r.observed and t["toy_outcome"] == r.toy
        assert (t["agrees"] == "") == bool(r.problem) and float(t["r2_icl"]) == pytest.approx(r.result.r2["icl"])
    assert summary["runs"] == 2 and summary["fitted"] == sum(not r.problem for r in rows)
    assert json.loads((tmp_path / "atlas" / "atlas.json").read_text())["fitted"] == summary["fitted"]
    # runs whose evaluators differ are not one measurement
    other = dataclasses.replace(base, icl_labels="01")
    train(other, tmp_path / "r_other", progress=False)
    with pytest.raises(ValueError, match="evaluators differ"):
        atlas_rows([runs[0], tmp_path / "r_other"])
