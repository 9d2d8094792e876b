r"""First-passage (barrier-hitting) probabilities of geometric Brownian motion, vectorized.

Units: time in **days**, volatility :math:`\sigma` per :math:`\sqrt{\text{day}}`, drifts per
day, distances in natural-log units of price.

**Continuous monitoring.** Let the log price be :math:`X_t = X_0 + \nu t + \sigma W_t` with
:math:`\nu = \mu - \sigma^2/2` (:math:`\mu` the drift of :math:`dS/S`; 0 for a martingale price).
For a barrier at log distance :math:`d = |\ln(b/S_0)| > 0` and the drift *toward* the barrier
:math:`m` (:math:`m = -\nu` for a barrier below, :math:`m = \nu` for one above), the
probability that the barrier is reached before :math:`T` is (reflection principle; Shreve,
*Stochastic Calculus for Finance II*, 2004, sec. 7.2, eq. 7.2.2 and its complement; Hull,
*Options, Futures and Other Derivatives*, down-and-in barrier formulas)

.. math::

    P(\tau_b \le T) = N\!\left(\frac{-d + mT}{\sigma\sqrt T}\right)
        + e^{2 m d / \sigma^2}\, N\!\left(\frac{-d - mT}{\sigma\sqrt T}\right).

For a barrier below (:math:`b < S_0`) with :math:`\mu = r` this is Hull's
:math:`N\big((\ln(b/S) - \nu T)/(\sigma\sqrt T)\big) + (b/S)^{2\nu/\sigma^2}
N\big((\ln(b/S) + \nu T)/(\sigma\sqrt T)\big)`. The second term is evaluated as
:math:`\exp(2md/\sigma^2 + \ln N(\cdot))` so that a far barrier never gives ``inf * 0``.

**Discrete monitoring** every :math:`\Delta t` (an exchange checking health at intervals):
Broadie, Glasserman & Kou (1997), "A continuity correction for discrete barrier options"
(*Mathematical Finance* 7(4)): the discretely monitored probability is the continuous one with
the barrier moved *away* from the price by :math:`e^{\pm\beta\sigma\sqrt{\Delta t}}`,
:math:`\beta = -\zeta(1/2)/\sqrt{2\pi} \approx 0.5826`, i.e. :math:`d \to d + \beta\sigma
\sqrt{\Delta t}`; error :math:`o(1/\sqrt{n})` in the number of monitoring dates.

**Brownian bridge.** Given two observations :math:`x_0, x_1 > 0` of the log distance to the
barrier :math:`\Delta t` apart, the probability that the path touched the barrier in between is
:math:`\exp(-2 x_0 x_1 / (\sigma^2 \Delta t))` whatever the drift (the bridge does not depend on
it); for an arithmetic Brownian motion (health in USD with volatility :math:`s` USD per
:math:`\sqrt{\text{day}}`) the same formula holds with :math:`x = h` and :math:`\sigma = s`.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from crossmargin._numba import jit
from crossmargin.errors import InputError

FloatArray = npt.NDArray[np.float64]

#: Broadie-Glasserman-Kou constant :math:`-\zeta(1/2)/\sqrt{2\pi}`.
BGK_BETA = 0.5825971579390107
_SQRT2 = math.sqrt(2.0)
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


@jit
def _log_ndtr(x: float) -> float:
    """:math:`\\ln N(x)`, accurate in the far left tail (asymptotic series below -30)."""
    if x > -30.0:
        return math.log(0.5 * math.erfc(-x / _SQRT2))
    z2 = 1.0 / (x * x)
    series = 1.0 - z2 * (1.0 - 3.0 * z2 * (1.0 - 5.0 * z2 * (1.0 - 7.0 * z2 * (1.0 - 9.0 * z2))))
    return -0.5 * x * x - math.log(-x) - _LOG_SQRT_2PI + math.log(series)


@jit
def _hit_one(d: float, sigma: float, t: float, m: float) -> float:
    """Continuous first-passage probability for one barrier (module docstring)."""
    if not d > 0.0:  # at or through the barrier (NaN distance is handled by the caller)
        return 1.0
    if math.isinf(d):
        return 0.0
    if sigma <= 0.0 or t <= 0.0:  # deterministic log price: hit iff the drift gets there
        return 1.0 if m * t >= d else 0.0
    s = sigma * math.sqrt(t)
    a = (-d + m * t) / s
    b = (-d - m * t) / s
    p = 0.5 * math.erfc(-a / _SQRT2) + math.exp(2.0 * m * d / (sigma * sigma) + _log_ndtr(b))
    return min(max(p, 0.0), 1.0)


@jit
def _hit_kernel(
    d: FloatArray, sigma: FloatArray, t: FloatArray, m: FloatArray, out: FloatArray
) -> None:
    for i in range(d.shape[0]):
        if math.isnan(d[i]) or math.isnan(sigma[i]) or math.isnan(t[i]) or math.isnan(m[i]):
            out[i] = math.nan
        else:
            out[i] = _hit_one(d[i], sigma[i], t[i], m[i])


def _flat(
    name: str, value: npt.ArrayLike, shape: tuple[int, ...], low: float | None = None
) -> FloatArray:
    array = np.asarray(value, dtype=np.float64)
    if low is not None and np.any(array < low):
        first = float(array[array < low].ravel()[0])
        raise InputError(name, first, f"must be >= {low:g}")
    # always a fresh writable C array: one compiled signature of the kernel, whatever the input
    return np.array(np.broadcast_to(array, shape), dtype=np.float64, order="C").reshape(-1)


def hit_probability(
    log_distance: npt.ArrayLike,
    sigma_daily: npt.ArrayLike,
    horizon_days: npt.ArrayLike,
    drift_toward: npt.ArrayLike = 0.0,
    monitor_days: float = 0.0,
) -> FloatArray:
    r"""Probability that a log price at ``log_distance`` :math:`d \ge 0` from a barrier reaches
    it within ``horizon_days`` (module docstring), elementwise over broadcast arrays.

    ``drift_toward`` is :math:`m`, the log price's drift toward the barrier per day (use
    :func:`drift_toward_barrier` for a price of drift :math:`\mu`). ``monitor_days > 0``
    applies the Broadie-Glasserman-Kou correction for monitoring every ``monitor_days``.
    :math:`d \le 0` gives 1, :math:`d = \infty` (no barrier) gives 0, NaN propagates.
    """
    if not (math.isfinite(monitor_days) and monitor_days >= 0.0):
        raise InputError("monitor_days", monitor_days, "must be a finite number >= 0")
    shape = np.broadcast_shapes(
        np.shape(log_distance),
        np.shape(sigma_daily),
        np.shape(horizon_days),
        np.shape(drift_toward),
    )
    sigma = _flat("sigma_daily", sigma_daily, shape, 0.0)
    d = _flat("log_distance", log_distance, shape)
    if monitor_days > 0.0:
        d = np.where(d > 0.0, d + BGK_BETA * sigma * math.sqrt(monitor_days), d)
    out = np.empty(d.shape[0])
    _hit_kernel(
        d,
        sigma,
        _flat("horizon_days", horizon_days, shape, 0.0),
        _flat("drift", drift_toward, shape),
        out,
    )
    return out.reshape(shape)


def drift_toward_barrier(
    direction: npt.ArrayLike, sigma_daily: npt.ArrayLike, mu_daily: npt.ArrayLike = 0.0
) -> FloatArray:
    r""":math:`m`, the log drift toward a barrier below (``direction`` -1) or above (+1) a price
    of drift :math:`\mu`: :math:`m = \text{direction} \cdot \nu`, i.e. :math:`\sigma^2/2 - \mu`
    below and :math:`\mu - \sigma^2/2` above (:math:`\nu = \mu - \sigma^2/2`)."""
    nu = np.asarray(mu_daily, dtype=np.float64) - 0.5 * np.asarray(sigma_daily, np.float64) ** 2
    return np.asarray(np.sign(np.asarray(direction, dtype=np.float64)) * nu, dtype=np.float64)


def barrier_hit_probability(
    spot: npt.ArrayLike,
    barrier: npt.ArrayLike,
    sigma_daily: npt.ArrayLike,
    horizon_days: npt.ArrayLike,
    mu_daily: npt.ArrayLike = 0.0,
    monitor_days: float = 0.0,
) -> FloatArray:
    r"""Probability that a GBM price ``spot`` (drift ``mu_daily`` of :math:`dS/S`) touches
    ``barrier`` (below or above it; NaN: no barrier, probability 0) within ``horizon_days``."""
    s = np.asarray(spot, dtype=np.float64)
    b = np.asarray(barrier, dtype=np.float64)
    if np.any(s <= 0.0) or np.any(b <= 0.0):
        raise InputError("barrier", "<= 0", "prices and barriers must be > 0")
    with np.errstate(invalid="ignore"):
        direction = np.where(b < s, -1.0, 1.0)
        distance = np.where(np.isnan(b), np.inf, np.abs(np.log(np.where(np.isnan(b), 1.0, b / s))))
    m = drift_toward_barrier(direction, sigma_daily, mu_daily)
    return hit_probability(distance, sigma_daily, horizon_days, m, monitor_days)


def hull_down_barrier_probability(
    spot: float, barrier: float, sigma: float, horizon: float, mu: float = 0.0
) -> float:
    r"""Textbook scalar form for a barrier below the price (the test oracle, plain floats):
    :math:`N\big((\ln(b/S) - \nu T)/(\sigma\sqrt T)\big) + (b/S)^{2\nu/\sigma^2}
    N\big((\ln(b/S) + \nu T)/(\sigma\sqrt T)\big)`, :math:`\nu = \mu - \sigma^2/2`."""
    nu = mu - 0.5 * sigma * sigma
    x = math.log(barrier / spot)
    s = sigma * math.sqrt(horizon)

    def n(z: float) -> float:
        return 0.5 * math.erfc(-z / _SQRT2)

    power: float = (barrier / spot) ** (2.0 * nu / sigma**2)
    return n((x - nu * horizon) / s) + power * n((x + nu * horizon) / s)


def bridge_cross_probability(
    x0: npt.ArrayLike, x1: npt.ArrayLike, sigma_daily: npt.ArrayLike, dt_days: float
) -> FloatArray:
    r"""Probability that a Brownian path observed at distances ``x0`` and ``x1`` (> 0) from a
    barrier, ``dt_days`` apart, crossed it in between: :math:`\exp(-2x_0x_1/(\sigma^2\Delta t))`.

    Distances are log distances (:math:`\ln(S/b)`, ``sigma`` per :math:`\sqrt{\text{day}}`) or
    health in USD (``sigma`` the health's USD volatility). An end at or below 0 gives 1; a zero
    volatility gives 0 when both ends are above the barrier.
    """
    a = np.asarray(x0, dtype=np.float64)
    b = np.asarray(x1, dtype=np.float64)
    s2 = np.asarray(sigma_daily, dtype=np.float64) ** 2 * dt_days
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        expo = np.where(s2 > 0.0, -2.0 * a * b / np.where(s2 > 0.0, s2, 1.0), -np.inf)
        p = np.exp(np.minimum(expo, 0.0))
    return np.asarray(np.where((a <= 0.0) | (b <= 0.0), 1.0, p), dtype=np.float64)


__all__ = [
    "BGK_BETA",
    "barrier_hit_probability",
    "bridge_cross_probability",
    "drift_toward_barrier",
    "hit_probability",
    "hull_down_barrier_probability",
]
