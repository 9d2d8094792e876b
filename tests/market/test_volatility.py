"""Volatility estimators: formulas by hand, recovery of known parameters, the shared data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from crossmargin.errors import InputError
from crossmargin.market import volatility
from crossmargin.market.loaders import load_bitstamp_daily, log_returns
from crossmargin.market.volatility import (
    DAILY,
    INTEGRATED_TOL,
    close_to_close_volatility,
    ewma_variance,
    ewma_volatility,
    garch_long_run_variance,
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
    assert not fit.integrated


def test_long_run_variance_at_the_integrated_boundary() -> None:
    """alpha + beta at 1 up to rounding (one ulp above made the old formula inf, one below gave
    5.5e6 %/yr), or above 1: IGARCH, long run = the sample variance; 10 x the tolerance below 1:
    stationary, the textbook omega / (1 - alpha - beta)."""
    r = np.random.default_rng(5).normal(0.0, 0.03, 500)
    sample = float(np.var(r, ddof=1))
    boundary = [(0.13, 0.87), (0.13, 0.8700000000000002), (0.1311611916649422, 0.8688388083350576)]
    for alpha, beta in [*boundary, (0.2, 0.9)]:
        variance, integrated = garch_long_run_variance(1e-5, alpha, beta, r)
        assert integrated
        assert variance == sample
    persistence = 1.0 - 10 * INTEGRATED_TOL
    variance, integrated = garch_long_run_variance(1e-5, 0.1, persistence - 0.1, r)
    assert not integrated
    assert variance == pytest.approx(1e-5 / (10 * INTEGRATED_TOL), rel=1e-9)


class _FakeResult:
    """What ``arch`` returns, reduced to the fields garch_volatility reads."""

    def __init__(self, params: dict[str, float], next_variance: float) -> None:
        self.params = pd.Series(params)
        self.loglikelihood = -1234.5
        self._next = next_variance

    def forecast(self, horizon: int, reindex: bool) -> object:
        frame = pd.DataFrame({"h.1": [self._next]})
        return type("Forecast", (), {"variance": frame})()


def test_garch_fit_on_the_boundary_is_flagged_integrated(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fit with alpha + beta one ulp above 1 (arch 8 / scipy 1.17 on Bitstamp BTC daily) is
    reported as IGARCH with a finite long-run volatility: the sample one."""
    import arch

    params = {"mu": 0.16, "omega": 0.18, "alpha[1]": 0.13, "beta[1]": 0.8700000000000002, "nu": 3.2}
    assert params["alpha[1]"] + params["beta[1]"] == 1.0000000000000002
    fit_result = _FakeResult(params, next_variance=9.0)  # returns x 100 squared: 3 % a day

    class _Model:
        def fit(self, **_: object) -> _FakeResult:
            return fit_result

    monkeypatch.setattr(arch, "arch_model", lambda *_, **__: _Model())
    r = np.random.default_rng(2).normal(0.0, 0.04, 400)
    fit = volatility.garch_volatility(r)
    assert fit.integrated
    assert fit.persistence > 1.0
    assert math.isfinite(fit.long_run_volatility)
    assert fit.long_run_volatility == pytest.approx(close_to_close_volatility(r), rel=1e-12)
    assert fit.volatility_next == pytest.approx(0.03 * math.sqrt(365), rel=1e-12)
    assert fit.omega == pytest.approx(0.18e-4) and fit.nu == pytest.approx(3.2)


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
    GARCH fit has the persistence typical of crypto: on the alpha + beta <= 1 boundary (the
    profile likelihood rises all the way to 1), so it is reported as IGARCH with the sample
    volatility as its long-run figure."""
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
    assert fit.integrated
    assert fit.persistence == pytest.approx(1.0, abs=INTEGRATED_TOL)
    assert fit.long_run_volatility == pytest.approx(figures["close"], rel=1e-12)
    assert fit.nu is not None and fit.nu < 10  # fat tails
    assert 0.3 < fit.volatility_next < 1.5
