"""The 2-layer attention-only transformer on bursty sequences (RESEARCH.md section 3).

data: exemplar sources, training distributions, evaluators. model: the transformer with named
activations. evaluate: in-context accuracy and loss. train: the scanned training loop, checkpoints,
resume. presets: the `cpu` and `paper` configurations.
"""

from transformer.data import (
    EVALUATORS,
    TRAIN_DISTS,
    Batch,
    Exemplars,
    eval_sets,
    from_table,
    gaussian_clusters,
    load_embeddings,
    sample,
)
from transformer.evaluate import cross_entropy, evaluate_all, full_correct, in_context_correct, score
from transformer.model import ModelConfig, forward, init_params, label_table_name
from transformer.presets import PRESETS
from transformer.train import (
    COLUMNS,
    TRANSIENT_RULE,
    TrainConfig,
    check_config,
    load_checkpoint,
    make_source,
    read_metrics,
    resolve_embeddings,
    run_problems,
    train,
    transience,
)

__all__ = [
    "EVALUATORS", "TRAIN_DISTS", "Batch", "Exemplars", "eval_sets", "from_table", "gaussian_clusters",
    "load_embeddings", "sample", "cross_entropy", "evaluate_all", "full_correct", "in_context_correct",
    "score", "ModelConfig", "forward", "init_params", "label_table_name", "PRESETS", "COLUMNS",
    "TRANSIENT_RULE", "TrainConfig", "check_config", "load_checkpoint", "make_source", "read_metrics",
    "resolve_embeddings", "run_problems", "train", "transience",
]
