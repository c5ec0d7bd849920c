"""`coop figures`: bad input gets one line naming the option, exit 2, and nothing is written."""

from __future__ import annotations


def test_figures_bad_input(coop_inprocess, tmp_path):
    (tmp_path / "file").write_text("x")
    for args, param in ((["--jobs", "0"], "--jobs"), (["--out", tmp_path / "file"], "--out"), (["--only", "x"], "--only")):
        code, _, err = coop_inprocess("figures", *args, "--cache", tmp_path / "cache")
        assert code == 2 and param in err and err.count("\n") == 1
    assert not (tmp_path / "cache").exists()
