"""The allowed values of `TrainConfig`'s choice fields and the evaluators' names. Imports nothing,
so that the config (and the command line built from it) loads without jax."""

TRAIN_DISTS = ("bursty", "icl_only", "ciwl_only", "match_query")
EVALUATORS = ("train", "icl", "ciwl", "flip", "iwl")
FULL_ACCURACY = ("iwl",)  # scored over all K labels, not among the two in the context
CONTEXT_EXEMPLAR = ("replacement", "distinct")
ICL_LABELS = ("01", "other")
ICL_ONLY_LABELS = ("random", "eval")
POS_INITS = ("uniform", "normal")
SOURCES = ("clusters", "characters")
