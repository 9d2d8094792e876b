"""Black-76 and Black-Scholes against QuantLib on issue #3's grid, calls and puts, discounted.

References: ``ql.blackFormula`` (price), ``ql.blackFormulaAssetItmProbability`` (N(phi d1), so
delta = df * phi * that), ``ql.BlackCalculator`` (deltaForward, gammaForward, vega(T),
theta(spot, T), and delta/gamma with respect to the spot), and a full
``ql.AnalyticEuropeanEngine`` on flat curves for Black-Scholes (NPV, delta, gamma, vega, theta,
thetaPerDay). Agreement: 1e-10 relative, or 1e-12 absolute times the quantity's scale
(forward for price, vega and theta; 1 for delta; 1/forward for gamma).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from crossmargin.pricing import black76, black_scholes
from tests.pricing.helpers import assert_close, quantlib_grid

ql = pytest.importorskip("QuantLib")


def _ql_type(is_call: bool) -> int:
    return int(ql.Option.Call if is_call else ql.Option.Put)


def test_black76_price_and_greeks_match_quantlib_on_the_grid() -> None:
    g = quantlib_grid()
    values = black76(g["forward"], g["strike"], g["vol"], g["t_yrs"], g["df"], g["is_call"])
    n = g["forward"].size
    ref = {key: np.empty(n) for key in ("price", "itm_delta", "delta", "gamma", "vega", "theta")}
    for i in range(n):
        f, k, t, df = (float(g[key][i]) for key in ("forward", "strike", "t_yrs", "df"))
        std = float(g["vol"][i]) * math.sqrt(t)
        option_type = _ql_type(bool(g["is_call"][i]))
        ref["price"][i] = ql.blackFormula(option_type, k, f, std, df)
        phi = 1.0 if g["is_call"][i] else -1.0
        itm = ql.blackFormulaAssetItmProbability(option_type, k, f, std)
        ref["itm_delta"][i] = df * phi * itm
        calc = ql.BlackCalculator(ql.PlainVanillaPayoff(option_type, k), f, std, df)
        ref["delta"][i] = calc.deltaForward()
        ref["gamma"][i] = calc.gammaForward()
        ref["vega"][i] = calc.vega(t)
        # QuantLib's theta(spot, T) at spot = forward (no carry) is the Black-76 theta with the
        # rate -ln(df)/T held fixed: -(ln(df) V + sigma^2 T F^2 Gamma / 2) / T
        ref["theta"][i] = calc.theta(f, t)
    f = g["forward"]
    assert_close("price", values.price, ref["price"], f)
    assert_close("vega", values.vega, ref["vega"], f)
    assert_close("delta (blackFormulaAssetItmProbability)", values.delta, ref["itm_delta"], 1.0)
    assert_close("delta", values.delta, ref["delta"], 1.0)
    assert_close("gamma", values.gamma, ref["gamma"], 1.0 / f)
    assert_close("theta", values.theta_per_year, ref["theta"], f)


def test_black_scholes_matches_quantlib_black_calculator_on_the_grid() -> None:
    g = quantlib_grid()
    spot = g["forward"]
    rate = np.where(g["df"] < 1.0, 0.05, -0.01)  # a positive and a negative rate
    div_yield = np.where(g["is_call"], 0.02, 0.0)
    values = black_scholes(
        spot, g["strike"], g["vol"], g["t_yrs"], rate, div_yield, is_call=g["is_call"]
    )
    n = spot.size
    ref = {key: np.empty(n) for key in ("price", "delta", "gamma", "vega", "theta")}
    for i in range(n):
        s, k, t = float(spot[i]), float(g["strike"][i]), float(g["t_yrs"][i])
        r, q = float(rate[i]), float(div_yield[i])
        forward, df = s * math.exp((r - q) * t), math.exp(-r * t)
        std = float(g["vol"][i]) * math.sqrt(t)
        option_type = _ql_type(bool(g["is_call"][i]))
        calc = ql.BlackCalculator(ql.PlainVanillaPayoff(option_type, k), forward, std, df)
        ref["price"][i] = calc.value()
        ref["delta"][i] = calc.delta(s)  # with respect to the spot
        ref["gamma"][i] = calc.gamma(s)
        ref["vega"][i] = calc.vega(t)
        ref["theta"][i] = calc.theta(s, t)  # at fixed spot
    assert_close("price", values.price, ref["price"], spot)
    assert_close("spot delta", values.delta, ref["delta"], 1.0)
    assert_close("spot gamma", values.gamma, ref["gamma"], 1.0 / spot)
    assert_close("vega", values.vega, ref["vega"], spot)
    assert_close("theta", values.theta_per_year, ref["theta"], spot)


@pytest.mark.parametrize("is_call", [True, False])
@pytest.mark.parametrize(("strike", "days", "vol"), [(90.0, 30, 0.6), (125.0, 365, 1.2)])
def test_black_scholes_matches_quantlib_analytic_european_engine(
    is_call: bool, strike: float, days: int, vol: float
) -> None:
    """Full QuantLib engine on flat curves, Actual/365F: also pins theta per day = theta/365."""
    spot, rate, div_yield = 100.0, 0.04, 0.015
    today = ql.Date(2, ql.January, 2025)
    ql.Settings.instance().evaluationDate = today
    day_count = ql.Actual365Fixed()
    process = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(spot)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, div_yield, day_count)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, rate, day_count)),
        ql.BlackVolTermStructureHandle(
            ql.BlackConstantVol(today, ql.NullCalendar(), vol, day_count)
        ),
    )
    option = ql.VanillaOption(
        ql.PlainVanillaPayoff(_ql_type(is_call), strike), ql.EuropeanExercise(today + days)
    )
    option.setPricingEngine(ql.AnalyticEuropeanEngine(process))
    values = black_scholes(spot, strike, vol, days / 365.0, rate, div_yield, is_call)
    assert float(values.price) == pytest.approx(option.NPV(), rel=1e-10)
    assert float(values.delta) == pytest.approx(option.delta(), rel=1e-10)
    assert float(values.gamma) == pytest.approx(option.gamma(), rel=1e-10)
    assert float(values.vega) == pytest.approx(option.vega(), rel=1e-10)  # per 1.0 of vol
    assert float(values.theta_per_year) == pytest.approx(option.theta(), rel=1e-10)
    assert float(values.theta_per_day) == pytest.approx(option.thetaPerDay(), rel=1e-10)
