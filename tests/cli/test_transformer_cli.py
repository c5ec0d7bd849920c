"""`coop transformer train/eval`: every bad input gets one line naming the option, exit 2, and
leaves an existing run as it was (in process, against one tiny run made once)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

TINY = ["--classes", "12", "--dim", "8", "--batch", "8", "--sequences", "1600", "--eval-every", "800",
        "--eval-size", "100", "--stop-when-icl-below", "0", "--quiet"]

# (arguments after `train --out RUN TINY`, the option the error must name); {root}: the fixture's folder
TRAIN_BAD = [
    (["--preset", "gpu"], "--preset"),
    (["--train-dist", "zipf"], "--train-dist"),
    (["--context-exemplar", "sometimes"], "--context-exemplar"),
    (["--icl-labels", "12"], "--icl-labels"),
    (["--pos-init", "zeros"], "--pos-init"),
    (["--superclasses", "-1"], "--superclasses"),
    (["--zipf", "-1"], "--zipf"),
    (["--class-spread", "0"], "--class-spread"),
    (["--batch", "0"], "--batch"),
    (["--sequences", "-5"], "--sequences"),
    (["--classes", "0"], "--classes"),
    (["--eval-classes", "2"], "--eval-classes"),
    (["--eval-exemplars", "0"], "--eval-exemplars"),
    (["--embeddings", "{root}/missing.npz"], "--embeddings"),
    (["--embeddings", "{root}/flat.npz"], "--embeddings"),
    (["--embeddings", "{root}/twod.npz"], "--embeddings"),
    (["--resume", "--lr", "0.5"], "--resume"),  # a config other than the run's
    ([], "--out"),  # not empty, and no --resume
]
# whole command lines
OTHER_BAD = [
    (["transformer", "train", "--out", "{root}/p", "--preset", "paper"], "--embeddings"),
    (["transformer", "eval", "{root}/run", "--step", "7"], "--step"),
    (["transformer", "eval", "{root}"], "RUN"),
    (["transformer", "train", "--out", "{root}/m", "--seeds", "0,x"], "--seeds"),
]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A folder with a tiny finished run (`run/`, trained through the CLI in this process) and bad
    embeddings files."""
    import cli

    root = tmp_path_factory.mktemp("transformer_cli")
    argv, sys.argv = sys.argv, ["coop", "transformer", "train", "--out", str(root / "run"), *TINY]
    try:
        with pytest.raises(SystemExit) as exc:
            cli.main()
    finally:
        sys.argv = argv
    assert exc.value.code in (0, None)
    (root / "flat.npz").write_bytes(b"junk")
    np.savez(root / "twod.npz", embeddings=np.zeros((4, 8), np.float32))
    return root


def _files(folder):
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _check(code, err, option):
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and option in lines[0], err


@pytest.mark.parametrize("extra,option", TRAIN_BAD, ids=[" ".join(e) or "existing-out" for e, _ in TRAIN_BAD])
def test_bad_train_input_one_line_exit_2_run_unchanged(root, coop_inprocess, extra, option):
    before = _files(root / "run")
    code, _, err = coop_inprocess("transformer", "train", "--out", root / "run", *TINY,
                                  *(a.format(root=root) for a in extra))
    _check(code, err, option)
    assert _files(root / "run") == before


@pytest.mark.parametrize("args,option", OTHER_BAD, ids=[" ".join(a[1:]) for a, _ in OTHER_BAD])
def test_bad_eval_and_other_train_input_one_line_exit_2(root, coop_inprocess, args, option):
    before = _files(root / "run")
    code, _, err = coop_inprocess(*(a.format(root=root) for a in args))
    _check(code, err, option)
    assert _files(root / "run") == before
    assert not (root / "p").exists() and not (root / "m").exists()


