"""Clamping: coordinates held at their target from step 0 on (the paper's grafting analogue).

A clamp spec is a sequence of items `NAME` (the whole vector) or `NAME:K` (its first K
coordinates), NAME among a, b, c, d and each at most once, e.g. `("b:10", "c")`: half of b and all
of c taken from a trained network. `counts` resolves a spec against the dimensions into the number
of clamped coordinates per vector (0 = free, n = the whole vector). Clamped coordinates start at
the target's and get no update (their gradient is masked), so they never move.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from .loss import VECTOR_NAMES, Vectors


def _what(dims=None) -> str:
    ranges = f"1 <= K <= n_NAME ({', '.join(f'n_{v}={n}' for v, n in zip(VECTOR_NAMES, dims))})" if dims else "K >= 1"
    return f"must be a comma list of NAME or NAME:K, NAME among a,b,c,d at most once each, {ranges} (e.g. b:10,c)"


def parse(spec: Iterable[str]) -> dict[str, int | None]:
    """{name: K, or None for the whole vector} from the items of a spec; ValueError if malformed."""
    out: dict[str, int | None] = {}
    for item in spec:
        name, sep, k = item.strip().partition(":")
        try:
            count = int(k) if sep else None
        except ValueError:
            count = 0
        if name not in VECTOR_NAMES or name in out or (count is not None and count < 1):
            raise ValueError(f"{_what()}, got {','.join(spec)!r}")
        out[name] = count
    return out


def split(text: str) -> tuple[str, ...]:
    """The items of a comma-separated spec (`"b:10,c"` -> `("b:10", "c")`); empty text is no clamp."""
    return tuple(part.strip() for part in text.split(",")) if text.strip() else ()


def counts(spec: Iterable[str], dims) -> tuple[int, int, int, int]:
    """Clamped coordinates per vector (a, b, c, d) for `dims`; ValueError if K exceeds a dimension."""
    spec = tuple(spec)
    parsed = parse(spec)
    out = tuple(n if parsed.get(v, 0) is None else parsed.get(v, 0) for v, n in zip(VECTOR_NAMES, dims))
    if any(k > n for k, n in zip(out, dims)):
        raise ValueError(f"{_what(dims)}, got {','.join(spec)!r}")
    return out


def free_mask(dims, clamped) -> Vectors:
    """1.0 on free coordinates, 0.0 on the clamped first `clamped[i]` coordinates of each vector."""
    return Vectors(*(np.where(np.arange(n) >= k, 1.0, 0.0) for n, k in zip(dims, clamped)))


def apply(init: Vectors, target: Vectors, clamped) -> Vectors:
    """`init` with the first `clamped[i]` coordinates of each vector set to the target's."""
    return Vectors(*(np.concatenate([np.asarray(t)[:k], np.asarray(v)[k:]]) for v, t, k in zip(init, target, clamped)))
