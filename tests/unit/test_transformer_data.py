"""Sequences and evaluators satisfy their definitions; exemplar sources; embeddings files."""

from __future__ import annotations

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from transformer.data import (
    EVALUATORS,
    TRAIN_DISTS,
    distinct,
    draw_two,
    eval_sets,
    from_table,
    gaussian_clusters,
    load_embeddings,
    restrict,
    sample,
    Sampling,
)

K, B = 9, 600


@pytest.fixture(scope="module")
def source():
    return gaussian_clusters(jax.random.PRNGKey(0), K, 16, noise=0.5)


def _np(batch):
    return [np.asarray(a) for a in batch]


def _query_pair(classes, q):
    """Index (0 or 1) of the context pair whose exemplar is of the query's class, -1 if none."""
    first, second = classes[:, 0] == q, classes[:, 1] == q
    assert not np.any(first & second)
    return np.where(first, 0, np.where(second, 1, -1))


def test_distinct_rows_are_distinct_and_cover_range():
    ids = np.asarray(distinct(jax.random.PRNGKey(1), 4, 6, 5000))
    assert ids.shape == (5000, 4) and ids.min() == 0 and ids.max() == 5
    assert all(len(set(r)) == 4 for r in ids)
    counts = np.bincount(ids.ravel(), minlength=6) / ids.size
    assert np.allclose(counts, 1 / 6, atol=0.02)


@pytest.mark.parametrize("kind", ["bursty", "match_query"])
def test_bursty(source, kind):
    x, y, t, c = _np(sample(source, jax.random.PRNGKey(2), B, kind))
    q = c[:, 2]
    pos = _query_pair(c, q)
    assert np.all(pos >= 0) and 0.4 < pos.mean() < 0.6  # query's class in context, at either place
    assert np.array_equal(y, c[:, :2])  # every pair carries its true label
    assert np.array_equal(t, q)
    ctx_q = x[np.arange(B), pos]
    same = np.all(np.isclose(ctx_q, x[:, 2]), axis=1)
    assert same.all() if kind == "match_query" else not same.any()  # fresh draws never coincide
    # the distractor is an independent draw of its class (official match query too): its noise
    # vector is never the query's
    means, scale = np.asarray(source.means), np.sqrt(1 + source.noise**2)
    noise = lambda xs, cls: xs * scale - means[cls]  # noqa: E731
    ctx_d = x[np.arange(B), 1 - pos]
    shared = np.all(np.isclose(noise(ctx_d, c[np.arange(B), 1 - pos]), noise(x[:, 2], q), atol=1e-5), axis=1)
    assert not shared.any()


def test_restrict_keeps_the_first_classes_and_exemplars():
    table = np.random.default_rng(0).normal(size=(20, 8, 3)).astype(np.float32)
    sets = eval_sets(restrict(from_table(table), 10, 3), jax.random.PRNGKey(6), 300, "bursty")
    allowed = table[:10, :3].reshape(-1, 3)
    for name, b in sets.items():
        assert int(np.asarray(b.classes).max()) < 10, name
        x = np.asarray(b.x).reshape(-1, 3)
        assert np.all(np.isclose(x[:, None, :], allowed[None]).all(-1).any(-1)), name  # every exemplar from the subset
    same = restrict(from_table(table), None, None)
    assert same.table.shape == (20, 8, 3) and restrict(from_table(table), 50, 50).table.shape == (20, 8, 3)


def _exemplar_index(table, x, c):
    """(B, 3) index e of each exemplar in its class's rows, for a table whose rows are all distinct."""
    E, D = table.shape[1], table.shape[2]
    return np.stack([(x[:, j, 0] - table[c[:, j], 0, 0]) / D for j in range(3)], axis=1).round().astype(int)


UNIQUE = np.arange(40 * 5 * 3, dtype=np.float32).reshape(40, 5, 3)  # class k, exemplar e: row 15k + 3e


def test_match_query_distractor_is_independent():
    n = 4000
    x, _, _, c = _np(sample(from_table(UNIQUE), jax.random.PRNGKey(5), n, "match_query"))
    e = _exemplar_index(UNIQUE, x, c)
    pos = _query_pair(c, c[:, 2])
    assert np.array_equal(e[np.arange(n), pos], e[:, 2])  # the context exemplar of q is the query itself
    same = (e[np.arange(n), 1 - pos] == e[:, 2]).mean()  # the distractor's index: independent, so 1/E
    assert abs(same - 1 / 5) < 4 * np.sqrt(0.2 * 0.8 / n)