def test_curves_draws_a_csv_of_curves_beside_a_run(tmp_path, coop_inprocess):
    """`coop transformer curves` reads a CSV with metrics.csv's column names (the official run in
    reference/) as it reads a run directory, and draws one panel per run with `--panels run`."""
    import csv

    from conftest import ROOT

    official = ROOT / "reference" / "official_main_run.csv"
    with open(official, newline="") as fh:
        rows = list(csv.DictReader(fh))
    run = tmp_path / "run"
    run.mkdir()
    with open(run / "metrics.csv", "w", newline="") as fh:  # a run whose ICL peaks at 0.9 and ends at 0.55
        w = csv.writer(fh)
        w.writerow(["step", "sequences", "train_acc", "icl_acc", "ciwl_acc", "flip_acc", "iwl_acc"])
        for i, icl in enumerate((0.5, 0.9, 0.7, 0.55)):
            w.writerow([i, i * 1000, 0.9, icl, 0.5 + 0.1 * i, 0.4, 0.0])
    out = tmp_path / "beside.png"
    code, text, err = coop_inprocess("transformer", "curves", official, run, "--labels", "official,ours", "--panels", "run",
                                     "--evaluators", "train,icl,ciwl,flip,iwl", "--out", out)
    assert code == 0 and err == "" and out.is_file()
    peak = max(float(r["icl_acc"]) for r in rows)
    lines = {line.split()[0]: line.split() for line in text.splitlines()[1:3]}
    assert float(lines["official"][1]) == pytest.approx(peak, abs=5e-4)
    assert float(lines["official"][2]) == pytest.approx(float(rows[-1]["icl_acc"]), abs=5e-4)
    assert lines["ours"][1:3] == ["0.900", "0.550"] and lines["ours"][4] == "1,000"


def test_curves_scale_puts_runs_on_one_axis(tmp_path, coop_inprocess):
    """`--scale` multiplies each run's sequences by its factor (e.g. lr x sequences): a run at a tenth
    of the lr that needs ten times the sequences reaches ICL at the same point."""
    import csv

    for name, step in (("fast", 1000), ("slow", 10_000)):
        (tmp_path / name).mkdir()
        with open(tmp_path / name / "metrics.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["step", "sequences", "icl_acc", "ciwl_acc", "flip_acc"])
            for i, icl in enumerate((0.5, 0.6, 0.9, 0.7)):
                w.writerow([i, i * step, icl, 0.5, 0.5])
    out = tmp_path / "scaled.png"
    code, text, err = coop_inprocess("transformer", "curves", tmp_path / "fast", tmp_path / "slow", "--scale", "1,0.1",
                                     "--unit", "sequences x lr / 1e-4", "--out", out)
    assert code == 0 and err == "" and out.is_file()
    reached = {line.split()[0]: line.split()[4] for line in text.splitlines()[1:3]}
    assert reached == {"fast": "2,000", "slow": "2,000"}


@pytest.mark.parametrize("args, flag", [
    (["--evaluators", "icl,loss"], "--evaluators"),
    (["--evaluators", "icl,icl"], "--evaluators"),
    (["--panels", "grid"], "--panels"),
    (["--scale", "1,2"], "--scale"),
    (["--scale", "-1"], "--scale"),
    (["--scale", "x"], "--scale"),
])
def test_curves_bad_choice_one_line_exit_2(tmp_path, coop_inprocess, args, flag):
    from conftest import ROOT

    code, _, err = coop_inprocess("transformer", "curves", ROOT / "reference" / "official_main_run.csv", *args,
                                  "--out", tmp_path / "c.png")
    assert code == 2 and err.startswith(f"coop: error: {flag}:") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "c.png").exists()


def test_curves_names_a_missing_column_or_a_bad_cell(tmp_path, coop_inprocess):
    bad = tmp_path / "bad.csv"
    bad.write_text("sequences,icl_acc\n0,0.5\n")
    code, _, err = coop_inprocess("transformer", "curves", bad, "--out", tmp_path / "c.png")
    assert code == 2 and "flip_acc" in err and len(err.strip().splitlines()) == 1
    bad.write_text("sequences,icl_acc,flip_acc,ciwl_acc\n0,0.5,x,0.5\n")  # a cell that is not a number
    code, _, err = coop_inprocess("transformer", "curves", bad, "--out", tmp_path / "c.png")
    assert code == 2 and "'x'" in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "c.png").exists()
