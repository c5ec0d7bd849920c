"""The HTTP side of `coop explore`: the page's files and its JSON API, on the standard library's server.

    GET  /                          the page (explore/static/index.html) and /static/NAME its files
    GET  /static/reference_fit.json the fit.json of the paper's own run, shipped with the page
    GET  /api/trajectory?VIEW       the curves of a view: rows (every `every`-th step, PAGE_COLUMNS,
                                    each `packed`), the ICL peak, the outcome, the `coop toy simulate`
                                    command; with fit=ID the rows mapped onto a read fit's evaluators
    GET  /api/trajectory.csv?VIEW   that command's trajectory.csv (the same bytes)
    GET  /api/diagram?VIEW          the (alpha, mu1) slice at the view's mu2, dims, steps, lr, draw
    GET  /api/portrait?VIEW         the portrait in the plane of the mechanism strengths (m1, m2)
    POST /api/fit                   a `coop compare` fit.json (the body) -> its overlay and an id

VIEW is the page's URL query (`explore.state`). A bad value is answered 400 with {"error": one
line naming the option and the allowed range, "option": it}; nothing the server holds changes.

Fast and not queued: one computation runs at a time (JAX already uses both cores); each request may
carry `client` and `seq` (the page numbers its requests per kind, trajectory or diagram). A request
that waited for the computation while a newer one of its client and kind arrived is answered
{"stale": true} without computing (the page has moved on), so a slider dragged faster than the
server answers costs one computation per answer, not one per position.
"""

from __future__ import annotations

import base64
import json
import math
import signal
import tempfile
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np

from runio import write_csv
from runio.options import ConfigError
from toymodel.dynamics import simulate
from toymodel.loss import LossParams
from toymodel.portrait import compute_portrait

from . import state
from .diagram import slice_of
from .fitfile import read_fit
from .trajectory import trajectory

__all__ = ["Explorer", "make_server", "serve", "STATIC", "REFERENCE"]

# `coop compare` of the paper's own run (reference/official_main_run.csv), as written: the page's "the
# paper's run" button posts it to /api/fit like an opened fit.json (docs/explore.md: how to regenerate it)
REFERENCE = "reference_fit.json"
STATIC = {"index.html": "text/html", "app.js": "text/javascript", "app.css": "text/css",
          "portrait.js": "text/javascript", "uPlot.iife.min.js": "text/javascript", "uPlot.min.css": "text/css",
          REFERENCE: "application/json"}
# the trajectory's columns the page draws (the CSV download has them all)
PAGE_COLUMNS = ("loss", "l1", "l2", "competition", "icl_strength", "ciwl_strength", "norm_a", "norm_b", "norm_c",
                "norm_d", "cos_a", "cos_b", "cos_c", "cos_d")
MAX_BODY = 64 * 2**20  # a fit.json larger than this is refused
FITS_KEPT = 8


