"""`coop explore` without a browser: the compiled-once trajectory against
`toymodel.dynamics.simulate`, the page's state and its commands, the HTTP API (bad input, stale
requests), the fit.json overlay, the CLI."""

from __future__ import annotations

import base64
import csv
import json
import shlex
import signal
import socket
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from explore import state
from explore.fitfile import read_fit
from explore.server import make_server

from conftest import ROOT, free_port, run_coop, start_explore
from explore.trajectory import _run, trajectory
from runio.options import ConfigError
from toymodel.draws import PAPER_DIMS, paper_draw
from toymodel.dynamics import RunConfig, simulate
from toymodel.loss import LossParams
from toymodel.outcomes import OUTCOMES

CASES = [
    ("gd", (), "mean"), ("gd", ("b:10", "c"), "mean"), ("gd", ("a",), "mean"), ("momentum", (), "mean"),
    ("flow", (), "mean"), ("gd", (), "sum"),
]


@pytest.mark.parametrize("method,clamp,aggregate", CASES, ids=[f"{m}-{','.join(c) or 'free'}-{a}" for m, c, a in CASES])
def test_trajectory_equals_simulate(method, clamp, aggregate):
    """Every column, the ICL peak, the ICL steps and the outcome of `dynamics.simulate`, to 1e-9."""
    draw = paper_draw(7, PAPER_DIMS)
    lr = 3e-8 if aggregate == "sum" else 1.0  # summed, L1 and L2 are ~1e4 and their product ~1e8 at the start
    config = RunConfig(method=method, lr=lr, steps=6000, every=3, clamp=clamp)
    for alpha in (0.1, 0.13):
        params = LossParams(alpha, 0.1, 0.001, aggregate)
        got, want = trajectory(draw, params, config), simulate(draw, params, config)
        np.testing.assert_array_equal(got.steps, want.steps)
        for name, column in want.columns.items():
            np.testing.assert_allclose(got.columns[name], column, rtol=1e-9, atol=1e-12, err_msg=name)
        assert got.l1_min == pytest.approx(want.l1_min, rel=1e-9)
        assert (got.l1_min_step, got.icl_steps, got.outcome) == (want.l1_min_step, want.icl_steps, want.outcome)
    assert want.outcome in OUTCOMES


def test_trajectory_compiles_once_per_shape():
    draw = paper_draw(7, PAPER_DIMS)
    config = RunConfig(steps=2000, every=2)
    trajectory(draw, LossParams(0.1, 0.1, 0.0), config)
    size = _run._cache_size()
    for alpha, mu1, mu2, lr in ((0.2, 0.05, 0.01, 1.0), (0.0, 0.3, 0.0, 0.5), (1.0, 0.0, 0.1, 0.9)):
        trajectory(draw, LossParams(alpha, mu1, mu2), RunConfig(steps=2000, every=2, lr=lr))
    trajectory(paper_draw(8, PAPER_DIMS), LossParams(0.1, 0.1, 0.0), config)  # another draw, same shape
    assert _run._cache_size() == size
    trajectory(draw, LossParams(0.1, 0.1, 0.0), RunConfig(steps=2001, every=2))
    assert _run._cache_size() == size + 1


def test_trajectory_diverged_is_cut_like_simulate():
    draw = paper_draw(7, PAPER_DIMS)
    params, config = LossParams(0.1, 0.1, 0.0), RunConfig(lr=400.0, steps=3000, every=1)
    got, want = trajectory(draw, params, config), simulate(draw, params, config)
    assert want.diverged_at is not None and got.diverged_at == want.diverged_at and got.outcome == "diverged"
    np.testing.assert_array_equal(got.steps, want.steps)


# ---- the page's state and its commands ----------------------------------------------------------


def test_default_view_commands():
    view = state.parse({})
    assert view.every == 4  # 16,000 steps in at most 4,000 rows
    assert state.simulate_command(view) == (
        "coop toy simulate --alpha 0.1 --mu1 0.1 --mu2 0.0 --lr 1.0 --steps 16000 --dims 20,20,20,160 --seed 7 "
        "--method gd --aggregate mean --every 4 --out runs/explore")
    assert state.sweep_command(view) == (
        "coop toy sweep --alpha 0:0.5:64 --mu1 0:0.5:64 --mu2 0.0 --steps 16000 --lr 1.0 --dims 20,20,20,160 "
        "--seed 7 --aggregate mean --out runs/explore-diagram")


