"""Running several runs: one job layer on submitit (github.com/facebookincubator/submitit).

Everything that runs several runs (`coop figures`, `--seeds`, `coop transformer grid`) hands them
here as `Job`s and `run_jobs` runs them with one of three executors:

- `local` (default): submitit's local executor, at most `jobs` at a time (default: one per core),
  each job pinned to its own core (two pinned runs use this machine better than one on two threads);
- `slurm`: submitit's Slurm executor, one Slurm job per run, with the options below; a job that hits
  its time limit or is preempted is requeued and continues from its run directory's last checkpoint;
- `debug`: in this process, one after another (tracebacks as usual; for tests and debugging).

A job's work must be resumable: `fn(*args)` continues from what its folder holds, so a requeued
or rerun job picks up where it stopped, and `done()` says whether it has nothing left to do
(finished jobs are skipped). A submitted job is recorded in `<logs>/<name>.job.json`; a rerun of the
same command waits on a job that is still queued or running instead of submitting it again.

Options, each also settable once in the environment (the one documented place, read by
`JobOptions.from_env`): COOP_EXECUTOR, COOP_JOBS, COOP_PARTITION, COOP_TIME (minutes),
COOP_CPUS_PER_JOB, COOP_GPUS_PER_JOB, COOP_MEM (GB). submitit (~80 ms to import) is imported only
when jobs run: the CLI reads `JobOptions` when it starts.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from runio.options import ConfigError, option

EXECUTORS = ("local", "slurm", "debug")
SLURM_OPTIONS = ("partition", "time", "cpus_per_job", "gpus_per_job", "mem")
_ACTIVE = ("PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "RESIZING", "SUSPENDED")


class JobError(RuntimeError):
    """A job failed; the message names it and its log."""


@dataclass(frozen=True)
class JobOptions:
    """How to run jobs. `time` in minutes, `mem` in GB (None: the cluster's default)."""

    executor: str = option("local", "local (default: one job per core), slurm or debug (in this process); env COOP_EXECUTOR.")
    jobs: int | None = option(None, "local: runs at a time (default: one per core); env COOP_JOBS.")
    partition: str | None = option(None, "Slurm partition; env COOP_PARTITION.")
    time: int = option(60, "Slurm time limit per job, minutes (default 60; requeued on timeout); env COOP_TIME.")
    cpus_per_job: int = option(1, "Slurm CPUs per job (default 1); env COOP_CPUS_PER_JOB.")
    gpus_per_job: int = option(0, "GPUs per job (default 0); env COOP_GPUS_PER_JOB.")
    mem: float | None = option(None, "Slurm memory per job, GB; env COOP_MEM.")

    @classmethod
    def from_env(cls, **given) -> "JobOptions":
        """Options given (not None) override the COOP_* environment variables, which override the defaults."""
        env = {"executor": "COOP_EXECUTOR", "jobs": "COOP_JOBS", "partition": "COOP_PARTITION", "time": "COOP_TIME",
               "cpus_per_job": "COOP_CPUS_PER_JOB", "gpus_per_job": "COOP_GPUS_PER_JOB", "mem": "COOP_MEM"}
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values = {}
        for name, var in env.items():
            if given.get(name) is not None:
                values[name] = given[name]
            elif os.environ.get(var):
                kind = {"jobs": int, "time": int, "cpus_per_job": int, "gpus_per_job": int, "mem": float}.get(name, str)
                try:
                    values[name] = kind(os.environ[var])
                except ValueError:
                    raise ValueError(f"{var}={os.environ[var]!r} is not a valid {fields[name].name}") from None
        return cls(**values)

    @classmethod
    def from_cli(cls, given: dict, used: bool = True, needs: str = "seeds") -> "JobOptions | None":
        """The options of the command line (`given`: field -> value or None) and the COOP_* environment,
        else ConfigError naming the field. With `used` False (a single run, no jobs) any option
        given is refused (it needs the parameter `needs`) and None is returned."""
        if not used:
            for name, value in given.items():
                if value is not None:
                    raise ConfigError(name, f"is for several runs: use it with `{needs}`")
            return None
        try:
            options = cls.from_env(**given)
        except ValueError as err:
            raise ConfigError("executor", str(err)) from None
        explicit = tuple(n for n in SLURM_OPTIONS if given.get(n) is not None)
        for name, allowed in options.problems(explicit):
            raise ConfigError(name, allowed)
        return options

    def problems(self, explicit: tuple[str, ...] = ()) -> list[tuple[str, str]]:
        """(field, what is allowed) for bad values; `explicit` names the Slurm options given on the
        command line (refused with a non-Slurm executor)."""
        bad = []
        if self.executor not in EXECUTORS:
            bad.append(("executor", f"must be one of {', '.join(EXECUTORS)}"))
        if self.jobs is not None and self.jobs < 1:
            bad.append(("jobs", "must be a positive integer"))
        for name in ("time", "cpus_per_job"):
            if getattr(self, name) < 1:
                bad.append((name, "must be a positive integer"))
        if self.gpus_per_job < 0:
            bad.append(("gpus_per_job", "must be >= 0"))
        if self.mem is not None and not self.mem > 0:
            bad.append(("mem", "must be > 0 (GB)"))
        if self.executor != "slurm":
            for name in explicit:
                bad.append((name, f"is a Slurm option; it needs `executor` slurm (got {self.executor})"))
        elif shutil.which("sbatch") is None:
            bad.append(("executor", "slurm needs sbatch on PATH (not found); use local or debug here"))
        return bad


@dataclass
class Job:
    """One run: `fn(*args)` does (or continues) the work in `folder`; `done()` is True once nothing is left."""

    name: str
    fn: Callable
    args: tuple
    folder: Path
    done: Callable[[], bool]


class _Resumable:
    """The callable submitit runs: the job's function; on a time limit or preemption submitit calls
    `checkpoint`, which requeues the same call (the work resumes from its folder)."""

    def __init__(self, fn, args, core=None):
        self.fn, self.args, self.core = fn, args, core

    def __call__(self):
        if self.core is not None and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {self.core})
        return self.fn(*self.args)

    def checkpoint(self, *args, **kwargs):
        import submitit

        return submitit.helpers.DelayedSubmission(_Resumable(self.fn, self.args, self.core))


