"""The characters source (`transformer.characters`): its structure, determinism and cache file."""

from __future__ import annotations

import numpy as np
import pytest

from transformer.characters import CharacterSpec, generate, read_table, table, write_table

SPEC = CharacterSpec(classes=24, variants=4, exemplars=5, latent_dim=3, noise=0.5, variant_spread=0.5, dim=40,
                     shift=0.5, seed=3)


def test_shape_and_non_negative():
    t = generate(SPEC)
    assert t.shape == (24, 5, 40) and t.dtype == np.float32
    assert t.min() >= 0 and (t == 0).any() and (t > 0).mean() > 0.5  # a ReLU with a positive shift


def test_sibling_groups_are_consecutive_classes():
    # no drawing noise and no variant spread: the classes of one character are the same class
    t = generate(SPEC._replace(noise=0.0, variant_spread=0.0))
    assert np.all(t == t[:, :1])  # every drawing of a class is its mean
    means = t[:, 0]
    for k in range(24):
        same = [j for j in range(24) if j // 4 == k // 4]
        assert np.all(means[same] == means[k])
        assert not np.any(np.all(means == means[k], axis=1)[[j for j in range(24) if j // 4 != k // 4]])


def test_siblings_closer_than_other_classes():
    t = generate(SPEC._replace(classes=800, variants=8, exemplars=2, latent_dim=8, noise=0.0, dim=256))
    m = t[:, 0] - t[:, 0].mean(0)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    cos = m @ m.T
    sib = np.array([[i // 8 == j // 8 and i != j for j in range(800)] for i in range(800)])
    other = ~sib & ~np.eye(800, dtype=bool)
    assert cos[sib].mean() > 0.5 and abs(cos[other].mean()) < 0.05


def test_drawings_differ_and_noise_scales_them():
    t = generate(SPEC)
    assert not np.any(np.all(t[:, 0] == t[:, 1], axis=-1))
    spread = lambda s: np.linalg.norm(s - s.mean(1, keepdims=True), axis=-1).mean()  # noqa: E731
    assert spread(generate(SPEC._replace(noise=1.0))) > 1.3 * spread(t)


def test_same_seed_same_table_other_seed_other_table():
    assert np.array_equal(generate(SPEC), generate(SPEC))
    assert not np.array_equal(generate(SPEC), generate(SPEC._replace(seed=4)))


def test_cache_file_round_trips(tmp_path):
    t = generate(SPEC)
    write_table(tmp_path / "t.h5", t, SPEC)
    assert np.array_equal(read_table(tmp_path / "t.h5", SPEC), t)
    assert read_table(tmp_path / "t.h5", SPEC._replace(noise=0.6)) is None  # made from other knobs
    assert read_table(tmp_path / "missing.h5", SPEC) is None
    first = table(SPEC, tmp_path / "cache")
    files = list((tmp_path / "cache").glob("characters-*.h5"))
    assert len(files) == 1 and np.array_equal(first, t)
    assert np.array_equal(table(SPEC, tmp_path / "cache"), t)  # read back from the file


@pytest.mark.parametrize("args, message", [
    (("--variants", "5"), "--variants: must divide the number of classes (64)"),
    (("--exemplars", "0"), "--exemplars: must be >= 1 with the characters source"),
    (("--latent-dim", "0"), "--latent-dim: must be a positive integer"),
    (("--source", "glyphs"), "--source:"),
])
def test_bad_options_one_line(coop_inprocess, tmp_path, args, message):
    code, _, err = coop_inprocess("transformer", "data", "--preset", "faithful", "--source", "characters", "--classes",
                                  "64", "--exemplars", "4", *args, "--out", tmp_path / "d")
    assert code == 2 and err.startswith(f"coop: error: {message}") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "d").exists()


def test_out_that_is_a_file_one_line(coop_inprocess, tmp_path):
    (tmp_path / "f").write_text("kept")
    code, _, err = coop_inprocess("transformer", "data", "--classes", "32", "--dim", "8", "--out", tmp_path / "f")
    assert code == 2 and err.startswith("coop: error: --out:") and (tmp_path / "f").read_text() == "kept"