BAD = [
    ({"alpha": "nan"}, "alpha", ">= 0"), ({"alpha": "-0.1"}, "alpha", ">= 0"), ({"mu1": "x"}, "mu1", "a number"),
    ({"mu2": "inf"}, "mu2", "finite"), ({"lr": "0"}, "lr", "> 0"), ({"lr": "11"}, "lr", "<= 10"),
    ({"steps": "0"}, "steps", ">= 1"), ({"steps": "200001"}, "steps", "200,000"), ({"seed": "-1"}, "seed", ">= 0"),
    ({"dims": "20,20,20"}, "dims", "4 comma-separated"), ({"dims": "20,20,20,20000"}, "dims", "10,000"),
    ({"clamp": "b:21"}, "clamp", "1 <= K <= n_NAME"), ({"clamp": "b:10", "dims": "20,5,20,160"}, "clamp", "n_b=5"),
    ({"method": "adam"}, "method", "gd, momentum, flow"), ({"aggregate": "max"}, "aggregate", "mean"),
    ({"alpha_max": "0"}, "alpha_max", "> 0 and <= 20"), ({"mu1_max": "nan"}, "mu1_max", "> 0"),
]


@pytest.mark.parametrize("query,option,allowed", BAD, ids=[",".join(f"{k}={v}" for k, v in q.items()) for q, _, _ in BAD])
def test_bad_values_name_the_control_and_range(query, option, allowed):
    with pytest.raises(ConfigError) as err:
        state.parse(query)
    assert err.value.parameter == option and allowed in err.value.allowed and "\n" not in str(err.value)


# ---- the HTTP API -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api():
    server, explorer = make_server("127.0.0.1", free_port())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", explorer
    server.shutdown()
    server.server_close()


