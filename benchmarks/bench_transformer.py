"""Training speed of the scanned chunk against a per-step Python loop, measured in the same run.

    .venv/bin/python benchmarks/bench_transformer.py [--steps 2000] [--preset cpu]

Both run the same jitted step (draw a batch, forward, backward, Adam) on the same data; the
baseline calls it once per step from Python (a host round-trip per step), the scanned loop runs
`--steps` steps in one compiled call. Prints steps/s of each and their ratio. Not a test.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

from transformer.model import init_params
from transformer.presets import PRESETS
from transformer.config import TrainConfig, keys, make_source
from transformer.train import make_chunk, make_optimizer, make_step


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--preset", default="cpu", choices=["cpu"])  # batch 32, K 2048
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    cfg = TrainConfig(**PRESETS[args.preset])
    k = keys(0)
    source = make_source(cfg)
    tx = make_optimizer(cfg)
    params = init_params(k["init"], cfg.model_config())
    opt_state = tx.init(params)
    step = make_step(cfg, tx)

    single = jax.jit(step)
    p, o, _ = single(params, opt_state, source, k["data"], jnp.int32(0))  # compile
    jax.block_until_ready(p)
    chunk = make_chunk(step, args.steps)
    jax.block_until_ready(chunk(params, opt_state, source, k["data"], jnp.int32(0)))  # compile

    loop_best, scan_best = 0.0, 0.0
    for _ in range(args.repeats):
        p, o = params, opt_state
        t0 = time.perf_counter()
        for i in range(args.steps):
            p, o, loss = single(p, o, source, k["data"], jnp.int32(i))
            loss = float(loss)  # a per-step loop that records the loss syncs with the host every step
        loop_best = max(loop_best, args.steps / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        jax.block_until_ready(chunk(params, opt_state, source, k["data"], jnp.int32(0)))
        scan_best = max(scan_best, args.steps / (time.perf_counter() - t0))
    print(f"preset {args.preset}: K={cfg.classes}, batch {cfg.batch}, devices {jax.devices()}")
    print(f"per-step Python loop : {loop_best:8.0f} steps/s  ({loop_best * cfg.batch:,.0f} sequences/s)")
    print(f"scanned jitted chunk : {scan_best:8.0f} steps/s  ({scan_best * cfg.batch:,.0f} sequences/s)")
    print(f"ratio scan / loop    : {scan_best / loop_best:8.2f}x")


if __name__ == "__main__":
    main()
