"""The toy model against a run's curves: the toy's L1, L2 fitted to a run's ICL and CIWL evaluator
curves, its verdicts, report and figures. One concept per module: `curves` (reading any run),
`maps` (loss -> curve links, the population average), `toy` (the toy with a speed ratio),
`screen` (the search box and the screen of starts), `objective` (residuals, Jacobian, covariance),
`fit` (the fit), `result` (its result and verdicts), `predict` (held-out prediction), `atlas`
(many runs), `report` and `plots` (what `coop compare` writes), `config` (its options).

Above both models: it imports `toymodel` and `transformer.outcomes` (the outcome rule) and reads a
run's metrics itself; neither model imports it. Import the modules themselves (`from compare.fit
import fit`): this package's `__init__` imports nothing, so `compare.config` loads without jax.
"""
