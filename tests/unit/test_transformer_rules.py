"""Training's parts without a training run: the label table's step scale, presets and config
checks, the early-stop, transience and signature rules, old configs, the in-context loss, the data seed."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np

from transformer.model import init_params
from transformer.config import TrainConfig, check_config, keys
from transformer.outcomes import transience
from transformer.train import make_optimizer


TINY = TrainConfig(classes=16, dim=8, d_model=16, heads=2, batch=8, sequences=3 * 800, eval_every=800, eval_size=200,
                   noise=0.3, lr=3e-3, seed=3, stop_when_icl_below=0.0)


def test_label_table_step_is_scaled():
    """Adam's first step is ~lr * sign(grad): the label table's must be label_lr_scale times the rest's."""
    cfg = dataclasses.replace(TINY, label_lr_scale=0.25, weight_decay=0.0, label_weight_decay=None)
    params = init_params(keys(0)["init"], cfg.model_config())
    grads = jax.tree_util.tree_map(jnp.ones_like, params)
    tx = make_optimizer(cfg)
    updates, _ = tx.update(grads, tx.init(params), params)
    assert np.allclose(updates["unembed.W_U"], -0.25 * cfg.lr, rtol=1e-3)
    assert np.allclose(updates["embed.W_x"], -cfg.lr, rtol=1e-3)
    ucfg = dataclasses.replace(cfg, tie_labels=False)
    uparams = init_params(keys(0)["init"], ucfg.model_config())
    tx = make_optimizer(ucfg)
    updates, _ = tx.update(jax.tree_util.tree_map(jnp.ones_like, uparams), tx.init(uparams), uparams)
    assert np.allclose(updates["labels.W_L"], -0.25 * cfg.lr, rtol=1e-3)
    assert np.allclose(updates["unembed.W_U"], -cfg.lr, rtol=1e-3)


def test_presets_are_valid_and_faithful_is_the_papers_model():
    from transformer.presets import PRESETS

    for name, fields in PRESETS.items():
        assert check_config(TrainConfig(**fields)) == [], name
    f = TrainConfig(**PRESETS["faithful"])
    assert (f.tie_labels, f.label_init_std, f.label_lr_scale, f.weight_decay, f.batch) == (False, 0.02, 1.0, 0.0, 32)
    assert f.label_weight_decay in (None, 0.0)
    assert (f.context_exemplar, f.icl_labels, f.pos_init, f.layers, f.d_model, f.heads) == ("replacement", "01", "uniform", 2, 64, 8)


def test_early_stop_rule():
    from transformer.outcomes import faded

    assert faded(_rows([0.5, 0.9, 0.59]), 0.6) and not faded(_rows([0.5, 0.9, 0.61]), 0.6)
    assert not faded(_rows([0.5, 0.65, 0.5]), 0.6)  # never emerged
    assert not faded(_rows([0.5, 0.9, 0.1]), 0.0)  # disabled


def test_check_config():
    assert check_config(TINY) == []
    bad = dataclasses.replace(TINY, batch=0, train_dist="x", classes=3, sequences=1000)
    names = {n for n, _ in check_config(bad)}
    assert {"batch", "train_dist", "classes"} <= names
    assert [n for n, _ in check_config(dataclasses.replace(TINY, sequences=1000))] == ["sequences"]


def _rows(icl):
    return [{"sequences": i, "icl_acc": a, "train_acc": 1, "ciwl_acc": 1, "flip_acc": 0, "iwl_acc": 0} for i, a in enumerate(icl)]


def test_transience_rule():
    assert transience(_rows([0.5, 0.85, 0.7, 0.55]))["transient"]
    assert transience(_rows([0.5, 0.85, 0.7, 0.55]))["icl_peak_sequences"] == 1
    assert not transience(_rows([0.5, 0.85, 0.9, 0.9]))["transient"]  # persistent
    assert not transience(_rows([0.5, 0.65, 0.5]))["transient"]  # never emerged
    assert not transience(_rows([0.5, 0.6, 0.8]))["transient"]  # peak at the end


def _curves(icl, ciwl, flip, iwl):
    return [{"sequences": i, "icl_acc": a, "ciwl_acc": c, "flip_acc": f, "iwl_acc": w, "train_acc": 1}
            for i, (a, c, f, w) in enumerate(zip(icl, ciwl, flip, iwl))]


