"""Shared test helpers."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

# `coop` keeps compiled programs between processes (runio.jaxcache): in the tests, in one folder of
# their own for the session (the subprocesses share it), not in the user's ~/.cache
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _CACHE = tempfile.mkdtemp(prefix="coop-test-jax-cache-")
    atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)

import jax  # noqa: E402
import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]  # the repository, wherever a test file sits under tests/


def run_coop(*args, cwd=None, timeout=300):
    """Run the `coop` CLI in a subprocess; returns CompletedProcess with text stdout/stderr."""
    return subprocess.run(
        [sys.executable, "-c", "import cli; cli.main()", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, timeout=timeout,
    )


@pytest.fixture
def coop_inprocess(monkeypatch, capsys):
    """Run `coop ARGS` in this process (fast: no re-import of jax); returns (exit code, stdout, stderr)."""
    import cli

    def run(*args):
        monkeypatch.setattr(sys, "argv", ["coop", *map(str, args)])
        with pytest.raises(SystemExit) as exc:
            cli.main()
        out, err = capsys.readouterr()
        return exc.value.code, out, err

    return run


@pytest.fixture
def x64():
    """Run a test body with JAX's 64-bit mode on (the toy model's precision)."""
    with jax.enable_x64(True):
        yield


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A one-node Slurm cluster on this host (tests/slurm/cluster.sh), torn down after the session;
    the tests that use it are skipped, with the reason, where it cannot be started."""
    import shutil

    script = Path(__file__).parent / "slurm" / "cluster.sh"
    if shutil.which("sbatch") is None or shutil.which("munged") is None:
        pytest.skip("Slurm is not installed (Debian's slurm-wlm and munge; .ci/run installs them)")
    if os.geteuid() != 0:
        pytest.skip("starting the Slurm daemons needs root")
    state = tmp_path_factory.mktemp("slurm")
    up = subprocess.run(["bash", str(script), "up", str(state)], capture_output=True, text=True, timeout=120)
    if up.returncode != 0:
        subprocess.run(["bash", str(script), "down", str(state)], capture_output=True)
        pytest.skip(f"Slurm did not start: {up.stderr.strip().splitlines()[-1] if up.stderr.strip() else up.returncode}")
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(state / "slurm.conf")
    yield state
    subprocess.run(["bash", str(script), "down", str(state)], capture_output=True)
    if old is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = old


# ---- `coop explore` in a subprocess (tests/cli/test_explore.py, tests/integration/test_explore_browser.py)

def start_explore(port: int) -> tuple[subprocess.Popen, str]:
    """`coop explore --port PORT` in a subprocess, and the address it printed."""
    proc = subprocess.Popen([sys.executable, "-c", "import cli; cli.main()", "explore", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("coop explore: http://127.0.0.1:"), line + proc.stderr.read()
    return proc, line.split()[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
