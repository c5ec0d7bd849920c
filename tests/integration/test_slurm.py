"""Runs through a real Slurm (a one-node cluster on this host, `slurm_cluster`): the same numbers as
locally, and a cancelled training that is run again ends where an uninterrupted one ends."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import run_coop

from gallery import Recipe, make_all
from runio.jobs import JobOptions

pytestmark = pytest.mark.slurm

TINY = ["--preset", "faithful-gaussian", "--classes", "16", "--dim", "8", "--sequences", "1600", "--eval-every", "800",
        "--eval-size", "100", "--lr", "3e-3"]


def test_seeds_through_slurm_equal_the_same_runs_in_process(slurm_cluster, tmp_path):
    res = run_coop("transformer", "train", "--out", tmp_path / "slurm", *TINY, "--seeds", "0,1", "--executor", "slurm",
                   "--time", "10", timeout=600)
    assert res.returncode == 0, res.stderr
    res = run_coop("transformer", "train", "--out", tmp_path / "here", *TINY, "--seeds", "0,1", "--executor", "debug")
    assert res.returncode == 0, res.stderr
    for s in (0, 1):
        a = np.load(tmp_path / "slurm" / f"seed_{s}" / "checkpoints" / "latest.npz")
        b = np.load(tmp_path / "here" / f"seed_{s}" / "checkpoints" / "latest.npz")
        assert all(np.array_equal(a[k], b[k]) for k in a.files if k.startswith(("params/", "opt/")))
        assert (tmp_path / "slurm" / f"seed_{s}" / "metrics.csv").read_text() == (tmp_path / "here" / f"seed_{s}" / "metrics.csv").read_text()


def test_a_cancelled_training_run_again_ends_as_an_uninterrupted_one(slurm_cluster, tmp_path):
    longer = TINY[:TINY.index("--sequences")] + ["--sequences", "320000", "--eval-every", "16000", "--eval-size", "100", "--lr", "3e-3"]
    cmd = [sys.executable, "-c", "import cli; cli.main()", "transformer", "train", "--out", str(tmp_path / "s"), *longer,
           "--seeds", "0", "--executor", "slurm", "--time", "10"]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ckpt = tmp_path / "s" / "seed_0" / "checkpoints"
    deadline = time.time() + 300
    while time.time() < deadline and len(list(ckpt.glob("params_*.npz"))) < 3:
        time.sleep(0.5)
    record = json.loads((tmp_path / "s" / "jobs" / "seed_0.job.json").read_text())
    subprocess.run(["scancel", "--signal=KILL", "--full", record["job_id"]], check=True)  # a hard stop, mid-run
    first.wait(timeout=120)
    assert first.returncode != 0  # the job ended without a result: reported, not hidden
    summary = json.loads((tmp_path / "s" / "seed_0" / "summary.json").read_text())
    assert summary["steps"] < 320000 // 32  # it really was interrupted
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    res = run_coop("transformer", "train", "--out", tmp_path / "whole", *longer, "--seeds", "0", "--executor", "debug")
    assert res.returncode == 0, res.stderr
    a = np.load(ckpt / "latest.npz")
    b = np.load(tmp_path / "whole" / "seed_0" / "checkpoints" / "latest.npz")
    assert all(np.array_equal(a[k], b[k]) for k in a.files if k.startswith(("params/", "opt/")))


def test_figures_through_slurm_have_the_same_inputs_as_locally(slurm_cluster, tmp_path):
    recipes = (Recipe("short", ("toy", "simulate", "--steps", "300", "--out", "{out}"), {"trajectory.png": "a.png"}),
               Recipe("second", ("toy", "simulate", "--steps", "200", "--lr", "0.5", "--out", "{out}"), {"trajectory.png": "b.png"},
                      needs=("short",)))
    make_all(tmp_path / "f1", tmp_path / "c1", recipes=recipes, options=JobOptions(executor="slurm", time=10))
    make_all(tmp_path / "f2", tmp_path / "c2", recipes=recipes, options=JobOptions(executor="local"))
    for r in ("short", "second"):
        assert (tmp_path / "c1" / r / "trajectory.csv").read_text() == (tmp_path / "c2" / r / "trajectory.csv").read_text()
    assert (tmp_path / "f1" / "a.png").is_file() and (tmp_path / "f1" / "b.png").is_file()


def test_a_sweep_as_three_slurm_shards_equals_the_one_shot_sweep(slurm_cluster, tmp_path):
    from test_jobs import SWEEP, _same_sweep

    assert run_coop(*SWEEP, "--out", tmp_path / "one").returncode == 0
    res = run_coop(*SWEEP, "--shards", "3", "--executor", "slurm", "--time", "10", "--out", tmp_path / "slurm", timeout=600)
    assert res.returncode == 0, res.stderr
    assert _same_sweep(tmp_path / "one", tmp_path / "slurm")
