"""Implied vol: convergence on a dense grid, QuantLib's solver, and the undefined cases."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from crossmargin.pricing import (
    ExpiredOptionError,
    ImpliedVolUndefinedError,
    PricingInputError,
    black76,
    implied_vol,
)

# ln(K/F) from -3 to 3 (K/F 0.05 ... 20), one hour to ten years, 1% to 500% vol
LOG_MONEYNESS = np.linspace(-3.0, 3.0, 61)
EXPIRIES_YRS = (1.0 / (365.0 * 24.0), 1.0 / 365.0, 7.0 / 365.0, 0.25, 1.0, 3.0, 10.0)
VOLS = (0.01, 0.05, 0.1, 0.2, 0.4, 0.8, 1.5, 3.0, 5.0)


def _dense_grid() -> tuple[np.ndarray, ...]:
    rows = np.array(
        list(itertools.product(LOG_MONEYNESS, EXPIRIES_YRS, VOLS, (1.0, 0.9), (1.0, 0.0)))
    )
    forward = np.full(len(rows), 100.0)
    strike = forward * np.exp(rows[:, 0])
    return forward, strike, rows[:, 1], rows[:, 2], rows[:, 3], rows[:, 4] > 0.0


def test_implied_vol_converges_on_a_dense_grid_to_1e_12_in_price() -> None:
    f, k, t, vol, df, is_call = _dense_grid()
    price = black76(f, k, vol, t, df, is_call).price
    phi = np.where(is_call, 1.0, -1.0)
    lower = df * np.maximum(phi * (f - k), 0.0)
    upper = df * np.where(is_call, f, k)
    # strictly inside the bounds, time value resolvable in double (else: the error test below)
    inside = (price - lower > 1e-300 * np.sqrt(f * k) * df) & (price < upper)
    assert inside.sum() > 8000  # deep ITM/OTM and tiny T rows are in
    f, k, t, vol, df, is_call, price = (a[inside] for a in (f, k, t, vol, df, is_call, price))
    iv = implied_vol(price, f, k, t, df, is_call)
    assert np.all(np.isfinite(iv)) and np.all(iv > 0.0)
    repriced = black76(f, k, iv, t, df, is_call).price
    residual = np.abs(repriced - price)
    # 1e-12 relative, or 1e-12 F df absolute: far out of the money F N(d1) - K N(d2) cancels,
    # and at the money with a tiny total vol (1e-4) the price is F minus tails summing to ~F; the
    # pricer's own rounding there is ~1e-16 max(F, K) (issue #3's accuracy target)
    ok = (residual <= 1e-12 * price) | (residual <= 1e-12 * f * df)
    assert ok.all(), np.flatnonzero(~ok)[:5]
    assert np.all(residual <= 1e-14 * f * df + 1e-12 * price)
    # where the vol is well determined (vega not negligible), it is recovered too
    vega = black76(f, k, vol, t, df, is_call).vega
    determined = vega * vol > 1e-6 * price
    np.testing.assert_allclose(iv[determined], vol[determined], rtol=1e-8)


def test_implied_vol_matches_quantlib_black_formula_implied_std_dev() -> None:
    ql = pytest.importorskip("QuantLib")
    cases = [
        (100.0, 80.0, 0.5, 0.9, True),
        (100.0, 140.0, 2.0, 0.97, False),
        (3000.0, 3100.0, 0.05, 1.0, True),
    ]
    for f, k, t, df, is_call in cases:
        price = float(black76(f, k, 0.73, t, df, is_call).price)
        option_type = ql.Option.Call if is_call else ql.Option.Put
        std = ql.blackFormulaImpliedStdDev(option_type, k, f, price, df, 0.0, 0.5, 1e-14, 1000)
        assert float(implied_vol(price, f, k, t, df, is_call)) == pytest.approx(
            std / math.sqrt(t), rel=1e-10
        )


def test_prices_outside_the_no_arbitrage_bounds_raise_naming_row_and_bound() -> None:
    f, k, df = 100.0, 90.0, 0.95
    intrinsic = df * (f - k)
    with pytest.raises(ImpliedVolUndefinedError, match=r"price\[1\].*lower") as info:
        implied_vol([12.0, intrinsic * 0.999], f, k, 1.0, df, True)  # below intrinsic
    assert info.value.index == 1 and info.value.bound == "lower"
    assert info.value.bound_value == pytest.approx(intrinsic)
    with pytest.raises(ImpliedVolUndefinedError, match="lower"):
        implied_vol(intrinsic, f, k, 1.0, df, True)  # at intrinsic: zero vol, not > 0
    with pytest.raises(ImpliedVolUndefinedError, match=r"price\[0\].*upper") as info:
        implied_vol([df * f], f, k, 1.0, df, True)  # a call is worth less than df*F
    assert info.value.bound == "upper" and info.value.bound_value == pytest.approx(df * f)
    with pytest.raises(ImpliedVolUndefinedError, match="upper"):
        implied_vol(df * k * 1.01, f, k, 1.0, df, False)  # a put is worth less than df*K
    with pytest.raises(ImpliedVolUndefinedError, match="lower"):
        implied_vol(0.0, f, 200.0, 1.0, df, True)
    with pytest.raises(ImpliedVolUndefinedError, match="too small to resolve"):
        implied_vol(1e-310, f, 200.0, 1.0, df, True)


def test_implied_vol_input_errors() -> None:
    with pytest.raises(PricingInputError, match=r"price\[0\]"):
        implied_vol([math.nan], 100.0, 100.0, 1.0)
    with pytest.raises(PricingInputError, match=r"strike"):
        implied_vol(5.0, 100.0, -1.0, 1.0)
    with pytest.raises(ExpiredOptionError, match=r"t_yrs"):
        implied_vol(5.0, 100.0, 100.0, 0.0)


def test_implied_vol_at_tiny_and_floored_expiries() -> None:
    # one minute to expiry, at the money and slightly away
    t = 1.0 / (365.0 * 1440.0)
    for k in (100.0, 100.1, 99.9):
        price = float(black76(100.0, k, 0.9, t, 1.0, True).price)
        assert float(implied_vol(price, 100.0, k, t)) == pytest.approx(0.9, rel=1e-9)