def _record(job: Job, logs: Path) -> Path:
    return logs / f"{job.name.replace('/', '_')}.job.json"


def _still_queued(job: Job, logs: Path):
    """The submitit job of an earlier call of the same command, if it is still queued or running."""
    path = _record(job, logs)
    if not path.is_file():
        return None
    rec = json.loads(path.read_text())
    if rec.get("executor") == "slurm":
        import submitit

        return _Slurm(submitit.SlurmJob(folder=rec["log_folder"], job_id=rec["job_id"])) if _squeue_state(rec["job_id"]) in _ACTIVE else None
    pid = rec.get("pid")
    try:
        if pid:
            os.kill(pid, 0)
            return _Pid(pid, rec)
    except (ProcessLookupError, PermissionError):
        pass
    return None


def _squeue_state(job_id: str) -> str | None:
    out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True).stdout.split()
    return out[0] if out else None


class _Slurm:
    """A submitted Slurm job, followed with squeue (submitit asks sacct, which needs accounting): done
    once Slurm no longer lists it (a requeued job is listed again as pending)."""

    def __init__(self, handle):
        self.handle, self.job_id = handle, str(handle.job_id)
        self.paths = handle.paths

    def done(self):
        return _squeue_state(self.job_id) not in _ACTIVE

    def result(self):
        for _ in range(50):  # the result file can lag the job's end on a shared file system
            if Path(self.paths.result_pickle).is_file():
                return self.handle.result()
            time.sleep(0.1)
        raise JobError(f"Slurm job {self.job_id} ended without a result (cancelled, out of time or failed)")


class _Pid:
    """A local job started by another `coop` process: wait for its process to end."""

    def __init__(self, pid, rec):
        self.pid, self.rec, self.job_id = pid, rec, str(pid)

    def done(self):
        try:
            os.kill(self.pid, 0)
            return False
        except ProcessLookupError:
            return True

    def result(self):
        return None


