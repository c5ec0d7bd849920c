"""The 2-layer attention-only transformer on bursty sequences (RESEARCH.md section 3).

Modules, lowest first: choices (the allowed values of the config's choice fields); data (exemplar
sources, training distributions, evaluators); characters (paper-like exemplars: characters,
variants, drawings); model (the transformer with named activations); evaluate (in-context
accuracy and loss); config (TrainConfig, its validation, the model's parts for clamping and
grafting); checkpoints (run directories on disk); outcomes (transience, the paper's signatures);
train (the scanned training loop, resume); presets (`faithful`, `cpu`, `paper`); experiments (one
run per seed, grids); readout (how Layer 2 reads Layer 1); analysis (progress measures, ablation,
grafting, re-evaluation); datareport (what an exemplar source gives before training); plots
(their figures).

Import the modules themselves (`from transformer.train import train`): this package's `__init__`
imports nothing, so `transformer.config` and `transformer.presets` (what the CLI reads to build
its options) load without jax, and `import transformer.train as t` is the module.
"""
