r"""The analytic baseline per account: first passage of maint health to zero, one risk factor.

For every margin group :math:`g` and every asset :math:`a` it is exposed to, the kernel gives
the price :math:`b_{g,a}` at which maint health reaches 0 when only that asset moves
(:func:`crossmargin.margin.engine.liquidation_price_arrays`, ``method="exact"``), or the linear
estimate from the sensitivity :math:`\Delta_{g,a} = \partial H_g / \partial \ln P_a` (central
differences, ``method="linear"``; the service's "distance to liquidation"):

.. math::

    d_{g,a} = -\ln(1 - H_g/\Delta_{g,a}) \ (\Delta > 0,\ \text{barrier below}), \qquad
    d_{g,a} = \ln(1 + H_g/|\Delta_{g,a}|) \ (\Delta < 0,\ \text{barrier above}),

exact for health linear in the price (a perp or a spot balance without tiers). Each
:math:`(g, a)` barrier gives the GBM first-passage probability
:math:`p_{g,a} = P(\tau \le T)` of :mod:`crossmargin.predict.firstpassage` with the asset's
daily volatility, the price drift :math:`\mu` (default 0: a martingale) and, for discrete
monitoring, the Broadie-Glasserman-Kou shift. The account's baseline is
:math:`\max_{g,a} p_{g,a}` and its **dominant risk factor** the maximizing asset (and
direction); a group already below zero has probability 1. Taking the maximum ignores joint
moves of several assets: :mod:`crossmargin.predict.montecarlo` simulates those.

Volatilities default to the cascade simulator's (``DEFAULT_SIGMA_DAILY``); an asset without
one is a stablecoin (volatility 0) when priced within 2 % of 1 USD, otherwise ETH-like (4 %
daily), as the service does. :func:`market_from_returns` estimates them (EWMA, RiskMetrics
:math:`\lambda = 0.94`) and the correlation from a daily price history instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from crossmargin.errors import InputError
from crossmargin.margin.arrays import MAINT, FloatArray, IntArray, MarketTables, PortfolioArrays
from crossmargin.margin.engine import evaluate_arrays, liquidation_price_arrays
from crossmargin.margin.kernel import evaluate_groups, market_marks_usd
from crossmargin.predict.firstpassage import drift_toward_barrier, hit_probability

#: relative price bump of the central-difference sensitivity
BUMP_FRAC = 1e-4
#: an asset without a volatility: ETH-like, unless priced within STABLE_BAND of 1 USD
DEFAULT_DAILY_VOL = 0.04
STABLE_BAND = 0.02
#: correlation between risky assets when no history is given (the simulator's assumption)
DEFAULT_CORRELATION = 0.7

Method = Literal["exact", "linear"]


@dataclass(frozen=True, eq=False)
class MarketModel:
    """Per asset of the tables: daily volatility and the correlation matrix of log returns."""

    sigma_daily: FloatArray  # [n_assets]
    correlation: FloatArray  # [n_assets, n_assets]
    source: dict[str, str] = field(default_factory=dict)  # per asset: where sigma comes from

    def to_dict(self, symbols: Sequence[str]) -> dict[str, Any]:
        return {
            "sigma_daily": {s: float(v) for s, v in zip(symbols, self.sigma_daily, strict=True)},
            "source": dict(self.source),
        }


def default_market_model(
    tables: MarketTables, sigma_daily: Mapping[str, float] | None = None
) -> MarketModel:
    """Volatilities from ``sigma_daily`` (default: the cascade simulator's), 0 for
    stablecoins, :data:`DEFAULT_DAILY_VOL` otherwise; correlation 0.7 between risky assets."""
    from crossmargin.simulation.cascade import DEFAULT_SIGMA_DAILY

    table = dict(DEFAULT_SIGMA_DAILY if sigma_daily is None else sigma_daily)
    sigma = np.zeros(tables.n_assets)
    source: dict[str, str] = {}
    for a, symbol in enumerate(tables.asset_symbols):
        if symbol in table:
            value = float(table[symbol])
            if not (math.isfinite(value) and value >= 0.0):
                raise InputError(f"sigma_daily.{symbol}", value, "must be a finite number >= 0")
            sigma[a], source[symbol] = value, "default"
        elif abs(float(tables.price_usd[a]) - 1.0) <= STABLE_BAND:
            sigma[a], source[symbol] = 0.0, "stable"
        else:
            sigma[a], source[symbol] = DEFAULT_DAILY_VOL, "assumed 4 %"
    return MarketModel(sigma, _constant_correlation(sigma), source)


def _constant_correlation(sigma: FloatArray) -> FloatArray:
    n = sigma.size
    corr = np.where(np.eye(n) == 1.0, 1.0, DEFAULT_CORRELATION)
    return np.asarray(corr, dtype=np.float64)


def market_from_returns(
    tables: MarketTables,
    files: Sequence[str | Path],
    proxies: Mapping[str, str] | None = None,
    lam: float = 0.94,
    min_obs: int = 30,
) -> MarketModel:
    """EWMA daily volatility (RiskMetrics, ``lam``) and sample correlation of the daily log
    returns of the tables' assets, from price files (:func:`crossmargin.risk.returns.
    load_returns`: stablecoins get zero returns, wrapped tokens their alias's)."""
    from crossmargin.market.volatility import ewma_variance
    from crossmargin.risk.returns import load_returns, map_assets, mapped_returns

    data = load_returns([Path(f) for f in files], min_obs=min_obs)
    mapping = map_assets(tables.asset_symbols, data, proxies=proxies)
    matrix = mapped_returns(data, mapping)
    sigma = np.zeros(tables.n_assets)
    for a in range(tables.n_assets):
        if mapping.column[a] >= 0:
            sigma[a] = math.sqrt(float(ewma_variance(matrix[:, a], lam)[-1]))
    risky = sigma > 0.0
    corr = np.eye(tables.n_assets)
    if risky.sum() > 1:
        sub = np.corrcoef(matrix[:, risky], rowvar=False)
        corr[np.ix_(risky, risky)] = sub
    source = {s: f"EWMA of {src}" for s, src in zip(mapping.assets, mapping.source, strict=True)}
    return MarketModel(sigma, np.asarray(corr, dtype=np.float64), source)


def group_deltas(
    tables: MarketTables, arrays: PortfolioArrays, price_usd: FloatArray | None = None
) -> FloatArray:
    r"""``[n_groups, n_assets]`` :math:`\Delta_{g,a} = \partial H_g/\partial \ln P_a` of maint
    health, USD per unit log move, by central differences of :data:`BUMP_FRAC`."""
    n_groups = arrays.n_groups
    deltas = np.zeros((n_groups, tables.n_assets))
    if n_groups == 0:
        return deltas
    exposed = _exposed_assets(tables, arrays)
    out = (np.empty(n_groups), np.empty(n_groups), np.empty(n_groups))
    for a in exposed:
        sides = []
        for sign in (1.0, -1.0):
            evaluate_groups(
                tables,
                arrays,
                MAINT,
                price_usd,
                int(a),
                np.full(n_groups, 1.0 + sign * BUMP_FRAC),
                out=out,
            )
            sides.append(out[0] - out[1])
        deltas[:, a] = (sides[0] - sides[1]) / (2.0 * BUMP_FRAC)
    return deltas


def _exposed_assets(tables: MarketTables, arrays: PortfolioArrays) -> IntArray:
    used = np.concatenate(
        [
            arrays.bal_asset,
            tables.market_underlying[arrays.pos_market],
            tables.market_settle[arrays.pos_market],
        ]
    )
    return np.unique(used).astype(np.int64)


@dataclass(frozen=True, eq=False)
class AccountBaseline:
    """Per account: the first-passage probability, its dominant factor and the inputs."""

    account_ids: tuple[str, ...]
    probability: FloatArray  # [n_accounts]
    asset: IntArray  # dominant asset id; -1: none (no risky exposure, or already < 0)
    direction: IntArray  # -1 barrier below, +1 above, 0 none
    barrier_usd: FloatArray  # the dominant asset's liquidation price (NaN: none)
    price_usd: FloatArray  # the dominant asset's price
    log_distance: FloatArray  # |ln(barrier / price)|; 0 when already liquidatable, inf: none
    distance_sd: FloatArray  # log_distance / (sigma sqrt(horizon))
    sigma_daily: FloatArray  # of the dominant asset
    maint_health_usd: FloatArray  # [n_accounts] summed over groups
    horizon_days: float
    monitor_days: float
    method: str
    group: IntArray = field(repr=False, default_factory=lambda: np.zeros(0, np.int64))

    def row(self, i: int, symbols: Sequence[str]) -> dict[str, Any]:
        a = int(self.asset[i])
        return {
            "account": self.account_ids[i],
            "probability": float(self.probability[i]),
            "asset": symbols[a] if a >= 0 else None,
            "direction": {-1: "down", 1: "up"}.get(int(self.direction[i])),
            "liquidation_price_usd": _finite_or_none(self.barrier_usd[i]),
            "price_usd": _finite_or_none(self.price_usd[i]),
            "move_to_liquidation_pct": _finite_or_none(
                100.0 * (self.barrier_usd[i] / self.price_usd[i] - 1.0)
            ),
            "distance_sd": _finite_or_none(self.distance_sd[i]),
            "sigma_daily": _finite_or_none(self.sigma_daily[i]),
            "maint_health_usd": float(self.maint_health_usd[i]),
        }


def _finite_or_none(x: Any) -> float | None:
    value = float(x)
    return value if math.isfinite(value) else None


def group_barriers(
    tables: MarketTables,
    arrays: PortfolioArrays,
    method: Method = "exact",
    deltas: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(health [g], below [g, a], above [g, a])``: maint health and the liquidation prices
    of every group and asset (NaN: none in that direction)."""
    if method not in ("exact", "linear"):
        raise InputError("method", method, "must be exact or linear")
    result = evaluate_arrays(tables, arrays)
    health = result.health[MAINT]
    if method == "exact":
        below, above = liquidation_price_arrays(result)
        return health, below, above
    d = group_deltas(tables, arrays) if deltas is None else deltas
    prices = tables.price_usd[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        move = -health[:, None] / d  # relative move of one asset that brings health to 0
    below = np.where((d > 0.0) & (move > -1.0) & (move < 0.0), prices * (1.0 + move), np.nan)
    above = np.where((d < 0.0) & (move > 0.0), prices * (1.0 + move), np.nan)
    return health, np.asarray(below, np.float64), np.asarray(above, np.float64)


def account_baseline(
    tables: MarketTables,
    arrays: PortfolioArrays,
    market: MarketModel,
    horizon_days: float,
    monitor_days: float = 0.0,
    mu_daily: float = 0.0,
    method: Method = "exact",
    barriers: tuple[FloatArray, FloatArray, FloatArray] | None = None,
    group_sigma: FloatArray | None = None,
) -> AccountBaseline:
    """The module docstring's baseline for every account of ``arrays``.

    ``barriers`` passes precomputed :func:`group_barriers`; ``group_sigma`` (``[n_groups,
    n_assets]``) gives each group its own volatilities instead of ``market.sigma_daily``
    (simulated epochs with different estimates)."""
    if not (math.isfinite(horizon_days) and horizon_days > 0.0):
        raise InputError("horizon", horizon_days, "must be a finite number of days > 0")
    health, below, above = barriers or group_barriers(tables, arrays, method)
    prices = tables.price_usd
    n_groups, n_assets = below.shape
    sigma = np.broadcast_to(
        market.sigma_daily if group_sigma is None else group_sigma, (n_groups, n_assets)
    )
    rows = np.arange(n_groups)
    best_p = np.zeros(n_groups)
    best_asset = np.full(n_groups, -1, dtype=np.int64)
    best_dir = np.zeros(n_groups, dtype=np.int64)
    best_barrier = np.full(n_groups, np.nan)
    for direction, levels in ((-1, below), (1, above)):
        with np.errstate(divide="ignore", invalid="ignore"):
            dist = np.where(np.isnan(levels), np.inf, np.abs(np.log(levels / prices[None, :])))
        dist = np.where(sigma > 0.0, dist, np.inf)  # a stablecoin does not move
        m = drift_toward_barrier(direction, sigma, mu_daily)
        p = hit_probability(dist, sigma, horizon_days, m, monitor_days)
        p = np.where(np.isinf(dist), 0.0, p)
        if n_assets == 0:
            break
        a = np.argmax(p, axis=1)
        pa = p[rows, a]
        better = pa > best_p
        best_p = np.where(better, pa, best_p)
        best_asset = np.where(better, a, best_asset)
        best_dir = np.where(better, direction, best_dir)
        best_barrier = np.where(better, levels[rows, a], best_barrier)
    negative = health < 0.0
    best_p[negative] = 1.0
    best_asset[negative], best_dir[negative] = -1, 0
    best_barrier[negative] = np.nan
    # per account (every account has >= 1 group): its group of highest probability; groups
    # are sorted by account, so sorting by (account, -p) keeps each account's slice in place
    n = arrays.n_accounts
    order = np.lexsort((-best_p, arrays.group_account))
    group = order[arrays.account_group_start[:-1]].astype(np.int64)
    prob, asset, direction_acc = best_p[group], best_asset[group], best_dir[group]
    barrier = best_barrier[group]
    held = asset >= 0
    price = np.where(held, prices[np.maximum(asset, 0)], np.nan)
    sig = np.where(held, sigma[group, np.maximum(asset, 0)] if n_assets else np.nan, np.nan)
    account_negative = np.bincount(arrays.group_account, weights=negative, minlength=n) > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        log_distance = np.where(held, np.abs(np.log(barrier / price)), np.inf)
        log_distance = np.where(account_negative, 0.0, log_distance)
        distance_sd = np.where(
            account_negative, 0.0, log_distance / (sig * math.sqrt(horizon_days))
        )
    account_health = np.bincount(arrays.group_account, weights=health, minlength=n)
    return AccountBaseline(
        account_ids=arrays.account_ids,
        probability=np.asarray(prob, dtype=np.float64),
        asset=np.asarray(asset, dtype=np.int64),
        direction=np.asarray(direction_acc, dtype=np.int64),
        barrier_usd=np.asarray(barrier, dtype=np.float64),
        price_usd=np.asarray(price, dtype=np.float64),
        log_distance=np.asarray(log_distance, dtype=np.float64),
        distance_sd=np.asarray(distance_sd, dtype=np.float64),
        sigma_daily=np.asarray(sig, dtype=np.float64),
        maint_health_usd=np.asarray(account_health, dtype=np.float64),
        horizon_days=float(horizon_days),
        monitor_days=float(monitor_days),
        method=method,
        group=group,
    )


def gross_notional_usd(tables: MarketTables, arrays: PortfolioArrays) -> FloatArray:
    """Per account: sum of |qty| x mark over its positions, USD."""
    marks = market_marks_usd(tables)
    notional = np.abs(arrays.pos_qty) * marks[arrays.pos_market]
    return np.asarray(
        np.bincount(
            arrays.group_account[arrays.pos_group], weights=notional, minlength=arrays.n_accounts
        ),
        dtype=np.float64,
    )


__all__ = [
    "AccountBaseline",
    "MarketModel",
    "account_baseline",
    "default_market_model",
    "gross_notional_usd",
    "group_barriers",
    "group_deltas",
    "market_from_returns",
]