def _executor(options: JobOptions, logs: Path, name: str):
    import submitit

    if options.executor == "slurm":
        ex = submitit.AutoExecutor(folder=logs, cluster="slurm")
        params = {"timeout_min": options.time, "cpus_per_task": options.cpus_per_job, "name": name,
                  "slurm_additional_parameters": {"requeue": True}}
        if options.gpus_per_job:
            params["gpus_per_node"] = options.gpus_per_job
        if options.partition:
            params["slurm_partition"] = options.partition
        if options.mem:
            params["mem_gb"] = options.mem
        ex.update_parameters(**params)
        return ex
    ex = submitit.LocalExecutor(folder=logs)
    ex.update_parameters(timeout_min=options.time, visible_gpus=tuple(range(options.gpus_per_job)) if options.gpus_per_job else ())
    return ex


def run_jobs(jobs: list[Job], options: JobOptions, logs: str | Path, progress: Callable[[int, int, str], None] | None = None,
             ready: Callable[[Job, set[str]], bool] | None = None) -> dict[str, Any]:
    """Run every job not `done()`, and return {name: result} (None for skipped ones).

    `ready(job, finished_names)` (default: always) holds a job back until the jobs it needs have
    finished. `progress(finished, total, running)` is called when that state changes (`running`: the running
    jobs' names, comma-separated). A failed job
    raises JobError naming it and its log once the jobs already running have ended.
    """
    logs = Path(logs)
    results: dict[str, Any] = {j.name: None for j in jobs if j.done()}
    todo = [j for j in jobs if j.name not in results]
    total = len(jobs)
    if progress:
        progress(len(results), total, "")
    if options.executor == "debug":
        for j in todo:
            if ready and not ready(j, set(results)):
                raise JobError(f"job {j.name} needs jobs that are not part of this call")
            results[j.name] = j.fn(*j.args)
            if progress:
                progress(len(results), total, "")
        return results
    limit = (options.jobs or os.cpu_count() or 1) if options.executor == "local" else max(len(todo), 1)
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    logs.mkdir(parents=True, exist_ok=True)
    executor = _executor(options, logs, "coop")
    running: dict[str, tuple[Any, Job, int | None]] = {}
    failure = None
    shown = None  # the (finished, running) state last reported: report changes only
    while todo or running:
        free = [c for c in cores if c not in {core for _, _, core in running.values()}]
        for j in [j for j in todo if not ready or ready(j, set(results))]:
            if len(running) >= limit or failure:
                break
            todo.remove(j)
            handle = _still_queued(j, logs)
            core = None
            if handle is None:
                core = free.pop(0) if options.executor == "local" and free else None
                handle = executor.submit(_Resumable(j.fn, j.args, core))
                if options.executor == "slurm":
                    handle = _Slurm(handle)
                rec = {"executor": options.executor, "job_id": str(handle.job_id), "log_folder": str(logs)}
                if options.executor == "local":
                    rec["pid"] = int(handle.job_id)
                _record(j, logs).write_text(json.dumps(rec) + "\n")
            running[j.name] = (handle, j, core)
        if not running:
            if failure:
                break
            raise JobError(f"jobs {[j.name for j in todo]} need jobs that are not part of this call")
        if progress and (len(results), set(running)) != shown:
            shown = (len(results), set(running))
            progress(len(results), total, ", ".join(running))
        time.sleep(0.2)
        for name, (handle, j, _) in list(running.items()):
            if not handle.done():
                continue
            del running[name]
            if isinstance(handle, _Pid):  # another process's job ended: finished, or resume it here
                _record(j, logs).unlink(missing_ok=True)
                if j.done():
                    results[name] = None
                else:
                    todo.append(j)
                continue
            try:
                results[name] = handle.result()
            except Exception as err:  # noqa: BLE001  (submitit re-raises the job's error with its traceback)
                log = getattr(getattr(handle, "paths", None), "stderr", logs)
                failure = failure or JobError(f"job {name} failed ({type(err).__name__}); see {log}")
                continue
            _record(j, logs).unlink(missing_ok=True)
    if progress and (len(results), set()) != shown:
        progress(len(results), total, "")
    if failure:
        raise failure
    return results
