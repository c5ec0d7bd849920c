"""The toy model against a transformer run: the toy's L1, L2 fitted to the run's ICL and CIWL
evaluator losses (`compare.fit`), its report and figures (`compare.report`, `compare.plots`).

Above both models: it imports `toymodel` and reads a transformer run's metrics.csv itself (it
does not import `transformer`); neither model imports it.

The names below are loaded on first use (PEP 562), so that `compare.config` (`coop compare`'s
options, which the CLI reads to build itself) loads without jax or matplotlib.
"""

from __future__ import annotations

from runio.lazy import lazy_exports

_EXPORTS = {
    "config": ("PARAMS", "WEIGHTS", "Compare", "FitConfig"),
    "fit": ("CURVES", "Curves", "FitResult", "bounds", "load_curves", "phase_grid", "simulate_batch", "toy_on_sequences"),
    "report": ("fit_report", "write_report"),
}
__getattr__, __dir__, __all__, _WHERE = lazy_exports(__name__, _EXPORTS)
__all__ = ["fit", *__all__]  # `compare.fit` is the module (the fit itself is `compare.fit.fit`)
