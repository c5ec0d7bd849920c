"""The data report (`transformer.datareport`, `coop transformer data`) on cases with known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from transformer.data import Batch
from transformer.datareport import exact_match_rate, measure


def test_hand_case_in_sample_and_held_out():
    # 1-d, two classes of two exemplars: class 0 {0, 4.5} (mean 2.25), class 1 {5, 9} (mean 7).
    # In sample every exemplar is nearest its own mean. Held out: 4.5 against its class's other
    # exemplar 0 (4.5 away) vs mean 7 (2.5): wrong; 5 against 9 (4) vs 2.25 (2.75): wrong.
    t = np.array([[[0.0], [4.5]], [[5.0], [9.0]]])
    p = measure(t, queries=100)
    assert p["queries"] == 4
    assert p["top1"] == 1.0 and p["top1_heldout"] == 0.5
    assert p["two_class"] == 0.5  # with two classes the other class is the only one
    assert p["top1_rank64"] == p["top1"]  # D <= 64: the readout keeps everything


def test_separated_classes_and_cosines():
    # orthogonal class directions, drawings a tiny perturbation: every readout is perfect,
    # same-class cosine ~1, other classes' ~ -1/(K-1) after centring
    rng = np.random.default_rng(0)
    K, E = 8, 3
    t = np.eye(K)[:, None, :] * 10 + 0.01 * rng.standard_normal((K, E, K))
    p = measure(t, queries=1000, seed=1)
    assert p["top1"] == p["top1_heldout"] == p["two_class"] == p["icl_pair"] == 1.0
    assert p["cos_same"] > 0.999
    assert p["cos_other"] == pytest.approx(-1 / (K - 1), abs=1e-3)
    assert p["cos_other_raw"] == pytest.approx(0.0, abs=1e-3)


def test_sibling_cosine():
    # pairs of sibling classes share a direction exactly: sibling cosine 1 before noise
    K, E = 8, 2
    base = np.eye(4)[np.arange(K) // 2] * 10
    t = np.repeat(base[:, None, :], E, axis=1) + 0.01 * np.random.default_rng(0).standard_normal((K, E, 4))
    p = measure(t, queries=500, variants=2)
    assert p["cos_sibling"] > 0.999
    assert p["top1_heldout"] == pytest.approx(0.5, abs=0.1)  # siblings are indistinguishable


def test_exact_match_rate():
    x = np.zeros((4, 3, 2))
    x[:, 2] = [[1, 0], [2, 0], [3, 0], [4, 0]]                  # queries
    x[0, 0], x[1, 1], x[2, 0], x[3, 1] = x[0, 2], x[1, 2], [9, 9], [9, 9]  # 2 of 4 are the query itself
    classes = np.array([[5, 6, 5], [6, 5, 5], [5, 6, 5], [6, 5, 5]])
    b = Batch(x=x, y=np.zeros((4, 2), int), target=np.zeros(4, int), classes=classes)
    assert exact_match_rate(b) == 0.5


def test_source_report_measures_official_rate(tmp_path, monkeypatch):
    from transformer.datareport import source_report
    from transformer.presets import build_config

    monkeypatch.setenv("COOP_DATA_CACHE", str(tmp_path))
    cfg = build_config("faithful", dict(source="characters", classes=64, exemplars=4, dim=32, latent_dim=3))
    p = source_report(cfg, queries=200)
    assert p["exact_match"] == pytest.approx(0.25, abs=0.03)  # 1/E with replacement (4,096 sequences: se 0.007)
    assert p["classes"] == 64 and p["exemplars"] == 4 and p["dim"] == 32


def test_data_command_writes_report(coop_inprocess, tmp_path, monkeypatch):
    monkeypatch.setenv("COOP_DATA_CACHE", str(tmp_path / "cache"))
    code, out, err = coop_inprocess("transformer", "data", "--classes", "32", "--dim", "8", "--queries", "100",
                                    "--out", tmp_path / "d")
    assert code == 0, err
    saved = json.loads((tmp_path / "d" / "data.json").read_text())
    assert saved["config"]["classes"] == 32 and 0 <= saved["properties"]["top1"] <= 1
    assert "nearest-mean top-1 over all K (held out)" in out and out.strip().endswith("data.json")
    assert saved["properties"]["exact_match"] == 0.0  # the cpu preset draws fresh exemplars: never the query


def test_icl_margin_at_init():
    rng = np.random.default_rng(2)
    K, E, D = 50, 4, 32
    t = rng.standard_normal((K, 1, D)) + 0.5 * rng.standard_normal((K, E, D))
    clean = measure(t, queries=2000, seed=3)["icl_margin_init"]
    shared = measure(t + 5.0, queries=2000, seed=3)["icl_margin_init"]  # one shared component, same geometry
    assert clean > 0.5 and 0 < shared < clean / 2
    same = np.ones((K, E, D))  # every exemplar alike: nothing to match
    assert measure(same, queries=200)["icl_margin_init"] == pytest.approx(0.0, abs=1e-12)
