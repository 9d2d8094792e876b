"""Liquidity: what it costs to sell (or buy back) a quantity, from a book or a parametric model.

* :class:`OrderBook` walks price levels: the average fill of ``qty`` and its slippage from the
  mid, plus what could not be filled.
* :class:`SqrtImpact` is the square-root law of market impact (Almgren et al. 2005; Tóth et al.
  2011, "Anomalous price impact and the critical nature of liquidity in financial markets"):
  ``slippage_frac = spread_frac / 2 + k * sigma_daily * sqrt(qty / daily_volume)``.
  Liquidating within a horizon of ``h`` days can use at most ``participation * daily_volume * h``.
* :func:`calibrate_sqrt_impact` fits the impact coefficient on minute data of forced liquidation
  flow and mid prices (the shared Binance ETHUSDT January 2021 file) by least squares through the
  origin: ``r_t = c * sigma_t * sign(q_t) * sqrt(|q_t|) + e_t``, with ``q_t`` the net forced buy
  flow (short liquidations minus long liquidations) and ``r_t`` the mid's log return over the
  same minute. Then ``k = c * sqrt(daily_volume) / sqrt(minutes_per_day)`` for a stated daily
  volume, because ``sigma_t`` is per minute.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crossmargin.errors import InputError
from crossmargin.market.volatility import ewma_variance


@dataclass(frozen=True)
class Fill:
    """The result of executing ``qty`` against liquidity (prices in quote units)."""

    qty_requested: float
    qty_filled: float
    average_price: float  # NaN if nothing filled
    reference_price: float
    slippage_frac: float  # (reference - average) / reference for a sale, mirrored for a buy

    @property
    def unfilled_qty(self) -> float:
        return self.qty_requested - self.qty_filled

    @property
    def cost(self) -> float:
        """Slippage cost in quote units: ``slippage_frac * reference * qty_filled``."""
        return self.slippage_frac * self.reference_price * self.qty_filled


class OrderBook:
    """A book of price levels: bids (best first, descending) and asks (ascending)."""

    def __init__(
        self, bids: Sequence[tuple[float, float]], asks: Sequence[tuple[float, float]]
    ) -> None:
        self.bids = self._levels(bids, "bids", descending=True)
        self.asks = self._levels(asks, "asks", descending=False)
        if self.bids.size and self.asks.size and self.bids[0, 0] >= self.asks[0, 0]:
            raise InputError("bids[0]", float(self.bids[0, 0]), "crosses the best ask")

    @staticmethod
    def _levels(
        levels: Sequence[tuple[float, float]], name: str, descending: bool
    ) -> np.ndarray[tuple[int, int], np.dtype[np.float64]]:
        array = np.asarray(levels, dtype=np.float64).reshape(-1, 2)
        if not np.all(np.isfinite(array)) or np.any(array <= 0):
            raise InputError(name, levels, "levels must be (price > 0, qty > 0)")
        prices = array[:, 0]
        ordered = np.all(np.diff(prices) < 0) if descending else np.all(np.diff(prices) > 0)
        if not ordered:
            side = "descending" if descending else "ascending"
            raise InputError(name, levels, f"prices must be strictly {side} from the best")
        return array

    @property
    def mid(self) -> float:
        if not (self.bids.size and self.asks.size):
            raise InputError("book", "one-sided", "a mid needs both sides")
        return 0.5 * (float(self.bids[0, 0]) + float(self.asks[0, 0]))

    def execute(self, qty: float) -> Fill:
        """Sell ``qty`` into the bids (``qty > 0``) or buy ``-qty`` from the asks."""
        if not math.isfinite(qty):
            raise InputError("qty", qty, "must be finite")
        selling = qty > 0
        levels = self.bids if selling else self.asks
        wanted = abs(qty)
        remaining = wanted
        notional = 0.0
        for price, size in levels:
            take = min(remaining, float(size))
            notional += take * float(price)
            remaining -= take
            if remaining <= 0.0:
                break
        filled = wanted - max(remaining, 0.0)
        reference = self.mid
        if filled <= 0.0:
            return Fill(wanted, 0.0, math.nan, reference, 0.0)
        average = notional / filled
        slip = (reference - average) / reference if selling else (average - reference) / reference
        return Fill(wanted, filled, average, reference, slip)


@dataclass(frozen=True)
class SqrtImpact:
    """Square-root impact: ``slippage = spread/2 + k * sigma_daily * sqrt(qty / daily_volume)``.

    ``sigma_daily`` is the daily volatility (fraction), ``daily_volume_qty`` in units of the
    asset, ``participation_frac`` the share of daily volume a liquidation may take.
    """

    k: float
    sigma_daily: float
    daily_volume_qty: float
    spread_frac: float = 0.0
    participation_frac: float = 0.1

    def __post_init__(self) -> None:
        for name in ("k", "sigma_daily", "daily_volume_qty", "participation_frac"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise InputError(name, value, "must be a finite number > 0")
        if not (math.isfinite(self.spread_frac) and self.spread_frac >= 0):
            raise InputError("spread_frac", self.spread_frac, "must be a finite number >= 0")

    def slippage_frac(self, qty: float | np.ndarray) -> float | np.ndarray:
        """Average slippage of liquidating ``|qty|`` (fraction of the reference price)."""
        size = np.abs(qty)
        return 0.5 * self.spread_frac + self.k * self.sigma_daily * np.sqrt(
            size / self.daily_volume_qty
        )

    def max_qty(self, horizon_days: float) -> float:
        """The most that can be liquidated within ``horizon_days`` at the participation cap."""
        return self.participation_frac * self.daily_volume_qty * horizon_days

    def execute(self, qty: float, reference_price: float, horizon_days: float = 1.0) -> Fill:
        """Liquidate up to the horizon's capacity at the model's average slippage."""
        wanted = abs(qty)
        filled = min(wanted, self.max_qty(horizon_days))
        slip = float(self.slippage_frac(filled))
        average = reference_price * (1 - slip) if qty > 0 else reference_price * (1 + slip)
        return Fill(wanted, filled, average, reference_price, slip)


@dataclass(frozen=True)
class ImpactFit:
    """Least-squares fit of ``r_t = c * sigma_t * sign(q_t) sqrt(|q_t|)`` on minute data."""

    c: float  # per sqrt(unit of flow), in units of sigma
    c_stderr: float
    t_stat: float
    r_squared: float
    n_minutes: int
    n_flow_minutes: int

    def k_for_daily_volume(self, daily_volume_qty: float) -> float:
        """The square-root law's ``k`` for a daily volume (minute sigma -> daily sigma)."""
        return self.c * math.sqrt(daily_volume_qty) / math.sqrt(24 * 60)


