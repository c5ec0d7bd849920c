"""A run directory of this project: the one owner of its layout, its config and its metrics file.

A run directory holds:
- `config.json`       the TrainConfig (a resumed run must match it exactly, except for a larger
                      `sequences`, which extends it);
- `metrics.csv`       one row per evaluation: step, sequences, then `{train,icl,ciwl,flip,iwl}_{acc,loss}`
                      on the held-out evaluation sets (fixed by the seed; `train` is the training
                      distribution), starting with the untrained model at step 0, then the
                      in-context losses `{train,icl,ciwl,flip}_ctx_loss` (`evaluate`);
- `summary.json`      config, wall time, steps/s, ICL peak and end, `transient` (see outcomes.TRANSIENT_RULE);
- `curves.png`        every evaluator's accuracy against sequences seen;
- `checkpoints/`      `latest.npz` (params, optimiser state, step, metrics so far: enough to resume)
                      and `params_{step:09d}.npz` (params at every evaluation, for analysis).
All files are written to a temporary file and renamed into place. Training (`train`), analysis,
`compare`, the job layer and `coop figures` find these files through `RunDir`; the checkpoint
arrays themselves are read and written by `checkpoints`. This module imports no jax.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from runio import atomic_path
from transformer.choices import EVALUATORS, FULL_ACCURACY
from transformer.config import TrainConfig

# metrics.csv's columns. The in-context losses (`evaluate`: loss restricted to the two context
# labels; not for iwl) come last: runs written before they existed have LEGACY_COLUMNS.
LEGACY_COLUMNS = ["step", "sequences", "train_loss", "train_acc"] + [f"{n}_{m}" for n in EVALUATORS[1:] for m in ("acc", "loss")]
CONTEXT_LOSS_COLUMNS = [f"{n}_ctx_loss" for n in EVALUATORS if n not in FULL_ACCURACY]
COLUMNS = LEGACY_COLUMNS + CONTEXT_LOSS_COLUMNS

# what a use of a run directory needs in it
NEEDS = {"config": "config.json", "metrics": "metrics.csv", "checkpoints": "checkpoints/"}


def read_metrics(path: str | Path) -> list[dict]:
    """A metrics CSV's rows as dicts (step and sequences as integers, the rest as floats)."""
    with open(path, newline="") as fh:
        return [{k: (int(v) if k in ("step", "sequences") else float(v)) for k, v in r.items()} for r in csv.DictReader(fh)]


def write_metrics(path: Path, rows: list[dict]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow([int(r[c]) if c in ("step", "sequences") else f"{float(r[c]):.6g}" for c in COLUMNS])


@dataclass(frozen=True)
class RunDir:
    """The files of one run directory (which need not exist yet: training creates it)."""

    path: Path

    def __init__(self, path: str | Path):
        object.__setattr__(self, "path", Path(path))

    @classmethod
    def open(cls, path: str | Path, needs: tuple[str, ...] = ("config", "metrics")) -> RunDir:
        """The run directory at `path`, else ValueError (one line) naming what it lacks of `needs`
        (keys of NEEDS)."""
        run = cls(path)
        missing = [NEEDS[n] for n in needs if not run._has(n)]
        if missing:
            what = "not a transformer run directory" if not run.config_file.is_file() else "an unfinished run"
            raise ValueError(f"{run.path} is {what} (no {' and '.join(missing)})")
        return run

    def _has(self, need: str) -> bool:
        return {"config": self.config_file.is_file, "metrics": self.metrics_file.is_file,
                "checkpoints": self.checkpoints.is_dir}[need]()

    @property
    def config_file(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.csv"

    @property
    def summary_file(self) -> Path:
        return self.path / "summary.json"

    @property
    def curves_file(self) -> Path:
        return self.path / "curves.png"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def latest(self) -> Path:
        """The checkpoint a run resumes from."""
        return self.checkpoints / "latest.npz"

    def params_file(self, step: int | None = None) -> Path:
        """The parameters saved at `step` (None: the latest checkpoint)."""
        return self.latest if step is None else self.checkpoints / f"params_{step:09d}.npz"

    @property
    def resumable(self) -> bool:
        return self.latest.is_file()

    @property
    def started(self) -> bool:
        """Training began here (a config was written), whether or not a checkpoint followed."""
        return self.config_file.is_file()

    def steps(self) -> list[int]:
        """The steps with saved parameters, in order."""
        return sorted(int(p.stem.split("_")[1]) for p in self.checkpoints.glob("params_*.npz"))

    def config(self) -> TrainConfig:
        if not self.config_file.is_file():
            raise ValueError(f"{self.path} is not a transformer run directory (no config.json)")
        return TrainConfig(**json.loads(self.config_file.read_text()))

    def metrics(self) -> list[dict]:
        return read_metrics(self.metrics_file)

    def summary(self) -> dict:
        return json.loads(self.summary_file.read_text())
