r"""Black-76 on the forward and Black-Scholes with a rate: price and Greeks, vectorized.

For forward :math:`F`, strike :math:`K`, volatility :math:`\sigma` (per 1.0, annualized), time to
expiry :math:`T` (years) and discount factor :math:`D` to the payment date, with
:math:`\phi = +1` for a call and :math:`-1` for a put (Black 1976):

.. math::

    d_1 = \frac{\ln(F/K)}{\sigma\sqrt T} + \frac{\sigma\sqrt T}{2}, \qquad
    d_2 = d_1 - \sigma\sqrt T

    V = D\,\phi\,[F\,N(\phi d_1) - K\,N(\phi d_2)]

    \Delta_F = \partial V/\partial F = D\,\phi\,N(\phi d_1), \qquad
    \Gamma_F = \partial^2 V/\partial F^2 = \frac{D\,n(d_1)}{F\sigma\sqrt T}

    \mathcal V = \partial V/\partial\sigma = D\,F\,n(d_1)\sqrt T \quad\text{(per 1.0 of vol)}

    \Theta = \partial V/\partial t = -\frac{D\,F\,n(d_1)\,\sigma}{2\sqrt T} + r\,V,
    \qquad r = -\ln(D)/T \quad\text{(per year)}

Theta is the calendar decay of the value with the forward and the continuously compounded rate
implied by :math:`D` held fixed (so :math:`D` rolls towards 1 as time passes); it is
``-dV/dT``, negative for a long option at zero rate. The discount factor multiplies the price
and every Greek. Units: price, delta in price units per unit of forward (so delta is
dimensionless), gamma per unit of forward, vega per 1.0 of volatility (divide by 100:
:meth:`OptionValues.vega_per_vol_point`), theta per year (divide by 365:
:meth:`OptionValues.theta_per_day`).

Black-Scholes with spot :math:`S`, rate :math:`r` and dividend (or borrow, or funding) yield
:math:`q` is Black-76 on :math:`F = S e^{(r-q)T}`, :math:`D = e^{-rT}`, with delta and gamma
taken with respect to the spot: :math:`\Delta_S = e^{-qT}\phi N(\phi d_1)`,
:math:`\Gamma_S = e^{-qT} n(d_1)/(S\sigma\sqrt T)`, and theta at fixed spot
:math:`\Theta_S = \Theta - (r - q) F \Delta_F`.

Time to expiry is floored at :data:`T_FLOOR_YRS` (one second), never capped. A time ``<= 0`` is an
expired option: :class:`~crossmargin.pricing.errors.ExpiredOptionError` unless
``allow_expired=True``, which values it at discounted intrinsic value (delta 0 or
:math:`\pm D`, half of that at the money; gamma, vega and theta 0).

Sources: F. Black, "The pricing of commodity contracts", J. Financial Economics 3 (1976);
F. Black & M. Scholes, J. Political Economy 81 (1973); J. Hull, *Options, Futures, and Other
Derivatives*, ch. 18-19 (Greeks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from crossmargin.pricing._inputs import (
    BoolArray,
    FloatArray,
    as_flags,
    broadcast_floats,
    check_finite,
    check_positive,
    check_range,
    readonly,
    row_index,
)
from crossmargin.pricing._jit import kernel
from crossmargin.pricing._vecmath import (
    MILLS_MAX_ARG,
    inline,
    log_vec,
    mills_denominator,
    mills_numerator,
    norm_pdf,
)
from crossmargin.pricing.errors import ExpiredOptionError

SECONDS_PER_YEAR = 365.0 * 86_400.0
T_FLOOR_YRS = 1.0 / SECONDS_PER_YEAR
"""Smallest time to expiry used in the formulas, years: one second (of a 365-day year)."""
DAYS_PER_YEAR = 365.0
"""Calendar days per year for :meth:`OptionValues.theta_per_day`."""
VOL_POINT = 0.01
"""One volatility point (1%) in vol units, for :meth:`OptionValues.vega_per_vol_point`."""
MIN_POSITIVE = 1e-100
MAX_POSITIVE = 1e100
"""Supported range of forward, strike, spot and discount factor (keeps F/K a normal double)."""


@inline
def black76_row(
    f: float, k: float, vol: float, t: float, df: float, is_call: bool
) -> tuple[float, float, float, float, float]:
    r"""Price, delta, gamma, vega (per 1.0), theta (per year) of one option (formulas above).

    Inputs must be valid (:func:`black76_first_invalid_row`); ``t`` is floored at
    :data:`T_FLOOR_YRS`, so ``t <= 0`` gives the value one second before expiry.
    Branch-free and inlined into the caller, so a loop of calls vectorizes.

    Shared work: one ``exp``, one ``log`` and two Mills-ratio rationals give :math:`N(d_1)`,
    :math:`N(d_2)` and :math:`n(d_1)`, because :math:`F n(d_1) = K n(d_2)` and the tails are
    :math:`N(-|d|) = n(d) M(|d|)` (:mod:`crossmargin.pricing._vecmath`). The density is taken
    at the smaller of :math:`|d_1|, |d_2|`, so it underflows only when both tails do. A tail is
    subtracted from :math:`F` or :math:`K` on the in-the-money side, which keeps the absolute
    error of the price within a few ulps of :math:`\max(F, K)` and the relative error of
    out-of-the-money prices small.
    """
    t = max(t, T_FLOOR_YRS)
    sqrt_t = math.sqrt(t)
    total_vol = vol * sqrt_t
    inv_f_total_vol = 1.0 / (f * total_vol)
    d1 = log_vec(f / k) * (f * inv_f_total_vol) + 0.5 * total_vol
    d2 = d1 - total_vol
    abs_d1 = abs(d1)
    abs_d2 = abs(d2)
    d1_nearer = abs_d1 <= abs_d2
    abs_d_min = abs_d1 if d1_nearer else abs_d2
    f_pdf1 = (f if d1_nearer else k) * norm_pdf(abs_d_min)  # F n(d1) = K n(d2)
    x1 = min(abs_d1, MILLS_MAX_ARG)
    x2 = min(abs_d2, MILLS_MAX_ARG)
    q1 = mills_denominator(x1)
    q2 = mills_denominator(x2)
    scale = f_pdf1 / (q1 * q2)  # one division for both Mills ratios
    # F N(-|d1|) and K N(-|d2|); 0 beyond MILLS_MAX_ARG (< 1e-313 of F or K): the shared
    # prefactor may be far larger than the tail there, so a clamped Mills ratio would not do
    f_tail1 = mills_numerator(x1) * q2 * scale if abs_d1 < MILLS_MAX_ARG else 0.0
    k_tail2 = mills_numerator(x2) * q1 * scale if abs_d2 < MILLS_MAX_ARG else 0.0
    phi = 1.0 if is_call else -1.0
    f_cdf1 = f - f_tail1 if phi * d1 > 0.0 else f_tail1  # F N(phi d1)
    k_cdf2 = k - k_tail2 if phi * d2 > 0.0 else k_tail2  # K N(phi d2)
    price = df * max(phi * (f_cdf1 - k_cdf2), phi * (f - k), 0.0)
    inv_f = inv_f_total_vol * total_vol
    delta = df * phi * f_cdf1 * inv_f
    df_f_pdf1 = df * f_pdf1
    gamma = df_f_pdf1 * inv_f * inv_f_total_vol
    vega = df_f_pdf1 * sqrt_t
    inv_sqrt_t = vol * f * inv_f_total_vol
    vol_over_sqrt_t = vol * inv_sqrt_t
    inv_t = inv_sqrt_t * inv_sqrt_t
    theta = -log_vec(df) * inv_t * price - 0.5 * df_f_pdf1 * vol_over_sqrt_t
    return price, delta, gamma, vega, theta


@inline
def black76_price_row(f: float, k: float, vol: float, t: float, df: float, is_call: bool) -> float:
    """Black-76 price of one option, ``df * phi * (F N(phi d1) - K N(phi d2))``.

    Same contract as :func:`black76_row` (the Greeks are not computed: dead code once
    inlined). For scenario loops in other numba code.
    """
    return black76_row(f, k, vol, t, df, is_call)[0]


@kernel
def black76_first_invalid_row(
    f: FloatArray, k: FloatArray, vol: FloatArray, t: FloatArray, df: FloatArray
) -> int:
    """Index of the first row the kernels cannot price (NaN, out of range, ``t <= 0``), or -1.

    For numba callers that build their own arrays; the Python functions raise instead.
    Valid: forward, strike and df in ``[1e-100, 1e100]``, ``vol`` finite and ``> 0``, ``t``
    finite and ``> 0``.
    """
    for i in range(f.shape[0]):
        ok = (
            MIN_POSITIVE <= f[i] <= MAX_POSITIVE
            and MIN_POSITIVE <= k[i] <= MAX_POSITIVE
            and MIN_POSITIVE <= df[i] <= MAX_POSITIVE
            and 0.0 < vol[i] < math.inf
            and 0.0 < t[i] < math.inf
        )
        if not ok:
            return i
    return -1


@kernel
def black76_price_array(
    f: FloatArray,
    k: FloatArray,
    vol: FloatArray,
    t: FloatArray,
    df: FloatArray,
    is_call: BoolArray,
    out: FloatArray,
) -> None:
    """``out[i] = black76_price_row(f[i], ..., is_call[i])`` for every row (same lengths).

    Callable from other numba code; inputs must be valid (:func:`black76_first_invalid_row`).
    """
    for i in range(out.shape[0]):
        out[i] = black76_price_row(f[i], k[i], vol[i], t[i], df[i], is_call[i])


@kernel
def black76_greeks_array(
    f: FloatArray,
    k: FloatArray,
    vol: FloatArray,
    t: FloatArray,
    df: FloatArray,
    is_call: BoolArray,
    price: FloatArray,
    delta: FloatArray,
    gamma: FloatArray,
    vega: FloatArray,
    theta: FloatArray,
) -> None:
    """Price and Greeks of every row into the output arrays (:func:`black76_row`).

    ``theta`` of length 0 skips theta (one ``log`` less per row).
    """
    if theta.shape[0] == 0:
        for i in range(price.shape[0]):
            p, de, ga, ve, _ = black76_row(f[i], k[i], vol[i], t[i], df[i], is_call[i])
            price[i] = p
            delta[i] = de
            gamma[i] = ga
            vega[i] = ve
    else:
        for i in range(price.shape[0]):
            p, de, ga, ve, th = black76_row(f[i], k[i], vol[i], t[i], df[i], is_call[i])
            price[i] = p
            delta[i] = de
            gamma[i] = ga
            vega[i] = ve
            theta[i] = th


@dataclass(frozen=True, eq=False)
class OptionValues:
    """Price and Greeks of a batch of options (arrays of the broadcast input shape).

    ``delta`` and ``gamma`` are with respect to ``underlying``: the forward for
    :func:`black76`, the spot for :func:`black_scholes`. ``vega`` is per 1.0 of volatility and
    ``theta_per_year`` per year; the per-vol-point and per-day figures are derived on request.
    """

    price: FloatArray
    delta: FloatArray
    gamma: FloatArray
    vega: FloatArray
    theta_per_year: FloatArray
    underlying: Literal["forward", "spot"] = "forward"

    @property
    def vega_per_vol_point(self) -> FloatArray:
        """Change of price for a one-point (0.01) rise in volatility: ``vega * 0.01``."""
        return self.vega * VOL_POINT

    @property
    def theta_per_day(self) -> FloatArray:
        """Change of price over one calendar day: ``theta_per_year / 365``."""
        return self.theta_per_year / DAYS_PER_YEAR


def _check_times(
    t: FloatArray, shape: tuple[int, ...], allow_expired: bool, name: str = "t_yrs"
) -> BoolArray:
    """Validate times; return the mask of expired rows (``t <= 0``, only if allowed)."""
    check_finite(name, t, shape)
    expired = t <= 0.0
    if expired.any() and not allow_expired:
        i = int(np.flatnonzero(expired)[0])
        raise ExpiredOptionError(
            name,
            row_index(shape, i),
            float(t[i]),
            "option expired (time to expiry <= 0); pass allow_expired=True for intrinsic value",
        )
    return expired


def _intrinsic(
    f: FloatArray, k: FloatArray, df: FloatArray, is_call: BoolArray, rows: BoolArray
) -> tuple[FloatArray, FloatArray]:
    """Discounted intrinsic value and its forward delta on ``rows`` (half at the money)."""
    phi = np.where(is_call[rows], 1.0, -1.0)
    moneyness = phi * (f[rows] - k[rows])
    price = df[rows] * np.maximum(moneyness, 0.0)
    step = np.where(moneyness > 0.0, 1.0, np.where(moneyness == 0.0, 0.5, 0.0))
    return price, df[rows] * phi * step


def _evaluate(
    f: FloatArray,
    k: FloatArray,
    vol: FloatArray,
    t: FloatArray,
    df: FloatArray,
    is_call: BoolArray,
    expired: BoolArray,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    n = f.shape[0]
    out = (np.empty(n), np.empty(n), np.empty(n), np.empty(n), np.empty(n))
    f, k, vol, t, df = (readonly(a) for a in (f, k, vol, t, df))
    black76_greeks_array(f, k, vol, t, df, readonly(is_call), *out)
    if expired.any():
        price, delta = _intrinsic(f, k, df, is_call, expired)
        out[0][expired] = price
        out[1][expired] = delta
        for greek in out[2:]:
            greek[expired] = 0.0
    return out


def black76(
    forward: npt.ArrayLike,
    strike: npt.ArrayLike,
    vol: npt.ArrayLike,
    t_yrs: npt.ArrayLike,
    df: npt.ArrayLike = 1.0,
    is_call: npt.ArrayLike = True,
    *,
    allow_expired: bool = False,
) -> OptionValues:
    """Black-76 price and Greeks of options on a forward (module docstring: formulas, units).

    Arguments broadcast together (scalars or arrays, one row per option). ``vol`` is per 1.0
    (0.8 = 80%), ``t_yrs`` in years (floored at one second, never capped), ``df`` the discount
    factor to payment, ``is_call`` True/1 for calls and False/0 for puts. Raises
    :class:`~crossmargin.pricing.errors.PricingInputError` (field, row, value) for a NaN,
    infinite or non-positive forward, strike, vol or df, and
    :class:`~crossmargin.pricing.errors.ExpiredOptionError` for ``t_yrs <= 0`` unless
    ``allow_expired`` (then: discounted intrinsic value, zero gamma, vega and theta).
    """
    names = ("forward", "strike", "vol", "t_yrs", "df")
    shape, (f, k, v, t, d) = broadcast_floats(names, (forward, strike, vol, t_yrs, df))
    flags = as_flags("is_call", is_call, shape)
    for name, values in (("forward", f), ("strike", k), ("df", d)):
        check_range(name, values, shape, MIN_POSITIVE, MAX_POSITIVE)
    check_positive("vol", v, shape)
    expired = _check_times(t, shape, allow_expired)
    out = _evaluate(f, k, v, t, d, flags, expired)
    price, delta, gamma, vega, theta = (a.reshape(shape) for a in out)
    return OptionValues(price, delta, gamma, vega, theta, "forward")


def black_scholes(
    spot: npt.ArrayLike,
    strike: npt.ArrayLike,
    vol: npt.ArrayLike,
    t_yrs: npt.ArrayLike,
    rate: npt.ArrayLike = 0.0,
    div_yield: npt.ArrayLike = 0.0,
    is_call: npt.ArrayLike = True,
    *,
    allow_expired: bool = False,
) -> OptionValues:
    """Black-Scholes(-Merton) price and Greeks on a spot with continuous ``rate`` and yield.

    ``rate`` and ``div_yield`` are continuously compounded, per year (any finite sign). Priced as
    Black-76 on ``F = spot * exp((rate - div_yield) * T)`` with ``df = exp(-rate * T)`` (``T``
    floored at one second); ``delta`` and ``gamma`` are with respect to the spot and theta is at
    fixed spot (module docstring). Same errors as :func:`black76`.
    """
    names = ("spot", "strike", "vol", "t_yrs", "rate", "div_yield")
    shape, (s, k, v, t, r, q) = broadcast_floats(names, (spot, strike, vol, t_yrs, rate, div_yield))
    flags = as_flags("is_call", is_call, shape)
    for name, values in (("spot", s), ("strike", k)):
        check_range(name, values, shape, MIN_POSITIVE, MAX_POSITIVE)
    check_positive("vol", v, shape)
    check_finite("rate", r, shape)
    check_finite("div_yield", q, shape)
    expired = _check_times(t, shape, allow_expired)
    t_eff = np.where(expired, 0.0, np.maximum(t, T_FLOOR_YRS))
    with np.errstate(over="ignore"):
        f = s * np.exp((r - q) * t_eff)
        d = np.exp(-r * t_eff)
    check_range("forward = spot*exp((rate-div_yield)*t_yrs)", f, shape, MIN_POSITIVE, MAX_POSITIVE)
    check_range("df = exp(-rate*t_yrs)", d, shape, MIN_POSITIVE, MAX_POSITIVE)
    price, delta_f, gamma_f, vega, theta = _evaluate(f, k, v, t_eff, d, flags, expired)
    growth = f / s  # dF/dS
    delta = delta_f * growth
    gamma = gamma_f * growth * growth
    theta_spot = theta - (r - q) * f * delta_f
    theta_spot[expired] = 0.0
    return OptionValues(
        price.reshape(shape),
        delta.reshape(shape),
        gamma.reshape(shape),
        vega.reshape(shape),
        theta_spot.reshape(shape),
        "spot",
    )
