"""Named configurations: `cpu` (the default: transience in minutes on a 2-core CPU) and `paper`.

A preset is a dict of `TrainConfig` fields; options given on the command line override it.

`cpu` departs from the paper's model in three documented ways, each an option with the paper's
choice available: Gaussian-cluster exemplars instead of Omniglot features (`--embeddings`), the label
table tied to the unembedding (`--no-tie-labels` for the paper's separate tables), and that table's
Adam step scaled (`--label-lr-scale 1` for the paper's). Without the last two, on affordable class
counts the network learns in-weights labels before ICL can emerge (see ../shared notes in README).
"""

from __future__ import annotations

PRESETS: dict[str, dict] = {
    "cpu": dict(
        classes=2048,
        exemplars=0,
        noise=0.6,
        dim=64,
        lr=1e-3,
        batch=16,
        weight_decay=0.01,
        tie_labels=True,
        label_lr_scale=0.1,
        label_init_std=1.0,
        sequences=1_600_000,
        eval_every=32_000,
        eval_size=2000,
        stop_when_icl_below=0.0,
    ),
    "paper": dict(
        classes=12_800,
        exemplars=20,
        dim=512,
        lr=1e-5,
        batch=32,
        weight_decay=0.0,
        tie_labels=False,
        label_lr_scale=1.0,
        label_init_std=0.02,
        sequences=20_000_000,
        eval_every=200_000,
        eval_size=2000,
        stop_when_icl_below=0.0,
    ),
}

# The paper preset trains on real features: it needs --embeddings.
NEEDS_EMBEDDINGS = ("paper",)
