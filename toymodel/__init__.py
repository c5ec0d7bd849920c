"""The strategy-coopetition toy model (Singh et al. 2025): exact dynamics, in float64.

    L = (L1 + mu1)(L2 + mu2) + alpha·C,  L1 = ½ agg((a*⊗b*⊗c* − a⊗b⊗c)²),
    L2 = ½ agg((d*⊗b*⊗c* − d⊗b⊗c)²),     C  = ½ agg((a⊗d)²).

The names below are loaded on first use (PEP 562), so that `toymodel.commands` (the commands'
options, which the CLI reads to build itself) loads without jax, sympy or matplotlib.
"""

from __future__ import annotations

from runio.lazy import lazy_exports

_EXPORTS = {
    "draws": ("PAPER_DIMS", "PAPER_SEED", "Draw", "load_init_file", "paper_draw", "save_init_file"),
    "dynamics": ("METHODS", "SPACES", "RunConfig", "Trajectory", "simulate"),
    "loss": ("AGGREGATES", "VECTOR_NAMES", "LossParams", "Vectors", "competition", "l1", "l2", "loss_terms", "total_loss"),
    "metrics": ("COLUMNS",),
    "outcomes": ("LEARNED", "OUTCOMES", "outcome_code", "outcome_name"),
    "runs": ("write_run",),
}
__getattr__, __dir__, __all__, _WHERE = lazy_exports(__name__, _EXPORTS)
