"""Exemplars and sequences: Gaussian clusters or an embeddings file; training distributions; evaluators.

A sequence is `x1 y1 x2 y2 xq`: three exemplar vectors and two label ids, and the target label of
the query `xq`. Class k's own label is k. Everything here is a pure function of a PRNG key, so a
batch is drawn inside the jitted training step and the same key always gives the same sequences.

Training distributions (`TRAIN_DISTS`) and evaluators (`EVALUATORS`), with q the query's class:
- `bursty`      : (exemplar of q, q) and (exemplar of d != q, d), in random order; target q.
- `match_query` : as `bursty`, but the context exemplar of q is the query vector itself; the
                  distractor's exemplar is an independent draw of its class (as the official code).
                  `Sampling.match_query_fraction` mixes the two per sequence.
- `icl`         : as `bursty`, but the two pairs carry two arbitrary labels; target the label
                  paired with q in context. The labels are 0 and 1 in random order (the official
                  evaluator's `01` relabelling; `Sampling.icl_labels="other"`: two labels owned by
                  neither class).
- `icl_only`    : ICL-only training: as `icl`, but the two labels are a random pair of all K labels
                  (the official `--fs_relabel K`), so every label's embedding must be learned, as
                  in bursty training (`Sampling.icl_only_labels="eval"`: the `icl` evaluator's labels).
- `ciwl` / `ciwl_only`: no exemplar of q in context; (exemplar of c1, q) and (exemplar of c2, c2),
                  with q, c1, c2 distinct; target q.
- `flip`        : (exemplar of q, d) and (exemplar of d, q); target d (the in-context answer).
- `iwl`         : (exemplar of c1, c1) and (exemplar of c2, c2), q, c1, c2 distinct; target q.
- `train`       : the training distribution.

The context exemplar of the query's class (bursty, icl, flip) is drawn from the class's fixed
exemplars *with replacement*, independently of the query, as in the official code: with E exemplars
per class it is the query vector itself with probability 1/E (`Sampling.context_exemplar =
"distinct"`: never the same exemplar). With fresh Gaussian draws (no table) the two never coincide.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import h5py
import jax
import jax.numpy as jnp
import numpy as np

from transformer.choices import CONTEXT_EXEMPLAR, EVALUATORS, ICL_LABELS, TRAIN_DISTS  # noqa: F401 (re-exported)


class Sampling(NamedTuple):
    """How sequences are drawn (static: fixed for a run). Defaults: the official code's choices.

    context_exemplar: "replacement" (the query class's context exemplar is an independent draw from
                      the class's exemplars, so it can be the query itself) or "distinct" (never the
                      same exemplar as the query when the class has E > 1).
    icl_labels:       "01" (the ICL evaluator's pairs carry labels 0 and 1) or "other" (two labels
                      that belong to neither class in the sequence).
    icl_only_labels:  "random" (ICL-only training's pairs carry a random pair of the K labels, the
                      official `--fs_relabel K`) or "eval" (the ICL evaluator's labels, `icl_labels`).
    match_query_fraction: in `bursty` sequences, each sequence independently with this probability
                      is a match-query one (its context exemplar of q is the query vector itself):
                      0 is bursty, 1 is `match_query`; a mixture in between (the transformer's
                      knob from transient to persistent ICL). Other kinds ignore it.
    """

    context_exemplar: str = "replacement"
    icl_labels: str = "01"
    match_query_fraction: float = 0.0
    icl_only_labels: str = "random"


class Exemplars(NamedTuple):
    """Where exemplar vectors come from.

    means: (K, D) Gaussian cluster centres, entries N(0, 1/D) (so |mu| ~ 1).
    table: (K, E, D) fixed exemplars, or None to draw a fresh exemplar every time.
    noise: within-class noise eps: a fresh exemplar of class k is (mu_k + eps z) / sqrt(1 + eps^2),
           z ~ N(0, I/D). Unused when `table` is given.
    class_logits: (K,) log-probabilities of the classes in a sequence, or None for uniform. Training
           sets it for Zipf-distributed classes (`zipf_logits`); evaluation sets are uniform, as the
           official code's.
    """

    means: jax.Array
    table: jax.Array | None
    noise: float
    class_logits: jax.Array | None = None

    @property
    def classes(self) -> int:
        return self.means.shape[0]

    @property
    def dim(self) -> int:
        return self.means.shape[1]


class Batch(NamedTuple):
    """A batch of sequences.

    x:       (B, 3, D) exemplars x1, x2, xq.
    y:       (B, 2) int32 context labels y1, y2.
    target:  (B,) int32 the label counted as correct.
    classes: (B, 3) int32 the true class of x1, x2, xq (for tests and analysis).
    """

    x: jax.Array
    y: jax.Array
    target: jax.Array
    classes: jax.Array


def gaussian_clusters(key: jax.Array, classes: int, dim: int, noise: float, exemplars: int = 0, superclasses: int = 0,
                      class_spread: float = 1.0) -> Exemplars:
    """K Gaussian clusters in D dimensions (after Reddy 2024).

    exemplars = 0 draws a fresh exemplar every time; exemplars = E > 0 fixes E exemplars per class.
    superclasses = S > 0 groups the classes as Omniglot's characters are grouped by alphabet: class k
    belongs to superclass k mod S, and its mean is (c_s + spread u_k) / sqrt(1 + spread²) with c_s, u_k
    ~ N(0, I/D), so two classes of one superclass have cosine ~1 / (1 + spread²) and must be told apart
    by finer detail; S = 0 draws every class mean independently (the mean is then u_k).
    """
    k_mu, k_tab = jax.random.split(key)
    means = jax.random.normal(k_mu, (classes, dim)) / np.sqrt(dim)
    if superclasses > 0:
        centres = jax.random.normal(jax.random.fold_in(k_mu, 1), (superclasses, dim)) / np.sqrt(dim)
        means = (centres[jnp.arange(classes) % superclasses] + class_spread * means) / np.sqrt(1.0 + class_spread**2)
    table = None
    if exemplars > 0:
        z = jax.random.normal(k_tab, (classes, exemplars, dim)) / np.sqrt(dim)
        table = (means[:, None, :] + noise * z) / np.sqrt(1.0 + noise**2)
    return Exemplars(means=means, table=table, noise=float(noise))


def load_embeddings(path: str | Path, classes: int | None = None, exemplars: int | None = None) -> np.ndarray:
    """Read a (classes, exemplars, dim) float array from `.npz` or HDF5 (`.h5`, `.hdf5`).

    The file holds one array, or several with one named `embeddings`. `classes`/`exemplars` keep the
    first ones. Raises ValueError with a one-line reason if the file is missing or malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as f:
                names = list(f.keys())
                name = "embeddings" if "embeddings" in names else (names[0] if len(names) == 1 else None)
                if name is None:
                    raise ValueError(f"{path} holds {len(names)} arrays and none is named 'embeddings'")
                arr = np.asarray(f[name])
        elif path.suffix in (".h5", ".hdf5"):
            with h5py.File(path, "r") as f:
                names = [n for n in f.keys() if isinstance(f[n], h5py.Dataset)]
                name = "embeddings" if "embeddings" in names else (names[0] if len(names) == 1 else None)
                if name is None:
                    raise ValueError(f"{path} holds {len(names)} datasets and none is named 'embeddings'")
                arr = np.asarray(f[name])
        else:
            raise ValueError(f"{path}: expected a .npz, .h5 or .hdf5 file")
    except ValueError:
        raise
    except Exception as err:  # zipfile/OSError/h5py errors: report as malformed, one line
        raise ValueError(f"{path} is not a readable embeddings file ({type(err).__name__})") from None
    if arr.ndim != 3 or not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{path}: expected a float array (classes, exemplars, dim), got {arr.dtype} {arr.shape}")
    if arr.shape[0] < 4 or arr.shape[1] < 1 or arr.shape[2] < 1:
        raise ValueError(f"{path}: need >= 4 classes and >= 1 exemplar, got shape {arr.shape}")
    if classes is not None:
        if classes > arr.shape[0]:
            raise ValueError(f"{path} has {arr.shape[0]} classes, fewer than the {classes} asked for")
        arr = arr[:classes]
    if exemplars is not None and exemplars > 0:
        if exemplars > arr.shape[1]:
            raise ValueError(f"{path} has {arr.shape[1]} exemplars per class, fewer than the {exemplars} asked for")
        arr = arr[:, :exemplars]
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{path}: embeddings contain NaN or inf")
    return arr.astype(np.float32)


def from_table(table: np.ndarray) -> Exemplars:
    """Exemplars from a fixed (K, E, D) table (e.g. an embeddings file)."""
    table = jnp.asarray(table, jnp.float32)
    return Exemplars(means=table.mean(axis=1), table=table, noise=0.0)


def restrict(source: Exemplars, classes: int | None = None, exemplars: int | None = None) -> Exemplars:
    """The first `classes` classes (and, for a fixed table, the first `exemplars` exemplars of each);
    None, or more than there are, keeps them all. The paper builds its evaluators this way; the
    result draws classes uniformly (no `class_logits`), as the official evaluators do."""
    table = source.table
    if classes is not None:
        table = None if table is None else table[:classes]
        means = source.means[:classes]
    else:
        means = source.means
    if table is not None and exemplars is not None:
        table = table[:, :exemplars]
    return Exemplars(means=means, table=table, noise=source.noise)


# ---- drawing exemplars and classes ------------------------------------------------------------


def draw(source: Exemplars, key: jax.Array, cls: jax.Array) -> jax.Array:
    """One exemplar of each class in `cls` (any shape S): returns S + (D,)."""
    if source.table is None:
        z = jax.random.normal(key, cls.shape + (source.dim,)) / np.sqrt(source.dim)
        return (source.means[cls] + source.noise * z) / jnp.sqrt(1.0 + source.noise**2)
    idx = jax.random.randint(key, cls.shape, 0, source.table.shape[1])
    return source.table[cls, idx]


def draw_two(source: Exemplars, key: jax.Array, cls: jax.Array, replace: bool = True) -> tuple[jax.Array, jax.Array]:
    """Two exemplars of each class in `cls`: independent draws (`replace`, so from a fixed set of E
    they coincide with probability 1/E), or distinct ones when the class has a fixed set of E > 1."""
    k1, k2 = jax.random.split(key)
    if source.table is None or replace:
        return draw(source, k1, cls), draw(source, k2, cls)
    E = source.table.shape[1]
    i1 = jax.random.randint(k1, cls.shape, 0, E)
    i2 = (i1 + jax.random.randint(k2, cls.shape, 1, max(E, 2))) % E
    return source.table[cls, i1], source.table[cls, i2]


def zipf_logits(classes: int, exponent: float) -> jax.Array:
    """(K,) log-probabilities of a Zipf law over class ranks: p_k ∝ 1 / (k + 1)^exponent (class 0 the
    most frequent), as the official code's `--zipf_alpha`."""
    logp = -exponent * jnp.log(jnp.arange(1, classes + 1, dtype=jnp.float32))
    return logp - jax.nn.logsumexp(logp)


def distinct(key: jax.Array, n: int, K: int, batch: int, logits: jax.Array | None = None) -> jax.Array:
    """(batch, n) int32 ids, each row n distinct values in [0, K) (requires n <= K): uniform, or with
    `logits` (K,) the first drawn from those log-probabilities and each next one from them
    renormalised over the ids not yet taken in its row."""
    if logits is not None:
        taken = jnp.zeros((batch, K), bool)
        out = []
        for k in jax.random.split(key, n):
            r = jax.random.categorical(k, jnp.where(taken, -jnp.inf, logits[None, :]), axis=-1)
            taken = taken | jax.nn.one_hot(r, K, dtype=bool)
            out.append(r)
        return jnp.stack(out, axis=1).astype(jnp.int32)
    out = []
    for i, k in enumerate(jax.random.split(key, n)):
        r = jax.random.randint(k, (batch,), 0, K - i)
        if out:  # map r from [0, K - i) onto [0, K) minus the i ids already taken
            for s in jnp.sort(jnp.stack(out, axis=1), axis=1).T:
                r = r + (r >= s)
        out.append(r)
    return jnp.stack(out, axis=1).astype(jnp.int32)


def _arrange(key, xa, ya, ca, xb, yb, cb, xq, cq, target) -> Batch:
    """Put pair a (the one tied to the query) first or second at random; pair b fills the other slot."""
    first_a = jax.random.bernoulli(key, 0.5, ya.shape)
    sel = first_a[:, None]
    x = jnp.stack([jnp.where(sel, xa, xb), jnp.where(sel, xb, xa), xq], axis=1)
    y = jnp.stack([jnp.where(first_a, ya, yb), jnp.where(first_a, yb, ya)], axis=1)
    classes = jnp.stack([jnp.where(first_a, ca, cb), jnp.where(first_a, cb, ca), cq], axis=1)
    return Batch(x=x, y=y.astype(jnp.int32), target=target.astype(jnp.int32), classes=classes.astype(jnp.int32))


# ---- sequence kinds ------------------------------------------------------------------------------


def bursty(source: Exemplars, key: jax.Array, batch: int, sampling: Sampling = Sampling(), match_query: bool = False) -> Batch:
    k_cls, k_x, k_d, k_ord = jax.random.split(key, 4)
    c = distinct(k_cls, 2, source.classes, batch, source.class_logits)
    q, d = c[:, 0], c[:, 1]
    xq, xa = draw_two(source, k_x, q, sampling.context_exemplar == "replacement")
    if match_query:
        xa = xq
    elif sampling.match_query_fraction > 0:  # its own stream: fraction 0 draws exactly the plain bursty batch
        matched = jax.random.bernoulli(jax.random.fold_in(k_x, 1), sampling.match_query_fraction, (batch,))
        xa = jnp.where(matched[:, None], xq, xa)
    xb = draw(source, k_d, d)
    return _arrange(k_ord, xa, q, q, xb, d, d, xq, q, q)


def icl(source: Exemplars, key: jax.Array, batch: int, sampling: Sampling = Sampling(), relabel: bool = False) -> Batch:
    """ICL sequences: the ICL evaluator's labels (`sampling.icl_labels`), or with `relabel` a random
    pair of the K labels (uniform, whatever the class frequencies), as the official ICL-only training."""
    k_cls, k_x, k_d, k_ord = jax.random.split(key, 4)
    if relabel:
        q, d = distinct(k_cls, 2, source.classes, batch, source.class_logits).T
        a, b = distinct(jax.random.fold_in(k_cls, 2), 2, source.classes, batch, None).T
    elif sampling.icl_labels == "01":
        q, d = distinct(k_cls, 2, source.classes, batch, source.class_logits).T
        a = jax.random.bernoulli(jax.random.fold_in(k_cls, 1), 0.5, (batch,)).astype(jnp.int32)  # q's pair's label: 0 or 1
        b = 1 - a
    else:
        q, d, a, b = distinct(k_cls, 4, source.classes, batch, source.class_logits).T  # two labels a, b owned by neither class
    xq, xa = draw_two(source, k_x, q, sampling.context_exemplar == "replacement")
    xb = draw(source, k_d, d)
    return _arrange(k_ord, xa, a, q, xb, b, d, xq, q, a)


def _no_query_exemplar(source: Exemplars, key: jax.Array, batch: int, query_label: bool) -> Batch:
    """Pairs (exemplar of c1, q if `query_label` else c1) and (exemplar of c2, c2); q, c1, c2 distinct; target q."""
    k_cls, k_q, k_a, k_b, k_ord = jax.random.split(key, 5)
    c = distinct(k_cls, 3, source.classes, batch, source.class_logits)
    q, c1, c2 = c.T
    xq, xa, xb = draw(source, k_q, q), draw(source, k_a, c1), draw(source, k_b, c2)
    return _arrange(k_ord, xa, q if query_label else c1, c1, xb, c2, c2, xq, q, q)


def ciwl(source: Exemplars, key: jax.Array, batch: int) -> Batch:
    return _no_query_exemplar(source, key, batch, query_label=True)


def flip(source: Exemplars, key: jax.Array, batch: int, sampling: Sampling = Sampling()) -> Batch:
    k_cls, k_x, k_d, k_ord = jax.random.split(key, 4)
    c = distinct(k_cls, 2, source.classes, batch, source.class_logits)
    q, d = c[:, 0], c[:, 1]
    xq, xa = draw_two(source, k_x, q, sampling.context_exemplar == "replacement")
    xb = draw(source, k_d, d)
    return _arrange(k_ord, xa, d, q, xb, q, d, xq, q, d)


def iwl(source: Exemplars, key: jax.Array, batch: int) -> Batch:
    return _no_query_exemplar(source, key, batch, query_label=False)


def sample(source: Exemplars, key: jax.Array, batch: int, kind: str, sampling: Sampling = Sampling()) -> Batch:
    """A batch of `kind` sequences: a training distribution or an evaluator other than `train`."""
    if kind == "bursty":
        return bursty(source, key, batch, sampling)
    if kind == "match_query":
        return bursty(source, key, batch, sampling, match_query=True)
    if kind == "icl":
        return icl(source, key, batch, sampling)
    if kind == "icl_only":
        return icl(source, key, batch, sampling, relabel=sampling.icl_only_labels == "random")
    if kind in ("ciwl", "ciwl_only"):
        return ciwl(source, key, batch)
    if kind == "flip":
        return flip(source, key, batch, sampling)
    if kind == "iwl":
        return iwl(source, key, batch)
    raise ValueError(f"unknown sequence kind {kind!r}")


def eval_sets(source: Exemplars, key: jax.Array, size: int, train_dist: str, sampling: Sampling = Sampling()) -> dict[str, Batch]:
    """Held-out evaluation sets, one per evaluator, fixed by `key`."""
    keys = jax.random.split(key, len(EVALUATORS))
    return {name: sample(source, k, size, train_dist if name == "train" else name, sampling) for name, k in zip(EVALUATORS, keys)}
