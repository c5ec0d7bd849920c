"""Reading the measured curves of a run: one loader for every kind of run.

Sources (`load_curves`):
- a run directory of this project: its `metrics.csv`, the curves picked by `losses` (error: the
  ICL and CIWL evaluators' in-context accuracies, fitted as error rates; context: their in-context
  losses; full: their cross-entropy over all labels);
- a CSV or TSV file (the delimiter is read from the header line) with any column names: `icl`,
  `ciwl`, `sequences` name the columns, `kind` says what they hold;
- the official code's `log.h5` (github `aadityasingh/icl-dynamics`, `main.py`): a dataset
  `eval_iter` (the sequences seen at each evaluation) and one dataset `EVALUATOR/METRIC` per
  evaluator and metric of shape (evaluations, evaluation sequences); a column there is a dataset
  path, its value at an evaluation the mean over the evaluation sequences.

What the columns hold (`kind`): "accuracy" or "error" (an error rate, 1 - accuracy) are fitted as
error rates with the maps anchored at chance (`chance`: the curves' value at chance, in their own
units; 0.5 by default: two labels in context); "loss" is fitted as given with free affine maps.

Reading never writes: a run written before metrics.csv held the in-context losses has them
re-scored from its checkpoints in memory (`transformer.analysis.context_losses`).

Every unusable input raises `CurvesError`, a ValueError naming the parameter at fault (`source`,
`icl`, `ciwl`, `sequences`, `chance`, `from_sequences`, `until`) with a one-line message.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from transformer.analysis import context_losses
from transformer.rundir import RunDir

from .config import CURVE_KINDS, LOSSES

__all__ = ["CURVES", "MIN_ROWS", "CHANCE", "Curves", "CurvesError", "load_curves", "default_columns"]

CURVES = ("icl", "ciwl")
MIN_ROWS = 8
CHANCE = 0.5  # an evaluator's accuracy (and error rate) at chance: two labels in context
RUN_COLUMNS = {"error": ("icl_acc", "ciwl_acc", "accuracy"), "context": ("icl_ctx_loss", "ciwl_ctx_loss", "loss"),
               "full": ("icl_loss", "ciwl_loss", "loss")}
TABLE_COLUMNS = {"loss": ("icl_loss", "ciwl_loss"), "accuracy": ("icl_acc", "ciwl_acc"),
                 "error": ("icl_error", "ciwl_error")}
H5_COLUMNS = ("icl/in_context_acc", "iwl_copy_avail/in_context_acc")  # the official evaluators' names
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


class CurvesError(ValueError):
    """Unusable curves: `parameter` names the input at fault (see the module docstring)."""

    def __init__(self, parameter: str, message: str):
        super().__init__(message)
        self.parameter = parameter


@dataclass(frozen=True)
class Curves:
    """Measured curves: every row read (`sequences`, `icl`, `ciwl`, as fitted: error rates for
    accuracy or error curves) and the rows fitted (`used`). `icl_acc`: the ICL evaluator's accuracy
    when the source has it (else None); `chance`: both curves' error rate at chance, the maps'
    anchor (None for loss curves: free affine maps)."""

    sequences: np.ndarray
    icl: np.ndarray
    ciwl: np.ndarray
    used: np.ndarray  # bool mask of the fitted rows
    source: str
    from_sequences: float | None = None
    until: float | None = None  # rows after this are not fitted (held out for `compare.predict`)
    losses: str = "as given"  # a run directory's --losses; "as given" for a table's loss curves
    icl_acc: np.ndarray | None = None
    chance: float | None = None
    kind: str = "loss"  # what the source's columns hold: accuracy | error | loss
    columns: dict = field(default_factory=dict)  # curve (and "sequences") -> the source's column

    @property
    def s(self) -> np.ndarray:
        return self.sequences[self.used]

    def y(self, curve: str) -> np.ndarray:
        return getattr(self, curve)[self.used]

    @property
    def held_out(self) -> np.ndarray:
        """bool mask of the rows after `until` (none without a cut)."""
        return np.zeros(self.sequences.shape, bool) if self.until is None else self.sequences > self.until

    @property
    def accuracy(self) -> dict | None:
        """curve -> accuracy at every row (1 - error rate); None for loss curves."""
        return None if self.chance is None else {k: 1.0 - getattr(self, k) for k in CURVES}


def default_columns(kind: str, h5: bool = False) -> tuple[str, str]:
    """The (icl, ciwl) columns read when none are named: a table's by `kind`, a log.h5's evaluators."""
    return H5_COLUMNS if h5 else TABLE_COLUMNS[kind]


def _is_hdf5(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(8) == HDF5_SIGNATURE


def _read_table(path: Path) -> dict[str, list[str]]:
    """column -> its text values, from a CSV or TSV file (tab-separated when the header has a tab)."""
    try:
        with open(path, newline="") as fh:
            head = fh.readline()
            fh.seek(0)
            reader = csv.reader(fh, delimiter="\t" if "\t" in head else ",")
            rows = [r for r in reader if r]
    except UnicodeDecodeError:
        raise CurvesError("source", f"{path} is not a text CSV or TSV file") from None
    except csv.Error as err:
        raise CurvesError("source", f"{path} is not a readable CSV file ({err})") from None
    if not rows:
        return {}
    header = [h.strip() for h in rows[0]]
    for i, r in enumerate(rows[1:], 2):
        if len(r) != len(header):
            raise CurvesError("source", f"{path} row {i}: {len(r)} fields, the header has {len(header)}")
    return {h: [r[j] for r in rows[1:]] for j, h in enumerate(header)}


def _read_h5(path: Path, wanted: list[str]) -> dict[str, np.ndarray]:
    """The `wanted` datasets of an official-layout log.h5, each as one value per evaluation."""
    out = {}
    try:
        with h5py.File(path, "r") as f:
            if "eval_iter" not in f:
                raise CurvesError("source", f"{path} has no eval_iter dataset (not a log.h5 of the official code)")
            names = []
            f.visit(lambda n: names.append(n) if isinstance(f[n], h5py.Dataset) else None)
            for col in wanted:
                if col not in names:
                    continue
                data = np.asarray(f[col][()], np.float64)
                out[col] = data.reshape(data.shape[0], -1).mean(axis=1) if data.ndim > 1 else data
            out["\0names"] = names
    except OSError as err:
        raise CurvesError("source", f"{path} is not a readable HDF5 file ({err})") from None
    return out


def _numbers(path, col: str, values, parameter: str) -> np.ndarray:
    """A column's values as finite floats, else CurvesError naming `parameter` and the row."""
    if isinstance(values, np.ndarray):
        arr = values.astype(np.float64)
    else:
        arr = np.empty(len(values))
        for i, text in enumerate(values):
            try:
                arr[i] = float(text)
            except ValueError:
                raise CurvesError(parameter, f"{path} row {i + 2}: {col} is not a number ({text!r})") from None
    bad = np.nonzero(~np.isfinite(arr))[0]
    if bad.size:
        raise CurvesError(parameter, f"{path} row {bad[0] + 2}: {col} is not finite ({arr[bad[0]]})")
    return arr


