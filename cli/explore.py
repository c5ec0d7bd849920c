"""`coop explore`: the toy model live in a browser (`explore.server`)."""

from __future__ import annotations

import typer

from toymodel.commands import cpu_devices


def explore(
    port: int = typer.Option(8050, "--port", help="Port to serve on (1-65535)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to serve on (default: loopback only)."),
) -> None:
    """The toy model live in a browser: move alpha, mu1, mu2 and watch the curves and the phase diagram; Ctrl-C stops it."""
    cpu_devices()  # before jax starts: the phase diagram's sweep uses every core
    from explore.server import serve

    serve(host, port)
