r"""Implied volatility of Black-76 prices: safeguarded Halley iteration in normalized space.

With :math:`x = \ln(F/K)`, total volatility :math:`s = \sigma\sqrt T` and the undiscounted price
normalized by :math:`\sqrt{FK}`, the call price is (Jäckel 2006, 2015)

.. math::

    b(x, s) = e^{x/2} N(x/s + s/2) - e^{-x/2} N(x/s - s/2).

In-the-money options are first turned into out-of-the-money ones by put-call parity (the time
value is what carries the volatility) and a put is priced as the call at :math:`-x`, so only
:math:`x \le 0` and :math:`0 < \beta < e^{x/2}` remain. :math:`b` is increasing in :math:`s`
with the inflection point :math:`s_c = \sqrt{2|x|}` (convex below, concave above), and

.. math::

    \partial b/\partial s = e^{-(x^2/s^2 + s^2/4)/2}/\sqrt{2\pi}, \qquad
    \partial^2 b/\partial s^2 = \partial b/\partial s \cdot (x^2/s^3 - s/4).

Above :math:`b(s_c)` the iteration solves :math:`b(s) = \beta` starting from :math:`s_c`;
below, it solves :math:`\ln b(s) = \ln\beta` (nearly linear in :math:`1/s^2` for small
:math:`s`) from the guess :math:`s_0 = |x| / \sqrt{2(\ln b(s_c) + |x|/4 - \ln\beta)}`, which
inverts :math:`\ln b \approx A - x^2/(2s^2)` matched at :math:`s_c` (the same split of the domain
at the inflection point as Jäckel 2006, "By implication"). Every iterate updates a bracket
:math:`[s_{lo}, s_{hi}]` of the root; a Halley step that leaves the bracket is replaced by
bisection (geometric while the bracket is unbounded), so the iteration converges for every
price strictly inside the no-arbitrage bounds. It stops when the price residual is below
:data:`PRICE_RTOL` of the out-of-the-money price, or the bracket is two doubles wide.

Prices outside the open interval :math:`(D\max(\phi(F-K), 0),\ D F)` for calls,
:math:`(D \max(K - F, 0), D K)` for puts, raise
:class:`~crossmargin.pricing.errors.ImpliedVolUndefinedError` naming the row and the bound.

Sources: P. Jäckel, "By implication", Wilmott (2006); P. Jäckel, "Let's be rational", Wilmott
(2015) (normalized Black function, the inflection point, the two objective functions).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from crossmargin.pricing._inputs import (
    BoolArray,
    FloatArray,
    as_flags,
    broadcast_floats,
    check_finite,
    check_positive,
    row_index,
)
from crossmargin.pricing._jit import kernel
from crossmargin.pricing._vecmath import MILLS_MAX_ARG, mills_ratio
from crossmargin.pricing.black76 import T_FLOOR_YRS
from crossmargin.pricing.errors import ExpiredOptionError, ImpliedVolUndefinedError

PRICE_RTOL = 1e-14
"""Relative price residual at which the iteration stops (out-of-the-money price)."""
MAX_ITERATIONS = 200
MIN_NORMALIZED_TIME_VALUE = 1e-300
"""Smallest time value / sqrt(F K) inverted: below it the price is a subnormal double."""
BELOW_LOWER = -1.0  # kernel return codes for prices without an implied vol
ABOVE_UPPER = -2.0
UNRESOLVABLE = -3.0
_INV_SQRT_2PI = 0.3989422804014327
_INV_SQRT2 = 0.7071067811865476


@kernel
def normalized_call(x: float, s: float) -> float:
    """Normalized Black call ``b(x, s)`` for ``x <= 0``, ``s > 0`` (module docstring).

    Evaluated for a small relative error: both terms share the factor
    ``e^{x/2} n(d1) = e^{-x/2} n(d2) = exp(-(h^2 + s^2/4)/2) / sqrt(2 pi)`` (``h = x/s``), so
    with the Mills ratio ``N(-a) = n(a) M(a)`` the price is ``factor * (M(-d1) - M(-d2))`` when
    ``d1 <= 0``: the rounding of the arguments, amplified by ``d^2`` in each ``N(d)``, then
    cancels instead of being multiplied by ``|d| / s`` as in ``e^{x/2} N(d1) - e^{-x/2} N(d2)``.
    """
    h = x / s
    half = 0.5 * s
    d1 = h + half
    d2 = h - half  # <= 0 since x <= 0
    factor = _INV_SQRT_2PI * math.exp(-0.5 * (h * h + half * half))
    tail2 = mills_ratio(-d2) if -d2 < MILLS_MAX_ARG else 0.0
    if d1 <= 0.0:
        tail1 = mills_ratio(-d1) if -d1 < MILLS_MAX_ARG else 0.0
        return factor * (tail1 - tail2)
    # d2 <= 0 < d1: e^{x/2} (N(d1) - N(d2)) + (e^{x/2} - e^{-x/2}) N(d2), with
    # N(d1) - N(d2) a sum of two erf (no cancellation at the money, where b ~ s/sqrt(2 pi)) and
    # (e^{x/2} - e^{-x/2}) N(d2) = expm1(x) * factor * M(-d2)
    inside = 0.5 * (math.erf(d1 * _INV_SQRT2) + math.erf(-d2 * _INV_SQRT2))
    return math.exp(0.5 * x) * inside + math.expm1(x) * factor * tail2


@kernel
def normalized_vega(x: float, s: float) -> float:
    """``db/ds = exp(-(x^2/s^2 + s^2/4)/2) / sqrt(2 pi)``."""
    h = x / s
    return _INV_SQRT_2PI * math.exp(-0.5 * (h * h + 0.25 * s * s))


@kernel
def normalized_implied_total_vol(x: float, beta: float) -> float:
    """Total vol ``s`` with ``b(x, s) = beta`` for ``x <= 0`` and ``0 < beta < exp(x/2)``."""
    s_c = math.sqrt(-2.0 * x)
    b_c = normalized_call(x, s_c) if x < 0.0 else 0.0
    upper = beta >= b_c
    log_beta = math.log(beta)
    if upper:
        s = s_c if x < 0.0 else math.sqrt(2.0 * math.pi) * beta  # ATM: b <= s/sqrt(2 pi)
    else:
        gap = 2.0 * (math.log(b_c) + 0.25 * (-x) - log_beta)
        s = -x / math.sqrt(gap)
    lo = s_c if upper else 0.0
    hi = math.inf if upper else s_c
    for _ in range(MAX_ITERATIONS):
        b = normalized_call(x, s)
        if b <= 0.0:  # underflow: far below the root
            lo = max(lo, s)
            s = 2.0 * s if hi == math.inf else 0.5 * (s + hi)
            continue
        residual = b - beta
        if abs(residual) <= PRICE_RTOL * beta:
            return s
        if residual < 0.0:
            lo = max(lo, s)
        else:
            hi = min(hi, s)
        if hi < math.inf and hi - lo <= 4e-16 * hi:
            return s
        vega = normalized_vega(x, s)
        curvature = x * x / (s * s * s) - 0.25 * s  # (d2b/ds2) / (db/ds)
        if upper:  # f = b - beta
            f0, f1, f2 = residual, vega, vega * curvature
        else:  # f = ln b - ln beta
            g1 = vega / b
            f0, f1, f2 = math.log(b) - log_beta, g1, g1 * (curvature - g1)
        step = -f0 / f1
        denom = 1.0 + 0.5 * step * f2 / f1
        if denom > 0.5:  # Halley's correction when it is a modest one
            step /= denom
        candidate = s + step
        if not (lo < candidate < hi):
            if hi == math.inf:
                candidate = 2.0 * max(s, lo)
            elif lo == 0.0:
                candidate = 0.25 * hi if candidate <= 0.0 else 0.5 * (lo + hi)
            else:
                candidate = 0.5 * (lo + hi)
        s = candidate
    return s


@kernel
def implied_vol_row(price: float, f: float, k: float, t: float, df: float, is_call: bool) -> float:
    """Black-76 implied vol of one price strictly inside its no-arbitrage bounds.

    Returns :data:`BELOW_LOWER`, :data:`ABOVE_UPPER` or :data:`UNRESOLVABLE` (time value below
    ``1e-300 * sqrt(F K)``) instead, all negative, when there is no implied vol.

    ``t`` is floored at :data:`~crossmargin.pricing.black76.T_FLOOR_YRS` as in the pricer.
    """
    undiscounted = price / df
    x = math.log(f / k)
    phi = 1.0 if is_call else -1.0
    time_value = undiscounted - max(phi * (f - k), 0.0)  # parity: the out-of-the-money price
    beta = time_value / math.sqrt(f * k)
    x_otm = -abs(x)
    if beta <= 0.0:
        return BELOW_LOWER
    if beta >= math.exp(0.5 * x_otm):
        return ABOVE_UPPER
    if beta < MIN_NORMALIZED_TIME_VALUE:
        return UNRESOLVABLE
    s = normalized_implied_total_vol(x_otm, beta)
    return s / math.sqrt(max(t, T_FLOOR_YRS))


@kernel
def implied_vol_array(
    price: FloatArray,
    f: FloatArray,
    k: FloatArray,
    t: FloatArray,
    df: FloatArray,
    is_call: BoolArray,
    out: FloatArray,
) -> None:
    """``out[i] = implied_vol_row(price[i], ...)`` for every row."""
    for i in range(out.shape[0]):
        out[i] = implied_vol_row(price[i], f[i], k[i], t[i], df[i], is_call[i])


def implied_vol(
    price: npt.ArrayLike,
    forward: npt.ArrayLike,
    strike: npt.ArrayLike,
    t_yrs: npt.ArrayLike,
    df: npt.ArrayLike = 1.0,
    is_call: npt.ArrayLike = True,
) -> FloatArray:
    """Black-76 implied volatility (per 1.0, annualized) of each price (module docstring).

    Arguments broadcast together as in :func:`~crossmargin.pricing.black76`. Raises
    :class:`~crossmargin.pricing.errors.ImpliedVolUndefinedError` for a price at or outside the
    no-arbitrage bounds, :class:`~crossmargin.pricing.errors.ExpiredOptionError` for
    ``t_yrs <= 0`` and :class:`~crossmargin.pricing.errors.PricingInputError` for NaN or
    non-positive inputs.
    """
    names = ("price", "forward", "strike", "t_yrs", "df")
    shape, (p, f, k, t, d) = broadcast_floats(names, (price, forward, strike, t_yrs, df))
    flags = as_flags("is_call", is_call, shape)
    check_finite("price", p, shape)
    for name, values in (("forward", f), ("strike", k), ("df", d)):
        check_positive(name, values, shape)
    check_finite("t_yrs", t, shape)
    expired = np.flatnonzero(t <= 0.0)
    if expired.size:
        i = int(expired[0])
        raise ExpiredOptionError(
            "t_yrs", row_index(shape, i), float(t[i]), "option expired: implied vol undefined"
        )
    phi = np.where(flags, 1.0, -1.0)
    lower = d * np.maximum(phi * (f - k), 0.0)
    upper = d * np.where(flags, f, k)
    out = np.empty(p.shape[0])
    implied_vol_array(p, f, k, t, d, flags, out)
    failed = np.flatnonzero(out < 0.0)
    if failed.size:
        i = int(failed[0])
        code = out[i]
        bound = "upper" if code == ABOVE_UPPER else "lower"
        value = float(upper[i] if code == ABOVE_UPPER else lower[i])
        detail = (
            ", or above it by less than 1e-300*sqrt(F*K)*df: too small to resolve"
            if code == UNRESOLVABLE
            else ""
        )
        raise ImpliedVolUndefinedError(
            "price", row_index(shape, i), float(p[i]), bound, value, detail
        )
    return out.reshape(shape)
