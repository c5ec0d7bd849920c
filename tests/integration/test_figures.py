"""`coop figures`: recipes run in dependency order, figures are copied, finished recipes are cached."""

from __future__ import annotations

import json
import re

import gallery
from conftest import ROOT
from gallery import Recipe, is_done, make_all

# two quick toy recipes; the second needs the first (as the transformer analyses need their runs)
FAST = (
    Recipe("short", ("toy", "simulate", "--steps", "300", "--out", "{out}"), {"trajectory.png": "a.png"}),
    Recipe("longer", ("toy", "simulate", "--steps", "400", "--init-file", "{cache}/missing.npz", "--out", "{out}"),
           {"trajectory.png": "b.png"}, needs=("short",)),
)


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


def test_only_selects_recipes_with_what_they_need():
    from runio.options import ConfigError

    assert gallery.select(None) == gallery.ALL_RECIPES
    assert [r.name for r in gallery.select("faithful")] == [r.name for r in gallery.FAITHFUL_RECIPES]
    picked = [r.name for r in gallery.select("faithful_cooperation,paper")]
    assert picked == ["paper", "faithful_tf", "faithful_ciwl_only", "faithful_icl_only", "faithful_icl_only_ciwl_half",
                      "faithful_icl_only_ciwl_half_late", "faithful_icl_only_bursty_half", "faithful_cooperation"]
    try:
        gallery.select("nope")
    except ConfigError as err:
        assert err.option == "--only" and "nope" in str(err)
    else:
        raise AssertionError("an unknown recipe name must be refused")


def test_make_all_runs_caches_and_reruns_a_changed_recipe(tmp_path):
    ok = (FAST[0], Recipe("second", ("toy", "simulate", "--steps", "200", "--out", "{out}"), {"trajectory.png": "b.png"},
                          needs=("short",)))
    records = make_all(tmp_path / "fig", tmp_path / "cache", jobs=2, recipes=ok)
    assert not any(r.get("cached") for r in records.values())
    assert (tmp_path / "fig" / "a.png").is_file() and (tmp_path / "fig" / "b.png").is_file()
    stamp = json.loads((tmp_path / "cache" / "short.done").read_text())
    assert stamp["command"] == ["toy", "simulate", "--steps", "300", "--out", str(tmp_path / "cache" / "short")]
    again = make_all(tmp_path / "fig", tmp_path / "cache", jobs=2, recipes=ok)
    assert all(r.get("cached") for r in again.values())
    changed = (ok[0], Recipe("second", ("toy", "simulate", "--steps", "250", "--out", "{out}"), {"trajectory.png": "b.png"}))
    assert is_done(tmp_path / "cache", changed[0]) and not is_done(tmp_path / "cache", changed[1])
    third = make_all(tmp_path / "fig", tmp_path / "cache", jobs=1, recipes=changed)
    assert third["short"].get("cached") and not third["second"].get("cached")


def test_a_failing_recipe_is_reported_and_not_stamped(tmp_path):
    try:
        make_all(tmp_path / "fig", tmp_path / "cache", jobs=1, recipes=FAST)
    except RuntimeError as err:
        assert "longer" in str(err) and (tmp_path / "cache" / "longer.log").is_file()
    else:
        raise AssertionError("the recipe with a missing init file should fail")
    assert is_done(tmp_path / "cache", FAST[0]) and not is_done(tmp_path / "cache", FAST[1])


def test_figures_bad_input(coop_inprocess, tmp_path):
    (tmp_path / "file").write_text("x")
    for args, param in ((["--jobs", "0"], "--jobs"), (["--out", tmp_path / "file"], "--out"), (["--only", "x"], "--only")):
        code, _, err = coop_inprocess("figures", *args, "--cache", tmp_path / "cache")
        assert code == 2 and param in err and err.count("\n") == 1
    assert not (tmp_path / "cache").exists()
