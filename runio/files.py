"""Atomic output files: write to a temporary file in the same folder, then rename over the target.

A reader (or an interrupted run) therefore sees either the old complete file or the new one.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ""):
    """Yield a temporary path beside `path`; on success rename it to `path`, on error delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix or path.suffix)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes the file private; outputs are ordinary files
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=_jsonable) + "\n")


def copy_file(src, dst) -> None:
    """Copy `src` to `dst` atomically (`dst` is the old file or the whole new one, never part)."""
    with atomic_path(dst) as tmp:
        tmp.write_bytes(Path(src).read_bytes())


def write_csv(path, columns: dict) -> None:
    """Columns of equal length as a CSV with a header row, in the dict's order."""
    names = list(columns)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(names)
        for row in zip(*(columns[n] for n in names)):
            writer.writerow([_cell(x) for x in row])


def save_figure(fig, path, dpi: int = 150) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")


def _cell(x):
    if isinstance(x, float) or hasattr(x, "dtype") and x.dtype.kind == "f":
        return repr(float(x))
    return int(x) if hasattr(x, "dtype") else x


def _jsonable(x):
    if hasattr(x, "tolist"):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")