def _run_table(run: Path, losses: str) -> dict:
    """A run directory's metrics.csv as a table; in-context losses missing from it re-scored in memory."""
    table = _read_table(RunDir(run).metrics_file)
    names = RUN_COLUMNS["context"][:2]
    if losses == "context" and table and not all(n in table and all(math.isfinite(float(v)) for v in table[n])
                                                 for n in names):
        by_step = {r["step"]: r for r in context_losses(run)}
        steps = [int(s) for s in table.get("step", [])]
        missing = [s for s in steps if s not in by_step]
        if missing or not steps:
            raise CurvesError("source", f"{run}: no checkpoint at step(s) {missing[:3]} to re-score the in-context "
                                        "losses from")
        for n in names:
            table[n] = [repr(by_step[s][n]) for s in steps]
    return table


def load_curves(path, from_sequences: float | None = None, until: float | None = None, losses: str = "error", *,
                icl: str | None = None, ciwl: str | None = None, sequences: str | None = None,
                kind: str | None = None, chance: float | None = None) -> Curves:
    """The curves of a run directory, a CSV/TSV file or an official log.h5 (see the module docstring).

    `icl`, `ciwl`, `sequences`: the columns (default: a run directory's by `losses`, a table's by
    `kind`, a log.h5's official evaluators; `sequences`, or `eval_iter` in a log.h5). `kind`: what
    they hold, accuracy | error | loss (default: accuracy for a run directory with losses "error"
    and for a log.h5, else loss). `chance`: their value at chance (accuracy and error curves only;
    default 0.5). Rows with sequences < `from_sequences` are not fitted (None: the rows at
    sequences 0, the untrained network, are not); rows with sequences > `until` are held out.
    """
    if losses not in LOSSES:
        raise CurvesError("losses", f"must be one of {', '.join(LOSSES)}, got {losses!r}")
    if kind is not None and kind not in CURVE_KINDS:
        raise CurvesError("curves", f"must be one of {', '.join(CURVE_KINDS)}, got {kind!r}")
    path = Path(path)
    is_run = path.is_dir()
    if is_run:
        file, h5 = RunDir(path).metrics_file, False
        if not file.is_file():
            raise CurvesError("source", f"{path} is a directory without metrics.csv (not a transformer run)")
        run_icl, run_ciwl, run_kind = RUN_COLUMNS[losses]
        kind = kind or run_kind
        icl, ciwl = icl or run_icl, ciwl or run_ciwl
    elif path.is_file():
        file, h5 = path, _is_hdf5(path)
        kind = kind or ("accuracy" if h5 else "loss")
        default_icl, default_ciwl = default_columns(kind, h5)
        icl, ciwl = icl or default_icl, ciwl or default_ciwl
    else:
        raise CurvesError("source", f"no such file or directory: {path}")
    sequences = sequences or ("eval_iter" if h5 else "sequences")
    if kind == "loss" and chance is not None:
        raise CurvesError("chance", "applies to accuracy or error curves (loss curves have no chance level)")
    if chance is not None and not (math.isfinite(chance) and 0 < chance < 1):
        raise CurvesError("chance", f"must be in (0, 1), got {chance}")
    wanted = {"sequences": sequences, "icl": icl, "ciwl": ciwl}

    table = _read_h5(file, list(wanted.values()) + ["icl_acc"]) if h5 else (
        _run_table(path, losses) if is_run else _read_table(file))
    names = table.pop("\0names", list(table))
    for parameter, col in wanted.items():
        if col not in table:
            shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "") if names else "none"
            raise CurvesError(parameter, f"{file} lacks column {col!r} (its columns: {shown})")
    n = len(table[sequences])
    if n == 0:
        raise CurvesError("source", f"{file} has no rows (an empty run)")
    values = {p: _numbers(file, col, table[col], p) for p, col in wanted.items()}
    if len({v.size for v in values.values()}) > 1:
        raise CurvesError("source", f"{file}: the columns {', '.join(wanted.values())} differ in length")
    seq = values["sequences"]
    if np.any(seq < 0) or np.any(np.diff(seq) <= 0):
        raise CurvesError("sequences", f"{file}: {sequences} must be >= 0 and strictly increasing")
    if kind != "loss":
        for p in CURVES:
            if np.any(values[p] < 0) or np.any(values[p] > 1):
                bad = int(np.argmax((values[p] < 0) | (values[p] > 1)))
                raise CurvesError(p, f"{file} row {bad + 2}: {wanted[p]} = {values[p][bad]:g} is outside [0, 1] "
                                     f"(`curves` {kind})")
    icl_acc = None
    if kind == "accuracy":
        icl_acc = values["icl"].copy()
    elif kind == "error":
        icl_acc = 1.0 - values["icl"]
    elif "icl_acc" in table:
        icl_acc = _numbers(file, "icl_acc", table["icl_acc"], "source")
    level = None
    if kind != "loss":  # fitted as error rates, anchored at chance
        level = 1.0 - (CHANCE if chance is None else chance) if kind == "accuracy" else (
            CHANCE if chance is None else chance)
        if kind == "accuracy":
            values = {**values, "icl": 1.0 - values["icl"], "ciwl": 1.0 - values["ciwl"]}

    if from_sequences is not None and not (math.isfinite(from_sequences) and from_sequences >= 0):
        raise CurvesError("from_sequences", f"must be a finite number >= 0, got {from_sequences}")
    used = seq > 0 if from_sequences is None else seq >= from_sequences
    if until is not None:
        if not (math.isfinite(until) and seq[0] < until < seq[-1]):
            raise CurvesError("until", f"must lie inside the run's rows ({seq[0]:,.0f} < fit_until < {seq[-1]:,.0f}), "
                                       f"got {until:g}")
        used &= seq <= until
    if used.sum() < MIN_ROWS:
        raise CurvesError("source", f"{file}: {int(used.sum())} row(s) to fit, at least {MIN_ROWS} needed")
    for p in CURVES:
        if np.ptp(values[p][used]) == 0:
            raise CurvesError(p, f"{file}: {wanted[p]} is constant over the fitted rows (nothing to fit)")
    if is_run:
        label = losses
    else:
        label = "error" if kind != "loss" else "as given"
    return Curves(seq, values["icl"], values["ciwl"], used, str(file), from_sequences, until, label, icl_acc, level,
                  kind, dict(wanted))