def calibrate_sqrt_impact(minutes: pd.DataFrame, lam: float = 0.94) -> ImpactFit:
    """Fit the impact of forced liquidation flow on the mid (see the module docstring).

    ``minutes`` needs ``mid``, ``liq_long_qty`` and ``liq_short_qty`` (as returned by
    :func:`crossmargin.market.loaders.load_binance_liquidations`). ``sigma_t`` is the EWMA
    per-minute volatility known before minute ``t``.
    """
    for column in ("mid", "liq_long_qty", "liq_short_qty"):
        if column not in minutes.columns:
            raise InputError("minutes", list(minutes.columns), f"missing column {column!r}")
    mid = minutes["mid"].to_numpy(dtype=np.float64)
    if mid.size < 100:
        raise InputError("minutes", mid.size, "need at least 100 rows")
    returns = np.diff(np.log(mid))
    flow = (minutes["liq_short_qty"] - minutes["liq_long_qty"]).to_numpy(dtype=np.float64)[1:]
    sigma = np.sqrt(ewma_variance(returns, lam)[:-1])
    x = sigma * np.sign(flow) * np.sqrt(np.abs(flow))
    mask = np.isfinite(x) & np.isfinite(returns)
    x, y = x[mask], returns[mask]
    sxx = float(np.dot(x, x))
    if sxx <= 0.0:
        raise InputError("minutes", "no flow", "no forced-liquidation flow to fit")
    c = float(np.dot(x, y)) / sxx
    residual = y - c * x
    dof = max(x.size - 1, 1)
    stderr = math.sqrt(float(np.dot(residual, residual)) / dof / sxx)
    total = float(np.dot(y, y))
    r_squared = 1.0 - float(np.dot(residual, residual)) / total if total > 0 else 0.0
    return ImpactFit(
        c=c,
        c_stderr=stderr,
        t_stat=c / stderr if stderr > 0 else math.inf,
        r_squared=r_squared,
        n_minutes=int(x.size),
        n_flow_minutes=int(np.count_nonzero(x)),
    )
