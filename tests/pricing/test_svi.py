"""Raw SVI: formula, parameter constraints, Gatheral's butterfly condition, calendar check.

Reference: J. Gatheral & A. Jacquier, "Arbitrage-free SVI volatility surfaces", Quantitative
Finance 14(1), 2014 (G&J below).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from crossmargin.pricing import (
    CalendarArbitrageError,
    SviArbitrageError,
    SviParameterError,
    SviSlice,
    SviSurface,
    black76,
)


def ssvi_slice(t: float, theta: float, phi: float, rho: float) -> SviSlice:
    """An SSVI slice as raw SVI (G&J eq. 4.1 and the raw mapping of section 4):
    a = theta (1 - rho^2) / 2, b = theta phi / 2, m = -rho / phi, sigma = sqrt(1 - rho^2) / phi."""
    return SviSlice(
        t,
        a=0.5 * theta * (1.0 - rho * rho),
        b=0.5 * theta * phi,
        rho=rho,
        m=-rho / phi,
        sigma=math.sqrt(1.0 - rho * rho) / phi,
    )


def test_total_variance_formula_and_implied_vol() -> None:
    s = SviSlice(0.5, a=0.02, b=0.3, rho=-0.4, m=0.1, sigma=0.2)
    k = np.array([-1.0, 0.0, 0.1, 2.0])
    z = k - 0.1
    expected = 0.02 + 0.3 * (-0.4 * z + np.sqrt(z * z + 0.04))
    np.testing.assert_allclose(s.total_variance(k), expected, rtol=1e-15)
    np.testing.assert_allclose(s.implied_vol(k), np.sqrt(expected / 0.5), rtol=1e-15)


def test_gatheral_jacquier_example_has_butterfly_arbitrage() -> None:
    """G&J 2014, Example 3.1 (Axel Vogt's parameters): g(k) < 0 for k near 1."""
    vogt = SviSlice(1.0, a=-0.0410, b=0.1331, rho=0.3060, m=0.3586, sigma=0.4153)
    with pytest.raises(SviArbitrageError, match=r"svi\[0\].*k = 0\.8") as info:
        SviSurface([vogt])
    assert 0.7 < info.value.k < 1.1 and info.value.value < 0.0
    assert info.value.slice_index == 0


def test_g_is_the_risk_neutral_density_of_black_prices() -> None:
    """g(k) / sqrt(2 pi w) exp(-d2^2/2) / K equals d2C/dK2 (G&J eq. 2.1; Breeden-Litzenberger),
    computed here by central differences of Black-76 prices with the slice's vols."""
    s = ssvi_slice(1.0, theta=0.09, phi=3.0, rho=-0.5)
    f = 100.0
    strikes = f * np.exp(np.linspace(-0.6, 0.6, 13))
    h = 1e-3 * strikes

    def call(k: np.ndarray) -> np.ndarray:
        return black76(f, k, s.implied_vol(np.log(k / f)), 1.0).price

    fd = (call(strikes + h) - 2.0 * call(strikes) + call(strikes - h)) / (h * h)
    k = np.log(strikes / f)
    w = s.total_variance(k)
    d2 = -k / np.sqrt(w) - 0.5 * np.sqrt(w)
    density = s.g(k) / np.sqrt(2.0 * np.pi * w) * np.exp(-0.5 * d2 * d2) / strikes
    np.testing.assert_allclose(fd, density, rtol=1e-5)


@pytest.mark.parametrize(
    ("param", "slice_", "match"),
    [
        ("b", SviSlice(1.0, 0.04, -0.1, 0.0, 0.0, 0.1), "must be >= 0"),
        ("rho", SviSlice(1.0, 0.04, 0.1, 1.0, 0.0, 0.1), r"\(-1, 1\)"),
        ("sigma", SviSlice(1.0, 0.04, 0.1, 0.0, 0.0, 0.0), "> 0"),
        ("a", SviSlice(1.0, -0.5, 0.1, 0.0, 0.0, 0.1), "minimum total variance"),
        ("b", SviSlice(1.0, 0.04, 3.0, 0.5, 0.0, 0.1), "Lee"),
        ("t_yrs", SviSlice(0.0, 0.04, 0.1, 0.0, 0.0, 0.1), "> 0"),
        ("m", SviSlice(1.0, 0.04, 0.1, 0.0, math.nan, 0.1), "finite"),
    ],
)
def test_parameter_constraints_name_slice_and_parameter(
    param: str, slice_: SviSlice, match: str
) -> None:
    good = SviSlice(2.0, 0.08, 0.1, 0.0, 0.0, 0.1)
    slices = [good, slice_] if slice_.t_yrs > 0 else [slice_]
    with pytest.raises(SviParameterError, match=rf"svi\[0\]\.{param}: .*{match}"):
        SviSurface(slices)


def test_calendar_arbitrage_between_slices_is_refused() -> None:
    short = ssvi_slice(0.5, theta=0.10, phi=2.0, rho=-0.3)
    long = ssvi_slice(1.0, theta=0.05, phi=2.0, rho=-0.3)  # less total variance later
    with pytest.raises(CalendarArbitrageError, match=r"svi\[1\]"):
        SviSurface([long, short])


def test_surface_interpolates_total_variance_linearly_in_time() -> None:
    s1 = ssvi_slice(0.25, theta=0.02, phi=4.0, rho=-0.4)
    s2 = ssvi_slice(1.0, theta=0.09, phi=2.0, rho=-0.4)
    surface = SviSurface([s2, s1])  # any order
    k = np.array([-0.3, 0.0, 0.2])
    mid = surface.total_variance(k, 0.625)
    np.testing.assert_allclose(mid, 0.5 * (s1.total_variance(k) + s2.total_variance(k)))
    np.testing.assert_allclose(surface.total_variance(k, 0.25), s1.total_variance(k))
    # flat implied vol at fixed k outside the expiries
    np.testing.assert_allclose(surface.total_variance(k, 0.1), s1.total_variance(k) * 0.4)
    np.testing.assert_allclose(surface.total_variance(k, 2.0), s2.total_variance(k) * 2.0)
    vol = surface.vol(100.0, 100.0 * np.exp(k), 1.0)
    np.testing.assert_allclose(vol, s2.implied_vol(k), rtol=1e-15)
