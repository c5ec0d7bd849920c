"""Speed of the toy model's 16,000-step paper trajectory, three ways, in one run.

    python benchmarks/bench_toy.py [--repeats 20]

1. the exact reduced scan (8 scalars; the default path of `coop toy simulate`), warm;
2. the full-dimensional scan (autodiff through the tensors), warm;
3. the baseline: a plain numpy loop over steps with hand-written tensor gradients.
All three record loss, L1, L2, C at every step and must agree on the L1 minimum and its step.
Prints wall times (median of repeats) and the ratios against the numpy loop, and the time the
reduced path then takes to derive every tracked column of `trajectory.csv` from its records.
For numpy's best BLAS kernel on this machine run it as `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ...`.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from toymodel import reduced
from toymodel.draws import paper_draw
from toymodel.loss import LossParams
from toymodel.dynamics import FULL, REDUCED, gd_scan
from toymodel.metrics import columns

STEPS = 16000


def numpy_loop(draw, params: LossParams, lr: float, steps: int):
    """Gradient descent, one numpy step at a time; returns per-step (loss, l1, l2, C) (steps+1, 4)."""
    a, b, c, d = (np.array(v, np.float64) for v in draw.init)
    at, bt, ct, dt = (np.array(v, np.float64) for v in draw.target)
    n_a, n_b, n_c, n_d = draw.dims
    k1, k2, kc = 1 / (n_a * n_b * n_c), 1 / (n_d * n_b * n_c), 1 / (n_a * n_d)
    t1 = np.einsum("i,j,k->ijk", at, bt, ct)
    t2 = np.einsum("i,j,k->ijk", dt, bt, ct)
    out = np.empty((steps + 1, 4))
    for step in range(steps + 1):
        r1 = t1 - np.einsum("i,j,k->ijk", a, b, c)
        r2 = t2 - np.einsum("i,j,k->ijk", d, b, c)
        l1, l2 = 0.5 * k1 * np.sum(r1 * r1), 0.5 * k2 * np.sum(r2 * r2)
        aa, dd = a @ a, d @ d
        comp = 0.5 * kc * aa * dd
        out[step] = ((l1 + params.mu1) * (l2 + params.mu2) + params.alpha * comp, l1, l2, comp)
        if step == steps:
            break
        w1, w2 = l2 + params.mu2, l1 + params.mu1
        ga = -w1 * k1 * np.einsum("ijk,j,k->i", r1, b, c) + params.alpha * kc * dd * a
        gb = -w1 * k1 * np.einsum("ijk,i,k->j", r1, a, c) - w2 * k2 * np.einsum("ijk,i,k->j", r2, d, c)
        gc = -w1 * k1 * np.einsum("ijk,i,j->k", r1, a, b) - w2 * k2 * np.einsum("ijk,i,j->k", r2, d, b)
        gd = -w2 * k2 * np.einsum("ijk,j,k->i", r2, b, c) + params.alpha * kc * aa * d
        a, b, c, d = a - lr * ga, b - lr * gb, c - lr * gc, d - lr * gd
    return out


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    params = LossParams()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__} on {jax.devices()[0].platform}; "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}")
    with jax.enable_x64(True):
        draw = paper_draw()
        p0, q0, s, _ = reduced.reduce(draw)
        red_state = (jnp.asarray(p0), jnp.asarray(q0))
        red_const = reduced.constants(s, draw.dims, params)
        full_const = (draw.target, jnp.asarray([params.alpha, params.mu1, params.mu2]))
        ones4 = jnp.ones(4)

        # compiled as `simulate` compiles them: constants closed over, state as the argument
        reduced_gd = jax.jit(lambda s0: gd_scan(REDUCED, s0, consts=red_const, lr=1.0, mask=(ones4, ones4),
                                                l1_threshold=0.0, steps=STEPS))
        full_mask = type(draw.init)(*(jnp.asarray(1.0) for _ in range(4)))
        full_gd = jax.jit(lambda s0: gd_scan(FULL["mean"], s0, consts=full_const, lr=1.0, mask=full_mask,
                                             l1_threshold=0.0, steps=STEPS))

        def reduced_run():  # the trajectory and its summaries (`kernel.Fold`) to host memory, as `simulate` does
            records, final, acc = reduced_gd(red_state)
            return np.asarray(records), final, jax.tree_util.tree_map(np.asarray, acc)

        def full_run():
            records, final, acc = full_gd(draw.init)
            return np.asarray(records), final, jax.tree_util.tree_map(np.asarray, acc)

        start = time.perf_counter()
        reduced_run()
        cold = time.perf_counter() - start
        t_red, (rec_red, _, acc_red) = timed(reduced_run, args.repeats)
        s_total = np.asarray(s)
        t_cols, _ = timed(lambda: columns(rec_red[:, :4], s=s_total, **REDUCED.tracked(rec_red, red_const, (ones4, ones4))),
                          args.repeats)
        full_run()
        t_full, (rec_full, _, acc_full) = timed(full_run, max(3, args.repeats // 4))
    t_np, rec_np = timed(lambda: numpy_loop(draw, params, 1.0, STEPS), 1)

    mins = {
        "reduced scan": (int(acc_red.l1_min_step), float(acc_red.l1_min)),
        "full scan": (int(acc_full.l1_min_step), float(acc_full.l1_min)),
        "numpy loop": (int(np.argmin(rec_np[:, 1])), float(np.min(rec_np[:, 1]))),
    }
    for name, (step, value) in mins.items():
        print(f"  {name:13s} L1 min {value:.6g} at step {step}")
    assert len({step for step, _ in mins.values()}) == 1, "the three computations disagree"
    err = np.max(np.abs(np.asarray(rec_red)[:, :4] - rec_np)) / np.max(np.abs(rec_np))
    print(f"  max |reduced − numpy| / scale over all steps and loss terms: {err:.1e}")
    print("\n16,000-step paper trajectory (every step recorded), median wall time:")
    print(f"  reduced scan (warm)   {t_red * 1e3:9.3f} ms   {t_np / t_red:8.0f}x faster than numpy   (cold, incl. compile: {cold:.2f} s)")
    print(f"  full scan (warm)      {t_full * 1e3:9.3f} ms   {t_np / t_full:8.0f}x")
    print(f"  numpy per-step loop   {t_np * 1e3:9.1f} ms   1x (baseline)")
    print(f"\nthen every tracked column of trajectory.csv from the reduced records: {t_cols * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