def get(url, data=None):
    """(status, body) of a request; JSON bodies decoded, with a trajectory's packed columns unpacked."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=300) as answer:
            status, body, ctype = answer.status, answer.read(), answer.headers["Content-Type"]
    except urllib.error.HTTPError as err:
        status, body, ctype = err.code, err.read(), err.headers["Content-Type"]
    if ctype != "application/json":
        return status, body
    body = json.loads(body)
    for key in ("columns", "mapped"):
        if isinstance(body, dict) and key in body:
            body[key] = {k: np.frombuffer(base64.b64decode(v), "<f8") for k, v in body[key].items()}
    return status, body


def test_trajectory_api_and_its_csv_equal_coop_toy_simulate(api, tmp_path, coop_inprocess):
    url, _ = api
    query = "alpha=0.137&mu1=0.08&mu2=0.002&steps=9000&clamp=b:12&method=momentum&lr=0.5"
    status, body = get(f"{url}/api/trajectory?{query}")
    assert status == 200 and body["every"] == 3
    args = shlex.split(body["command"])
    assert args[:3] == ["coop", "toy", "simulate"] and "--alpha" in args and args[args.index("--alpha") + 1] == "0.137"
    args[args.index("--out") + 1] = str(tmp_path / "run")
    code, _, err = coop_inprocess(*args[1:])
    assert code == 0, err
    with open(tmp_path / "run" / "trajectory.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    np.testing.assert_array_equal([int(r["step"]) for r in rows], body["columns"]["step"])
    for name in ("l1", "l2", "loss", "icl_strength", "norm_d", "cos_b"):
        np.testing.assert_allclose([float(r[name]) for r in rows], body["columns"][name], rtol=1e-9, err_msg=name)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert body["outcome"] == summary["outcome"] and body["l1_min_step"] == summary["l1_min_step"]
    status, text = get(f"{url}/api/trajectory.csv?{query}")
    assert status == 200 and text == (tmp_path / "run" / "trajectory.csv").read_bytes()


def test_diagram_api_is_the_sweeps_slice(api, tmp_path, coop_inprocess):
    url, _ = api
    query = "mu2=0.004&steps=3000&alpha_max=0.8&mu1_max=0.3"
    status, body = get(f"{url}/api/diagram?{query}")
    assert status == 200 and np.shape(body["outcome"]) == (state.GRID, state.GRID)
    assert body["alpha"][-1] == 0.8 and body["mu1"][-1] == 0.3
    assert body["boundaries"][0]["y"] == [0.0, 0.0] and "μ₁ = 0" in body["boundaries"][0]["label"]
    args = shlex.split(body["command"])
    args[args.index("--out") + 1] = str(tmp_path / "sweep")
    code, _, err = coop_inprocess(*args[1:])
    assert code == 0, err
    with np.load(tmp_path / "sweep" / "sweep.npz") as data:
        np.testing.assert_array_equal(data["outcome"][:, :, 0], body["outcome"])
    assert len(set(np.ravel(body["outcome"]))) >= 2  # a plane with more than one class
    _, again = get(f"{url}/api/diagram?{query}")
    assert again["seconds"] == 0.0 and again["outcome"] == body["outcome"]  # kept from before


def test_portrait_api_closed_forms_and_the_flow_beside_the_trajectory(api):
    """The portrait of `coop toy portrait`: with mu1 = 0 and mu2 = 0 both closed-form end states (1, 0)
    and (0, 1) are fixed points; with mu1 > 0 the ICL one is gone; the free gradient flow from the
    draw ends where the page's gradient-descent trajectory ends (lr 1 is close to the flow)."""
    url, _ = api
    status, body = get(f"{url}/api/portrait?mu1=0&steps=2000")
    points = {(fp["m1"], fp["m2"]) for fp in body["fixed_points"]}
    assert status == 200 and {(1.0, 0.0), (0.0, 1.0)} <= points and np.shape(body["u"]) == (41, 41)
    status, body = get(f"{url}/api/portrait?alpha=0.1&mu1=0.1&mu2=0")
    assert (0.0, 1.0) in {(fp["m1"], fp["m2"]) for fp in body["fixed_points"]}
    assert (1.0, 0.0) not in {(fp["m1"], fp["m2"]) for fp in body["fixed_points"]}
    assert body["command"].startswith("coop toy portrait --alpha 0.1 --mu1 0.1 --mu2 0.0 ") and "--time 16000.0" in body["command"]
    (flow,) = body["flows"]
    _, traj = get(f"{url}/api/trajectory?alpha=0.1&mu1=0.1&mu2=0")
    end = np.array([traj["columns"]["icl_strength"][-1], traj["columns"]["ciwl_strength"][-1]])
    np.testing.assert_allclose([flow["m1"][-1], flow["m2"][-1]], end, atol=1e-3)
    np.testing.assert_allclose(end, [0.0, 1.0], atol=1e-3)  # transient: ICL gone, CIWL learned


def test_bad_input_is_400_one_line_and_the_server_unaffected(api):
    url, explorer = api
    before = dict(explorer.computed)
    for query, option, allowed in (("alpha=nan", "alpha", ">= 0"), ("clamp=c:99", "clamp", "n_c=20"),
                                   ("steps=1e9", "steps", "integer")):
        for path in ("trajectory", "diagram", "portrait", "trajectory.csv"):
            status, body = get(f"{url}/api/{path}?{query}")
            assert status == 400 and body["option"] == option and allowed in body["error"], body
    assert explorer.computed == before  # nothing computed for them
    status, body = get(f"{url}/api/trajectory?alpha=0.1&steps=500")
    assert status == 200 and len(body["columns"]["l1"]) == 501


