"""Properties of an exemplar source that decide the race between ICL and in-weights learning,
measured before any training (`coop transformer data`).

For queries drawn uniformly over (class, exemplar) pairs of a (K, E, D) table:
- `top1` / `top1_heldout`: a nearest-class-mean readout over all K classes (Euclidean): in-sample
  (class means over all E exemplars), and held out (the query's own class mean leaves the query
  out, exactly: (E m - x) / (E - 1)). High means the direct path can read every class out of the
  query alone: pure IWL is available.
- `top1_rank64` / `top1_rank64_heldout`: the same after projecting onto the 64 leading principal
  directions of the exemplars (the best a rank-64 linear map such as Linear D -> d_model keeps).
- `two_class`: the query's class mean (held out) against one random other class's: what CIWL needs
  (the label is in the context; tell two classes apart).
- `icl_pair`: another exemplar of the query's class is nearer to the query than an exemplar of a
  random other class: what ICL's matching needs.
- cosines of the centred features between two exemplars of one class (`cos_same`), of sibling
  classes (`cos_sibling`, when there are sibling groups), of random classes (`cos_other`, mean and
  std), and `cos_other_raw` of the raw features (the shared component).
- `icl_margin_init`: what ICL's matching starts from: the cosine of the query to another exemplar
  of its class minus to an exemplar of another class, after a random Linear D -> 64 (lecun-normal,
  as the model's exemplar embedding at init) and layer norm's centring. A shared component of the
  features shrinks it even when `icl_pair` is unchanged.
- `exact_match`: how often a training sequence's context exemplar of the query's class is the query
  vector itself (measured on sampled sequences).

A source without a fixed table (fresh draws) is measured on a table of fresh draws against its true
means; its held-out and in-sample numbers are then the same measurement.
"""

from __future__ import annotations

import jax
import numpy as np

from transformer.config import keys, make_source
from transformer.data import draw, sample


def nearest_mean(x: np.ndarray, cls: np.ndarray, own: np.ndarray, means: np.ndarray) -> np.ndarray:
    """For queries x (n, D) of classes `cls` (n,), the nearest of `means` (K, D) with each query's
    own class mean replaced by `own` (n, D): (n,) predicted classes."""
    d2 = (means**2).sum(1)[None, :] - 2.0 * x @ means.T
    d2[np.arange(len(x)), cls] = ((own**2).sum(1) - 2.0 * (x * own).sum(1))
    return d2.argmin(1)


def _cos(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (u * v).sum(-1) / np.maximum(np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1), 1e-30)


def measure(table: np.ndarray, *, queries: int = 2000, seed: int = 0, variants: int = 1,
            means: np.ndarray | None = None, rank: int = 64) -> dict:
    """The readout properties of `table` (K, E, D) on `queries` random (class, exemplar) pairs (all
    of them, in order, when there are no more than `queries`). `variants` > 1: classes come in
    consecutive sibling groups of that size. `means` (K, D): the true class means of a fresh-draw
    source (then nothing is held out). Returns a dict of floats (see the module docstring)."""
    table = np.asarray(table, np.float64)
    K, E, D = table.shape
    rng = np.random.default_rng(seed)
    if K * E <= queries:
        cls, ex = np.divmod(np.arange(K * E), E)
    else:
        cls, ex = rng.integers(0, K, queries), rng.integers(0, E, queries)
    n = len(cls)
    x = table[cls, ex]
    fresh = means is not None
    m = table.mean(1) if means is None else np.asarray(means, np.float64)
    own_in = m[cls]
    own_out = own_in if fresh or E < 2 else (E * m[cls] - x) / (E - 1)
    other = (cls + rng.integers(1, K, n)) % K

    out = {"classes": K, "exemplars": E, "dim": D, "queries": n}
    out["top1"] = float((nearest_mean(x, cls, own_in, m) == cls).mean())
    out["top1_heldout"] = float((nearest_mean(x, cls, own_out, m) == cls).mean())
    flat = table.reshape(-1, D)
    sub = flat[rng.choice(len(flat), min(len(flat), 20_000), replace=False)]
    centre = sub.mean(0)
    if D > rank:
        _, _, vt = np.linalg.svd(sub - centre, full_matrices=False)
        P = vt[:rank].T
        px, pm = (x - centre) @ P, (m - centre) @ P
        out["top1_rank64"] = float((nearest_mean(px, cls, (own_in - centre) @ P, pm) == cls).mean())
        out["top1_rank64_heldout"] = float((nearest_mean(px, cls, (own_out - centre) @ P, pm) == cls).mean())
    else:
        out["top1_rank64"], out["top1_rank64_heldout"] = out["top1"], out["top1_heldout"]
    out["two_class"] = float((((x - own_out) ** 2).sum(1) < ((x - m[other]) ** 2).sum(1)).mean())

    if E >= 2:  # another exemplar of the query's class, never the query itself
        mate = table[cls, (ex + rng.integers(1, E, n)) % E]
    else:
        mate = np.full_like(x, np.nan)
    stranger = table[other, rng.integers(0, E, n)]
    out["icl_pair"] = float((((x - mate) ** 2).sum(1) < ((x - stranger) ** 2).sum(1)).mean()) if E >= 2 else float("nan")
    out["cos_same"] = float(_cos(x - centre, mate - centre).mean()) if E >= 2 else float("nan")
    cos_other = _cos(x - centre, stranger - centre)
    out["cos_other"], out["cos_other_std"] = float(cos_other.mean()), float(cos_other.std())
    W = rng.standard_normal((D, rank)) / np.sqrt(D)  # a fresh Linear D -> d_model, then layer norm's centring

    def embed(v):
        h = v @ W
        return h - h.mean(-1, keepdims=True)

    out["icl_margin_init"] = float((_cos(embed(x), embed(mate)) - _cos(embed(x), embed(stranger))).mean()) \
        if E >= 2 else float("nan")
    out["cos_other_raw"] = float(_cos(x, stranger).mean())
    if variants > 1:
        sibling = cls - cls % variants + (cls % variants + rng.integers(1, variants, n)) % variants
        out["cos_sibling"] = float(_cos(x - centre, table[sibling, rng.integers(0, E, n)] - centre).mean())
    else:
        out["cos_sibling"] = float("nan")
    return out


