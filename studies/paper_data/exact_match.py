"""ICL accuracy split by exact matches: on the ICL and flip evaluators (5 exemplars per class), the
context exemplar of the query's class is the query vector itself 1 time in 5; a network that copies
only exact matches scores 0.2 + 0.8 x 0.5 = 0.6 on ICL. This separates the two.

    python studies/paper_data/exact_match.py RUN_DIR [RUN_DIR ...]   # writes studies/paper_data/exact_match.md

For each run: at its ICL peak and at its last checkpoint, ICL and flip accuracy on the sequences
whose context holds the query itself (exact) and on the rest (near: another drawing of its class).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from transformer.analysis import Run  # noqa: E402
from transformer.evaluate import judge  # noqa: E402
from transformer.model import forward  # noqa: E402


def exact(batch) -> np.ndarray:
    """(B,) whether the context exemplar of the query's class is the query vector itself."""
    x, c = np.asarray(batch.x), np.asarray(batch.classes)
    slot = np.where(c[:, 0] == c[:, 2], 0, 1)
    return np.all(x[np.arange(len(x)), slot] == x[:, 2], axis=-1)


def main() -> None:
    lines = ["| run | sequences | evaluator | exact matches | accuracy on exact | accuracy on the rest | all |",
             "|---|---|---|---|---|---|---|"]
    for path in sys.argv[1:]:
        run = Run(path)
        for step in dict.fromkeys([run.icl_peak_step(), run.steps[-1]]):
            params = run.params(step)
            for name in ("icl", "flip"):
                batch = run.sets[name]
                ok = np.asarray(judge(forward(params, run.model, batch.x, batch.y), batch)[0], bool)
                m = exact(batch)
                lines.append(f"| {Path(path).name} | {run.sequences(step):,} | {name} | {m.mean():.3f} | "
                             f"{ok[m].mean():.3f} | {ok[~m].mean():.3f} | {ok.mean():.3f} |")
    (HERE / "exact_match.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
