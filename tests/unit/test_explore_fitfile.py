"""The explorer reads a fit made with `--interaction icl-on-ciwl` as compare maps it: ICL's single state
dilutes the CIWL margin, and only the CIWL curve."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import ndtr, ndtri

from explore.fitfile import read_fit
from runio.options import ConfigError


def _fit_json(interaction: str | None, kappa: float | None) -> str:
    params = dict(alpha=0.05, mu1=0.3, mu2=0.001, tau=200.0, nd_ratio=8.0, sigma1=0.0, sigma2=0.0,
                  A1=1.0, B1=0.15, A2=1.0, B2=0.05)
    if kappa is not None:
        params["kappa"] = kappa
    config = dict(link="probit", draw_seed=7, dims=[20, 20, 20, 160], lr=1.0)
    if interaction is not None:
        config["interaction"] = interaction
    return json.dumps({"parameters": {k: {"value": v} for k, v in params.items()}, "config": config,
                       "toy": {"steps": 100, "l1_ref": 2.0, "l2_ref": 4.0}, "data": {"losses": "error"},
                       "residuals": {"sequences": [200.0, 400.0], "icl_measured": [0.4, 0.3], "ciwl_measured": [0.4, 0.2]}})


STEPS = np.arange(5.0)
L1 = np.array([2.0, 1.0, 0.5, 0.02, 2.0])  # ICL absent, growing, built, absent again
L2 = np.array([4.0, 3.0, 1.0, 0.5, 0.1])


def test_the_ciwl_margin_is_diluted_by_icls_strength():
    plain = read_fit(_fit_json("none", 0.0)).mapped(STEPS, L1, L2)
    diluted = read_fit(_fit_json("icl-on-ciwl", 3.0)).mapped(STEPS, L1, L2)
    np.testing.assert_array_equal(diluted["icl"], plain["icl"])
    u1, u2 = 1 - np.sqrt(L1 / 2.0), 1 - np.sqrt(L2 / 4.0)
    expected = ndtr(ndtri(0.05) * u2 / np.sqrt(1 + 9.0 * u1**2))  # one speed (sigma2 0): the formula itself
    np.testing.assert_allclose(diluted["ciwl"], expected, rtol=1e-12)
    assert diluted["ciwl"][0] == pytest.approx(0.5) and diluted["ciwl"][4] == pytest.approx(plain["ciwl"][4])
    assert diluted["ciwl"][2] > plain["ciwl"][2] + 0.05  # while ICL is built, CIWL errs more


def test_kappa_is_read_only_with_the_interaction():
    assert read_fit(_fit_json(None, None))["params"]["kappa"] == 0.0  # a fit without the option
    with pytest.raises(ConfigError, match="parameters.kappa"):
        read_fit(_fit_json("icl-on-ciwl", None))
    with pytest.raises(ConfigError, match="config.interaction"):
        read_fit(_fit_json("both", 1.0))
