"""Latency of `coop explore`'s answers over HTTP, as ratios against the kernels' own time, in one run.

    python benchmarks/bench_explore.py [--repeats 15]

A server (`explore.server`, as `coop explore` starts it, both cores as JAX devices) runs in this
process on a free loopback port; requests go through urllib like the page's fetches.
1. trajectory update: the paper's 16,000-step trajectory at a new alpha each time (nothing kept),
   the whole answer (check, compute, columns, JSON, HTTP), against the kernel alone on the same
   inputs just before it: the compiled loop (`explore.trajectory._run`), warm. Target: <= 100 ms.
   For scale, `toymodel.dynamics.simulate` at a new alpha (what `coop toy simulate` runs; it compiles
   each time).
2. diagram slice: the 64 x 64 (alpha, mu1) diagram at a new mu2 each time, the whole answer, against
   the sweep's kernel alone on the same lanes just before it (`toymodel.sweep.run_lanes`), warm.
   Target: <= 1.5 s.
3. a burst: 20 trajectory requests of one client in flight at once (a slider dragged faster than
   the server answers): how many were computed, how many answered stale, and the burst's time.
Prints medians over the repeats, and each latency as a multiple of its kernel's time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import threading
import time
import urllib.request

from toymodel.commands import cpu_devices

cpu_devices()  # as `coop explore` does, before jax starts

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from explore import state  # noqa: E402
from explore.server import make_server  # noqa: E402
from explore.trajectory import _run  # noqa: E402
from toymodel import clamp as clamp_mod  # noqa: E402
from toymodel import reduced  # noqa: E402
from toymodel.draws import paper_draw  # noqa: E402
from toymodel.dynamics import RunConfig, simulate  # noqa: E402
from toymodel.loss import LossParams  # noqa: E402
from toymodel.metrics import reference_losses  # noqa: E402
from toymodel.outcomes import LEARNED  # noqa: E402
from toymodel.sweep import Lanes, _kernels_for, run_lanes  # noqa: E402


def median_time(fn, repeats: int) -> float:
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def paired(kernels, answers) -> tuple[float, float]:
    """Medians of the kernels' and the answers' times, each kernel run just before its answer."""
    times = []
    for kernel, answer in zip(kernels, answers):
        start = time.perf_counter()
        kernel()
        middle = time.perf_counter()
        answer()
        times.append((middle - start, time.perf_counter() - middle))
    return tuple(float(np.median(t)) for t in zip(*times))


def fetch(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=600) as answer:
        return json.loads(answer.read())


def trajectory_kernel(alpha: float):
    """The compiled loop alone for the paper's trajectory at `alpha` (inputs prepared outside the timing)."""
    with jax.enable_x64(True):
        draw = paper_draw()
        p0, q0, s, basis = reduced.reduce(draw, clamp_mod.counts((), draw.dims))
        consts = reduced.constants(s, draw.dims, LossParams(alpha, 0.1, 0.0), basis.clamped)
        l1_ref, _ = reference_losses(s, draw.dims, "mean")
        args = ((jnp.asarray(p0), jnp.asarray(q0)), consts, jnp.asarray(1.0), jnp.asarray(LEARNED * l1_ref))

    def run():
        with jax.enable_x64(True):
            out = _run(*args, method="gd", steps=16000, every=4, free=(1.0,) * 4, rtol=1e-10, atol=1e-12)
            jax.block_until_ready(out)

    return run


def sweep_kernel(opts):
    """The sweep's kernels alone on the lanes of the diagram of `opts` (one chunk, both devices)."""
    with jax.enable_x64(True):
        config = opts.config()
        devices = jax.devices()
        lanes = Lanes(config)
        mesh = jax.sharding.Mesh(np.array(devices), ("lanes",))

        def put(x):
            x = np.asarray(x)
            spec = jax.sharding.PartitionSpec(*([None] * (x.ndim - 1)), "lanes")
            return jax.device_put(x, jax.sharding.NamedSharding(mesh, spec))

        kernels = _kernels_for(config, lanes, devices)
        inputs, _ = lanes.chunk(0, len(devices))

    def run():
        with jax.enable_x64(True):
            run_lanes(kernels, inputs, put, len(devices))

    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    n = args.repeats
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__} on "
          f"{len(jax.devices())} {jax.devices()[0].platform} device(s); load average {os.getloadavg()[0]:.1f}")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server, explorer = make_server("127.0.0.1", port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{port}/api"
    explorer.warm()

    # 1. a trajectory update; each request paired with the kernel on the same inputs
    fetch(f"{url}/trajectory?alpha=0.09")
    trajectory_kernel(0.09)()
    alphas = [0.1 + 0.001 * (i + 1) for i in range(n)]
    t_kernel, t_update = paired([trajectory_kernel(a) for a in alphas],
                                [lambda a=a: fetch(f"{url}/trajectory?alpha={a!r}") for a in alphas])
    draw = paper_draw()
    t_simulate = median_time(lambda i: simulate(draw, LossParams(0.2 + 0.001 * i, 0.1, 0.0),
                                                   RunConfig(every=4)), min(n, 5))
    print(f"trajectory update, 16,000 gd steps, 4,001 rows (median of {n}):")
    print(f"  kernel (compiled loop alone)       {1e3 * t_kernel:8.2f} ms   1x")
    print(f"  whole HTTP answer                  {1e3 * t_update:8.2f} ms   {t_update / t_kernel:6.1f}x the kernel"
          f"   (target 100 ms = {0.1 / t_kernel:.0f}x: {'met' if t_update <= 0.1 else 'NOT met'})")
    print(f"  toymodel.simulate (compiles)       {1e3 * t_simulate:8.2f} ms   {t_simulate / t_kernel:6.1f}x the kernel")

    # 2. a diagram slice; each request paired with the sweep's kernel on the same lanes (lanes that
    # settle stop early, so the work depends on mu2)
    fetch(f"{url}/diagram?mu2=0.5")
    mu2s = [0.001 * (i + 1) for i in range(n)]
    t_kernel, t_slice = paired([sweep_kernel(state.parse({"mu2": repr(m)}).sweep) for m in mu2s],
                               [lambda m=m: fetch(f"{url}/diagram?mu2={m!r}") for m in mu2s])
    print(f"diagram slice, 64 x 64 lanes x 16,000 gd steps, mu2 from 0.001 to {mu2s[-1]:g} (median of {n}):")
    print(f"  kernel (sweep's run_lanes alone)   {t_kernel:8.3f} s    1x")
    print(f"  whole HTTP answer                  {t_slice:8.3f} s    {t_slice / t_kernel:6.2f}x the kernel"
          f"   (target 1.5 s = {1.5 / t_kernel:.1f}x: {'met' if t_slice <= 1.5 else 'NOT met'})")

    # 3. a burst of superseded requests
    before = dict(explorer.computed)
    answers = []
    threads = [threading.Thread(target=lambda i=i: answers.append(fetch(
        f"{url}/trajectory?alpha={0.3 + 0.001 * i!r}&client=bench&seq={i + 1}"))) for i in range(20)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    t_burst = time.perf_counter() - start
    computed = explorer.computed["trajectory"] - before["trajectory"]
    stale = explorer.computed["stale"] - before["stale"]
    print(f"burst of 20 trajectory requests of one client: {computed} computed, {stale} answered stale, "
          f"{1e3 * t_burst:.0f} ms in all ({t_burst / t_update:.1f}x one update)")
    server.shutdown()
    server.server_close()


if __name__ == "__main__":
    main()
