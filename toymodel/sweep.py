"""Sweeps of the toy model over a grid of (alpha, mu1, mu2) and random draws.

Every grid point × draw is a *lane*: its exact reduced gradient descent (`toymodel.reduced`) runs
for `steps` steps, and the loop folds, over every step, the summaries a phase diagram needs (L1
minimum and its step, steps with ICL learned), plus the first non-finite block, the final L1 and
L2, and where the lane stopped (lanes that settle exit early; see `_lane_fns`). Lanes are
`jax.vmap`-ed in structure-of-arrays layout, processed in chunks of `chunk` lanes, each chunk split
over every local JAX device (`jax.sharding`), in rounds that keep only the lanes still moving: set
`XLA_FLAGS=--xla_force_host_platform_device_count=N` to make N CPU devices (`coop` does so with
the number of cores), or run on GPUs.

Chunks are the unit of work on disk: `DIR/chunks/chunk_XXXXX.npz`, each written atomically, so a
killed sweep loses only the chunk in flight and a re-run skips finished chunks. `shard=(i, n)`
computes the chunks c with c % n == i, so n processes (a Slurm job array) share a sweep; `merge`
assembles their folders into the same result as a one-shot run.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from runio import atomic_path, write_json
from runio.jobs import Job, run_jobs

from . import clamp as clamp_mod
from . import kernel, reduced
from .draws import PAPER_DIMS, PAPER_SEED, paper_draw
from .kernel import BLOCK
from .loss import aggregation
from .metrics import reference_losses
from .outcomes import LEARNED, OUTCOMES, classify
from .precision import float64

AXES = ("alpha", "mu1", "mu2")
METRICS = ("l1_min", "l1_min_step", "icl_steps", "l1_final", "l2_final", "diverged_at", "stopped_at")


def parse_axis(text: str) -> np.ndarray:
    """An axis SPEC: one value `0.1`, a comma list `0,0.05,0.2`, or `start:stop:num` (num evenly
    spaced points from start to stop inclusive; start < stop, num >= 2). Values must be finite and
    >= 0. Raises ValueError saying what is allowed."""
    text = text.strip()
    try:
        if ":" in text:
            parts = text.split(":")
            if len(parts) != 3:
                raise ValueError
            start, stop, num = float(parts[0]), float(parts[1]), int(parts[2])
            if not (math.isfinite(start) and math.isfinite(stop)) or not start < stop or num < 2:
                raise ValueError
            values = np.linspace(start, stop, num)
        else:
            values = np.array([float(v) for v in text.split(",")])
    except ValueError:
        raise ValueError(
            f"must be a value, a comma list, or start:stop:num with start < stop and num >= 2, got {text!r}"
        ) from None
    if values.size == 0 or not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError(f"values must be finite and >= 0, got {text!r}")
    return values


@dataclass(frozen=True)
class SweepConfig:
    """What a sweep computes. Equal configs give identical results (and may share chunks)."""

    alpha: tuple[float, ...]
    mu1: tuple[float, ...]
    mu2: tuple[float, ...]
    steps: int = 16000
    lr: float = 1.0
    dims: tuple[int, int, int, int] = PAPER_DIMS
    seed: int = PAPER_SEED
    draws: int = 1
    aggregate: str = "mean"
    chunk: int = 8192
    clamp: tuple[str, ...] = ()  # clamp spec (`toymodel.clamp`), the same for every lane

    def __post_init__(self):
        clamp_mod.counts(self.clamp, self.dims)  # ValueError if it does not fit the dims

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.alpha), len(self.mu1), len(self.mu2))

    @property
    def lanes(self) -> int:
        return int(np.prod(self.shape)) * self.draws

    @property
    def n_chunks(self) -> int:
        return -(-self.lanes // self.chunk)

    def to_dict(self) -> dict:
        return asdict(self)

    def digest(self) -> str:
        d = self.to_dict()
        if not d["clamp"]:  # unclamped sweeps keep the digest they had before clamping existed
            del d["clamp"]
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    @staticmethod
    def from_dict(d: dict) -> "SweepConfig":
        d = dict(d)
        for k in AXES:
            d[k] = tuple(d[k])
        d["dims"] = tuple(d["dims"])
        d["clamp"] = tuple(d.get("clamp", ()))
        return SweepConfig(**d)


# ---------------------------------------------------------------------------------------------
# the vectorised kernel
# ---------------------------------------------------------------------------------------------


ROUND = 8  # blocks per kernel call; between calls finished lanes are dropped and the rest compacted


def _lane_fns(k, lr, steps, whole, partial):
    """Per-lane functions (for jax.vmap) on `toymodel.kernel`: start, advance by up to ROUND blocks
    (`kernel.settle`), finish. Each lane carries a `kernel.Settling`.

    `whole[i]`, `partial[i]` (static): vector i is wholly clamped (its (p, q) = (1, 0) is never
    updated) or partially clamped (reduced on its free coordinates; `sc` holds its clamped part's
    norm², see `toymodel.reduced`).

    Early exit (`kernel.settle`): a lane that has settled stops; its remaining steps are accounted
    for as if it stayed put: they count towards `icl_steps` if ICL is learned, and an L1 still
    falling when it settled has its minimum at the last step. The state can then still drift by at
    most SETTLED x remaining steps (<= 2e-11 over 16,000 steps), far below the outcome thresholds.

    Divergence is checked at block ends: `diverged_at` is the first multiple of BLOCK (counted
    from the end of the first steps % BLOCK steps) at which the state is non-finite.
    """
    rate = tuple(None if w else lr for w in whole)

    def lane(s, coeffs, sc):
        # constants as tuples of scalars: under vmap each is one vector over lanes (or a literal)
        const = reduced.Constants(tuple(s[i] for i in range(4)), (*k, *(coeffs[i] for i in range(3))),
                                  tuple(sc[i] if partial[i] else None for i in range(4)))
        return const, kernel.gd_step(const, rate), lambda state: reduced.loss_terms(state[0], state[1], const)

    def start(p0, q0, s, sc, coeffs, thr):
        _, step, observe = lane(s, coeffs, sc)
        state0 = (tuple(p0[i] for i in range(4)), tuple(q0[i] for i in range(4)))
        c = kernel.advance(step, observe, kernel.start(state0), steps % BLOCK, thr, finite=False, fused=True)
        return kernel.Settling(c, jnp.asarray(jnp.inf), (c.t >= steps) | (c.fold.first_bad >= 0))

    def advance(carry: kernel.Settling, s, sc, coeffs, thr):
        _, step, observe = lane(s, coeffs, sc)
        return kernel.settle(step, observe, carry, thr, steps=steps, max_blocks=ROUND)

    def finish(carry: kernel.Settling, s, sc, coeffs, thr):
        _, _, observe = lane(s, coeffs, sc)
        c = carry.carry
        final = observe(c.state)
        remaining = steps - c.t
        acc = kernel.fold(c.fold, final, c.t, thr)  # the state at step t (= steps if it ran to the end)
        falling = final[1] <= acc.l1_min
        acc = acc._replace(
            icl_steps=acc.icl_steps + remaining * (final[1] <= thr),
            l1_min_step=jnp.where(falling & (remaining > 0), steps, acc.l1_min_step),
        )
        return {
            "l1_min": acc.l1_min, "l1_min_step": acc.l1_min_step, "icl_steps": acc.icl_steps,
            "l1_final": final[1], "l2_final": final[2], "diverged_at": acc.first_bad, "stopped_at": c.t,
        }

    return start, advance, finish


def _kernels_for(config: SweepConfig, lanes: "Lanes", devices):
    """The compiled kernels, cached across calls (and sweeps) that share everything but the axes."""
    key = (config.steps, config.lr, config.dims, config.aggregate, config.draws, config.clamp,
           config.seed if config.draws == 1 else None, tuple(devices))
    if key not in _KERNELS:
        _KERNELS[key] = _compile_kernels(config, lanes)
    return _KERNELS[key]


_KERNELS: dict = {}


def _compile_kernels(config: SweepConfig, lanes: "Lanes"):
    """Jitted (start, advance, finish) over a batch of lanes (the inputs' sharding spreads them over devices).

    Per lane: coeffs (3,), thr () and, with several draws, p0, q0, s, sc (4,) each; with one draw these
    are compiled in as literals (XLA folds them into the loop, markedly faster). Batched inputs
    carry lanes on their last axis, so each scalar of a lane is one contiguous vector over lanes
    (structure of arrays), and so does every field of the carry.
    """
    k = aggregation(config.dims, config.aggregate).k
    clamped = clamp_mod.counts(config.clamp, config.dims)
    whole = tuple(c == n for c, n in zip(clamped, config.dims))
    partial = tuple(0 < c < n for c, n in zip(clamped, config.dims))
    start, advance, finish = _lane_fns(k, config.lr, config.steps, whole, partial)
    if config.draws == 1:
        p0, q0, s, sc = (tuple(float(x) for x in v[0]) for v in (lanes.p0, lanes.q0, lanes.s, lanes.sc))

        def start_b(coeffs, thr):
            return jax.vmap(lambda c, t: start(p0, q0, s, sc, c, t), in_axes=(1, 0))(coeffs, thr)

        def advance_b(carry, coeffs, thr):
            return jax.vmap(lambda cr, c, t: advance(cr, s, sc, c, t), in_axes=(0, 1, 0))(carry, coeffs, thr)

        def finish_b(carry, coeffs, thr):
            return jax.vmap(lambda cr, c, t: finish(cr, s, sc, c, t), in_axes=(0, 1, 0))(carry, coeffs, thr)
    else:
        def start_b(coeffs, thr, p0, q0, s, sc):
            return jax.vmap(start, in_axes=(1, 1, 1, 1, 1, 0))(p0, q0, s, sc, coeffs, thr)

        def advance_b(carry, coeffs, thr, p0, q0, s, sc):
            return jax.vmap(lambda cr, c, t, ss, cc: advance(cr, ss, cc, c, t),
                            in_axes=(0, 1, 0, 1, 1))(carry, coeffs, thr, s, sc)

        def finish_b(carry, coeffs, thr, p0, q0, s, sc):
            return jax.vmap(lambda cr, c, t, ss, cc: finish(cr, ss, cc, c, t),
                            in_axes=(0, 1, 0, 1, 1))(carry, coeffs, thr, s, sc)
    # the inputs arrive sharded along the lanes (see run_sweep); the jitted code follows them
    return jax.jit(start_b), jax.jit(advance_b), jax.jit(finish_b)


# ---------------------------------------------------------------------------------------------
# lanes: grid points x draws
# ---------------------------------------------------------------------------------------------


class Lanes:
    """The inputs of every lane, in order ((alpha, mu1, mu2) C-order, draw fastest)."""

    def __init__(self, config: SweepConfig):
        self.config = config
        clamped = clamp_mod.counts(config.clamp, config.dims)
        p0, q0, s, sc, refs = [], [], [], [], []
        for i in range(config.draws):
            draw = paper_draw(config.seed + i, config.dims)
            p, q, ss, basis = reduced.reduce(draw, clamped)
            cc = np.array([c or 0.0 for c in basis.clamped])  # clamped parts' norms² (0: none)
            p0.append(p), q0.append(q), s.append(ss), sc.append(cc)
            refs.append(reference_losses(ss + cc, config.dims, config.aggregate))
        self.p0, self.q0, self.s, self.sc = np.array(p0), np.array(q0), np.array(s), np.array(sc)  # (draws, 4)
        self.refs = np.array(refs)  # (draws, 2): l1_ref, l2_ref
        grid = np.stack(np.meshgrid(config.alpha, config.mu1, config.mu2, indexing="ij"), -1).reshape(-1, 3)
        self.coeffs = np.repeat(grid, config.draws, axis=0)  # (lanes, 3)
        self.draw_index = np.tile(np.arange(config.draws), len(grid))  # (lanes,)

    def chunk(self, c: int, n_devices: int):
        """Inputs of chunk c, padded (by repeating its last lane) to the chunk size rounded up to a
        multiple of n_devices, so every chunk has one shape (one compilation) and splits evenly."""
        lo = c * self.config.chunk
        hi = min(lo + self.config.chunk, self.config.lanes)
        idx = np.arange(lo, hi)
        size = -(-min(self.config.chunk, self.config.lanes) // n_devices) * n_devices
        idx = np.concatenate([idx, np.full(size - idx.size, idx[-1])])
        d = self.draw_index[idx]
        inputs = (self.coeffs[idx].T, LEARNED * self.refs[d, 0])
        if self.config.draws > 1:
            inputs += (self.p0[d].T, self.q0[d].T, self.s[d].T, self.sc[d].T)
        return inputs, hi - lo


# ---------------------------------------------------------------------------------------------
# running, resuming, sharding, merging
# ---------------------------------------------------------------------------------------------


def run_lanes(kernels, inputs, put, unit: int) -> dict[str, np.ndarray]:
    """Run a batch of lanes to the end: start, then rounds of up to ROUND blocks over the lanes
    still running, compacted into the smallest power-of-two batch that holds them (each batch
    size compiles once), then finish. `put` places an array on the devices (sharded by lanes);
    batch sizes are multiples of `unit` (the number of devices)."""
    start_k, advance_k, finish_k = kernels
    carry = jax.tree_util.tree_map(np.array, start_k(*map(put, inputs)))
    while not carry.done.all():
        active = np.flatnonzero(~carry.done)
        size = _bucket(active.size, unit, inputs[1].size)
        idx = np.concatenate([active, np.full(size - active.size, active[-1])])
        new = advance_k(jax.tree_util.tree_map(lambda x: put(x[idx]), carry), *(put(x[..., idx]) for x in inputs))
        for old, fresh in zip(jax.tree_util.tree_leaves(carry), jax.tree_util.tree_leaves(new)):
            old[active] = np.asarray(fresh)[: active.size]
    result = finish_k(jax.tree_util.tree_map(put, carry), *map(put, inputs))
    return {k: np.asarray(v) for k, v in result.items()}


def _bucket(active: int, unit: int, full: int) -> int:
    """Batch size for `active` lanes: a power-of-two multiple of `unit` (>= 256 lanes), at most `full`."""
    size = max(unit, 256 // unit * unit)
    while size < active:
        size *= 2
    return min(size, full)


# On disk a sweep folder holds `sweep_config.json` ({"digest", "config"}) and one file per chunk,
# `chunks/chunk_XXXXX.npz` with the arrays METRICS (one value per lane of the chunk): these four
# functions are the only ones that read or write them.


def chunk_path(out: Path, c: int) -> Path:
    return Path(out) / "chunks" / f"chunk_{c:05d}.npz"


def _save_chunk(out: Path, c: int, arrays: dict) -> None:
    with atomic_path(chunk_path(out, c)) as tmp:
        np.savez(tmp, **{k: arrays[k] for k in METRICS})


def _load_chunk(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {k: data[k] for k in METRICS}


def read_folder(folder) -> tuple[str, SweepConfig]:
    """(digest, config) of a sweep folder; ValueError if it is not one."""
    path = Path(folder) / "sweep_config.json"
    if not path.is_file():
        raise ValueError(f"{folder} is not a sweep folder (no sweep_config.json)")
    held = json.loads(path.read_text())
    return held["digest"], SweepConfig.from_dict(held["config"])


def _check_folder(out: Path, config: SweepConfig) -> None:
    """Record the config in out/sweep_config.json, or refuse a folder that holds another sweep."""
    path = out / "sweep_config.json"
    if path.exists():
        held = json.loads(path.read_text())
        if held.get("digest") != config.digest():
            raise ValueError(f"{out} holds a different sweep (config digest {held.get('digest')}); use another `out`")
    else:
        write_json(path, {"digest": config.digest(), "config": config.to_dict()})


def merge_config(folders) -> SweepConfig:
    """The one sweep that the shard `folders` hold, with every chunk present in one of them;
    ValueError saying what is wrong otherwise."""
    digests, config = set(), None
    for folder in folders:
        digest, config = read_folder(folder)
        digests.add(digest)
    if len(digests) != 1:
        raise ValueError("the folders hold different sweeps (their configs differ)")
    missing = missing_chunks(config, folders)
    if missing:
        raise ValueError(f"{len(missing)} of {config.n_chunks} chunks missing (first: {missing[0]}); "
                         "run the remaining shards")
    return config


@float64
def run_sweep(config: SweepConfig, out, shard: tuple[int, int] = (0, 1), progress=None) -> dict:
    """Compute the chunks of `shard` that `out` does not hold yet; returns timing information.

    `progress(done, total)` is called after each chunk.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _check_folder(out, config)
    index, count = shard
    mine = [c for c in range(config.n_chunks) if c % count == index]
    todo = [c for c in mine if not chunk_path(out, c).exists()]
    devices = jax.devices()
    lanes = Lanes(config)
    mesh = jax.sharding.Mesh(np.array(devices), ("lanes",))
    spec = jax.sharding.PartitionSpec

    def put(x):  # shard along the lanes (the last axis)
        x = np.asarray(x)
        return jax.device_put(x, jax.sharding.NamedSharding(mesh, spec(*([None] * (x.ndim - 1)), "lanes")))

    start = time.perf_counter()
    kernels = _kernels_for(config, lanes, devices) if todo else None  # a shard with no chunks (i >= chunks) writes only its config
    first_s = None
    done = len(mine) - len(todo)
    if progress:
        progress(done, len(mine))
    for c in todo:
        t0 = time.perf_counter()
        inputs, n = lanes.chunk(c, len(devices))
        _save_chunk(out, c, {k: v[:n] for k, v in run_lanes(kernels, inputs, put, len(devices)).items()})
        first_s = time.perf_counter() - t0 if first_s is None else first_s
        done += 1
        if progress:
            progress(done, len(mine))
    return {
        "chunks_computed": len(todo), "chunks_in_shard": len(mine), "devices": [str(d) for d in devices],
        "wall_time_s": time.perf_counter() - start, "first_chunk_s": first_s,
    }


def shard_folders(out, shards: int) -> list[Path]:
    """Where `run_shards` puts shard i of `shards`: OUT/shards/shard_i."""
    return [Path(out) / "shards" / f"shard_{i}" for i in range(shards)]


def run_shards(config: SweepConfig, out, shards: int, options, progress=None) -> dict:
    """Run the sweep as `shards` jobs of the job layer (`runio.jobs`: local, one per core, or a Slurm
    array's worth of Slurm jobs), shard i in OUT/shards/shard_i, and return the timings; the caller
    merges them (`write_results(config, shard_folders(out, shards), out)`). Finished shards are
    skipped; a rerun resumes the unfinished ones chunk by chunk."""
    folders = shard_folders(out, shards)
    for f in folders:
        if f.exists():
            _check_folder(f, config)  # a folder of another sweep is refused before anything runs
    jobs = [Job(f"shard_{i}", run_sweep, (config, f, (i, shards)), f,
                (lambda i=i, f=f: all(chunk_path(f, c).exists() for c in range(i, config.n_chunks, shards))))
            for i, f in enumerate(folders)]
    start = time.perf_counter()
    run_jobs(jobs, options, Path(out) / "jobs", progress=progress)
    return {"chunks_computed": config.n_chunks, "shards": shards, "devices": [f"{options.executor} jobs"],
            "wall_time_s": time.perf_counter() - start, "first_chunk_s": None}


def missing_chunks(config: SweepConfig, folders) -> list[int]:
    return [c for c in range(config.n_chunks) if not any(chunk_path(f, c).exists() for f in folders)]


def assemble(config: SweepConfig, folders) -> dict[str, np.ndarray]:
    """The result arrays from the chunk files found in `folders` (all chunks must be present).

    Per lane metrics are shaped (n_alpha, n_mu1, n_mu2, draws); `outcome_per_draw` likewise;
    `outcome_fraction` (n_alpha, n_mu1, n_mu2, len(OUTCOMES)); `outcome` (n_alpha, n_mu1, n_mu2) is
    the most frequent class over draws (ties: the lower code)."""
    parts = {k: [] for k in METRICS}
    for c in range(config.n_chunks):
        data = _load_chunk(next(chunk_path(f, c) for f in folders if chunk_path(f, c).exists()))
        for k in METRICS:
            parts[k].append(data[k])
    lanes = Lanes(config)
    shape = config.shape + (config.draws,)
    res = {k: np.concatenate(v).reshape(shape) for k, v in parts.items()}
    refs = lanes.refs  # (draws, 2), broadcast over the grid
    res["diverged_at"] = res["diverged_at"].astype(np.int64)
    ok = res["diverged_at"] < 0
    codes = np.asarray(classify(*(np.where(ok, res[k], np.nan) for k in ("l1_min", "l1_final", "l2_final")),
                                refs[:, 0], refs[:, 1]))  # a diverged lane counts as not learned
    res["outcome_per_draw"] = codes
    counts = np.stack([(codes == i).sum(-1) for i in range(len(OUTCOMES))], -1)
    res["outcome_fraction"] = counts / config.draws
    res["outcome"] = np.argmax(counts, -1)
    res["l1_ref"], res["l2_ref"] = refs[:, 0], refs[:, 1]
    for k in AXES:
        res[k] = np.asarray(getattr(config, k))
    return res


def write_results(config: SweepConfig, folders, out, timings: dict | None = None) -> dict:
    """Write out/sweep.npz and out/sweep.json (its content is returned); the figures are
    `toymodel.plots.plot_sweep`'s."""
    out = Path(out)
    res = assemble(config, folders)
    with atomic_path(out / "sweep.npz") as tmp:
        np.savez(tmp, **res)
    varying = [a for a in AXES if len(getattr(config, a)) > 1]
    info = {
        "axes": {a: list(getattr(config, a)) for a in AXES},
        "varying_axes": varying,
        "outcomes": list(OUTCOMES),
        "outcome_rule": f"relative losses r = L / L(mechanism tensor = 0); learned when r <= {LEARNED} "
                        "(see toymodel/outcomes.py); `outcome` is the most frequent class over draws",
        "arrays": {
            "per draw (n_alpha, n_mu1, n_mu2, draws)": list(METRICS) + ["outcome_per_draw"],
            "outcome (n_alpha, n_mu1, n_mu2)": "integer code, index into outcomes",
            "outcome_fraction (n_alpha, n_mu1, n_mu2, n_outcomes)": "fraction of draws in each class",
        },
        "config": config.to_dict(),
        "outcome_counts": {name: int((res["outcome"] == i).sum()) for i, name in enumerate(OUTCOMES)},
        "timings": timings or {},
    }
    write_json(out / "sweep.json", info)
    return info


def closed_form_lines(config: SweepConfig, varying) -> list:
    """Where the closed-form fixed points of `toymodel.analysis` exist inside the plotted plane.

    For alpha > 0 the ICL end state (m1, m2) = (1, 0) is a fixed point only on mu1 = 0, and the
    CIWL end state (0, 1) only on mu2 = 0; with alpha = 0 both mechanisms can be kept. Interior
    boundaries between the classes are set by the dynamics (which mechanism wins the race, and how
    far the shared layer has grown), not by a fixed point, so no interior curve is drawn."""
    lines = []
    xa, ya = varying
    x, y = np.asarray(getattr(config, xa)), np.asarray(getattr(config, ya))
    for axis, label in (("mu1", "closed form: ICL end state exists only on μ₁ = 0"),
                        ("mu2", "closed form: CIWL end state exists only on μ₂ = 0")):
        if axis == xa and x.min() == 0:
            lines.append((np.zeros(2), np.array([y.min(), y.max()]), label))
        elif axis == ya and y.min() == 0:
            lines.append((np.array([x.min(), x.max()]), np.zeros(2), label))
    return lines
