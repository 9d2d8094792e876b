"""Volatility estimators: formulas by hand, recovery of known parameters, the shared data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from crossmargin.errors import InputError
from crossmargin.market.loaders import load_bitstamp_daily, log_returns
from crossmargin.market.volatility import (
    DAILY,
    close_to_close_volatility,
    ewma_variance,
    ewma_volatility,
    garch_volatility,
    garman_klass_volatility,
    parkinson_volatility,
)
from tests.helpers import SHARED, needs_shared


def test_ewma_recursion_by_hand() -> None:
    """RiskMetrics Technical Document (1996) eq. 5.3: s2_t = lam s2_{t-1} + (1-lam) r_{t-1}^2."""
    r = [0.01, -0.02, 0.03]
    v = ewma_variance(r, lam=0.94, seed_window=2)
    seed = (0.01**2 + 0.02**2) / 2
    expected = [seed]
    for x in r:
        expected.append(0.94 * expected[-1] + 0.06 * x * x)
    np.testing.assert_allclose(v, expected, rtol=1e-14)
    assert ewma_volatility(r, DAILY, 0.94) == pytest.approx(
        math.sqrt(ewma_variance(r, 0.94)[-1] * 365), rel=1e-14
    )


def _gbm_bars(sigma_annual: float, n_bars: int, steps: int, seed: int) -> pd.DataFrame:
    """Daily OHLC bars from a driftless GBM sampled ``steps`` times a day."""
    rng = np.random.default_rng(seed)
    dt = 1.0 / (365 * steps)
    increments = rng.normal(
        -0.5 * sigma_annual**2 * dt, sigma_annual * math.sqrt(dt), (n_bars, steps)
    )
    log_path = np.cumsum(increments.ravel()).reshape(n_bars, steps)
    opens = np.concatenate([[0.0], log_path[:-1, -1]])
    prices = np.exp(np.concatenate([opens[:, None], log_path], axis=1)) * 100.0
    return pd.DataFrame(
        {
            "open": prices[:, 0],
            "high": prices.max(axis=1),
            "low": prices.min(axis=1),
            "close": prices[:, -1],
        }
    )


def test_range_estimators_recover_a_known_volatility() -> None:
    """For a GBM, Parkinson and Garman-Klass are unbiased up to discrete sampling of the range
    (Parkinson 1980; Garman and Klass 1980): with 1,440 samples a bar they land within 6 %."""
    bars = _gbm_bars(0.8, n_bars=3000, steps=1440, seed=7)
    assert parkinson_volatility(bars) == pytest.approx(0.8, rel=0.06)
    assert garman_klass_volatility(bars) == pytest.approx(0.8, rel=0.06)
    returns = np.log(bars["close"]).diff().dropna()
    assert close_to_close_volatility(returns) == pytest.approx(0.8, rel=0.05)


def test_parkinson_formula_by_hand() -> None:
    bars = pd.DataFrame({"high": [110.0, 105.0], "low": [100.0, 100.0]})
    expected = (math.log(1.1) ** 2 + math.log(1.05) ** 2) / 2 / (4 * math.log(2))
    assert parkinson_volatility(bars, periods_per_year=1) == pytest.approx(math.sqrt(expected))


def test_garch_recovers_simulated_parameters() -> None:
    """Simulate GARCH(1,1) with omega 2e-5, alpha 0.1, beta 0.85 (normal innovations, 4,000
    days) and fit it back; maximum likelihood recovers alpha and beta within 0.05."""
    rng = np.random.default_rng(3)
    omega, alpha, beta = 2e-5, 0.10, 0.85
    n = 4000
    r = np.empty(n)
    var = omega / (1 - alpha - beta)
    for t in range(n):
        r[t] = math.sqrt(var) * rng.standard_normal()
        var = omega + alpha * r[t] ** 2 + beta * var
    fit = garch_volatility(r, DAILY, dist="normal")
    assert fit.alpha == pytest.approx(alpha, abs=0.05)
    assert fit.beta == pytest.approx(beta, abs=0.05)
    assert fit.long_run_volatility == pytest.approx(math.sqrt(omega / 0.05 * 365), rel=0.25)


def test_bad_returns_are_refused() -> None:
    with pytest.raises(InputError, match=r"returns\[1\]: must be finite"):
        ewma_variance([0.01, math.nan, 0.02])
    with pytest.raises(InputError, match="at least 100"):
        garch_volatility(np.zeros(10))
    with pytest.raises(InputError, match="lam"):
        ewma_variance([0.1, 0.2], lam=1.0)
    with pytest.raises(InputError, match="high"):
        parkinson_volatility(pd.DataFrame({"high": [1.0, -1.0], "low": [1.0, 1.0]}))


@needs_shared
def test_estimators_on_real_btc_daily() -> None:
    """Bitstamp BTC daily 2014-11 .. 2020-01: every estimator lands in a plausible band and the
    GARCH fit is stationary with the high persistence typical of crypto."""
    btc = load_bitstamp_daily(SHARED / "bitstamp_btc_eth_ltc_usd_daily.csv")["BTC"]
    returns = log_returns(btc["close"])
    figures = {
        "close": close_to_close_volatility(returns),
        "ewma": ewma_volatility(returns),
        "parkinson": parkinson_volatility(btc),
        "garman_klass": garman_klass_volatility(btc),
    }
    for name, vol in figures.items():
        assert 0.2 < vol < 1.5, (name, vol)
    fit = garch_volatility(returns.to_numpy())
    assert 0.8 < fit.alpha + fit.beta < 1.0
    assert fit.nu is not None and fit.nu < 10  # fat tails
    assert 0.3 < fit.volatility_next < 1.5
