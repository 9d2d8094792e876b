r"""Greeks of a portfolio-margin account, per expiry and per underlying (``crossmargin greeks``).

Option Greeks come from the project's pricer (:func:`crossmargin.pricing.black76`, expired
options at intrinsic value) and are summed with their quantities. Delta and gamma are taken
with respect to the *spot* :math:`S`: the forward moves by its variable part only,
:math:`\partial F/\partial S = (F - F^{fix})/S` (see :mod:`crossmargin.portfolio.positions`),
so

.. math::

    \Delta_S = \sum_o q_o \Delta_{F,o} \frac{F - F^{fix}}{S}, \qquad
    \Gamma_S = \sum_o q_o \Gamma_{F,o} \left(\frac{F - F^{fix}}{S}\right)^2

in units of the underlying (delta) and of the underlying per USD (gamma). Perps add their
quantity to the delta and collateral shocked with the underlying its value divided by the
spot. Vega is per vol point (0.01) and theta per calendar day, both in USD. In USD (per
underlying): delta :math:`\Delta_S S` (the USD value that moves one for one with the spot) and
gamma per 1 % move :math:`0.01\,\Gamma_S S^2`, the change of the USD delta when the spot moves
1 % (a desk's "cash gamma").
"""

from __future__ import annotations

from typing import Any

import numpy as np

from crossmargin.portfolio.positions import FloatArray, Portfolio
from crossmargin.pricing import black76


def portfolio_greeks(portfolio: Portfolio) -> dict[str, Any]:
    """``{underlying: {spot_usd, delta_qty, delta_usd, gamma_per_usd, gamma_usd_per_1pct,
    vega_usd_per_vol_point, theta_usd_per_day, expiries: {name: {t_yrs, mtm_usd, delta_qty,
    gamma_per_usd, vega_usd_per_vol_point, theta_usd_per_day}}}}`` (plain data, YAML-able)."""
    e = portfolio.option_expiry
    values = black76(
        portfolio.expiry_fwd_usd[e],
        portfolio.option_strike_usd,
        portfolio.option_vol,
        portfolio.expiry_t_yrs[e],
        portfolio.expiry_df[e],
        portfolio.option_is_call,
        allow_expired=True,
    )
    spot = portfolio.spot_usd[portfolio.expiry_underlying]
    dfds = (portfolio.expiry_fwd_usd - portfolio.expiry_fwd_fixed_usd) / spot
    q = portfolio.option_qty
    n_e = portfolio.expiry_t_yrs.shape[0]

    def per_expiry(x: FloatArray) -> FloatArray:
        summed: FloatArray = np.bincount(e, weights=q * x, minlength=n_e).astype(np.float64)
        return summed

    delta = per_expiry(values.delta) * dfds
    gamma = per_expiry(values.gamma) * dfds * dfds
    vega = per_expiry(values.vega_per_vol_point)
    theta = per_expiry(values.theta_per_day)
    mtm = per_expiry(values.price)
    out: dict[str, Any] = {}
    for u, name in enumerate(portfolio.underlying_names):
        e0, e1 = int(portfolio.expiry_start[u]), int(portfolio.expiry_start[u + 1])
        p0, p1 = int(portfolio.perp_start[u]), int(portfolio.perp_start[u + 1])
        collateral = portfolio.collateral_value_usd[portfolio.collateral_underlying == u]
        spot_u = float(portfolio.spot_usd[u])
        delta_u = float(
            delta[e0:e1].sum() + portfolio.perp_qty[p0:p1].sum() + collateral.sum() / spot_u
        )
        gamma_u = float(gamma[e0:e1].sum())
        out[name] = {
            "spot_usd": spot_u,
            "delta_qty": delta_u,
            "delta_usd": delta_u * spot_u,
            "gamma_per_usd": gamma_u,
            "gamma_usd_per_1pct": 0.01 * gamma_u * spot_u * spot_u,
            "vega_usd_per_vol_point": float(vega[e0:e1].sum()),
            "theta_usd_per_day": float(theta[e0:e1].sum()),
            "expiries": {
                portfolio.expiry_names[i]: {
                    "t_yrs": float(portfolio.expiry_t_yrs[i]),
                    "mtm_usd": float(mtm[i]),
                    "delta_qty": float(delta[i]),
                    "gamma_per_usd": float(gamma[i]),
                    "vega_usd_per_vol_point": float(vega[i]),
                    "theta_usd_per_day": float(theta[i]),
                }
                for i in range(e0, e1)
            },
        }
    return out
