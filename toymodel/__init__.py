"""The strategy-coopetition toy model (Singh et al. 2025): exact dynamics, in float64.

    L = (L1 + mu1)(L2 + mu2) + alpha·C,  L1 = ½ agg((a*⊗b*⊗c* − a⊗b⊗c)²),
    L2 = ½ agg((d*⊗b*⊗c* − d⊗b⊗c)²),     C  = ½ agg((a⊗d)²).

The names below are loaded on first use (PEP 562), so that `toymodel.commands` (the commands'
options, which the CLI reads to build itself) loads without jax, sympy or matplotlib.
"""

from __future__ import annotations

import importlib
import importlib.util

_EXPORTS = {
    "draws": ("PAPER_DIMS", "PAPER_SEED", "Draw", "load_init_file", "paper_draw", "save_init_file"),
    "dynamics": ("METHODS", "SPACES", "RunConfig", "Trajectory", "simulate"),
    "loss": ("AGGREGATES", "VECTOR_NAMES", "LossParams", "Vectors", "competition", "l1", "l2", "loss_terms", "total_loss"),
    "metrics": ("COLUMNS",),
    "outcomes": ("LEARNED", "OUTCOMES", "outcome_code", "outcome_name"),
    "runs": ("write_run",),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = list(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    elif importlib.util.find_spec(f"{__name__}.{name}") is not None:  # a submodule not imported yet
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_WHERE))
