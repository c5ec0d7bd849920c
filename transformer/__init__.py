"""The 2-layer attention-only transformer on bursty sequences (RESEARCH.md section 3).

Modules, lowest first: data (exemplar sources, training distributions, evaluators); model (the
transformer with named activations); evaluate (in-context accuracy and loss); config (TrainConfig,
its validation, the model's parts for clamping and grafting); checkpoints (run directories on
disk); outcomes (transience, the paper's signatures); train (the scanned training loop, resume);
presets (`faithful`, `cpu`, `paper`); experiments (one run per seed); analysis (progress measures,
ablation, grafting, re-evaluation); plots (their figures; imported only where a figure is drawn).
"""

from transformer.checkpoints import COLUMNS, donor_problems, load_checkpoint, read_metrics, run_problems
from transformer.config import GROUPS, TrainConfig, check_config, in_layer, make_eval_sets, make_source, parse_layer, resolve_embeddings
from transformer.data import (
    EVALUATORS,
    TRAIN_DISTS,
    Batch,
    Exemplars,
    Sampling,
    eval_sets,
    from_table,
    gaussian_clusters,
    load_embeddings,
    sample,
)
from transformer.evaluate import cross_entropy, evaluate_all, full_correct, in_context_correct, score
from transformer.model import ModelConfig, forward, init_params, label_table_name
from transformer.outcomes import SIGNATURES, TRANSIENT_RULE, signatures, transience
from transformer.presets import PRESETS
from transformer.train import train

__all__ = [
    "COLUMNS", "donor_problems", "load_checkpoint", "read_metrics", "run_problems",
    "GROUPS", "TrainConfig", "check_config", "in_layer", "make_eval_sets", "make_source", "parse_layer", "resolve_embeddings",
    "EVALUATORS", "TRAIN_DISTS", "Batch", "Exemplars", "Sampling", "eval_sets", "from_table", "gaussian_clusters",
    "load_embeddings", "sample", "cross_entropy", "evaluate_all", "full_correct", "in_context_correct", "score",
    "ModelConfig", "forward", "init_params", "label_table_name", "SIGNATURES", "TRANSIENT_RULE", "signatures",
    "transience", "PRESETS", "train",
]
