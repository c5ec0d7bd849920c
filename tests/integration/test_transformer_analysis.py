"""Mechanistic analysis on a tiny trained run: grafting, the paper's cut, clamped training, the
commands and their errors."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from transformer.analysis import Run, graft
from transformer.model import init_params
from transformer.checkpoints import load_checkpoint
from transformer.config import TrainConfig
from transformer.train import train


TINY = TrainConfig(classes=16, dim=8, d_model=16, heads=2, batch=8, sequences=2 * 800, eval_every=800, eval_size=200,
                   noise=0.3, lr=3e-3, seed=3, stop_when_icl_below=0.0)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "source"
    train(TINY, out, progress=False)
    return out


def test_grafting_identical_checkpoints_changes_nothing(tiny_run):
    run = Run(tiny_run)
    a = run.params(run.steps[-1])
    for layer in (1, 2):
        same = graft(a, run.params(run.steps[-1]), layer)
        assert all(np.array_equal(same[k], a[k]) for k in a)
    b = run.params(run.steps[0])
    mixed = graft(a, b, 2)  # exactly Layer 2's parameters come from b
    for k in a:
        assert np.array_equal(mixed[k], b[k] if k.startswith("blocks.1.") else a[k]), k
    assert any(not np.array_equal(a[k], b[k]) for k in a if k.startswith("blocks.1."))


def test_the_papers_cut_splits_the_parameters_in_two(tiny_run):
    from transformer.config import in_layer

    run = Run(tiny_run)
    a, b = run.params(run.steps[-1]), run.params(run.steps[0])
    first = {k for k in a if in_layer(k, "first_half")}
    second = {k for k in a if in_layer(k, "second_half")}
    assert first | second == set(a) and not first & second
    assert {"embed.W_x", "embed.b_x", "pos.W_pos"} <= first and {k for k in a if k.startswith("blocks.0.")} <= first
    assert in_layer("labels.W_L", "first_half")  # an untied label table is an embedding
    assert {"unembed.W_U", "unembed.b_U", "ln_final.w", "ln_final.b"} <= second
    assert {k for k in a if k.startswith("blocks.1.")} <= second
    mixed = graft(a, b, "second_half")
    assert all(np.array_equal(mixed[k], b[k] if k in second else a[k]) for k in a)


def test_frozen_layer_stays_bit_identical(tiny_run, tmp_path):
    source_step = Run(tiny_run).steps[1]
    source = f"{tiny_run}@{source_step}"
    cfg = dataclasses.replace(TINY, train_dist="icl_only", seed=4, init_layer=f"2={source},embed={source}", freeze_layer="2,embed")
    train(cfg, tmp_path / "clamped", progress=False)
    src, _ = load_checkpoint(tiny_run, TINY, source_step)
    end, _ = load_checkpoint(tmp_path / "clamped", cfg, None)
    start, _ = load_checkpoint(tmp_path / "clamped", cfg, 0)
    clamped = [k for k in end if not k.startswith("blocks.0.")]  # Layer 2 and the embeddings
    assert "blocks.1.attn.W_Q" in clamped and "unembed.W_U" in clamped and "pos.W_pos" in clamped
    assert all(np.array_equal(end[k], src[k]) and np.array_equal(start[k], src[k]) for k in clamped)
    fresh = init_params(jax.random.fold_in(jax.random.PRNGKey(4), 1), TINY.model_config())  # the seed's own init
    for k in end:
        if k.startswith("blocks.0.attn."):  # Layer 1 starts from the seed and trains
            assert np.array_equal(start[k], fresh[k]) and not np.array_equal(end[k], start[k]), k


def test_cli_bad_inputs(coop_inprocess, tiny_run, tmp_path):
    cases = [
        (["transformer", "analyze", tmp_path / "nothing", "--out", tmp_path / "a"], "RUN_DIR"),
        (["transformer", "graft", tiny_run, "--layer", "3", "--out", tmp_path / "g"], "--layer"),
        (["transformer", "graft", tiny_run, "--layer", "third_half", "--out", tmp_path / "g"], "--layer"),
        (["transformer", "train", "--out", tmp_path / "t", "--freeze-layer", "second"], "--freeze-layer"),
        (["transformer", "train", "--out", tmp_path / "t", "--classes", "16", "--init-layer", f"second_half={tiny_run}"], "--init-layer"),
        (["transformer", "graft", tiny_run, "--layer", "1", "--checkpoints", "1", "--out", tmp_path / "g"], "--checkpoints"),
        (["transformer", "analyze", tiny_run, "--ablate-at", "123", "--out", tmp_path / "a"], "--ablate-at"),
        (["transformer", "train", "--out", tmp_path / "t", "--init-layer", "2=nowhere@5"], "--init-layer"),
        (["transformer", "train", "--out", tmp_path / "t", "--init-layer", f"2={tiny_run}@7"], "--init-layer"),
        (["transformer", "train", "--out", tmp_path / "t", "--init-layer", f"3={tiny_run}"], "--init-layer"),
        (["transformer", "train", "--out", tmp_path / "t", "--freeze-layer", "0"], "--freeze-layer"),
        (["transformer", "curves", tmp_path / "nothing", "--out", tmp_path / "c.png"], "RUN_DIR"),
    ]
    for args, param in cases:
        code, out, err = coop_inprocess(*args)
        assert code == 2 and err.count("\n") == 1 and param in err, (args, err)
    assert not (tmp_path / "a").exists() and not (tmp_path / "g").exists() and not (tmp_path / "t").exists()


def test_analyze_graft_and_curves_commands(coop_inprocess, tiny_run, tmp_path):
    code, out, err = coop_inprocess("transformer", "analyze", tiny_run, "--out", tmp_path / "an")
    assert code == 0, err
    for name in ("progress.csv", "progress.png", "ablation.csv", "ablation.png", "readout.csv", "readout.png"):
        assert (tmp_path / "an" / name).is_file()
    readout = np.genfromtxt(tmp_path / "an" / "readout.csv", delimiter=",", names=True, dtype=None, encoding=None)
    intact = readout[readout["variant"] == "intact"]
    metrics = {int(r["step"]): r for r in np.genfromtxt(tiny_run / "metrics.csv", delimiter=",", names=True)}
    for r in intact:  # the intact model is the run itself: its metrics rows
        assert r["ciwl_acc"] == pytest.approx(metrics[int(r["step"])]["ciwl_acc"], abs=1e-6)
    assert len(readout) == len(intact) * 11 and "only k from the ablated stream" in out
    code, out, err = coop_inprocess("transformer", "graft", tiny_run, "--layer", "2", "--out", tmp_path / "gr")
    assert code == 0, err
    rows = np.genfromtxt(tmp_path / "gr" / "graft.csv", delimiter=",", names=True)
    assert len(rows) == 9  # 3 checkpoints squared
    diag = rows[rows["source_step"] == rows["target_step"]]
    metrics = {int(r["step"]): r for r in np.genfromtxt(tiny_run / "metrics.csv", delimiter=",", names=True)}
    for r in diag:  # the diagonal is the run itself: its metrics rows
        assert r["flip_acc"] == pytest.approx(metrics[int(r["target_step"])]["flip_acc"], abs=1e-6)
    code, out, err = coop_inprocess("transformer", "curves", tiny_run, tiny_run, "--labels", "a,b", "--out", tmp_path / "c.png")
    assert code == 0 and (tmp_path / "c.png").is_file(), err
