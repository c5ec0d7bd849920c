"""`compare.curves`: one loader for every kind of run (a run directory, a CSV/TSV with any column
names, the official code's log.h5), its bad inputs refused in one line with exit 2, and reading
that never writes."""

from __future__ import annotations

import numpy as np
import pytest

from compare.curves import CHANCE, load_curves
from conftest import ROOT

SEQ = np.arange(1, 21) * 100_000.0
ICL_ACC = 0.5 + 0.4 * np.exp(-((np.arange(20) - 8) / 4.0) ** 2)  # rises to 0.9 and fades
CIWL_ACC = np.linspace(0.5, 0.97, 20)


def write_table(path, columns: dict, sep=","):
    names = list(columns)
    lines = [sep.join(names)] + [sep.join(repr(float(columns[n][i])) for n in names) for i in range(len(columns[names[0]]))]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_log_h5(path, evaluators: dict, eval_iter, per_sequence: int = 50, seed: int = 0):
    """A log.h5 in the official layout (github aadityasingh/icl-dynamics, main.py): `eval_iter` and one
    dataset EVALUATOR/METRIC of shape (evaluations, evaluation sequences); each row's per-sequence
    correctness (0/1) is drawn so that its mean is the given accuracy to within 1 / per_sequence."""
    import h5py

    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        f.create_dataset("eval_iter", data=np.asarray(eval_iter, np.int64), maxshape=(None,))
        f.create_dataset("train_loss", data=np.ones(5), maxshape=(None,))
        for name, acc in evaluators.items():
            rows = np.zeros((len(acc), per_sequence))
            for i, a in enumerate(acc):
                rows[i, rng.permutation(per_sequence)[: int(round(a * per_sequence))]] = 1.0
            f.create_dataset(f"{name}/in_context_acc", data=rows, maxshape=(None, per_sequence))
            f.create_dataset(f"{name}/loss", data=rng.random((len(acc), per_sequence)), maxshape=(None, per_sequence))
    return path


def test_a_csv_of_accuracies_with_any_column_names(tmp_path):
    path = write_table(tmp_path / "run.csv", {"seen": SEQ, "a_icl": ICL_ACC, "a_ciwl": CIWL_ACC, "other": SEQ})
    c = load_curves(path, sequences="seen", icl="a_icl", ciwl="a_ciwl", kind="accuracy")
    assert np.allclose(c.icl, 1 - ICL_ACC) and np.allclose(c.ciwl, 1 - CIWL_ACC)  # fitted as error rates
    assert c.chance == CHANCE and c.kind == "accuracy" and np.allclose(c.icl_acc, ICL_ACC)
    assert c.columns == {"sequences": "seen", "icl": "a_icl", "ciwl": "a_ciwl"} and c.losses == "error"


def test_a_tsv_of_error_rates_and_a_chance_level(tmp_path):
    path = write_table(tmp_path / "run.tsv", {"sequences": SEQ, "icl_error": 1 - ICL_ACC, "ciwl_error": 1 - CIWL_ACC},
                       sep="\t")
    c = load_curves(path, kind="error", chance=0.75)
    assert np.allclose(c.icl, 1 - ICL_ACC) and c.chance == 0.75 and np.allclose(c.icl_acc, ICL_ACC)
    acc = load_curves(write_table(tmp_path / "acc.csv", {"sequences": SEQ, "icl_acc": ICL_ACC, "ciwl_acc": CIWL_ACC}),
                      kind="accuracy", chance=0.25)
    assert acc.chance == 0.75  # accuracy 0.25 at chance is an error rate of 0.75


def test_a_csv_of_losses_is_fitted_as_given(tmp_path):
    path = write_table(tmp_path / "loss.csv", {"sequences": SEQ, "icl_loss": 2 - ICL_ACC, "ciwl_loss": 3 - CIWL_ACC})
    c = load_curves(path)
    assert c.chance is None and c.kind == "loss" and np.allclose(c.ciwl, 3 - CIWL_ACC) and c.icl_acc is None


def test_the_reference_run_with_the_documented_options():
    path = ROOT / "reference" / "official_main_run.csv"
    c = load_curves(path, icl="icl_acc", ciwl="ciwl_acc", kind="accuracy")
    assert c.sequences.size == 201 and c.used.sum() == 200  # the untrained row at 0 is not fitted
    peak = int(np.argmax(c.icl_acc))
    assert c.icl_acc[peak] == pytest.approx(0.7698) and c.sequences[peak] == 4_400_000  # its README's landmarks


def test_an_official_log_h5(tmp_path):
    path = write_log_h5(tmp_path / "log.h5", {"icl": ICL_ACC, "iwl_copy_avail": CIWL_ACC, "flip_icl": 1 - ICL_ACC},
                        SEQ.astype(int), per_sequence=200)
    c = load_curves(path)  # the official evaluators' in-context accuracies by default
    assert c.kind == "accuracy" and c.columns["icl"] == "icl/in_context_acc" and c.columns["sequences"] == "eval_iter"
    assert np.allclose(c.icl_acc, ICL_ACC, atol=1 / 200) and np.allclose(1 - c.ciwl, CIWL_ACC, atol=1 / 200)
    flip = load_curves(path, icl="flip_icl/in_context_acc")
    assert np.allclose(flip.icl_acc, 1 - ICL_ACC, atol=1 / 200)
    loss = load_curves(path, icl="icl/loss", ciwl="iwl_copy_avail/loss", kind="loss")
    assert loss.chance is None and 0 < loss.icl.mean() < 1