@pytest.mark.parametrize("kind", ["bursty", "icl", "flip"])
def test_context_exemplar_with_replacement(kind):
    """Official sampling: the query class's context exemplar equals the query with probability 1/E;
    `distinct` never."""
    n = 4000
    for mode, rate in (("replacement", 1 / 5), ("distinct", 0.0)):
        x, _, _, c = _np(sample(from_table(UNIQUE), jax.random.PRNGKey(6), n, kind, Sampling(context_exemplar=mode)))
        e = _exemplar_index(UNIQUE, x, c)
        pos = _query_pair(c, c[:, 2])
        same = (e[np.arange(n), pos] == e[:, 2]).mean()
        assert abs(same - rate) < 4 * np.sqrt(0.2 * 0.8 / n), (mode, same)
        assert len(set(e[:, 2].tolist())) == 5


@pytest.mark.parametrize("kind", ["icl", "icl_only"])
@pytest.mark.parametrize("labels", ["01", "other"])
def test_icl(source, kind, labels):
    """The ICL evaluator (and ICL-only training with icl_only_labels="eval") carries its labels."""
    x, y, t, c = _np(sample(source, jax.random.PRNGKey(3), B, kind, Sampling(icl_labels=labels, icl_only_labels="eval")))
    q = c[:, 2]
    pos = _query_pair(c, q)
    assert np.all(pos >= 0)
    assert np.all(y[:, 0] != y[:, 1])
    if labels == "01":  # official: the two pairs are relabelled 0 and 1, in random order
        assert set(np.unique(y).tolist()) == {0, 1}
        assert 0.4 < (t == 0).mean() < 0.6 and 0.4 < (y[:, 0] == 0).mean() < 0.6
    else:
        for j in range(2):  # labels are neither context class's own
            assert np.all(y[:, j] != c[:, 0]) and np.all(y[:, j] != c[:, 1])
    assert np.array_equal(t, y[np.arange(B), pos])  # target: the label paired with the query's class


def test_icl_only_training_relabels_with_a_random_pair_of_all_labels(source):
    """Official ICL-only training (`--fs_relabel K`): each sequence's two pairs carry a random pair
    of the K labels, uniform over the pairs, whatever the classes; the target is the label paired
    with the query's class. The ICL evaluator keeps its 0/1 labels."""
    n = 6000
    x, y, t, c = _np(sample(source, jax.random.PRNGKey(4), n, "icl_only", Sampling()))
    q = c[:, 2]
    pos = _query_pair(c, q)
    assert np.all(pos >= 0) and np.all(y[:, 0] != y[:, 1])
    assert np.array_equal(t, y[np.arange(n), pos])
    counts = np.bincount(y.ravel(), minlength=K)
    assert counts.size == K and np.all(np.abs(counts / (2 * n) - 1 / K) < 4 * np.sqrt((1 / K) * (1 - 1 / K) / (2 * n)))
    own = (y[:, 0] == c[:, 0]).mean()  # the label of a pair is its class's own label only by chance: 1/K
    assert abs(own - 1 / K) < 4 * np.sqrt((1 / K) * (1 - 1 / K) / n)
    _, ye, _, _ = _np(sample(source, jax.random.PRNGKey(4), n, "icl", Sampling()))
    assert set(np.unique(ye).tolist()) == {0, 1}


@pytest.mark.parametrize("kind", ["ciwl", "ciwl_only"])
def test_ciwl(source, kind):
    x, y, t, c = _np(sample(source, jax.random.PRNGKey(4), B, kind))
    q = c[:, 2]
    assert np.all(_query_pair(c, q) == -1)  # no exemplar of the query's class
    assert np.array_equal(t, q)
    has_q = y == q[:, None]
    assert np.all(has_q.sum(1) == 1)  # the query's label is present once...
    other = 1 - np.argmax(has_q, axis=1)
    assert np.all(c[np.arange(B), np.argmax(has_q, axis=1)] != q)  # ...on another class's exemplar
    assert np.array_equal(y[np.arange(B), other], c[np.arange(B), other])  # other pair: own label
    assert np.all(c[:, 0] != c[:, 1])


