"""The data report of every exemplar source the project trains on, in one table.

    python studies/paper_data/data_table.py      # writes studies/paper_data/data.md

Rows: the Gaussian clusters of the `cpu` and `faithful` presets as they were before this study, the
closest clusters pilot (8 dimensions, noise 1.0, 20 exemplars; TRANSFORMER_NOTES), and every
characters configuration of the search (its `data.json`, written before its run trained). Each is
what `coop transformer data` prints for that configuration (2,000 queries).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from transformer.datareport import source_report  # noqa: E402
from transformer.presets import build_config  # noqa: E402

CLUSTERS = [
    ("clusters: cpu preset (K 2,048, D 64, noise 0.65, fresh draws)", "cpu", {}),
    ("clusters: faithful before (K 12,800, D 64, noise 0.6, E 5)", "faithful-gaussian",
     dict(source="clusters", dim=64, exemplars=5, noise=0.6)),
    ("clusters: pilot D 8, noise 1.0, E 20", "faithful-gaussian", dict(source="clusters", dim=8, exemplars=20, noise=1.0)),
]
KEYS = ("top1", "top1_heldout", "top1_rank64_heldout", "two_class", "icl_pair", "cos_same", "cos_sibling", "cos_other",
        "cos_other_std", "cos_other_raw", "icl_margin_init", "exact_match")


def main() -> None:
    rows = []
    for label, preset, over in CLUSTERS:
        rows.append((label, source_report(build_config(preset, over))))
    for path in sorted((HERE / "kept").glob("*/data.json")):
        rows.append((f"characters: {path.parent.name}", json.loads(path.read_text())["properties"]))
    lines = ["| source | " + " | ".join(KEYS) + " |", "|---|" + "---|" * len(KEYS)]
    lines += [f"| {label} | " + " | ".join(f"{p[k]:.3f}" for k in KEYS) + " |" for label, p in rows]
    (HERE / "data.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
