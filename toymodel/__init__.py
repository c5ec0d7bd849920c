"""The strategy-coopetition toy model (Singh et al. 2025): exact dynamics, in float64.

    L = (L1 + mu1)(L2 + mu2) + alpha·C,  L1 = ½ agg((a*⊗b*⊗c* − a⊗b⊗c)²),
    L2 = ½ agg((d*⊗b*⊗c* − d⊗b⊗c)²),     C  = ½ agg((a⊗d)²).

One concept per module: `loss` (the loss from the tensors: `LossParams`, `Vectors`), `precision`
(float64 without changing JAX's defaults), `draws` (the paper's random draw, init files), `reduced`
(the exact reduced dynamics, derived with sympy), `kernel` (the training loop: step, fold, scan),
`clamp` (coordinates held at their target), `metrics` (the columns tracked along a trajectory),
`outcomes` (outcome classes and their thresholds), `dynamics` (`simulate`: gd, optax optimisers,
gradient flow; `RunConfig`, `Trajectory`), `runs` (a run's files on disk), `sweep` (the phase
diagram over (alpha, mu1, mu2)), `analysis` (fixed points and their stability), `portrait` (phase
portraits), `plots` (the figures), `commands` (the `coop toy` commands' options and calls).

Import the modules themselves (`from toymodel.dynamics import simulate`): this package's
`__init__` imports nothing, so `toymodel.commands` (what the CLI reads to build itself) loads
without jax, sympy or matplotlib.
"""
