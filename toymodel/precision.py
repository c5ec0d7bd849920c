"""Float64 for the toy model, without changing the process-wide JAX defaults.

Every public toy-model function runs under `jax.enable_x64(True)`, so arrays and compiled code are
float64 even when other code in the same process (the transformer) works in float32.
"""

from __future__ import annotations

import functools

import jax


def float64(fn):
    """Decorator: run `fn` with JAX's 64-bit mode on (arrays default to float64 inside it)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with jax.enable_x64(True):
            return fn(*args, **kwargs)

    return wrapper
