"""`coop figures`'s recipes: consistent, selected with what they need, and the committed index of kept runs."""

from __future__ import annotations

import re

import gallery
from conftest import ROOT


def test_recipes_are_consistent():
    names = [r.name for r in gallery.ALL_RECIPES]
    assert len(set(names)) == len(names)
    for r in gallery.ALL_RECIPES:
        assert set(r.needs) <= set(names[: names.index(r.name)]), r.name  # dependencies listed first
    figures = [f for r in gallery.ALL_RECIPES for f in r.figures.values()]
    assert len(set(figures)) == len(figures)


def test_the_index_of_kept_runs_is_what_studies_keeps():
    """gallery's committed index names kept runs only, and names every run of the noise family."""
    folder = ROOT / gallery._KEPT
    kept = {p.parent.name for p in folder.glob("*/search.json")}
    noise = [name for runs in gallery.FAITHFUL_NOISE_KEPT.values() for name in runs]
    assert len(set(noise)) == len(noise) == 19
    for name in {*gallery.FAITHFUL_SEED_RUNS, *noise}:
        assert name in kept and (folder / name / "metrics.csv").is_file() and (folder / name / "config.json").is_file()
    assert set(noise) == {name for name in kept if re.fullmatch(r"K12800_E5_n[0-9.]+_s0_S[0-9]+", name)}
    for runs in gallery.FAITHFUL_NOISE_KEPT.values():  # shortest first: the atlas fits the last
        assert [int(r.rsplit("_S", 1)[1]) for r in runs] == sorted(int(r.rsplit("_S", 1)[1]) for r in runs)


def test_the_paper_data_seeds_are_kept_runs_of_the_preset():
    """The seed atlas fits the faithful preset's kept seed runs to 3.2M sequences (wave E; the preset
    continues them to 6.4M): seeds 0-9, each with its data and config."""
    import json

    from transformer.presets import build_config

    preset = build_config("faithful", {"sequences": 3_200_000})
    seeds = []
    for name in gallery.PAPER_DATA_SEED_RUNS:
        folder = ROOT / gallery._PD_KEPT / name
        cfg = json.loads((folder / "config.json").read_text())
        assert (folder / "metrics.csv").is_file()
        assert {k: v for k, v in cfg.items() if k != "seed"} == {k: v for k, v in vars(preset).items() if k != "seed"}
        seeds.append(cfg["seed"])
    assert sorted(seeds) == list(range(10))
    for name in gallery.PAPER_DATA_LR_RUNS:  # the lr figure's runs: kept, the preset's data at seed 0
        cfg = json.loads((ROOT / gallery._PD_KEPT / name / "config.json").read_text())
        assert cfg["seed"] == 0 and cfg["latent_dim"] == preset.latent_dim and cfg["noise"] == preset.noise


def test_only_selects_recipes_with_what_they_need():
    from runio.options import ConfigError

    assert gallery.select(None) == gallery.ALL_RECIPES
    assert [r.name for r in gallery.select("faithful")] == [r.name for r in gallery.FAITHFUL_RECIPES]
    assert [r.name for r in gallery.select("paper_data_beside")] == ["paper_data_tf", "paper_data_beside"]
    picked = [r.name for r in gallery.select("faithful_cooperation,paper")]
    assert picked == ["paper", "faithful_tf", "faithful_ciwl_only", "faithful_icl_only", "faithful_icl_only_ciwl_half",
                      "faithful_icl_only_ciwl_half_late", "faithful_icl_only_bursty_half", "faithful_cooperation"]
    try:
        gallery.select("nope")
    except ConfigError as err:
        assert err.parameter == "only" and "nope" in str(err)
    else:
        raise AssertionError("an unknown recipe name must be refused")
