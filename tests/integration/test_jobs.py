"""The job layer (runio.jobs) and what runs on it: several seeds, grids; bad job options."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import cloudpickle
import pytest
from conftest import run_coop

from runio.jobs import Job, JobError, JobOptions, run_jobs


def _square(folder, n):
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / "out.json").write_text(json.dumps({"n": n, "cores": sorted(os.sched_getaffinity(0))}))
    return n * n


def _fails(folder):
    raise RuntimeError("no")


# the local executor's children cannot import this test module: send its functions by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _jobs(root, n=3):
    return [Job(f"j{i}", _square, (root / f"j{i}", i), root / f"j{i}", (lambda i=i: (root / f"j{i}" / "out.json").is_file()))
            for i in range(n)]


@pytest.mark.parametrize("executor", ["local", "debug"])
def test_jobs_run_once_and_finished_ones_are_skipped(tmp_path, executor):
    jobs = _jobs(tmp_path)
    assert run_jobs(jobs, JobOptions(executor=executor, jobs=2), tmp_path / "logs") == {"j0": 0, "j1": 1, "j2": 4}
    if executor == "local":  # each local job pinned to one core of this process's
        cores = [json.loads((tmp_path / f"j{i}" / "out.json").read_text())["cores"] for i in range(3)]
        assert all(len(c) == 1 and c[0] in os.sched_getaffinity(0) for c in cores)
    assert run_jobs(jobs, JobOptions(executor=executor), tmp_path / "logs") == {"j0": None, "j1": None, "j2": None}


def test_progress_reports_each_state_once(tmp_path):
    calls = []
    run_jobs(_jobs(tmp_path), JobOptions(executor="local", jobs=2), tmp_path / "logs", progress=lambda *a: calls.append(a))
    states = [(done, frozenset(running.split(", "))) for done, _, running in calls]
    assert len(states) == len(set(states))  # no state reported twice (a polling loop once printed it 5 times a second)
    assert calls[0] == (0, 3, "") and calls[-1] == (3, 3, "")
    assert any(running for _, _, running in calls)  # the running jobs' names, while they run
    assert all(total == 3 for _, total, _ in calls)


def test_dependencies_and_failures_are_named(tmp_path):
    jobs = _jobs(tmp_path, 2) + [Job("bad", _fails, (tmp_path / "bad",), tmp_path / "bad", lambda: False)]
    order = []
    with pytest.raises(JobError, match="job bad failed .* see "):
        run_jobs(jobs, JobOptions(executor="local"), tmp_path / "logs",
                 ready=lambda job, finished: order.append(job.name) or job.name != "bad" or {"j0", "j1"} <= finished)
    assert (tmp_path / "j0" / "out.json").is_file() and (tmp_path / "j1" / "out.json").is_file()


def test_job_options_from_env_and_their_problems(monkeypatch):
    monkeypatch.setenv("COOP_EXECUTOR", "debug")
    monkeypatch.setenv("COOP_TIME", "30")
    o = JobOptions.from_env(jobs=3)
    assert (o.executor, o.time, o.jobs) == ("debug", 30, 3)
    assert JobOptions.from_env(executor="local").executor == "local"  # the command line wins
    assert [n for n, _ in JobOptions(executor="local").problems(("partition",))] == ["partition"]
    assert [n for n, _ in JobOptions(executor="cloud").problems()] == ["executor"]
    monkeypatch.setenv("COOP_TIME", "soon")
    with pytest.raises(ValueError, match="COOP_TIME"):
        JobOptions.from_env()


TINY = ["--preset", "faithful-gaussian", "--classes", "16", "--dim", "8", "--sequences", "1600", "--eval-every", "800",
        "--eval-size", "100", "--lr", "3e-3"]


def test_seeds_locally_equal_seeds_in_process(tmp_path):
    res = run_coop("transformer", "train", "--out", tmp_path / "local", *TINY, "--seeds", "0,1")
    assert res.returncode == 0, res.stderr
    res = run_coop("transformer", "train", "--out", tmp_path / "debug", *TINY, "--seeds", "0:2", "--executor", "debug")
    assert res.returncode == 0, res.stderr
    for s in (0, 1):
        a = (tmp_path / "local" / f"seed_{s}" / "metrics.csv").read_text()
        assert a == (tmp_path / "debug" / f"seed_{s}" / "metrics.csv").read_text()
    assert (tmp_path / "local" / "seed_0" / "metrics.csv").read_text() != (tmp_path / "local" / "seed_1" / "metrics.csv").read_text()
    before = (tmp_path / "local" / "seeds.json").read_text()
    res = run_coop("transformer", "train", "--out", tmp_path / "local", *TINY, "--seeds", "0,1")  # rerun: nothing to train
    assert res.returncode == 0 and json.loads((tmp_path / "local" / "seeds.json").read_text()) == json.loads(before)


def test_grid(tmp_path):
    res = run_coop("transformer", "grid", "--vary", "noise=0.3,0.6", "--vary", "train_dist=bursty,match_query",
                   "--out", tmp_path / "g", "--executor", "debug", *TINY)
    assert res.returncode == 0, res.stderr
    lines = (tmp_path / "g" / "grid.csv").read_text().splitlines()
    assert lines[0] == ("run,noise,train_dist,seed,icl_peak,icl_peak_sequences,icl_end,ciwl_end,flip_peak,flip_end,iwl_max,"
                        "transient,wall_time_s")
    assert len(lines) == 5 and (tmp_path / "g" / "grid.png").is_file()
    cfg = json.loads((tmp_path / "g" / "noise0.6-train_distmatch_query-seed0" / "config.json").read_text())
    assert (cfg["noise"], cfg["train_dist"], cfg["classes"], cfg["tie_labels"]) == (0.6, "match_query", 16, False)
    stamp = (tmp_path / "g" / "noise0.3-train_distbursty-seed0" / "metrics.csv").stat().st_mtime_ns
    assert run_coop("transformer", "grid", "--vary", "noise=0.3,0.6", "--vary", "train_dist=bursty,match_query",
                    "--out", tmp_path / "g", "--executor", "debug", *TINY).returncode == 0
    assert (tmp_path / "g" / "noise0.3-train_distbursty-seed0" / "metrics.csv").stat().st_mtime_ns == stamp  # not retrained


def test_grid_and_seeds_bad_input(coop_inprocess, tmp_path):
    cases = [
        (["--vary", "nois=0.1"], "--vary"), (["--vary", "noise=x"], "--vary"), (["--vary", "noise=0.1,-1"], "--vary"),
        (["--vary", "noise=0.1", "--partition", "gpu"], "--partition"), (["--vary", "noise=0.1", "--executor", "cloud"], "--executor"),
        (["--vary", "noise=0.1", "--seeds", "3:3"], "--seeds"), (["--vary", "noise=0.1", "--lr", "abc"], "--lr"),
        (["--vary", "noise=0.1", "--seed", "3"], "--seed"),
    ]
    if not __import__("shutil").which("sbatch"):
        cases.append((["--vary", "noise=0.1", "--executor", "slurm"], "--executor"))
    for extra, option in cases:
        code, _, err = coop_inprocess("transformer", "grid", "--out", tmp_path / "g", *extra)
        assert code == 2 and option in err and err.count("\n") == 1, (extra, err)
    code, _, err = coop_inprocess("transformer", "train", "--out", tmp_path / "t", "--partition", "gpu")
    assert code == 2 and "--partition" in err
    assert not (tmp_path / "g").exists() and not (tmp_path / "t").exists()


def _same_sweep(a_dir, b_dir):
    import numpy as np

    with np.load(a_dir / "sweep.npz") as a, np.load(b_dir / "sweep.npz") as b:
        return set(a.files) == set(b.files) and all(np.array_equal(a[k], b[k]) for k in a.files)


SWEEP = ["toy", "sweep", "--alpha", "0:0.4:5", "--mu1", "0:0.4:4", "--steps", "1500", "--chunk", "6"]


def test_sweep_as_shard_jobs_equals_the_one_shot_sweep(tmp_path, coop_inprocess):
    assert coop_inprocess(*SWEEP, "--out", tmp_path / "one")[0] == 0
    code, out, err = coop_inprocess(*SWEEP, "--shards", "3", "--out", tmp_path / "jobs")
    assert code == 0, err
    assert _same_sweep(tmp_path / "one", tmp_path / "jobs") and (tmp_path / "jobs" / "phase_diagram.png").is_file()
    for extra, option in ((["--shards", "0"], "--shards"), (["--shards", "2", "--shard", "0/2"], "--shards"),
                          (["--partition", "x"], "--partition"), (["--shards", "2", "--executor", "cloud"], "--executor")):
        code, _, err = coop_inprocess(*SWEEP, *extra, "--out", tmp_path / "bad")
        assert code == 2 and option in err and err.count("\n") == 1, (extra, err)
    assert not (tmp_path / "bad").exists()