class Explorer:
    """What the server computes, one computation at a time, dropping superseded requests."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latest: dict = {}  # (client, kind) -> newest seq seen
        self.fits: dict = {}  # id -> explore.fitfile.Fit (the last FITS_KEPT read)
        self.fits_read = 0
        self.computed = {"trajectory": 0, "diagram": 0, "portrait": 0, "csv": 0, "stale": 0}
        self._latest_lock = threading.Lock()

    def _arrive(self, query: dict, kind: str):
        client, seq = query.get("client"), query.get("seq")
        if client is None or seq is None or not seq.isdigit():
            return None
        key, seq = (client, kind), int(seq)
        with self._latest_lock:
            self.latest[key] = max(self.latest.get(key, -1), seq)
        return key, seq

    def _stale(self, ticket) -> bool:
        return ticket is not None and self.latest.get(ticket[0], -1) > ticket[1]

    def run(self, kind: str, query: dict, compute):
        """`compute(view)` for the view of `query` under the lock, unless superseded meanwhile."""
        view = state.parse(query)  # ConfigError before anything waits
        ticket = self._arrive(query, kind)
        with self.lock:
            if self._stale(ticket):
                self.computed["stale"] += 1
                return {"stale": True}
            self.computed[kind] += 1
            return compute(view)

    # ---- the computations -----------------------------------------------------------------------

    def trajectory(self, view: state.View, fit_id: str | None = None):
        draw, params, config = view.simulate.prepare()
        start = time.perf_counter()
        traj = trajectory(draw, params, config)
        seconds = time.perf_counter() - start
        cols = {"step": traj.steps} | {k: traj.columns[k] for k in PAGE_COLUMNS}
        out = {"columns": {k: packed(v) for k, v in cols.items()}, "outcome": traj.outcome,
               "l1_min": _finite([traj.l1_min])[0], "l1_min_step": traj.l1_min_step,
               "icl_steps": traj.icl_steps, "l1_ref": traj.l1_ref, "l2_ref": traj.l2_ref,
               "diverged_at": traj.diverged_at, "every": view.every, "seconds": seconds,
               "command": state.simulate_command(view)}
        fit = self.fits.get(fit_id)
        if fit is not None:
            out["mapped"] = {k: packed(v) for k, v in fit.mapped(traj.steps, traj.columns["l1"], traj.columns["l2"]).items()}
        return out

    def trajectory_csv(self, view: state.View) -> bytes:
        """The trajectory.csv of the view's `coop toy simulate` command, byte for byte:
        `toymodel.dynamics.simulate` itself (compiled for this one download) written as
        `toymodel.runs.write_run` does."""
        traj = simulate(*view.simulate.prepare())
        with tempfile.TemporaryDirectory(prefix="coop-explore-") as folder:
            path = Path(folder) / "trajectory.csv"
            write_csv(path, {"step": traj.steps, **traj.columns})
            return path.read_bytes()

    def diagram(self, view: state.View):
        return slice_of(view.sweep) | {"command": state.sweep_command(view)}

    def portrait(self, view: state.View):
        """`coop toy portrait`'s one panel at the view (`toymodel.portrait.compute_portrait`, as its command
        calls it): the clamped-flow field on the (m1, m2) grid, the free gradient flow from the view's
        draw for steps x lr, and the fixed points by type. The mean aggregate (the command has no other)."""
        (params,), dims, seeds, clamped, _ = view.portrait.panels()
        start = time.perf_counter()
        por = compute_portrait(LossParams(*params), dims=dims, seeds=seeds, time=view.portrait.time, clamp=clamped)
        keep = ("m1", "m2", "type", "line")
        return {"m1": por.m1.tolist(), "m2": por.m2.tolist(), "u": por.u.tolist(), "v": por.v.tolist(),
                "flows": [{"seed": seed, "m1": m1.tolist(), "m2": m2.tolist()} for seed, m1, m2 in por.trajectories],
                "fixed_points": [{k: fp.get(k) for k in keep} for fp in por.fixed_points],
                "seconds": time.perf_counter() - start, "command": state.portrait_command(view)}

    def load_fit(self, body: bytes) -> dict:
        fit = read_fit(body)
        self.fits_read += 1
        fit_id = str(self.fits_read)
        self.fits[fit_id] = fit
        while len(self.fits) > FITS_KEPT:
            self.fits.pop(next(iter(self.fits)))
        return {"id": fit_id, **fit}

    def warm(self) -> None:
        """Compile the default view's programs (the page's first answers then come at once)."""
        with self.lock:
            view = state.parse({})
            self.trajectory(view)
            self.diagram(view)


def _handler(explorer: Explorer):
    class Handler(BaseHTTPRequestHandler):
        server_version = "coop-explore"

        def log_message(self, format, *args):  # noqa: A002 (the base class's name): no log per request
            pass

        def _send(self, status, body: bytes, ctype: str, extra=None):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status, payload):
            self._send(status, json.dumps(payload, allow_nan=False, default=_plain).encode(), "application/json")

        def _answer(self, fn):
            try:
                result = fn()
            except ConfigError as err:
                return self._json(HTTPStatus.BAD_REQUEST, {"error": str(err), "option": err.parameter})
            except (BrokenPipeError, ConnectionResetError):
                return None
            if isinstance(result, tuple):
                return self._send(HTTPStatus.OK, *result)
            return self._json(HTTPStatus.OK, result)

        def do_GET(self):  # noqa: N802 (the base class's name)
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
            if url.path == "/api/trajectory":
                return self._answer(lambda: explorer.run(
                    "trajectory", query, lambda view: explorer.trajectory(view, query.get("fit"))))
            if url.path == "/api/diagram":
                return self._answer(lambda: explorer.run("diagram", query, explorer.diagram))
            if url.path == "/api/portrait":
                return self._answer(lambda: explorer.run("portrait", query, explorer.portrait))
            if url.path == "/api/trajectory.csv":
                return self._answer(lambda: (explorer.run("csv", query, explorer.trajectory_csv), "text/csv",
                                             {"Content-Disposition": 'attachment; filename="trajectory.csv"'}))
            name = "index.html" if url.path == "/" else url.path.removeprefix("/static/")
            if name not in STATIC:
                return self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
            body = resources.files("explore").joinpath("static", name).read_bytes()
            return self._send(HTTPStatus.OK, body, STATIC[name] + "; charset=utf-8")

        def do_POST(self):  # noqa: N802
            if urlsplit(self.path).path != "/api/fit":
                return self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                return self._json(HTTPStatus.BAD_REQUEST, {"error": f"fit.json: larger than {MAX_BODY >> 20} MiB",
                                                           "option": "fit.json"})
            body = self.rfile.read(length)
            return self._answer(lambda: explorer.load_fit(body))

    return Handler


def packed(values) -> str:
    """Numbers for the page: little-endian float64, base64 (exact, and 30x faster to encode than JSON
    numbers: 4,001 rows x 15 columns in 3 ms instead of 80 ms); the page reads nan and inf as gaps."""
    return base64.b64encode(np.asarray(values, "<f8").tobytes()).decode()


def _finite(values: list) -> list:
    """The values with nan and inf as None (JSON has no such numbers; the page draws a gap)."""
    return [v if math.isfinite(v) else None for v in values]


def _plain(x):
    """JSON for numpy scalars (and nothing else)."""
    if hasattr(x, "item"):
        return x.item()
    raise TypeError(f"not JSON: {type(x).__name__}")


def make_server(host: str, port: int) -> tuple[ThreadingHTTPServer, Explorer]:
    """The server bound to (host, port), else ConfigError on `port` (outside 1-65535, or in use) or `host`."""
    if not 1 <= port <= 65535:
        raise ConfigError("port", f"must be from 1 to 65535, got {port}")
    explorer = Explorer()
    try:
        server = ThreadingHTTPServer((host, port), _handler(explorer))
    except OSError as err:
        if err.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
            raise ConfigError("port", f"{port} is in use on {host}: choose another (1-65535)") from None
        raise ConfigError("host", f"cannot serve on {host}:{port} ({err.strerror or err})") from None
    server.daemon_threads = True
    return server, explorer



def serve(host: str, port: int) -> None:
    """Serve until Ctrl-C (or SIGTERM): print the address, compile the default view in the background."""
    server, explorer = make_server(host, port)

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    shown = f"[{host}]" if ":" in host else host
    print(f"coop explore: http://{shown}:{server.server_address[1]}/  (Ctrl-C stops it)", flush=True)
    warm = threading.Thread(target=explorer.warm, daemon=True)
    warm.start()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        warm.join()  # a compilation cut off by the interpreter's exit aborts the process
    print("coop explore: stopped", flush=True)