def test_superseded_requests_are_dropped_unqueued(api):
    """Requests of one client that waited while a newer one arrived are answered stale, uncomputed."""
    url, explorer = api
    before = explorer.computed["trajectory"]
    answers = {}

    def ask(seq):
        answers[seq] = get(f"{url}/api/trajectory?alpha=0.{seq}&steps=800&client=t&seq={seq}")

    with explorer.lock:  # a computation in progress
        threads = [threading.Thread(target=ask, args=(seq,)) for seq in (1, 2, 3, 4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while explorer.latest.get(("t", "trajectory")) != 4 and time.monotonic() < deadline:
            time.sleep(0.01)
    for t in threads:
        t.join(60)
    assert {seq: a[1].get("stale", False) for seq, a in answers.items()} == {1: True, 2: True, 3: True, 4: False}
    assert answers[4][0] == 200 and "--alpha 0.4" in answers[4][1]["command"]
    assert explorer.computed["trajectory"] == before + 1


def test_page_files_are_served_and_fetch_nothing_from_outside(api):
    url, _ = api
    status, page = get(url + "/")
    assert status == 200 and b"/static/uPlot.iife.min.js" in page and b"/static/app.js" in page
    for name in ("app.js", "app.css", "uPlot.iife.min.js", "uPlot.min.css"):
        status, body = get(f"{url}/static/{name}")
        assert status == 200 and len(body) > 1000
        assert b"https://cdn" not in body and b"//unpkg" not in body and b"googleapis" not in body
    assert get(f"{url}/static/../cli.py")[0] == 404


# ---- the fit.json overlay -----------------------------------------------------------------------

TRUTH = {"alpha": 0.15, "mu1": 0.06, "mu2": 0.0, "tau": 150.0, "A1": 5.0, "B1": 0.2, "A2": 2.0, "B2": 0.05}
SEQUENCES = np.arange(1, 61) * 25_000.0  # up to toy step 10,000


@pytest.fixture(scope="module")
def fit_json(tmp_path_factory):
    """A fit.json written by `coop compare` on curves the toy made at TRUTH, with d at the draw's own rate."""
    root = tmp_path_factory.mktemp("fit")
    traj = trajectory(paper_draw(7, PAPER_DIMS), LossParams(TRUTH["alpha"], TRUTH["mu1"], TRUTH["mu2"]),
                      RunConfig(steps=10_000, every=1))
    t = SEQUENCES / TRUTH["tau"]
    with open(root / "curves.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["sequences", "icl_loss", "ciwl_loss"])
        for s, l1, l2 in zip(SEQUENCES, np.interp(t, traj.steps, traj.columns["l1"]),
                             np.interp(t, traj.steps, traj.columns["l2"])):
            w.writerow([repr(float(x)) for x in (s, TRUTH["A1"] * l1 + TRUTH["B1"], TRUTH["A2"] * l2 + TRUTH["B2"])])
    proc = run_coop("compare", root / "curves.csv", "--out", root / "cmp", "--fix", "mu2=0,nd_ratio=8",
                    "--starts", "64", "--refine", "4", "--max-steps", "20000", "--grid", "4")
    assert proc.returncode == 0, proc.stderr
    return root / "cmp" / "fit.json"


def test_fit_overlay_recovers_the_curves(api, fit_json):
    url, _ = api
    status, fit = get(f"{url}/api/fit", fit_json.read_bytes())
    assert status == 200 and fit["link"] == "affine" and fit["dims"] == list(PAPER_DIMS)
    for k in ("alpha", "mu1", "tau"):
        assert fit["params"][k] == pytest.approx(TRUTH[k], rel=1e-3)
    np.testing.assert_allclose(fit["measured"]["step"], SEQUENCES / fit["params"]["tau"])
    assert get(f"{url}/api/fit", fit_json.read_bytes())[1]["id"] != fit["id"]  # each file read is its own
    p = fit["params"]
    query = f"alpha={p['alpha']!r}&mu1={p['mu1']!r}&mu2={p['mu2']!r}&steps={fit['steps']}&fit={fit['id']}"
    status, body = get(f"{url}/api/trajectory?{query}")
    assert status == 200
    for curve in ("icl", "ciwl"):  # the live toy at the fitted point, mapped, through the measured rows
        live = np.interp(fit["measured"]["step"], body["columns"]["step"], body["mapped"][curve])
        measured = np.asarray(fit["measured"][curve])
        assert 1 - np.sum((measured - live) ** 2) / np.sum((measured - measured.mean()) ** 2) > 0.999


def test_the_papers_run_is_served_and_read_like_an_opened_fit(api):
    """The page's "the paper's run": the shipped fit.json of `coop compare reference/official_main_run.csv
    --icl icl_acc --ciwl ciwl_acc --curves accuracy`, served as its bytes, read by POST /api/fit as an
    opened fit.json is, its measured points the run's error rates on the toy's step axis."""
    from importlib import resources

    from compare.maps import link_map
    from explore.server import REFERENCE

    url, _ = api
    shipped = resources.files("explore").joinpath("static", REFERENCE).read_bytes()
    status, served = get(f"{url}/static/{REFERENCE}")
    assert status == 200 and served == shipped
    info = json.loads(shipped)
    assert info["source"] == "reference/official_main_run.csv" and info["data"]["curves"] == "accuracy"
    assert info["data"]["columns"] == {"sequences": "sequences", "icl": "icl_acc", "ciwl": "ciwl_acc"}
    assert (info["config"]["link"], info["config"]["population"], info["config"]["fixed"]) == ("probit", "ciwl", {})

    status, fit = get(f"{url}/api/fit", served)
    assert status == 200 and fit == {"id": fit["id"], **json.loads(json.dumps(read_fit(shipped)))}
    assert fit["params"] == {k: info["parameters"][k]["value"] for k in fit["params"]}
    with open(ROOT / "reference/official_main_run.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if int(r["sequences"]) >= 100_000]  # row 0 (untrained) not fitted
    np.testing.assert_allclose(fit["measured"]["step"], [int(r["sequences"]) / fit["params"]["tau"] for r in rows])
    for curve in ("icl", "ciwl"):
        np.testing.assert_allclose(fit["measured"][curve], [1 - float(r[f"{curve}_acc"]) for r in rows], atol=1e-12)

    p = fit["params"]  # the live toy at the fitted point, mapped as the fit maps it
    status, body = get(f"{url}/api/trajectory?alpha={p['alpha']!r}&mu1={p['mu1']!r}&mu2={p['mu2']!r}"
                       f"&steps={fit['steps']}&fit={fit['id']}")
    assert status == 200 and p["sigma1"] == 0 and p["sigma2"] > 0.1
    single = {k: link_map("probit", body["columns"][f"l{i}"], p[f"A{i}"], p[f"B{i}"], fit[f"l{i}_ref"])
              for i, k in enumerate(("icl", "ciwl"), 1)}
    np.testing.assert_allclose(body["mapped"]["icl"], single["icl"], rtol=1e-12)  # sigma1 0: one speed
    assert np.max(np.abs(body["mapped"]["ciwl"] - single["ciwl"])) > 0.01  # sigma2: a population average
    assert body["mapped"]["ciwl"][-1] == pytest.approx(p["B2"], abs=1e-3)  # CIWL learned: the fitted floor


@pytest.mark.parametrize("text,why", [
    ("{not json", "not JSON"),
    (json.dumps({"axes": {}, "outcome_counts": {}}), "no parameters.alpha.value"),  # a sweep.json
    ((ROOT / "studies/faithful_fits/K12800_E5_n0.6_s0_S25600000.json").read_text(),
     "no parameters.alpha.value"),  # the faithful-fits table's own summary of a fit
    (json.dumps({"parameters": {k: {"value": 1.0} for k in
                                ("alpha", "mu1", "mu2", "tau", "nd_ratio", "sigma1", "sigma2", "A1", "B1", "A2",
                                 "B2")},
                 "config": {"link": "cubic"}}), "config.link must be one of affine, probit"),
])
def test_a_fit_json_of_another_format_is_refused_in_one_line(api, text, why):
    url, _ = api
    status, body = get(f"{url}/api/fit", text.encode())
    assert status == 400 and body["option"] == "fit.json" and why in body["error"] and "\n" not in body["error"]
    with pytest.raises(ConfigError, match="fit.json"):
        read_fit(text)


# ---- the command --------------------------------------------------------------------------------


def test_port_out_of_range_or_in_use_is_one_line_exit_2():
    proc = run_coop("explore", "--port", "70000")
    assert proc.returncode == 2 and proc.stderr.strip() == "coop: error: --port: must be from 1 to 65535, got 70000"
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        proc = run_coop("explore", "--port", port)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and f"--port: {port} is in use" in proc.stderr


def test_ctrl_c_stops_it_cleanly():
    proc, address = start_explore(free_port())
    try:
        status, page = get(address)
        assert status == 200 and b"coop explore" in page
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "stopped" in out and "Traceback" not in err

