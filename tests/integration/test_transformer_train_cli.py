"""`coop transformer train/eval`: a tiny run end to end, and one-line errors (exit 2) that write nothing."""

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


def test_train_eval_and_bad_input(tmp_path):
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
    (tmp_path / "flat.npz").write_bytes(b"junk")
    np.savez(tmp_path / "twod.npz", embeddings=emb[0])
    cases = [
        (["--preset", "gpu"], "--preset"),
        (["--train-dist", "zipf"], "--train-dist"),
        (["--context-exemplar", "sometimes"], "--context-exemplar"),
        (["--icl-labels", "12"], "--icl-labels"),
        (["--pos-init", "zeros"], "--pos-init"),
        (["--superclasses", "-1"], "--superclasses"),
        (["--zipf", "-1"], "--zipf"),
        (["--class-spread", "0"], "--class-spread"),
        (["--batch", "0"], "--batch"),
        (["--sequences", "-5"], "--sequences"),
        (["--classes", "0"], "--classes"),
        (["--eval-classes", "2"], "--eval-classes"),
        (["--eval-exemplars", "0"], "--eval-exemplars"),
        (["--embeddings", tmp_path / "missing.npz"], "--embeddings"),
        (["--embeddings", tmp_path / "flat.npz"], "--embeddings"),
        (["--embeddings", tmp_path / "twod.npz"], "--embeddings"),
        (["--resume", "--lr", "0.5"], "--resume"),  # different config
        ([], "--out"),  # not empty, no --resume
    ]
    for extra, option in cases:
        _assert_bad(run_coop("transformer", "train", "--out", run, *TINY, *extra), option)
    _assert_bad(run_coop("transformer", "train", "--out", tmp_path / "p", "--preset", "paper"), "--embeddings")
    _assert_bad(run_coop("transformer", "eval", run, "--step", "7"), "--step")
    _assert_bad(run_coop("transformer", "eval", tmp_path), "RUN")
    _assert_bad(run_coop("transformer", "train", "--out", tmp_path / "m", "--seeds", "0,x"), "--seeds")
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before  # nothing overwritten
    assert not (tmp_path / "p").exists() and not (tmp_path / "m").exists()
