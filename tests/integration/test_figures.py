"""`coop figures`: recipes run in dependency order, figures are copied, finished recipes are cached."""

from __future__ import annotations

import json

from gallery import Recipe, is_done, make_all

# two quick toy recipes; the second needs the first (as the transformer analyses need their runs)
FAST = (
    Recipe("short", ("toy", "simulate", "--steps", "300", "--out", "{out}"), {"trajectory.png": "a.png"}),
    Recipe("longer", ("toy", "simulate", "--steps", "400", "--init-file", "{cache}/missing.npz", "--out", "{out}"),
           {"trajectory.png": "b.png"}, needs=("short",)),
)


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
