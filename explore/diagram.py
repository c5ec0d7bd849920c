"""The page's phase diagram: the (alpha, mu1) slice of `coop toy sweep`, computed by the sweep itself.

`toymodel.sweep.run_sweep` runs the grid (its compiled round kernels are cached across calls that
share steps, lr, dims, draw, aggregate and clamp: `toymodel.sweep._kernels_for`) into a scratch
folder, `toymodel.sweep.assemble` classifies every point (`toymodel.outcomes`), and
`toymodel.sweep.closed_form_lines` gives the closed-form boundaries that lie in the plane. The
same numbers as `coop toy sweep` with the options `explore.state.sweep_command` prints. The last
few slices are kept, so going back to a view is instant.
"""

from __future__ import annotations

import tempfile
import time
from collections import OrderedDict

import numpy as np

from toymodel.commands import Sweep
from toymodel.outcomes import OUTCOMES
from toymodel.plots import OUTCOME_COLORS
from toymodel.sweep import assemble, closed_form_lines, run_sweep

__all__ = ["slice_of", "KEPT"]

KEPT = 16  # slices remembered
_slices: OrderedDict = OrderedDict()


def slice_of(opts: Sweep) -> dict:
    """The outcome over the (alpha, mu1) grid of `opts` (its mu2 a single value): axes, outcome codes
    indexed by alpha then mu1, the class names and colours, the closed-form boundaries (x, y, label) and
    the seconds it took (0 when it was kept from before)."""
    config = opts.config()
    key = config.digest()
    if key in _slices:
        _slices.move_to_end(key)
        return {**_slices[key], "seconds": 0.0}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="coop-explore-") as folder:
        run_sweep(config, folder)
        res = assemble(config, [folder])
    out = {
        "alpha": np.asarray(config.alpha).tolist(), "mu1": np.asarray(config.mu1).tolist(),
        "outcome": res["outcome"][:, :, 0].tolist(), "outcomes": list(OUTCOMES), "colors": list(OUTCOME_COLORS),
        "boundaries": [{"x": np.asarray(x).tolist(), "y": np.asarray(y).tolist(), "label": label}
                       for x, y, label in closed_form_lines(config, ("alpha", "mu1"))],
        "seconds": time.perf_counter() - start,
    }
    _slices[key] = out
    while len(_slices) > KEPT:
        _slices.popitem(last=False)
    return out
