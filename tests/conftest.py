"""Shared test helpers."""

from __future__ import annotations

import subprocess
import sys

import jax
import pytest


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
