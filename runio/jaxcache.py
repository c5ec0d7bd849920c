"""JAX's persistent compilation cache for `coop`: compiled programs kept between processes.

A `coop` process compiles its kernels (a sweep's round kernels, a training step, the fit's toy
simulator) before it computes anything; on this project's 2-core CPU that compilation is most of a
short command's time. JAX can keep the compiled programs on disk, keyed by the program, the JAX
version and the XLA flags, and load them in the next process instead of compiling again (same
programs, so the same numbers). `coop` turns that on, in `~/.cache/coop/jax` (or under
`$XDG_CACHE_HOME`), unless `JAX_COMPILATION_CACHE_DIR` is already set: set it to another folder to
move the cache, or to an empty string to turn it off. Every program is kept, also those that compile
in under a second (JAX's default threshold, lowered to 0 unless JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS
is set): a sweep's start (the paper's draw, the reduced coordinates) is many small programs. Sets
environment variables only; imports nothing heavy, and must run before JAX is imported.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ENV", "default_dir", "use_compilation_cache"]

ENV = "JAX_COMPILATION_CACHE_DIR"
MIN_TIME_ENV = "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"


def default_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "coop" / "jax"


def use_compilation_cache() -> None:
    """Point JAX's persistent compilation cache at `default_dir()` unless JAX_COMPILATION_CACHE_DIR is set,
    and keep every program in it unless JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS is set."""
    os.environ.setdefault(ENV, str(default_dir()))
    os.environ.setdefault(MIN_TIME_ENV, "0")