def test_a_log_h5_through_coop_compare(tmp_path, coop_inprocess):
    import json

    path = write_log_h5(tmp_path / "log.h5", {"icl": ICL_ACC, "iwl_copy_avail": CIWL_ACC}, SEQ.astype(int))
    code, stdout, err = coop_inprocess("compare", path, "--out", tmp_path / "out", "--starts", "16", "--refine", "1",
                                       "--max-steps", "4000", "--grid", "3")
    assert code == 0, err
    info = json.loads((tmp_path / "out" / "fit.json").read_text())
    assert info["data"]["curves"] == "accuracy" and info["data"]["columns"]["icl"] == "icl/in_context_acc"
    assert info["verdict"]["measured"] == "transient_icl"  # ICL peaks at 0.9 and ends at 0.5
    assert info["config"]["link"] == "probit" and info["config"]["population"] == "ciwl"  # the default map on accuracies
    assert "in the curves' terms" in stdout


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_curves")
    acc = {"sequences": SEQ, "icl_acc": ICL_ACC, "ciwl_acc": CIWL_ACC}
    write_table(root / "acc.csv", acc)
    write_table(root / "above_one.csv", {**acc, "ciwl_acc": np.r_[CIWL_ACC[:-1], 1.2]})
    write_table(root / "negative.csv", {**acc, "icl_acc": np.r_[-0.1, ICL_ACC[1:]]})
    write_table(root / "repeated.csv", {**acc, "sequences": np.r_[SEQ[:5], SEQ[4:19]]})
    write_log_h5(root / "log.h5", {"icl": ICL_ACC, "iwl_copy_avail": CIWL_ACC}, SEQ.astype(int))
    import h5py

    with h5py.File(root / "no_eval_iter.h5", "w") as f:
        f.create_dataset("icl/in_context_acc", data=np.ones((20, 4)))
    write_table(root / "eight.csv", {k: v[:8] for k, v in acc.items()})
    (root / "ragged.csv").write_text("sequences,icl_acc,ciwl_acc\n1,0.5\n")
    return root


# (arguments after the source, the option the one line must name, a phrase of it)
BAD = [
    ("acc.csv", ["--curves", "accuracy", "--icl", "icl_accuracy"], "--icl", "lacks column 'icl_accuracy'"),
    ("acc.csv", ["--curves", "accuracy", "--ciwl", "nope"], "--ciwl", "its columns: sequences, icl_acc, ciwl_acc"),
    ("acc.csv", ["--curves", "accuracy", "--sequences", "step"], "--sequences", "lacks column"),
    ("acc.csv", [], "--icl", "lacks column 'icl_loss'"),  # a CSV holds losses unless told otherwise
    ("acc.csv", ["--curves", "accuracy", "--chance", "1.5"], "--chance", "(0, 1)"),
    ("acc.csv", ["--chance", "0.5"], "--chance", "loss curves"),
    ("acc.csv", ["--curves", "probability"], "--curves", "accuracy, error, loss"),
    ("above_one.csv", ["--curves", "accuracy"], "--ciwl", "outside [0, 1]"),
    ("negative.csv", ["--curves", "accuracy"], "--icl", "outside [0, 1]"),
    ("repeated.csv", ["--curves", "accuracy"], "--sequences", "strictly increasing"),
    ("no_eval_iter.h5", [], "RUN_DIR|CURVES.csv", "no eval_iter"),
    ("log.h5", ["--icl", "icl/no_such_metric"], "--icl", "lacks column"),
    ("eight.csv", ["--curves", "accuracy", "--population", "both"], "RUN_DIR|CURVES.csv", "fewer than its 9 free"),
    ("ragged.csv", [], "RUN_DIR|CURVES.csv", "2 fields"),
]


@pytest.mark.parametrize("source,args,option,phrase", BAD, ids=[f"{s} {' '.join(a)}" for s, a, _, _ in BAD])
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, bad, coop_inprocess, source, args, option, phrase):
    out = tmp_path / "out"
    before = sorted(p.name for p in bad.iterdir())
    code, _, err = coop_inprocess("compare", bad / source, *args, "--out", out)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and option in lines[0] and phrase in lines[0] and "Traceback" not in err, err
    assert not out.exists() and sorted(p.name for p in bad.iterdir()) == before


def test_reading_a_run_directory_writes_nothing(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    write_table(run / "metrics.csv", {"step": np.arange(1, 21), "sequences": SEQ, "icl_acc": ICL_ACC,
                                      "ciwl_acc": CIWL_ACC, "icl_loss": 2 - ICL_ACC, "ciwl_loss": 3 - CIWL_ACC})
    stat = (run / "metrics.csv").stat()
    for losses in ("error", "full"):
        load_curves(run, losses=losses)
    assert [p.name for p in run.iterdir()] == ["metrics.csv"] and (run / "metrics.csv").stat().st_mtime_ns == stat.st_mtime_ns
