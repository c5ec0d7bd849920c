"""Training runs: the loss falls, resume equals an uninterrupted run, old checkpoints resume."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from transformer.analysis import evaluate_run
from transformer.checkpoints import run_problems
from transformer.rundir import COLUMNS, read_metrics
from transformer.config import TrainConfig
from transformer.train import train


TINY = TrainConfig(classes=16, dim=8, d_model=16, heads=2, batch=8, sequences=3 * 800, eval_every=800, eval_size=200,
                   noise=0.3, lr=3e-3, seed=3, stop_when_icl_below=0.0)


def test_short_run_lowers_training_loss(tmp_path):
    cfg = dataclasses.replace(TINY, sequences=8000, eval_every=4000)
    s = train(cfg, tmp_path / "run", progress=False)
    rows = read_metrics(tmp_path / "run" / "metrics.csv")
    assert list(rows[0]) == COLUMNS and [r["sequences"] for r in rows] == [0, 4000, 8000]
    assert rows[-1]["train_loss"] < 0.5 * rows[0]["train_loss"]
    assert rows[-1]["train_acc"] > 0.8 > rows[0]["train_acc"]
    assert s["steps"] == 1000 and s["steps_per_s"] > 0
    for name in ("metrics.csv", "summary.json", "curves.png", "config.json", "checkpoints/latest.npz",
                 "checkpoints/params_000000500.npz"):
        assert (tmp_path / "run" / name).is_file()
    # re-evaluating a checkpoint reproduces its metrics row
    step, ev = evaluate_run(tmp_path / "run", 500)
    assert step == 500
    for k, v in ev.items():
        assert v == pytest.approx(rows[1][k], abs=1e-5)


def test_resume_equals_uninterrupted(tmp_path):
    train(TINY, tmp_path / "full", progress=False)
    train(TINY, tmp_path / "killed", progress=False, max_chunks=1)  # stops after 1 of 3 chunks
    assert len(read_metrics(tmp_path / "killed" / "metrics.csv")) == 2
    train(TINY, tmp_path / "killed", resume=True, progress=False)
    assert (tmp_path / "full" / "metrics.csv").read_text() == (tmp_path / "killed" / "metrics.csv").read_text()
    a, b = np.load(tmp_path / "full" / "checkpoints" / "latest.npz"), np.load(tmp_path / "killed" / "checkpoints" / "latest.npz")
    for name in a.files:
        if name.startswith(("params/", "opt/")):
            assert np.array_equal(a[name], b[name]), name
    # a different config may not resume, and a finished run is refused without --resume
    other = dataclasses.replace(TINY, lr=1e-3)
    assert run_problems(other, tmp_path / "full", resume=True)[0][0] == "resume"
    assert run_problems(TINY, tmp_path / "full", resume=False)[0][0] == "out"
    assert run_problems(TINY, tmp_path / "empty", resume=True)[0][0] == "resume"
    with pytest.raises(ValueError):
        train(other, tmp_path / "full", resume=True, progress=False)
    # a finished run extended by a larger `sequences` equals the longer run trained at once (the
    # learning rate is constant); a smaller one is refused
    longer = dataclasses.replace(TINY, sequences=5 * 800)
    train(longer, tmp_path / "longer", progress=False)
    assert run_problems(dataclasses.replace(TINY, sequences=2 * 800), tmp_path / "full", resume=True)[0][0] == "resume"
    train(longer, tmp_path / "full", resume=True, progress=False)
    assert (tmp_path / "full" / "metrics.csv").read_text() == (tmp_path / "longer" / "metrics.csv").read_text()
    assert json.loads((tmp_path / "full" / "config.json").read_text())["sequences"] == 5 * 800


def test_a_run_checkpointed_before_the_context_losses_resumes(tmp_path):
    """latest.npz of a run written before the in-context losses holds LEGACY_COLUMNS rows and no
    column names: it resumes, its old rows get NaN in-context losses, its new rows real ones."""
    from transformer.rundir import CONTEXT_LOSS_COLUMNS, LEGACY_COLUMNS

    train(TINY, tmp_path / "run", progress=False, max_chunks=1)
    ckpt = tmp_path / "run" / "checkpoints" / "latest.npz"
    with np.load(ckpt) as f:
        arrays = {n: f[n] for n in f.files if n != "metric_columns"}
    arrays["metrics"] = arrays["metrics"][:, : len(LEGACY_COLUMNS)]
    np.savez(ckpt, **arrays)
    train(TINY, tmp_path / "run", resume=True, progress=False)
    rows = read_metrics(tmp_path / "run" / "metrics.csv")
    assert len(rows) == 4 and list(rows[0]) == COLUMNS
    for r in rows[:2]:
        assert all(np.isnan(r[c]) for c in CONTEXT_LOSS_COLUMNS)
    for r in rows[2:]:
        assert all(np.isfinite(r[c]) and r[c] >= 0 for c in CONTEXT_LOSS_COLUMNS), r