def test_flip(source):
    x, y, t, c = _np(sample(source, jax.random.PRNGKey(5), B, "flip"))
    q = c[:, 2]
    pos = _query_pair(c, q)
    assert np.all(pos >= 0)
    d = c[np.arange(B), 1 - pos]
    assert np.array_equal(y[np.arange(B), pos], d)  # query's class carries the other class's label
    assert np.array_equal(y[np.arange(B), 1 - pos], q)  # and vice versa
    assert np.array_equal(t, d)


def test_iwl(source):
    x, y, t, c = _np(sample(source, jax.random.PRNGKey(6), B, "iwl"))
    q = c[:, 2]
    assert np.all(_query_pair(c, q) == -1)
    assert not np.any(y == q[:, None])  # the query's label is absent
    assert np.array_equal(y, c[:, :2])
    assert np.array_equal(t, q)


def test_exemplars_come_from_their_class():
    src = gaussian_clusters(jax.random.PRNGKey(7), K, 32, noise=0.0)
    x, y, t, c = _np(sample(src, jax.random.PRNGKey(8), 50, "iwl"))
    assert np.allclose(x, np.asarray(src.means)[c], atol=1e-6)  # eps = 0: exemplar = class mean
    noisy = gaussian_clusters(jax.random.PRNGKey(7), K, 32, noise=0.6)
    xn, *_ = _np(sample(noisy, jax.random.PRNGKey(8), 2000, "bursty"))
    norms = np.linalg.norm(xn, axis=-1)
    assert 0.85 < norms.mean() < 1.1  # (mu + eps z) / sqrt(1 + eps^2) keeps the scale ~1


def test_superclasses_group_the_class_means():
    src = gaussian_clusters(jax.random.PRNGKey(3), 400, 64, noise=0.5, superclasses=4, class_spread=0.5)
    m = np.asarray(src.means)
    m = m / np.linalg.norm(m, axis=1, keepdims=True)
    cos = m @ m.T
    same = (np.arange(400)[:, None] % 4 == np.arange(400)[None] % 4) & ~np.eye(400, dtype=bool)
    assert abs(cos[same].mean() - 1 / (1 + 0.5**2)) < 0.05  # 0.8 within a superclass
    assert abs(cos[~same & ~np.eye(400, dtype=bool)].mean()) < 0.05  # ~0 across
    plain = np.asarray(gaussian_clusters(jax.random.PRNGKey(3), 400, 64, noise=0.5).means)
    assert abs((plain / np.linalg.norm(plain, axis=1, keepdims=True) @ (plain / np.linalg.norm(plain, axis=1, keepdims=True)).T)[same].mean()) < 0.05


def test_fixed_exemplar_table():
    src = gaussian_clusters(jax.random.PRNGKey(9), K, 8, noise=0.5, exemplars=3)
    table = np.asarray(src.table)
    x, y, t, c = _np(sample(src, jax.random.PRNGKey(10), 300, "bursty"))
    for b in range(300):
        for j in range(3):
            assert np.any(np.all(np.isclose(table[c[b, j]], x[b, j]), axis=1))
    a, b2 = draw_two(src, jax.random.PRNGKey(11), jnp.zeros(500, jnp.int32), replace=False)
    assert not np.any(np.all(np.isclose(np.asarray(a), np.asarray(b2)), axis=1))
    a, b2 = draw_two(src, jax.random.PRNGKey(11), jnp.zeros(3000, jnp.int32), replace=True)
    assert 0.28 < np.all(np.isclose(np.asarray(a), np.asarray(b2)), axis=1).mean() < 0.39  # 1/3


def test_eval_sets_fixed_by_seed(source):
    s1 = eval_sets(source, jax.random.PRNGKey(12), 100, "bursty")
    s2 = eval_sets(source, jax.random.PRNGKey(12), 100, "bursty")
    s3 = eval_sets(source, jax.random.PRNGKey(13), 100, "bursty")
    assert set(s1) == set(EVALUATORS)
    for name in EVALUATORS:
        assert np.array_equal(np.asarray(s1[name].x), np.asarray(s2[name].x))
        assert not np.array_equal(np.asarray(s1[name].x), np.asarray(s3[name].x))


def test_train_dists_known(source):
    for kind in TRAIN_DISTS:
        assert sample(source, jax.random.PRNGKey(0), 4, kind).x.shape == (4, 3, 16)
    with pytest.raises(ValueError):
        sample(source, jax.random.PRNGKey(0), 4, "nope")


