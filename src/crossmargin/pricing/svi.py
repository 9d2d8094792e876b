r"""Raw SVI volatility slices and surfaces, with parameter and butterfly-arbitrage checks.

The raw SVI parametrization of the total implied variance :math:`w = \sigma_{BS}^2 T` of one
expiry as a function of log-moneyness :math:`k = \ln(K/F)` (Gatheral 2004; Gatheral & Jacquier
2014, eq. 3.1):

.. math::

    w(k) = a + b\left(\rho (k - m) + \sqrt{(k - m)^2 + \sigma^2}\right)

with :math:`b \ge 0`, :math:`|\rho| < 1`, :math:`\sigma > 0` and
:math:`a + b\sigma\sqrt{1-\rho^2} > 0` (the minimum of :math:`w`, so that :math:`w > 0`
everywhere; G&J require :math:`\ge 0`, a zero variance is refused here because a zero vol
cannot be priced). The wings have slopes :math:`b(1 \pm \rho)`, at most 4 by Lee's moment
formula (R. Lee, "The moment formula for implied volatility at extreme strikes", Math. Finance
14, 2004), so :math:`b(1 + |\rho|) \le 4` is required too.

A slice is free of butterfly arbitrage iff the risk-neutral density is non-negative, i.e.
(G&J 2014, eq. 2.1 and Lemma 2.2)

.. math::

    g(k) = \left(1 - \frac{k w'}{2w}\right)^2 - \frac{w'^2}{4}\left(\frac1w + \frac14\right)
           + \frac{w''}{2} \ge 0,

    w' = b\left(\rho + \frac{k-m}{\sqrt{(k-m)^2+\sigma^2}}\right), \qquad
    w'' = \frac{b\sigma^2}{((k-m)^2+\sigma^2)^{3/2}}.

:meth:`SviSlice.g` evaluates it; :class:`SviSurface` checks it on :func:`butterfly_grid` (a
uniform grid of :math:`k \in [-5, 5]` plus a finer one around the vertex :math:`m`) and raises
:class:`~crossmargin.pricing.errors.SviArbitrageError` naming the slice and the :math:`k` of the
most negative :math:`g`. It also checks that total variance does not decrease with expiry on that
grid (no calendar-spread arbitrage, G&J 2014 Lemma 2.1 / eq. 2.2).

Between two slices, total variance is interpolated linearly in time at fixed :math:`k`; before
the first and after the last slice the implied vol at fixed :math:`k` is held constant.

Source: J. Gatheral & A. Jacquier, "Arbitrage-free SVI volatility surfaces", Quantitative
Finance 14(1), 2014, 59-71.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from crossmargin.pricing._inputs import (
    FloatArray,
    broadcast_floats,
    check_positive,
    vol_from_total_variance,
)
from crossmargin.pricing.errors import (
    CalendarArbitrageError,
    SviArbitrageError,
    SviParameterError,
)

LEE_MAX_WING_SLOPE = 4.0
"""Maximal slope of total variance in the wings, ``b (1 + |rho|)`` (Lee 2004)."""
G_TOLERANCE = 1e-12
"""``g(k)`` above ``-G_TOLERANCE`` counts as non-negative (rounding of a zero density)."""


def butterfly_grid(m: float, sigma: float) -> FloatArray:
    """Log-moneyness checked for butterfly arbitrage: ``[-5, 5]`` step 0.005, and ``m +- 10 sigma``
    in 400 steps (the curvature of ``w`` concentrates within a few ``sigma`` of ``m``)."""
    wide = np.linspace(-5.0, 5.0, 2001)
    local = m + sigma * np.linspace(-10.0, 10.0, 401)
    return np.unique(np.concatenate([wide, local]))


@dataclass(frozen=True)
class SviSlice:
    """Raw SVI parameters of one expiry ``t_yrs`` (years): ``w(k) = a + b(rho(k-m) + ...)``.

    Parameters are checked by :meth:`check` (and by :class:`SviSurface`), not at construction,
    so that the error can name the slice's position in its surface.
    """

    t_yrs: float
    a: float
    b: float
    rho: float
    m: float
    sigma: float

    def total_variance(self, k: npt.ArrayLike) -> FloatArray:
        """``w(k)``, total implied variance (vol^2 x years) at log-moneyness ``k = ln(K/F)``."""
        z = np.asarray(k, dtype=np.float64) - self.m
        return self.a + self.b * (self.rho * z + np.sqrt(z * z + self.sigma * self.sigma))

    def implied_vol(self, k: npt.ArrayLike) -> FloatArray:
        """Black implied vol ``sqrt(w(k) / t_yrs)`` (per 1.0, annualized)."""
        return np.sqrt(self.total_variance(k) / self.t_yrs)

    def g(self, k: npt.ArrayLike) -> FloatArray:
        """Gatheral's density function ``g(k)`` (module docstring); ``>= 0`` iff no butterfly."""
        kk = np.asarray(k, dtype=np.float64)
        z = kk - self.m
        root = np.sqrt(z * z + self.sigma * self.sigma)
        w = self.a + self.b * (self.rho * z + root)
        w1 = self.b * (self.rho + z / root)
        w2 = self.b * self.sigma * self.sigma / (root * root * root)
        result: FloatArray = (
            (1.0 - kk * w1 / (2.0 * w)) ** 2 - 0.25 * w1 * w1 * (1.0 / w + 0.25) + 0.5 * w2
        )
        return result

    def check(self, index: int = 0, k_grid: npt.ArrayLike | None = None) -> None:
        """Raise unless the parameters are valid and ``g >= 0`` on ``k_grid``.

        :class:`~crossmargin.pricing.errors.SviParameterError` names ``svi[index].<param>``;
        :class:`~crossmargin.pricing.errors.SviArbitrageError` the slice and the ``k`` of the most
        negative ``g``. ``k_grid`` defaults to :func:`butterfly_grid`.
        """
        name = f"svi[{index}]"
        for param in ("t_yrs", "a", "b", "rho", "m", "sigma"):
            value = getattr(self, param)
            if not math.isfinite(value):
                raise SviParameterError(f"{name}.{param}", value, "must be finite")
        if self.t_yrs <= 0.0:
            raise SviParameterError(f"{name}.t_yrs", self.t_yrs, "expiry must be > 0 years")
        if self.b < 0.0:
            raise SviParameterError(f"{name}.b", self.b, "must be >= 0")
        if not abs(self.rho) < 1.0:
            raise SviParameterError(f"{name}.rho", self.rho, "must be in (-1, 1)")
        if self.sigma <= 0.0:
            raise SviParameterError(f"{name}.sigma", self.sigma, "must be > 0")
        w_min = self.a + self.b * self.sigma * math.sqrt(1.0 - self.rho * self.rho)
        if w_min <= 0.0:
            raise SviParameterError(
                f"{name}.a",
                self.a,
                f"minimum total variance a + b*sigma*sqrt(1-rho^2) = {w_min!r} must be > 0",
            )
        slope = self.b * (1.0 + abs(self.rho))
        if slope > LEE_MAX_WING_SLOPE:
            raise SviParameterError(
                f"{name}.b",
                self.b,
                f"wing slope b*(1+|rho|) = {slope!r} exceeds 4 (Lee's moment formula)",
            )
        grid = butterfly_grid(self.m, self.sigma) if k_grid is None else np.asarray(k_grid)
        g = self.g(grid)
        worst = int(np.argmin(g))
        if not g[worst] >= -G_TOLERANCE:
            raise SviArbitrageError(index, float(grid[worst]), float(g[worst]))


