"""The strategy-coopetition toy model (Singh et al. 2025): exact dynamics, in float64.

    L = (L1 + mu1)(L2 + mu2) + alpha·C,  L1 = ½ agg((a*⊗b*⊗c* − a⊗b⊗c)²),
    L2 = ½ agg((d*⊗b*⊗c* − d⊗b⊗c)²),     C  = ½ agg((a⊗d)²).
"""

from .draws import PAPER_DIMS, PAPER_SEED, Draw, load_init_file, paper_draw, save_init_file
from .dynamics import METHODS, SPACES, RunConfig, Trajectory, simulate
from .loss import AGGREGATES, VECTOR_NAMES, LossParams, Vectors, competition, l1, l2, loss_terms, total_loss
from .metrics import COLUMNS
from .outcomes import LEARNED, OUTCOMES, outcome_code, outcome_name
from .runs import write_run

__all__ = [
    "PAPER_DIMS", "PAPER_SEED", "Draw", "load_init_file", "paper_draw", "save_init_file",
    "METHODS", "SPACES", "RunConfig", "Trajectory", "simulate",
    "AGGREGATES", "VECTOR_NAMES", "LossParams", "Vectors", "competition", "l1", "l2", "loss_terms", "total_loss",
    "COLUMNS", "LEARNED", "OUTCOMES", "outcome_code", "outcome_name", "write_run",
]
