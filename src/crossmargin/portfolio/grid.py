r"""The scenario grid and the per-expiry shock factors: vol shocks, skew shocks, static discounts.

A scenario is a spot multiplier :math:`m` (1.18 for +18 %), a volatility state and a dampening
factor :math:`d` (the fraction of the scenario's PnL that counts: 1 for regular scenarios, less
for the tail ones). Volatility states:

* ``none`` - mark vols;
* ``up`` / ``down`` - every vol times the expiry's up / down multiplier (below);
* ``linear`` / ``abs`` - Derive's skew shocks: each vol times a multiplier that grows with the
  log-moneyness (``linear``: tilts the smile; ``abs``: raises both wings).

**Vol shock** (Derive PM2 ``PMRMLib_2._addVolShocks``; Deribit's and Paradex's published rule,
``docs.paradex.trade/risk/portfolio-margin``), with DTE the days to expiry:

.. math::

    s = \left(\frac{30}{\max(\text{DTE}, \text{DTE}_{floor})}\right)^{p}, \quad
    p = \begin{cases} p_{short} & \text{DTE} \le 30 \\ p_{long} & \text{DTE} > 30 \end{cases}

    u = 1 + R_{up}\,s, \qquad \delta = \max(0,\; 1 - R_{down}\,s)

    \sigma_{up} = \max(\sigma_{min,up},\; \sigma u), \qquad \sigma_{down} = \sigma\,\delta

**Skew shock** (Derive ``PMRMLib_2._getExpirySkewedShockedMTM`` and ``_getKStar``), with
:math:`\tau = \sqrt{T}` (years) and :math:`k = \ln(K/F)` on the unshocked forward
(:math:`|k|` for ``abs``):

.. math::

    c = c_{base} + c_{\sqrt T}\,\tau, \qquad
    k^* = \max\left(k^*_{min},\; w\,\tau\,(v_0 + v_1 \tau)\right)

    \text{mult} = \begin{cases} 1 + \min(c,\; k c / k^*) & k \ge 0 \\
                                1 + \max(-c,\; k c / k^*) & k < 0 \end{cases}
    \qquad \sigma_{skew} = \sigma \max(0, \text{mult})

**Static discount** (Derive ``PMRMLib_2._addStaticDiscount``): a shocked expiry value
:math:`V \ge 0` is multiplied by :math:`\beta^+`, a negative one by :math:`\beta^-`:

.. math::

    \beta^+ = b^+ e^{-T (r a^+ + c^+)}, \qquad
    \beta^- = \min\left(1/D,\; b^- e^{T (r a^- + c^-)}\right)

Sources: Derive v2-core ``src/risk-managers/PMRMLib_2.sol`` (commit 7736900d), read for the
formulas; Derive docs "PM2" (docs.derive.xyz/docs/pm2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from crossmargin.portfolio.positions import FloatArray, IntArray

VolState = Literal["none", "up", "down", "linear", "abs"]
VOL_NONE, VOL_UP, VOL_DOWN, SKEW_LINEAR, SKEW_ABS = 0, 1, 2, 3, 4
VOL_CODES: dict[str, int] = {
    "none": VOL_NONE,
    "up": VOL_UP,
    "down": VOL_DOWN,
    "linear": SKEW_LINEAR,
    "abs": SKEW_ABS,
}
VOL_NAMES: tuple[str, ...] = ("none", "up", "down", "linear", "abs")
N_VOL_STATES = 5

SECONDS_PER_DAY = 86_400.0
DAYS_PER_YEAR = 365.0


@dataclass(frozen=True, eq=False)
class ScenarioGrid:
    """The scenarios applied to one underlying, as arrays (``[n_scenarios]`` each)."""

    spot_mult: FloatArray
    vol_state: IntArray
    dampening: FloatArray
    kind: tuple[str, ...]

    @property
    def n(self) -> int:
        return int(self.spot_mult.shape[0])

    def label(self, i: int) -> str:
        """``"spot -18%, vol up"``, ``"spot +200%, vol up, x0.036"`` or ``"skew linear"``."""
        state = VOL_NAMES[int(self.vol_state[i])]
        move = (float(self.spot_mult[i]) - 1.0) * 100.0
        if state in ("linear", "abs"):
            text = f"skew {state}" + (f", spot {move:+.4g}%" if move != 0.0 else "")
        else:
            text = f"spot {move:+.4g}%, vol {state}"
        damp = float(self.dampening[i])
        return text if damp == 1.0 else f"{text}, x{damp:.4g}"


def make_grid(
    spot_mult: Sequence[float],
    vol_state: Sequence[str],
    dampening: Sequence[float],
    kind: Sequence[str] | None = None,
) -> ScenarioGrid:
    """A grid from lists; ``kind`` defaults to skew / tail (dampening != 1) / regular."""
    states = np.array([VOL_CODES[s] for s in vol_state], dtype=np.int64)
    damp = np.asarray(dampening, dtype=np.float64)
    if kind is None:
        kind = [
            "skew" if s >= SKEW_LINEAR else ("tail" if d != 1.0 else "regular")
            for s, d in zip(states, damp, strict=True)
        ]
    return ScenarioGrid(
        spot_mult=np.asarray(spot_mult, dtype=np.float64),
        vol_state=states,
        dampening=damp,
        kind=tuple(kind),
    )


def vol_shock_multipliers(
    t_yrs: FloatArray,
    range_up_frac: float,
    range_down_frac: float,
    short_term_power: float,
    long_term_power: float,
    dte_floor_days: float,
    reference_days: float = 30.0,
    power_switch_days: float = 30.0,
) -> tuple[FloatArray, FloatArray]:
    """Up and down vol multipliers ``u, delta`` of each expiry (module docstring)."""
    dte = t_yrs * DAYS_PER_YEAR
    # a zero floor and an expired option would divide by zero: one second is the least
    scale = reference_days / np.maximum(np.maximum(dte, dte_floor_days), 1.0 / SECONDS_PER_DAY)
    power = np.where(dte <= power_switch_days, short_term_power, long_term_power)
    s = scale**power
    up = 1.0 + range_up_frac * s
    down = np.maximum(0.0, 1.0 - range_down_frac * s)
    return up, down


def skew_cap_and_kstar(
    sqrt_t: FloatArray,
    cap_base: float,
    cap_per_sqrt_yr: float,
    min_k_star: float,
    width_scale: float,
    vol_param_static: float,
    vol_param_per_sqrt_yr: float,
) -> tuple[FloatArray, FloatArray]:
    """Cap ``c`` and width ``k*`` of the skew multiplier of each expiry (module docstring)."""
    cap = cap_base + cap_per_sqrt_yr * sqrt_t
    vol_param = vol_param_static + sqrt_t * vol_param_per_sqrt_yr
    k_star = np.maximum(min_k_star, sqrt_t * width_scale * vol_param)
    return cap, k_star


def skew_multiplier(k: FloatArray, cap: FloatArray, k_star: FloatArray) -> FloatArray:
    """Skew vol multiplier at log-moneyness ``k`` (``|k|`` for the ``abs`` shock)."""
    slope = k * cap / k_star
    mult: FloatArray = 1.0 + np.where(k >= 0.0, np.minimum(cap, slope), np.maximum(-cap, slope))
    return mult


def static_discounts(
    t_yrs: FloatArray,
    rate: FloatArray,
    df: FloatArray,
    long_base: float,
    long_rate_mult: float,
    long_rate_add: float,
    short_base: float,
    short_rate_mult: float,
    short_rate_add: float,
) -> tuple[FloatArray, FloatArray]:
    """Factors ``beta+`` (positive expiry value) and ``beta-`` (negative) of each expiry."""
    pos = long_base * np.exp(-t_yrs * (rate * long_rate_mult + long_rate_add))
    neg = np.minimum(
        1.0 / df, short_base / np.exp(-t_yrs * (rate * short_rate_mult + short_rate_add))
    )
    return pos, neg