def exact_match_rate(batch) -> float:
    """Of the sequences in `batch` (a `transformer.data.Batch`) whose context holds an exemplar of
    the query's class, the fraction where that exemplar is the query vector itself."""
    x, classes = np.asarray(batch.x), np.asarray(batch.classes)
    hits, total = 0, 0
    for slot in (0, 1):
        has = classes[:, slot] == classes[:, 2]
        total += int(has.sum())
        hits += int(np.all(x[has, slot] == x[has, 2], axis=-1).sum())
    return hits / total if total else float("nan")


ROWS = (  # (key, label) of the printed table, in order
    ("top1", "nearest-mean top-1 over all K (in-sample)"),
    ("top1_heldout", "nearest-mean top-1 over all K (held out)"),
    ("top1_rank64", "  in a rank-64 linear readout (in-sample)"),
    ("top1_rank64_heldout", "  in a rank-64 linear readout (held out)"),
    ("two_class", "2-class: query's class vs one other"),
    ("icl_pair", "ICL pair: own exemplar nearer than another's"),
    ("cos_same", "cosine, same class (centred)"),
    ("cos_sibling", "cosine, sibling classes (centred)"),
    ("cos_other", "cosine, other classes (centred)"),
    ("cos_other_std", "  its std"),
    ("cos_other_raw", "cosine, other classes (raw features)"),
    ("icl_margin_init", "ICL margin at init (cosine, own - other)"),
    ("exact_match", "context exemplar = the query (training)"),
)


def report_lines(props: dict) -> list[str]:
    """The printed table of `measure`'s properties (plus `exact_match`)."""
    head = f"{props['classes']:,} classes x {props['exemplars']} exemplars x {props['dim']} dims, {props['queries']:,} queries"
    width = max(len(label) for _, label in ROWS)
    return [head] + [f"  {label:<{width}}  {props[key]:.4f}" for key, label in ROWS if key in props]


def source_report(cfg, queries: int = 2000) -> dict:
    """`measure` on the training source of `cfg` (a `TrainConfig`), with the exact-match rate of its
    training distribution measured on 4,096 sampled sequences. A fresh-draw source is measured on 20
    draws per class against its true means."""
    source = make_source(cfg)
    key = keys(cfg.seed, cfg.data_seed)["eval"]
    if source.table is None:
        cls = np.repeat(np.arange(source.classes), 20).reshape(source.classes, 20)
        table, means = np.asarray(draw(source, jax.random.fold_in(key, 7), cls)), np.asarray(source.means)
    else:
        table, means = np.asarray(source.table), None
    props = measure(table, queries=queries, seed=cfg.seed, variants=cfg.variants if cfg.source == "characters" else 1,
                    means=means)
    batch = sample(source, jax.random.fold_in(key, 8), 4096, cfg.train_dist, cfg.sampling)
    props["exact_match"] = exact_match_rate(batch)
    return props
