"""`coop explore` in a real browser: headless Chromium (Debian's chromium and chromium-driver)
driven by selenium against `coop explore` started on a free port, and stopped by its pid."""

from __future__ import annotations

import csv
import json
import os
import shlex
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import free_port, run_coop, start_explore

pytestmark = pytest.mark.browser

CHROMIUM, DRIVER = shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver") or "/usr/bin/chromedriver"
# flags that work on a closed network (no background connections to refuse) as root
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1440,1000")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (Path(CHROMIUM).is_file() and Path(DRIVER).is_file()):
        pytest.skip("no headless Chromium: install Debian's chromium and chromium-driver (.ci/run does)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install '.[test]')")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def server():
    proc, address = start_explore(free_port())
    yield address
    os.kill(proc.pid, signal.SIGINT)  # the server this test started, by its pid
    proc.communicate(timeout=60)
    assert proc.returncode == 0


def js(driver, expression):
    return driver.execute_script(f"return {expression};")


def settled(driver, timeout=300):
    """Wait until the page has both views and no request in flight; returns the last good state."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if js(driver, "explore.ready && !explore.pending.trajectory && !explore.pending.diagram"):
            return js(driver, "explore.good")
        time.sleep(0.1)
    raise AssertionError(f"the page did not settle in {timeout} s: {js(driver, 'explore.state')}")


def simulate_l1(command: str, out: Path) -> tuple[np.ndarray, np.ndarray]:
    """Run the page's `coop toy simulate` command (its --out moved to `out`): (steps, L1) of its trajectory.csv."""
    args = shlex.split(command)
    assert args[:3] == ["coop", "toy", "simulate"]
    args[args.index("--out") + 1] = str(out)
    proc = run_coop(*args[1:])
    assert proc.returncode == 0, proc.stderr
    with open(out / "trajectory.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return np.array([int(r["step"]) for r in rows]), np.array([float(r["l1"]) for r in rows])


def test_the_page_in_chromium(browser, server, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver = browser
    driver.get(server)
    first = settled(driver)
    assert first["alpha"] == "0.1" and js(driver, "document.getElementById('outcome-name').textContent") == "transient icl"
    l1_before = js(driver, "explore.charts.losses.data[1]")

    # move the alpha slider from 0.1 (keyboard: 25 positions right, each an input event, faster than the
    # server answers; focused by a script, since a click would move it to where it lands)
    slider = driver.find_element(By.ID, "alpha-slider")
    driver.execute_script("arguments[0].focus()", slider)
    slider.send_keys(*[Keys.ARROW_RIGHT] * 25)
    moved = settled(driver)
    alpha = driver.find_element(By.ID, "alpha").get_attribute("value")
    assert moved["alpha"] == alpha == "0.133" and f"alpha={alpha}&" in driver.current_url  # 10^(-4 + 5 x 624 / 999)
    steps, l1 = (np.asarray(js(driver, f"explore.charts.losses.data[{i}]")) for i in (0, 1))
    command = driver.find_element(By.ID, "command").text
    assert f"--alpha {alpha} " in command
    want_steps, want_l1 = simulate_l1(command, tmp_path / "run")
    np.testing.assert_array_equal(steps, want_steps)
    np.testing.assert_allclose(l1, want_l1, rtol=1e-9, atol=0)
    assert not np.allclose(l1, l1_before)
    stale = js(driver, "explore.seq.trajectory")
    assert stale > 25  # one request per slider position, the superseded ones aborted or dropped

    # click the phase diagram at (alpha, mu1) = (0.4, 0.4): the point moves there, the curves follow
    canvas = driver.find_element(By.ID, "diagram-canvas")
    x, y = js(driver, "explore.toPx(0.4, 0.4)")
    ActionChains(driver).move_to_element_with_offset(canvas, x - canvas.size["width"] / 2,
                                                     y - canvas.size["height"] / 2).click().perform()
    clicked = settled(driver)
    assert float(clicked["alpha"]) == pytest.approx(0.4, abs=0.005) and float(clicked["mu1"]) == pytest.approx(0.4, abs=0.005)
    point = js(driver, "explore.point")
    assert point["x"] == pytest.approx(x, abs=1) and point["y"] == pytest.approx(y, abs=1)
    diagram = js(driver, "explore.diagram")
    i = int(np.argmin(np.abs(np.asarray(diagram["alpha"]) - 0.4)))
    j = int(np.argmin(np.abs(np.asarray(diagram["mu1"]) - 0.4)))
    name = js(driver, "explore.traj.outcome")
    assert diagram["outcomes"][diagram["outcome"][i][j]] == name == "ciwl_only"  # the curve's class is the cell's

    # a bad value: a message naming the control and its range, the last good view kept
    l1_good, url_good = js(driver, "explore.charts.losses.data[1]"), driver.current_url
    box = driver.find_element(By.ID, "alpha")
    box.send_keys(Keys.CONTROL, "a")  # select what is there and type over it (clear() would send an empty value)
    box.send_keys("nan", Keys.ENTER)
    deadline = time.monotonic() + 60
    while driver.find_element(By.ID, "message").get_attribute("hidden") is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    message = driver.find_element(By.ID, "message").text
    assert message.startswith("α: must be a finite number >= 0, got nan"), message
    assert "bad" in box.get_attribute("class")
    assert js(driver, "explore.charts.losses.data[1]") == l1_good and driver.current_url == url_good
    assert js(driver, "explore.good")["alpha"] == clicked["alpha"]
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys("0.1", Keys.ENTER)  # the server is unaffected: a good value is answered
    assert settled(driver)["alpha"] == "0.1" and driver.find_element(By.ID, "message").get_attribute("hidden") is not None
    mu1 = driver.find_element(By.ID, "mu1")
    mu1.send_keys(Keys.CONTROL, "a")
    mu1.send_keys("0.1", Keys.ENTER)
    assert settled(driver)["mu1"] == "0.1"
    driver.execute_script("document.activeElement.blur()")
    shot = Path(os.environ.get("COOP_EXPLORE_SCREENSHOT", str(tmp_path / "explore.png")))
    driver.save_screenshot(str(shot))  # the paper's point

    # the portrait tab: computed when shown, the page's trajectory drawn on it
    driver.find_element(By.CSS_SELECTOR, '#tabs button[data-tab="portrait"]').click()
    settled(driver)
    deadline = time.monotonic() + 300
    while not js(driver, "explore.portrait && !explore.pending.portrait") and time.monotonic() < deadline:
        time.sleep(0.1)
    portrait = js(driver, "explore.portrait")
    assert portrait["state"]["mu1"] == "0.1" and "coop toy portrait --alpha 0.1 --mu1 0.1" in portrait["command"]
    assert driver.find_element(By.ID, "portrait-canvas").is_displayed()
    driver.find_element(By.CSS_SELECTOR, '#tabs button[data-tab="losses"]').click()

    # a fit.json of another format: one line in the page
    other = tmp_path / "fit.json"
    other.write_text(json.dumps({"axes": {}, "outcome_counts": {}}))
    driver.find_element(By.ID, "fit-file").send_keys(str(other))
    deadline = time.monotonic() + 30
    while "fit.json" not in driver.find_element(By.ID, "message").text and time.monotonic() < deadline:
        time.sleep(0.1)
    assert driver.find_element(By.ID, "message").text.startswith("fit.json: not a `coop compare` fit")

    # "the paper's run": the shipped fit.json of reference/official_main_run.csv, loaded as an opened one is
    driver.find_element(By.ID, "fit-reference").click()
    deadline = time.monotonic() + 30
    while not js(driver, "explore.fit && explore.fit.source") and time.monotonic() < deadline:
        time.sleep(0.1)
    fit = js(driver, "explore.fit")
    assert fit["source"] == "reference/official_main_run.csv"
    good = settled(driver)
    assert {k: float(good[k]) for k in ("alpha", "mu1", "mu2")} == {k: fit["params"][k] for k in ("alpha", "mu1", "mu2")}
    assert int(good["steps"]) == fit["steps"] and driver.find_element(By.ID, "message").get_attribute("hidden") is not None
    deadline = time.monotonic() + 30
    while not js(driver, "explore.charts.ciwl && explore.traj.mapped") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert js(driver, "explore.tab") == "transformer" and driver.find_element(By.ID, "chart-icl").is_displayed()
    with open(Path(__file__).parents[2] / "reference/official_main_run.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if int(r["sequences"]) >= 100_000]  # row 0 (untrained) not fitted
    for curve in ("icl", "ciwl"):  # the overlay's dots: the reference's measured error rates at sequences / tau
        x, measured, fitted, live = (np.asarray(v, dtype=float) for v in js(driver, f"explore.charts.{curve}.data"))
        shown = ~np.isnan(measured)
        np.testing.assert_allclose(x[shown], [int(r["sequences"]) / fit["params"]["tau"] for r in rows], rtol=1e-12)
        np.testing.assert_allclose(measured[shown], [1 - float(r[f"{curve}_acc"]) for r in rows], atol=1e-12)
        assert np.isfinite(fitted[shown]).all() and np.isfinite(live).sum() > 1000
    driver.save_screenshot(str(shot.with_name(shot.stem + "-paper-run.png")))

    # the console: no errors but the two 400 answers the bad inputs above asked for
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    unexpected = [e for e in errors if not (e["source"] == "network" and "status of 400" in e["message"])]
    assert not unexpected, unexpected
    assert len(errors) == 2, errors
