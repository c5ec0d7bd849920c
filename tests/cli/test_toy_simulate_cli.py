"""`coop toy simulate`: bad input gets one line, exit 2, nothing overwritten; divergence exit 3;
partial clamps, tracked columns and the stopping loss through the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import run_coop


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("inits")
    np.savez(root / "missing_key.npz", a=np.ones(3), b=np.ones(3), c=np.ones(3), d=np.ones(3))
    good = {k: np.ones(3) for k in "abcd"} | {f"{k}_star": np.ones(3) for k in "abcd"}
    np.savez(root / "bad_shape.npz", **(good | {"a_star": np.ones(4)}))
    np.savez(root / "two_d.npz", **(good | {"b": np.ones((3, 1)), "b_star": np.ones((3, 1))}))
    np.savez(root / "nan.npz", **(good | {"c": np.array([1.0, np.nan, 0.0])}))
    (root / "garbage.npz").write_text("not a zip file")
    return root


BAD = [
    (["--dims", "20,20,20"], "--dims"),
    (["--dims", "20,0,20,160"], "--dims"),
    (["--dims", "a,b,c,d"], "--dims"),
    (["--dims", "-1,2,3,4"], "--dims"),
    (["--alpha", "nan"], "--alpha"),
    (["--alpha", "inf"], "--alpha"),
    (["--alpha", "-0.1"], "--alpha"),
    (["--mu1", "-1"], "--mu1"),
    (["--mu2", "nan"], "--mu2"),
    (["--lr", "0"], "--lr"),
    (["--lr", "-1"], "--lr"),
    (["--steps", "0"], "--steps"),
    (["--every", "0"], "--every"),
    (["--clamp", "b,e"], "--clamp"),
    (["--clamp", "b,b"], "--clamp"),
    (["--clamp", "b:0"], "--clamp"),
    (["--clamp", "b:21"], "--clamp"),
    (["--clamp", "e:3"], "--clamp"),
    (["--clamp", "b:x"], "--clamp"),
    (["--clamp", "b:10,b:5"], "--clamp"),
    (["--clamp", "b:-1"], "--clamp"),
    (["--clamp", "b,,c"], "--clamp"),
    (["--dims", "4,5,3,10", "--clamp", "d:11"], "--clamp"),
    (["--stop-at-loss", "-1"], "--stop-at-loss"),
    (["--stop-at-loss", "nan"], "--stop-at-loss"),
    (["--stop-at-loss", "x"], "--stop-at-loss"),
    (["--method", "newton"], "--method"),
    (["--aggregate", "max"], "--aggregate"),
    (["--space", "reduced", "--method", "adam"], "--space"),
    (["--init-file", "{root}/does_not_exist.npz"], "--init-file"),
    (["--init-file", "{root}/missing_key.npz"], "--init-file"),
    (["--init-file", "{root}/bad_shape.npz"], "--init-file"),
    (["--init-file", "{root}/two_d.npz"], "--init-file"),
    (["--init-file", "{root}/nan.npz"], "--init-file"),
    (["--init-file", "{root}/garbage.npz"], "--init-file"),
    (["--steps", "ten"], "--steps"),
    (["--no-such-option", "1"], "--no-such-option"),
]


@pytest.mark.parametrize("args,param", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_one_line_exit_2_nothing_overwritten(tmp_path, bad_files, coop_inprocess, args, param):
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text("precious")
    args = [a.format(root=bad_files) for a in args]
    code, _, err = coop_inprocess("toy", "simulate", *args, "--out", out)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and param in lines[0], err
    assert (out / "summary.json").read_text() == "precious"
    assert sorted(p.name for p in out.iterdir()) == ["summary.json"]


def test_bad_input_as_a_process_has_no_traceback(tmp_path):
    proc = run_coop("toy", "simulate", "--alpha", "nan", "--out", tmp_path / "out")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "--alpha" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


def test_divergence_reported_with_step_and_trajectory_kept(tmp_path, coop_inprocess):
    code, _, err = coop_inprocess("toy", "simulate", "--lr", "50", "--steps", "100", "--out", tmp_path)
    assert code == 3
    info = json.loads((tmp_path / "summary.json").read_text())
    step = info["diverged_at"]
    assert isinstance(step, int) and 0 < step < 100
    assert f"step {step}" in err and len(err.strip().splitlines()) == 1
    rows = (tmp_path / "trajectory.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + step and "nan" not in rows[-1].lower()
    assert info["outcome"] == "diverged"


def test_bad_clamp_names_the_allowed_range(tmp_path, coop_inprocess):
    code, _, err = coop_inprocess("toy", "simulate", "--clamp", "b:21", "--out", tmp_path / "out")
    assert code == 2 and "n_b=20" in err and "1 <= K" in err and not (tmp_path / "out").exists()


def test_partial_clamp_stop_and_tracked_columns(tmp_path, coop_inprocess):
    out = tmp_path / "run"
    code, text, err = coop_inprocess("toy", "simulate", "--clamp", "b:10,c", "--steps", "3000",
                                     "--stop-at-loss", "0.01", "--out", out)
    assert code == 0, err
    info = json.loads((out / "summary.json").read_text())
    assert info["config"]["clamp"] == ["b:10", "c"] and info["config"]["stop_at_loss"] == 0.01
    assert info["solver"]["space"] == "reduced"
    step = info["stopped_at"]
    assert isinstance(step, int) and 0 < step < 3000 and info["final_step"] == step
    assert f"stopped at step {step:,}" in text
    header, *rows = (out / "trajectory.csv").read_text().strip().splitlines()
    names = header.split(",")
    for what in ("grad_norm", "dist", "one_minus_cos2"):
        assert all(f"{what}_{v}" in names for v in "abcd")
    assert len(rows) == step + 1 and int(float(rows[-1].split(",")[0])) == step
    last = dict(zip(names, map(float, rows[-1].split(","))))
    assert last["loss"] < 0.01 <= float(rows[-2].split(",")[names.index("loss")])
    assert last["dist_c"] == 0 and last["grad_norm_c"] == 0  # c wholly clamped
    assert last["grad_norm_b"] > 0 and last["dist_b"] > 0  # b's free half moves


def test_curves_overlays_runs_and_prints_their_peaks(tmp_path, coop_inprocess):
    for name, extra in (("free", ()), ("half", ("--clamp", "b:10,c:10"))):
        code, _, err = coop_inprocess("toy", "simulate", "--steps", "2000", "--every", "10", *extra,
                                      "--out", tmp_path / name)
        assert code == 0, err
    code, text, err = coop_inprocess("toy", "curves", tmp_path / "free", tmp_path / "half", "--labels", "free,half",
                                     "--out", tmp_path / "l1.png")
    assert code == 0, err
    assert (tmp_path / "l1.png").stat().st_size > 20_000
    for name in ("free", "half"):
        info = json.loads((tmp_path / name / "summary.json").read_text())
        assert f"{info['l1_min_step']:,}" in next(line for line in text.splitlines() if line.startswith(name))
    for args, param in (([tmp_path / "free", "--labels", "a,b"], "--labels"), ([tmp_path], "RUN_DIR"),
                        ([tmp_path / "free", "--out", tmp_path / "x.jpg"], "--out")):
        if "--out" not in args:
            args = [*args, "--out", tmp_path / "bad.png"]
        code, _, err = coop_inprocess("toy", "curves", *args)
        assert code == 2 and param in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad.png").exists()
