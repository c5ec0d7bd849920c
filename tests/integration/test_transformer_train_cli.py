"""`coop transformer train/eval` as processes: a tiny run end to end, and a bad input that prints one
line and no traceback (every bad input: tests/cli/test_transformer_cli.py, in process)."""

from __future__ import annotations

import json

import numpy as np

from conftest import run_coop

TINY = ["--classes", "12", "--dim", "8", "--batch", "8", "--sequences", "1600", "--eval-every", "800",
        "--eval-size", "100", "--stop-when-icl-below", "0", "--quiet"]


def _assert_bad(res, option):
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and option in lines[0] and "Traceback" not in res.stderr, res.stderr


def test_train_eval_and_a_bad_input_as_processes(tmp_path):
    run = tmp_path / "run"
    emb = np.random.default_rng(0).normal(size=(10, 4, 8)).astype(np.float32)
    np.savez(tmp_path / "emb.npz", embeddings=emb)
    res = run_coop("transformer", "train", "--out", run, *TINY, "--embeddings", tmp_path / "emb.npz", "--classes", "8")
    assert res.returncode == 0, res.stderr
    cfg = json.loads((run / "config.json").read_text())
    assert (cfg["classes"], cfg["exemplars"], cfg["dim"]) == (8, 4, 8)  # from the file (first 8 classes)
    header = (run / "metrics.csv").read_text().splitlines()[0]
    assert header == ("step,sequences,train_loss,train_acc,icl_acc,icl_loss,ciwl_acc,ciwl_loss,"
                      "flip_acc,flip_loss,iwl_acc,iwl_loss,train_ctx_loss,icl_ctx_loss,ciwl_ctx_loss,flip_ctx_loss")
    summary = json.loads((run / "summary.json").read_text())
    for key in ("wall_time_s", "steps_per_s", "icl_peak_acc", "icl_peak_sequences", "icl_final_acc", "transient"):
        assert key in summary
    res = run_coop("transformer", "eval", run, "--step", "100")
    assert res.returncode == 0, res.stderr
    assert [line.split()[0] for line in res.stdout.splitlines()[2:]] == ["train", "icl", "ciwl", "flip", "iwl"]

    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    _assert_bad(run_coop("transformer", "train", "--out", run, *TINY, "--preset", "gpu"), "--preset")  # as a process
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before  # nothing overwritten
