"""Speed of a 256 x 256 (alpha, mu1) phase diagram at the paper's draw, 16,000 GD steps per point.

    python benchmarks/bench_sweep.py [--n 256] [--chunk 2048] [--baseline-points 32]

Prints, in one run: the whole `coop toy sweep` process (start-up, compilation, all chunks) with an
empty compilation cache (a first run) and again with the cache that run filled (every later run:
`runio.jaxcache`), the warm in-process sweep (kernels compiled), and the baseline: the same exact
reduced dynamics run one point at a time (a jitted single-lane kernel, warm), timed on a few points
and scaled to the grid. This process uses the sweep's XLA flags (`toymodel.commands.cpu_devices`:
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

from toymodel import LossParams, paper_draw, reduced  # noqa: E402
from toymodel.dynamics import REDUCED, gd_scan  # noqa: E402
from toymodel.sweep import SweepConfig, assemble, run_sweep  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--steps", type=int, default=16000)
    parser.add_argument("--chunk", type=int, default=8192)
    parser.add_argument("--baseline-points", type=int, default=32)
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


if __name__ == "__main__":
    main()
