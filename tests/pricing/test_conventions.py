"""The known traps of option pricing, each pinned by its own test.

Theta per day vs per year, vega per vol point vs per 1.0, Black-76 discounting (df multiplies
the price and every Greek), time to expiry floored never capped, expired options, invalid input
naming field, row and value (never a NaN), and the Greeks as derivatives of the price (central
finite differences).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from crossmargin.errors import InputError
from crossmargin.pricing import (
    DAYS_PER_YEAR,
    T_FLOOR_YRS,
    ExpiredOptionError,
    PricingInputError,
    black76,
    black_scholes,
)


def test_theta_per_day_is_theta_per_year_over_365_calendar_days() -> None:
    values = black76(100.0, 105.0, 0.6, 0.5, 0.98, True)
    assert DAYS_PER_YEAR == 365.0
    assert float(values.theta_per_day) == pytest.approx(float(values.theta_per_year) / 365.0)
    # and it is the one-day decay: price in one day minus price today (forward, rate fixed)
    rate = -math.log(0.98) / 0.5
    t_next = 0.5 - 1.0 / 365.0
    tomorrow = black76(100.0, 105.0, 0.6, t_next, math.exp(-rate * t_next), True)
    decay = float(tomorrow.price - values.price)
    assert decay == pytest.approx(float(values.theta_per_day), rel=2e-3)
    assert float(values.theta_per_year) < 0.0  # a long option loses value as time passes


def test_vega_per_vol_point_is_vega_per_unit_vol_over_100() -> None:
    values = black76(100.0, 100.0, 0.8, 0.25)
    assert float(values.vega_per_vol_point) == pytest.approx(float(values.vega) * 0.01)
    one_point_up = black76(100.0, 100.0, 0.81, 0.25)
    assert float(one_point_up.price - values.price) == pytest.approx(
        float(values.vega_per_vol_point), rel=1e-3
    )
    # ATM vega per 1.0 of vol is about F sqrt(T) / sqrt(2 pi), i.e. ~20 here, not ~0.2
    assert 19.0 < float(values.vega) < 20.5


@pytest.mark.parametrize("is_call", [True, False])
def test_black76_discount_factor_multiplies_price_and_every_greek(is_call: bool) -> None:
    undiscounted = black76(100.0, 110.0, 0.7, 2.0, 1.0, is_call)
    discounted = black76(100.0, 110.0, 0.7, 2.0, 0.9, is_call)
    for name in ("price", "delta", "gamma", "vega"):
        assert float(getattr(discounted, name)) == pytest.approx(
            0.9 * float(getattr(undiscounted, name)), rel=1e-14
        ), name
    # theta also carries the rate implied by df: r V on top of the discounted decay
    rate = -math.log(0.9) / 2.0
    expected = 0.9 * float(undiscounted.theta_per_year) + rate * float(discounted.price)
    assert float(discounted.theta_per_year) == pytest.approx(expected, rel=1e-13)


def test_time_to_expiry_is_floored_at_one_second_never_capped() -> None:
    assert math.isclose(T_FLOOR_YRS, 1.0 / (365.0 * 86400.0), rel_tol=1e-15)
    tiny = black76(100.0, 100.0, 0.5, [1e-15, 1e-12, T_FLOOR_YRS])
    assert np.all(tiny.price == tiny.price[2])  # floored to the same one second
    assert np.all(tiny.price > 0.0) and np.all(np.isfinite(tiny.gamma))
    # no cap: 30 and 300 years differ, and very long expiries still price (call -> df * F)
    long = black76(100.0, 100.0, 0.5, [30.0, 300.0, 1e6])
    assert long.price[0] < long.price[1] < long.price[2] <= 100.0
    assert long.price[2] == pytest.approx(100.0, rel=1e-12)


def test_expired_options_raise_unless_intrinsic_mode() -> None:
    with pytest.raises(ExpiredOptionError, match=r"t_yrs\[1\].*allow_expired") as info:
        black76([100.0, 100.0], 90.0, 0.5, [0.1, 0.0])
    assert info.value.index == 1 and info.value.value == 0.0
    with pytest.raises(ExpiredOptionError):
        black_scholes(100.0, 90.0, 0.5, -1.0)
    values = black76(
        [100.0, 100.0, 100.0, 100.0],
        [90.0, 110.0, 100.0, 90.0],
        0.5,
        [0.0, -0.1, 0.0, 0.5],
        0.95,
        [True, False, True, True],
        allow_expired=True,
    )
    np.testing.assert_allclose(values.price[:3], [9.5, 9.5, 0.0])
    np.testing.assert_allclose(values.delta[:3], [0.95, -0.95, 0.475])  # half at the money
    assert np.all(values.gamma[:3] == 0.0) and np.all(values.vega[:3] == 0.0)
    assert np.all(values.theta_per_year[:3] == 0.0)
    assert values.price[3] > 9.5 * 0.95  # a live row in the same batch is priced normally


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("forward", {"forward": [100.0, math.nan]}),
        ("forward", {"forward": [100.0, -5.0]}),
        ("strike", {"strike": [100.0, 0.0]}),
        ("strike", {"strike": [100.0, math.inf]}),
        ("vol", {"vol": [0.5, 0.0]}),
        ("vol", {"vol": [0.5, math.nan]}),
        ("t_yrs", {"t_yrs": [1.0, math.nan]}),
        ("t_yrs", {"t_yrs": [1.0, math.inf]}),
        ("df", {"df": [1.0, -0.5]}),
        ("forward", {"forward": [100.0, 1e120]}),
    ],
)
def test_invalid_inputs_raise_naming_field_row_and_value(
    field: str, kwargs: dict[str, list[float]]
) -> None:
    args: dict[str, object] = {"forward": 100.0, "strike": 100.0, "vol": 0.5, "t_yrs": 1.0}
    args.update(kwargs)
    with pytest.raises(PricingInputError, match=rf"^{field}\[1\]: ") as info:
        black76(**args)  # type: ignore[arg-type]
    error = info.value
    assert isinstance(error, InputError)  # the CLI's one-line errors
    assert error.field == field and error.index == 1
    bad = kwargs[field][1]
    assert error.value == bad or (math.isnan(bad) and math.isnan(error.value))


def test_invalid_input_in_a_2d_batch_names_the_2d_index() -> None:
    vols = np.full((3, 4), 0.5)
    vols[2, 1] = -0.1
    with pytest.raises(PricingInputError, match=r"vol\[2, 1\]") as info:
        black76(100.0, 100.0, vols, 1.0)
    assert info.value.index == (2, 1)


def test_bad_is_call_and_shapes_raise() -> None:
    with pytest.raises(PricingInputError, match=r"is_call\[1\]"):
        black76(100.0, 100.0, 0.5, 1.0, is_call=np.array([1, 2]))
    with pytest.raises(PricingInputError, match="broadcast"):
        black76([100.0, 101.0], [100.0, 90.0, 80.0], 0.5, 1.0)
    with pytest.raises(PricingInputError, match="rate"):
        black_scholes(100.0, 100.0, 0.5, 1.0, rate=math.nan)


def test_no_nan_at_extreme_but_valid_inputs() -> None:
    f = np.array([1e-100, 1e100, 100.0, 100.0, 100.0, 100.0])
    k = np.array([1e100, 1e-100, 100.0, 100.0, 1e-3, 1e5])
    vol = np.array([0.5, 0.5, 1e-12, 1e6, 1e-9, 50.0])
    t = np.array([1.0, 1.0, 1e-30, 1e4, 1.0, 1e-9])
    for is_call in (True, False):
        values = black76(f, k, vol, t, 0.5, is_call)
        for name in ("price", "delta", "gamma", "vega", "theta_per_year"):
            assert np.all(np.isfinite(getattr(values, name))), name


@pytest.mark.parametrize("is_call", [True, False])
@pytest.mark.parametrize(("strike", "vol", "t_yrs"), [(80.0, 0.5, 1.0), (130.0, 1.2, 0.1)])
def test_greeks_are_derivatives_of_the_price(
    is_call: bool, strike: float, vol: float, t_yrs: float
) -> None:
    f, df, h = 100.0, 0.97, 1e-4

    def price(**kw: float) -> float:
        args = {"forward": f, "strike": strike, "vol": vol, "t_yrs": t_yrs, "df": df}
        args.update(kw)
        return float(black76(is_call=is_call, **args).price)  # type: ignore[arg-type]

    values = black76(f, strike, vol, t_yrs, df, is_call)
    dp = (price(forward=f * (1 + h)) - price(forward=f * (1 - h))) / (2 * f * h)
    assert float(values.delta) == pytest.approx(dp, rel=1e-7, abs=1e-9)
    d2p = (price(forward=f * (1 + h)) - 2 * price() + price(forward=f * (1 - h))) / (f * h) ** 2
    assert float(values.gamma) == pytest.approx(d2p, rel=1e-4)
    dv = (price(vol=vol + 1e-6) - price(vol=vol - 1e-6)) / 2e-6
    assert float(values.vega) == pytest.approx(dv, rel=1e-7)
    rate = -math.log(df) / t_yrs
    dt = 1e-6

    def price_at(t: float) -> float:
        return price(t_yrs=t, df=math.exp(-rate * t))

    dtheta = -(price_at(t_yrs + dt) - price_at(t_yrs - dt)) / (2 * dt)
    assert float(values.theta_per_year) == pytest.approx(dtheta, rel=1e-6)


def test_black_scholes_is_black76_on_the_forward_with_spot_greeks() -> None:
    s, k, vol, t, r, q = 100.0, 95.0, 0.4, 0.75, 0.05, 0.01
    bs = black_scholes(s, k, vol, t, r, q, False)
    forward, df = s * math.exp((r - q) * t), math.exp(-r * t)
    b76 = black76(forward, k, vol, t, df, False)
    assert float(bs.price) == pytest.approx(float(b76.price), rel=1e-14)
    assert float(bs.delta) == pytest.approx(float(b76.delta) * forward / s, rel=1e-14)
    assert float(bs.gamma) == pytest.approx(float(b76.gamma) * (forward / s) ** 2, rel=1e-13)
    assert bs.underlying == "spot" and b76.underlying == "forward"
