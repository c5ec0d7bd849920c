"""The 2-layer attention-only transformer on bursty sequences (RESEARCH.md section 3).

Modules, lowest first: choices (the allowed values of the config's choice fields); data (exemplar
sources, training distributions, evaluators); model (the transformer with named activations);
evaluate (in-context accuracy and loss); config (TrainConfig, its validation, the model's parts for
clamping and grafting); checkpoints (run directories on disk); outcomes (transience, the paper's
signatures); train (the scanned training loop, resume); presets (`faithful`, `cpu`, `paper`);
experiments (one run per seed); analysis (progress measures, ablation, grafting, re-evaluation);
plots (their figures; imported only where a figure is drawn).

The names below are loaded on first use (PEP 562), so that `transformer.config` and
`transformer.presets` (what the CLI reads to build its options) load without jax: `coop --help`
stays fast. `from transformer import train` is the training function, as before.
"""

from __future__ import annotations

import sys
import types

from runio.lazy import lazy_exports

_EXPORTS = {
    "checkpoints": ("COLUMNS", "donor_problems", "load_checkpoint", "read_metrics", "run_problems"),
    "config": ("GROUPS", "TrainConfig", "check_config", "in_layer", "make_eval_sets", "make_source", "parse_layer",
               "resolve_embeddings", "validate_config"),
    "data": ("EVALUATORS", "TRAIN_DISTS", "Batch", "Exemplars", "Sampling", "eval_sets", "from_table", "gaussian_clusters",
             "load_embeddings", "sample"),
    "evaluate": ("cross_entropy", "evaluate_all", "full_correct", "in_context_correct", "score"),
    "model": ("ModelConfig", "forward", "init_params", "label_table_name"),
    "outcomes": ("SIGNATURES", "TRANSIENT_RULE", "signatures", "transience"),
    "presets": ("PRESETS",),
    "train": ("train",),
}
__getattr__, __dir__, __all__, _WHERE = lazy_exports(__name__, _EXPORTS)


class _Package(types.ModuleType):
    """The import system binds a loaded submodule to its name in the package; where an exported
    name is also a submodule's (`train`), the package keeps the exported object instead."""

    def __setattr__(self, name, value):
        if isinstance(value, types.ModuleType) and _WHERE.get(name) == name:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
