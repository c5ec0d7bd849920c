"""Speed of a 256 x 256 (alpha, mu1) phase diagram at the paper's draw, 16,000 GD steps per point.

    python benchmarks/bench_sweep.py [--n 256] [--chunk 2048] [--baseline-points 32]

Prints, in one run: the whole `coop toy sweep` process (start-up, compilation, all chunks), the
warm in-process sweep (kernel compiled), and the baseline: the same exact reduced dynamics run one
point at a time (a jitted single-lane kernel, warm), timed on a few points and scaled to the grid.
The process uses one JAX CPU device per core (XLA_FLAGS is set before jax loads).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={os.cpu_count() or 1}"

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
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", "import cli; cli.main()", "toy", "sweep", "--alpha", spec,
                               "--mu1", spec, "--steps", str(args.steps), "--chunk", str(args.chunk),
                               "--out", f"{tmp}/cli"], capture_output=True, text=True)
        whole = time.perf_counter() - start
        assert proc.returncode == 0, proc.stderr
        print(f"  whole process (coop toy sweep, cold):   {whole:7.2f} s   [{proc.stdout.strip().splitlines()[-1][:90]}]")

        grid = tuple(np.linspace(0, 1, args.n))
        config = SweepConfig(grid, grid, (0.0,), steps=args.steps, chunk=args.chunk)
        run_sweep(config, f"{tmp}/compile")  # compiles the kernel (cached for the next call)
        start = time.perf_counter()
        run_sweep(config, f"{tmp}/warm")
        warm = time.perf_counter() - start
        stopped = assemble(config, [f"{tmp}/warm"])["stopped_at"]
        print(f"  warm sweep (in process):                {warm:7.2f} s   "
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
        print(f"  one point at a time (warm, {k} points): {per_point * 1e3:7.2f} ms/point -> {baseline:7.1f} s for the grid")
        print(f"  speed-up of the warm sweep over one-at-a-time: {baseline / warm:.0f}x; "
              f"of the whole process: {baseline / whole:.0f}x")


if __name__ == "__main__":
    main()