def test_load_embeddings(tmp_path):
    arr = np.random.default_rng(0).normal(size=(6, 3, 5)).astype(np.float32)
    np.savez(tmp_path / "e.npz", embeddings=arr, other=np.zeros(2))
    with h5py.File(tmp_path / "e.h5", "w") as f:
        f["feats"] = arr
    assert np.array_equal(load_embeddings(tmp_path / "e.npz"), arr)
    assert np.array_equal(load_embeddings(tmp_path / "e.h5", classes=4, exemplars=2), arr[:4, :2])
    src = from_table(load_embeddings(tmp_path / "e.npz"))
    assert src.table.shape == (6, 3, 5) and src.classes == 6
    np.savez(tmp_path / "flat.npz", arr.reshape(18, 5))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    bad = np.array(arr)
    bad[0, 0, 0] = np.nan
    np.savez(tmp_path / "nan.npz", bad)
    for name in ("missing.npz", "flat.npz", "junk.npz", "nan.npz"):
        with pytest.raises(ValueError):
            load_embeddings(tmp_path / name)
    with pytest.raises(ValueError):
        load_embeddings(tmp_path / "e.npz", classes=7)


def test_zipf_classes_in_training_uniform_in_evaluators():
    from transformer.config import TrainConfig, make_eval_sets, make_source
    from transformer.data import zipf_logits

    logits = zipf_logits(50, 1.0)
    ids = np.asarray(distinct(jax.random.PRNGKey(4), 2, 50, 20000, logits))
    assert np.all(ids[:, 0] != ids[:, 1])
    p = np.exp(np.asarray(logits))
    first = np.bincount(ids[:, 0], minlength=50) / len(ids)
    assert np.allclose(first[:5], p[:5], atol=0.01)  # the query class follows the Zipf law
    # the second is drawn from the law renormalised without the first: P(id 0 second) = sum_j p_j p_0 / (1 - p_j)
    second0 = sum(p[j] * p[0] / (1 - p[j]) for j in range(1, 50))
    assert abs((ids[:, 1] == 0).mean() - second0) < 0.01
    cfg = TrainConfig(classes=50, dim=8, exemplars=3, zipf=1.0, eval_size=4000)
    src = make_source(cfg)
    train_q = np.asarray(sample(src, jax.random.PRNGKey(1), 4000, "bursty").classes[:, 2])
    assert (train_q == 0).mean() > 0.15  # p_0 = 1 / H_50 ~ 0.22
    eval_q = np.asarray(make_eval_sets(cfg, src)["train"].classes[:, 2])
    assert (eval_q == 0).mean() < 0.05  # evaluators uniform: 1/50


@pytest.mark.parametrize("fraction", [0.0, 0.3, 1.0])
def test_match_query_fraction_mixes_match_query_into_bursty(fraction):
    """With fraction f, the query class's context exemplar is the query itself with probability
    f + (1 - f)/E (E = 5, drawn with replacement); f = 0 is the plain bursty batch, bit for bit."""
    n = 4000
    key = jax.random.PRNGKey(8)
    batch = sample(from_table(UNIQUE), key, n, "bursty", Sampling(match_query_fraction=fraction))
    x, _, _, c = _np(batch)
    e = _exemplar_index(UNIQUE, x, c)
    same = (e[np.arange(n), _query_pair(c, c[:, 2])] == e[:, 2]).mean()
    rate = fraction + (1 - fraction) / 5
    assert abs(same - rate) < 4 * np.sqrt(rate * (1 - rate) / n) + 1e-9, (fraction, same)
    if fraction == 0.0:
        plain = sample(from_table(UNIQUE), key, n, "bursty")
        assert all(np.array_equal(a, b) for a, b in zip(batch, plain))
    # the other pair is untouched: classes and labels as in plain bursty sequences
    plain = _np(sample(from_table(UNIQUE), key, n, "bursty"))
    assert np.array_equal(c, plain[3]) and np.array_equal(_np(batch)[1], plain[1])


def test_match_query_fraction_is_checked():
    from transformer.config import TrainConfig, check_config

    assert [k for k, _ in check_config(TrainConfig(match_query_fraction=1.5))] == ["match_query_fraction"]
    assert [k for k, _ in check_config(TrainConfig(match_query_fraction=0.5, train_dist="icl_only"))] == ["match_query_fraction"]
    assert check_config(TrainConfig(match_query_fraction=0.5)) == []
