"""What the job layer (runio.jobs) costs per job, against running the same work in this process.

    .venv/bin/python benchmarks/bench_jobs.py [--jobs-count 8] [--work 0.5]

The same N jobs (each sleeps `--work` seconds, then writes a file) run three ways in one run:
in this process one after another (the baseline: no job layer), through the `debug` executor, and
through the `local` executor one at a time (each job its own process: submitit pickles the call,
starts a Python, unpickles, runs, and this process polls for the result). Prints the wall times and
the overhead per job, (t - baseline) / N. Not a test.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runio.jobs import Job, JobOptions, run_jobs  # noqa: E402


def work(folder: Path, seconds: float) -> float:
    time.sleep(seconds)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "done").write_text("1")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs-count", type=int, default=8)
    ap.add_argument("--work", type=float, default=0.5)
    args = ap.parse_args()
    n = args.jobs_count
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)

        def jobs(tag):
            return [Job(f"{tag}{i}", work, (root / tag / str(i), args.work), root / tag / str(i),
                        (lambda tag=tag, i=i: (root / tag / str(i) / "done").is_file())) for i in range(n)]

        t0 = time.perf_counter()
        for j in jobs("inline"):
            j.fn(*j.args)
        base = time.perf_counter() - t0
        rows = [("in this process (baseline)", base)]
        for name, options in (("debug executor", JobOptions(executor="debug")), ("local executor, 1 at a time", JobOptions(executor="local", jobs=1))):
            t0 = time.perf_counter()
            run_jobs(jobs(name.split()[0]), options, root / "logs" / name.split()[0])
            rows.append((name, time.perf_counter() - t0))
    print(f"{n} jobs of {args.work:g} s each")
    print(f"{'how':<30}{'wall s':>9}{'overhead per job s':>20}{'vs baseline':>13}")
    for name, t in rows:
        print(f"{name:<30}{t:>9.2f}{(t - base) / n:>20.3f}{t / base:>12.2f}x")


if __name__ == "__main__":
    main()
