"""Speed of a 256 x 256 (alpha, mu1) phase diagram at the paper's draw, 16,000 GD steps per point.

    python benchmarks/bench_sweep.py [--n 256] [--chunk 2048] [--baseline-points 32] [--loop-steps 2000]

Prints, in one run: the whole `coop toy sweep` process (start-up, compilation, all chunks) with an
empty compilation cache (a first run) and again with the cache that run filled (every later run:
`runio.jaxcache`), the warm in-process sweep (kernels compiled), and the baseline: the same exact
reduced dynamics run one point at a time (a jitted single-lane kernel, warm), timed on a few points
and scaled to the grid. Then the loop body alone, fused against unfused (`toymodel.kernel.advance`
with `fused=True` and the scan unrolled by `kernel.UNROLL`, as `coop toy sweep` runs it, against
`fused=False`, not unrolled: the loop as written plainly): every grid point for `--loop-steps` steps,
no early exit, the same lanes and code otherwise, and the largest difference of their folded L1
minima. This process uses the sweep's XLA flags (`toymodel.commands.cpu_devices`:
one JAX CPU device per core, 512-bit vectors), set before jax loads, for the sweep and the baseline
alike.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

from toymodel.commands import cpu_devices  # noqa: E402 (imports nothing heavy)

cpu_devices()
os.environ.pop("JAX_COMPILATION_CACHE_DIR", None)  # this process compiles; the `coop` subprocesses get their own cache

import jax  # noqa: E402
import numpy as np  # noqa: E402

import jax.numpy as jnp  # noqa: E402

from toymodel import kernel, reduced  # noqa: E402
from toymodel.draws import paper_draw  # noqa: E402
from toymodel.loss import LossParams  # noqa: E402
from toymodel.dynamics import REDUCED, gd_scan  # noqa: E402
from toymodel.sweep import SweepConfig, assemble, run_sweep  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--steps", type=int, default=16000)
    parser.add_argument("--chunk", type=int, default=8192)
    parser.add_argument("--baseline-points", type=int, default=32)
    parser.add_argument("--loop-steps", type=int, default=2000)
    args = parser.parse_args()
    spec = f"0:1:{args.n}"
    lanes = args.n * args.n
    print(f"{args.n} x {args.n} = {lanes:,} points x {args.steps:,} steps; {os.cpu_count()} cores, "
          f"jax {jax.__version__}, devices: {len(jax.devices())} x {jax.devices()[0].platform}")

    with tempfile.TemporaryDirectory() as tmp:
        env = os.environ | {"JAX_COMPILATION_CACHE_DIR": f"{tmp}/jax-cache"}
        narrow = env | {"XLA_FLAGS": os.environ["XLA_FLAGS"].replace("vector_width=512", "vector_width=256"),
                        "JAX_COMPILATION_CACHE_DIR": ""}
        whole = {}
        for label, out, run_env in (("whole process (coop toy sweep, cold)", "cli", env),
                                    ("whole process, compilation cache filled", "cli2", env),
                                    ("whole process, 256-bit vectors, cold", "narrow", narrow)):
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", "import cli; cli.main()", "toy", "sweep", "--alpha", spec,
                                   "--mu1", spec, "--steps", str(args.steps), "--chunk", str(args.chunk),
                                   "--out", f"{tmp}/{out}"], capture_output=True, text=True, env=run_env)
            whole[out] = time.perf_counter() - start
            assert proc.returncode == 0, proc.stderr
            print(f"  {label + ':':41s}{whole[out]:7.2f} s   [{proc.stdout.strip().splitlines()[-1][:90]}]")
        with np.load(f"{tmp}/cli/sweep.npz") as wide, np.load(f"{tmp}/narrow/sweep.npz") as ref:
            same = all(np.array_equal(wide[k], ref[k], equal_nan=wide[k].dtype.kind == "f") for k in ref.files)
        print(f"  512-bit and 256-bit vectors give the same sweep.npz bit for bit: {same}")

        grid = tuple(np.linspace(0, 1, args.n))
        config = SweepConfig(grid, grid, (0.0,), steps=args.steps, chunk=args.chunk)
        run_sweep(config, f"{tmp}/compile")  # compiles the kernel (cached for the next call)
        start = time.perf_counter()
        run_sweep(config, f"{tmp}/warm")
        warm = time.perf_counter() - start
        stopped = assemble(config, [f"{tmp}/warm"])["stopped_at"]
        print(f"  {'warm sweep (in process):':41s}{warm:7.2f} s   "
              f"({lanes * args.steps / warm / 1e9:.2f} G lane-steps/s; lanes stopped early: "
              f"{np.mean(stopped < args.steps):.0%}, mean stop step {stopped.mean():,.0f})")

        # baseline: the same exact reduced gradient descent for one point per call: one compiled
        # scan (toymodel.dynamics.gd_scan, summaries folded in the loop, no early exit), warm
        k = args.baseline_points
        with jax.enable_x64(True):
            draw = paper_draw()
            p0, q0, s, _ = reduced.reduce(draw)
            base = reduced.constants(s, draw.dims, LossParams())
            ones = jnp.ones(4)

            @jax.jit
            def one_point(coeffs):
                const = reduced.Constants(base.s, base.coeffs.at[3:].set(coeffs))
                return gd_scan(REDUCED, (jnp.asarray(p0), jnp.asarray(q0)), consts=const, lr=1.0, mask=(ones, ones),
                               l1_threshold=0.1 * 0.2257, steps=args.steps, every=args.steps)[2]

            jax.block_until_ready(one_point(jnp.asarray([0.5, 0.5, 0.0])))
            points = np.random.default_rng(0).uniform(0, 1, size=(k, 2))
            start = time.perf_counter()
            for a, m in points:
                jax.block_until_ready(one_point(jnp.asarray([a, m, 0.0])))
        per_point = (time.perf_counter() - start) / k
        baseline = per_point * lanes
        print(f"  {f'one point at a time (warm, {k} points):':41s}{per_point * 1e3:7.2f} ms/point -> "
              f"{baseline:7.1f} s for the grid")
        print(f"  speed-up over one-at-a-time: warm sweep {baseline / warm:.0f}x; whole process "
              f"{baseline / whole['cli']:.0f}x cold, {baseline / whole['cli2']:.0f}x with the compilation cache filled; "
              f"512-bit over 256-bit vectors (whole process, cold): {whole['narrow'] / whole['cli']:.2f}x")
    fused_vs_unfused(grid, args.loop_steps)


def fused_vs_unfused(grid: tuple, steps: int) -> None:
    """Time `steps` steps of the sweep's loop body over every (alpha, mu1) lane of `grid` (mu2 0, the
    paper's draw compiled in, lanes as structure of arrays as in `toymodel.sweep`), fused and
    unfused, warm; print seconds per lane-step, the ratio, and how far the folded L1 minima differ."""
    with jax.enable_x64(True):
        draw = paper_draw()
        p0, q0, s, _ = reduced.reduce(draw)
        k = tuple(float(x) for x in reduced.constants(s, draw.dims, LossParams()).coeffs[:3])
        s, p0, q0 = (tuple(float(x) for x in v) for v in (s, p0, q0))
        alpha, mu1 = (jnp.asarray(a).ravel() for a in np.meshgrid(np.asarray(grid), np.asarray(grid), indexing="ij"))
        devices = jax.devices()
        lanes = alpha.size - alpha.size % len(devices)  # the lanes split evenly over the devices
        shard = jax.sharding.NamedSharding(jax.sharding.Mesh(np.asarray(devices), ("lanes",)),
                                           jax.sharding.PartitionSpec("lanes"))
        alpha, mu1 = (jax.device_put(x[:lanes], shard) for x in (alpha, mu1))

        def loop(fused: bool, unroll: int):
            def lane(a, m):
                const = reduced.Constants(s, (*k, a, m, 0.0), (None,) * 4)
                step = kernel.gd_step(const, (1.0,) * 4)
                observe = lambda state: reduced.loss_terms(state[0], state[1], const)  # noqa: E731
                c = kernel.advance(step, observe, kernel.start((p0, q0)), steps, 0.1 * 0.2257, finite=False,
                                   unroll=unroll, fused=fused)
                return c.fold.l1_min, c.fold.l1_min_step, c.fold.icl_steps
            return jax.jit(jax.vmap(lane))

        times, folds = {}, {}
        for label, fused, unroll in (("fused, unrolled by 2", True, kernel.UNROLL),
                                     ("unfused (baseline)", False, 1)):
            run = loop(fused, unroll)
            jax.block_until_ready(run(alpha, mu1))  # compile
            start = time.perf_counter()
            folds[fused] = jax.block_until_ready(run(alpha, mu1))
            times[fused] = time.perf_counter() - start
            print(f"  {'loop body, ' + label + ':':41s}{times[fused]:7.2f} s   "
                  f"({times[fused] / (lanes * steps) * 1e9 * len(devices):.2f} ns per lane-step per core; "
                  f"{lanes:,} lanes x {steps:,} steps)")
        (l1f, stepf, iclf), (l1u, stepu, iclu) = (np.asarray(x) for x in folds[True]), (np.asarray(x) for x in folds[False])
        rel = np.max(np.abs(l1f - l1u) / np.abs(l1u))
        print(f"  fused over unfused: {times[False] / times[True]:.2f}x fewer seconds per lane-step; L1 minima within "
              f"{rel:.1e} relative, their steps and the ICL step counts equal: "
              f"{np.array_equal(stepf, stepu) and np.array_equal(iclf, iclu)}")


if __name__ == "__main__":
    main()
