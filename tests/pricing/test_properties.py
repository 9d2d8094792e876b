"""Properties of the pricer on random inputs (hypothesis): parity, bounds, monotonicity in vol,
implied-vol round trip, SVI slices built to be arbitrage-free pass the butterfly check."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossmargin.pricing import SviSurface, black76, implied_vol
from tests.pricing.test_svi import ssvi_slice

PROPERTY_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

forwards = st.floats(1e-3, 1e6)
log_moneyness = st.floats(-2.0, 2.0)
vols = st.floats(0.01, 5.0)
expiries = st.floats(1.0 / 365.0, 10.0)
discounts = st.floats(0.5, 1.05)


@PROPERTY_SETTINGS
@given(f=forwards, x=log_moneyness, vol=vols, t=expiries, df=discounts)
def test_put_call_parity(f: float, x: float, vol: float, t: float, df: float) -> None:
    k = f * math.exp(x)
    call = black76(f, k, vol, t, df, True)
    put = black76(f, k, vol, t, df, False)
    scale = df * max(f, k)
    assert abs(float(call.price - put.price) - df * (f - k)) <= 1e-14 * scale
    assert abs(float(call.delta - put.delta) - df) <= 1e-14
    assert float(call.gamma) == float(put.gamma) and float(call.vega) == float(put.vega)


@PROPERTY_SETTINGS
@given(f=forwards, x=log_moneyness, vol=vols, t=expiries, df=discounts, is_call=st.booleans())
def test_price_within_no_arbitrage_bounds(
    f: float, x: float, vol: float, t: float, df: float, is_call: bool
) -> None:
    k = f * math.exp(x)
    values = black76(f, k, vol, t, df, is_call)
    phi = 1.0 if is_call else -1.0
    price = float(values.price)
    assert df * max(phi * (f - k), 0.0) <= price <= df * (f if is_call else k)
    assert 0.0 <= phi * float(values.delta) <= df * (1.0 + 1e-15)
    assert float(values.gamma) >= 0.0 and float(values.vega) >= 0.0


@PROPERTY_SETTINGS
@given(f=forwards, x=log_moneyness, vol=vols, bump=st.floats(1e-3, 1.0), t=expiries)
def test_price_increases_with_vol(f: float, x: float, vol: float, bump: float, t: float) -> None:
    k = f * math.exp(x)
    low, high = black76(f, k, [vol, vol * (1.0 + bump)], t, 1.0, True).price
    assert high >= low


@PROPERTY_SETTINGS
@given(f=forwards, x=st.floats(-1.5, 1.5), vol=st.floats(0.05, 3.0), t=expiries, df=discounts)
def test_implied_vol_round_trip(f: float, x: float, vol: float, t: float, df: float) -> None:
    k = f * math.exp(x)
    is_call = x > 0.0  # the out-of-the-money side, where the price carries the vol
    values = black76(f, k, vol, t, df, is_call)
    price = float(values.price)
    if price < 1e-10 * df * f:  # vol not determined by a double-precision price
        return
    iv = float(implied_vol(price, f, k, t, df, is_call))
    assert abs(iv - vol) <= 1e-9 * vol + 1e-15 * price / float(values.vega)


@settings(max_examples=100, deadline=None)
@given(
    theta=st.floats(0.005, 1.5),
    phi_scale=st.floats(0.05, 1.0),
    rho=st.floats(-0.95, 0.95),
    t=expiries,
)
def test_ssvi_slices_meeting_gatheral_jacquier_conditions_are_butterfly_free(
    theta: float, phi_scale: float, rho: float, t: float
) -> None:
    """G&J 2014 Theorem 4.2: theta phi (1 + |rho|) < 4 and theta phi^2 (1 + |rho|) <= 4 rule
    out butterfly arbitrage; phi is drawn as a fraction of the largest value allowed."""
    phi_max = min(4.0 / (theta * (1.0 + abs(rho))), math.sqrt(4.0 / (theta * (1.0 + abs(rho)))))
    phi = phi_scale * phi_max * (1.0 - 1e-9)
    piece = ssvi_slice(t, theta, phi, rho)
    SviSurface([piece])  # the check passes
    k = np.linspace(-8.0, 8.0, 4001)
    assert np.all(piece.g(k) >= -1e-12)