def test_signatures_and_which_came_first():
    from transformer.outcomes import first_learned, signatures

    paper = _curves([0.5, 0.95, 0.7, 0.55], [0.5, 0.6, 0.9, 0.97], [0.5, 0.9, 0.4, 0.05], [0, 0.01, 0.05, 0.1])
    assert signatures(paper) == {k: True for k in ("icl_rises", "icl_fades", "ciwl_wins", "flip_high", "flip_low", "iwl_low", "all")}
    assert first_learned(paper) == "ICL"
    ciwl_first = _curves([0.5, 0.52, 0.51], [0.5, 0.8, 0.95], [0.5, 0.2, 0.05], [0, 0, 0])
    sig = signatures(ciwl_first)
    assert not sig["icl_rises"] and not sig["icl_fades"] and sig["ciwl_wins"] and not sig["all"]  # never emerged: no fade
    assert first_learned(ciwl_first) == "CIWL" and first_learned(ciwl_first[:1]) == "neither"
    persistent = _curves([0.5, 0.95, 0.93], [0.5, 0.7, 0.96], [0.5, 0.9, 0.8], [0, 0, 0.3])
    sig = signatures(persistent)
    assert sig["icl_rises"] and not sig["icl_fades"] and not sig["flip_low"] and not sig["iwl_low"]


def test_the_default_config_is_the_run_coop_transformer_train_makes(tmp_path):
    """`TrainConfig()` is the preset `coop transformer train` uses when no option is given, and a run's
    config.json reads back as the config that wrote it."""
    import typer

    from cli import app
    from transformer.rundir import RunDir
    from transformer.presets import build_config

    train = typer.main.get_command(app).commands["transformer"].commands["train"]
    preset = next(p.default for p in train.params if p.name == "preset")
    assert build_config(preset, {}) == TrainConfig()
    assert build_config("faithful", {}) != TrainConfig()  # the comparison can fail
    (tmp_path / "config.json").write_text(json.dumps(dataclasses.asdict(TINY)))
    assert RunDir(tmp_path).config() == TINY


def test_in_context_loss_is_the_two_way_cross_entropy():
    from transformer.evaluate import context_cross_entropy, in_context_correct

    logits = jnp.array([[0.0, 2.0, -1.0, 5.0], [1.0, 1.0, 7.0, 0.0], [3.0, 0.0, 0.0, -2.0]])
    y = jnp.array([[0, 1], [1, 0], [3, 0]])
    target = jnp.array([1, 0, 3])
    got = np.asarray(context_cross_entropy(logits, y, target))
    want = [np.log1p(np.exp(0.0 - 2.0)), np.log(2.0), np.log1p(np.exp(3.0 - (-2.0)))]  # -log softmax over the pair
    assert np.allclose(got, want, atol=1e-6)
    # below log 2 exactly when the in-context answer is right (row 1 is a tie, which goes to the first label)
    ok = np.asarray(in_context_correct(logits, y, target))
    assert list(ok) == [True, False, False] and got[0] < np.log(2) < got[2]


def test_data_seed_moves_the_draw_and_keeps_the_init():
    from transformer.config import make_source

    same = keys(3)
    assert all(np.array_equal(same[n], keys(3, None)[n]) for n in same)
    split = keys(3, 1)
    assert np.array_equal(split["init"], same["init"])
    for name in ("source", "data", "eval"):
        assert np.array_equal(split[name], keys(1)[name]) and not np.array_equal(split[name], same[name])
    a = make_source(dataclasses.replace(TINY, seed=3, data_seed=1, exemplars=2))
    b = make_source(dataclasses.replace(TINY, seed=1, exemplars=2))
    assert np.array_equal(a.table, b.table)
    assert [k for k, _ in check_config(dataclasses.replace(TINY, data_seed=-1))] == ["data_seed"]


def test_the_faithful_preset_is_the_kept_run_it_was_chosen_from():
    """`--preset faithful` trains exactly the configuration the paper-data search kept (its seed 0),
    so the search's table and figures describe the preset."""
    from conftest import ROOT
    from transformer.presets import build_config

    kept = ROOT / "studies" / "paper_data" / "kept" / "L6_n0.7_sp1_sh0.5_S6400000" / "config.json"
    assert json.loads(kept.read_text()) == dataclasses.asdict(build_config("faithful", {}))


def test_a_donor_checkpoint_is_read_once(tmp_path, monkeypatch):
    """Building a config that copies a layer from another run checks the donor, and training copies it
    in: the file is opened once."""
    from transformer import checkpoints
    from transformer.checkpoints import donor_problems, layer_source, save_npz

    donor = tmp_path / "donor"
    (donor / "checkpoints").mkdir(parents=True)
    (donor / "config.json").write_text(json.dumps(dataclasses.asdict(TINY)))
    params = init_params(jax.random.PRNGKey(1), TINY.model_config())
    save_npz(donor / "checkpoints" / "params_000000100.npz",
             {"step": np.int64(100), **{f"params/{n}": np.asarray(v) for n, v in params.items()}})
    opened = []
    real_load = np.load
    monkeypatch.setattr(checkpoints.np, "load", lambda path, *a, **k: opened.append(path) or real_load(path, *a, **k))
    cfg = dataclasses.replace(TINY, init_layer=f"2={donor}@100")
    assert donor_problems(cfg) == []
    copied = layer_source(cfg, 2, donor, 100)
    assert len(opened) == 1 and copied and all(np.array_equal(copied[n], np.asarray(params[n])) for n in copied)
    assert donor_problems(dataclasses.replace(TINY, init_layer=f"2={donor}@200"))  # a step it does not have
