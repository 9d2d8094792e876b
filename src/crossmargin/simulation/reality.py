r"""The simulator's impact of forced flow against what forced flow did to ETH in January 2021.

Data: one-minute Binance ETHUSDT bid/ask and forced-liquidation volume, 2021-01-01 .. 01-30
(``../shared/data``; Risk-DAO/simulation-env). The observed relation is the least-squares fit
of :func:`crossmargin.market.liquidity.calibrate_sqrt_impact`,

.. math::

    r_t = c\,\sigma_t\,\operatorname{sign}(q_t)\sqrt{|q_t|} + e_t,

with :math:`q_t` the net forced buy flow (short minus long liquidations, ETH) and
:math:`\sigma_t` the EWMA per-minute vol. The simulator moves a price by
:math:`k\,\sigma_{day}\sqrt{|f|/V}` for a flow :math:`f` against a daily volume :math:`V`; over
one minute of a day of :math:`1440` minutes with :math:`\sigma_{day} = \sigma_t\sqrt{1440}`
that is :math:`c = k\sqrt{1440/V}`, so the observed :math:`c` implies
:math:`k_{obs} = c\sqrt{V/1440}` for a stated daily volume (an assumption: the file has no
traded volume).

The comparison is also made bin by bin: minutes grouped by flow deciles, the mean observed
return against the model's prediction. Caveat: the relation is contemporaneous, and falling
prices *cause* long liquidations as much as the reverse, so :math:`k_{obs}` is an upper bound
on the causal impact. The fit is documented (docs/simulation.md), never used to tune tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from crossmargin.errors import InputError
from crossmargin.market.liquidity import calibrate_sqrt_impact
from crossmargin.market.volatility import ewma_variance

#: Binance ETHUSDT perpetual, January 2021: order of magnitude of the daily volume (ETH),
#: stated as an assumption (the shared file carries no traded volume)
ETH_JAN_2021_DAILY_VOLUME_QTY = 1.5e6


@dataclass(frozen=True)
class ImpactCheck:
    c: float
    c_stderr: float
    r_squared: float
    n_minutes: int
    n_flow_minutes: int
    daily_volume_qty: float
    observed_k: float
    model_k: float
    bins: list[dict[str, float]]  # flow decile: mean flow, mean observed and predicted return

    @property
    def model_to_observed(self) -> float:
        return self.model_k / self.observed_k if self.observed_k else math.inf

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "model_to_observed": self.model_to_observed}


def impact_check(
    minutes: pd.DataFrame,
    model_k: float = 1.0,
    daily_volume_qty: float = ETH_JAN_2021_DAILY_VOLUME_QTY,
    n_bins: int = 10,
) -> ImpactCheck:
    """Fit the observed relation and compare the simulator's ``model_k`` with it."""
    if not (math.isfinite(daily_volume_qty) and daily_volume_qty > 0):
        raise InputError("daily_volume_qty", daily_volume_qty, "must be a finite number > 0")
    fit = calibrate_sqrt_impact(minutes)
    observed_k = fit.k_for_daily_volume(daily_volume_qty)
    mid = minutes["mid"].to_numpy(dtype=np.float64)
    returns = np.diff(np.log(mid))
    flow = (minutes["liq_short_qty"] - minutes["liq_long_qty"]).to_numpy(dtype=np.float64)[1:]
    sigma = np.sqrt(ewma_variance(returns, 0.94)[:-1])
    has_flow = (flow != 0.0) & np.isfinite(sigma)
    x, r, s = flow[has_flow], returns[has_flow], sigma[has_flow]
    edges = np.quantile(x, np.linspace(0.0, 1.0, n_bins + 1))
    which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, n_bins - 1)
    c_model = model_k * math.sqrt(24 * 60 / daily_volume_qty)
    bins = []
    for b in range(n_bins):
        sel = which == b
        if not sel.any():
            continue
        predicted = c_model * s[sel] * np.sign(x[sel]) * np.sqrt(np.abs(x[sel]))
        bins.append(
            {
                "mean_flow_qty": float(x[sel].mean()),
                "minutes": float(sel.sum()),
                "observed_return_bps": float(r[sel].mean() * 1e4),
                "model_return_bps": float(predicted.mean() * 1e4),
            }
        )
    return ImpactCheck(
        c=fit.c,
        c_stderr=fit.c_stderr,
        r_squared=fit.r_squared,
        n_minutes=fit.n_minutes,
        n_flow_minutes=fit.n_flow_minutes,
        daily_volume_qty=daily_volume_qty,
        observed_k=observed_k,
        model_k=model_k,
        bins=bins,
    )