class SviSurface:
    """Raw SVI slices by expiry: validated, then interpolated (module docstring).

    ``slices`` must have distinct expiries (any order). Each slice is checked
    (:meth:`SviSlice.check`) and consecutive slices for calendar arbitrage on the union of
    their butterfly grids; errors name the slice by its position in expiry order.
    """

    def __init__(self, slices: Sequence[SviSlice], k_grid: npt.ArrayLike | None = None) -> None:
        if not slices:
            raise SviParameterError("svi", list(slices), "at least one slice is required")
        ordered = sorted(slices, key=lambda s: s.t_yrs)
        for i, piece in enumerate(ordered):
            piece.check(i, k_grid)
        for i in range(1, len(ordered)):
            if ordered[i].t_yrs == ordered[i - 1].t_yrs:
                raise SviParameterError(
                    f"svi[{i}].t_yrs", ordered[i].t_yrs, "two slices with the same expiry"
                )
            if k_grid is None:
                grid = np.union1d(
                    butterfly_grid(ordered[i - 1].m, ordered[i - 1].sigma),
                    butterfly_grid(ordered[i].m, ordered[i].sigma),
                )
            else:
                grid = np.asarray(k_grid, dtype=np.float64)
            drop = ordered[i - 1].total_variance(grid) - ordered[i].total_variance(grid)
            worst = int(np.argmax(drop))
            if drop[worst] > G_TOLERANCE:
                raise CalendarArbitrageError(
                    f"svi[{i}]",
                    float(drop[worst]),
                    f"total variance lower than slice {i - 1}'s at k = {float(grid[worst])!r} "
                    "(calendar-spread arbitrage)",
                )
        self.slices: tuple[SviSlice, ...] = tuple(ordered)
        self.expiries_yrs: FloatArray = np.array([s.t_yrs for s in ordered])

    def total_variance(self, k: npt.ArrayLike, t_yrs: npt.ArrayLike) -> FloatArray:
        """Total variance at log-moneyness ``k`` and expiry ``t_yrs > 0`` (broadcast)."""
        shape, (kk, tt) = broadcast_floats(("k", "t_yrs"), (k, t_yrs))
        check_positive("t_yrs", tt, shape)
        times = self.expiries_yrs
        upper = np.searchsorted(times, tt, side="left")
        out = np.empty_like(kk)
        before = upper == 0
        after = upper == len(times)
        inside = ~(before | after)
        if before.any():
            first = self.slices[0]
            out[before] = first.total_variance(kk[before]) * (tt[before] / first.t_yrs)
        if after.any():
            last = self.slices[-1]
            out[after] = last.total_variance(kk[after]) * (tt[after] / last.t_yrs)
        for j in np.unique(upper[inside]):
            rows = inside & (upper == j)
            left, right = self.slices[j - 1], self.slices[j]
            weight = (tt[rows] - left.t_yrs) / (right.t_yrs - left.t_yrs)
            w_left = left.total_variance(kk[rows])
            out[rows] = w_left + weight * (right.total_variance(kk[rows]) - w_left)
        return out.reshape(shape)

    def vol(
        self, forward: npt.ArrayLike, strike: npt.ArrayLike, t_yrs: npt.ArrayLike
    ) -> FloatArray:
        """Black implied vol for options on ``forward`` at ``strike`` expiring in ``t_yrs``."""
        return vol_from_total_variance(self.total_variance, forward, strike, t_yrs)
