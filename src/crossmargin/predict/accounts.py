r"""Per-account features and a simulated history of accounts and paths to learn from.

**Features** of an account (its riskiest margin group for the group-level ones), all known at
the forecast time:

============================  ===========================================================
``p_analytic``                the first-passage baseline (:mod:`crossmargin.predict.baseline`)
``distance_sd``               log distance to the dominant factor's liquidation price over
                              :math:`\sigma\sqrt T` (:math:`T` the horizon, days)
``health_sd``                 maint health over its volatility :math:`H / (s\sqrt T)`,
                              :math:`s^2 = \Delta^\top \Sigma \Delta` with
                              :math:`\Delta_a = \partial H/\partial \ln P_a` (all assets
                              jointly; :math:`\Sigma_{ab} = \sigma_a\sigma_b\rho_{ab}`)
``health_ratio``              maint health / equity
``leverage``                  gross position notional / equity
``net_delta_ratio``           :math:`\sum_a \Delta_a` over risky assets / equity (long > 0)
``stable_share``              stablecoin share of the deposits' value
``collateral_hhi``            Herfindahl index of the deposits' value by asset (1: one asset)
``borrow_ratio``              borrowed value / deposits' value
``top_position_share``        largest position notional / gross notional (0 without positions)
``n_positions``               number of positions
``sigma_dominant``            daily volatility of the dominant factor
============================  ===========================================================

Equity at or below zero gives NaN ratios (the trees route missing values).

**Simulated history** (:func:`simulate_accounts`): a book of ``n_epochs x accounts_per_epoch``
accounts from :func:`crossmargin.simulation.generate.generate_book`, cut into consecutive
*epochs* (time). In epoch :math:`e` every asset's true daily volatility is
:math:`\sigma_a v_e` with a persistent regime :math:`\ln v_e = \phi \ln v_{e-1} +
\eta\varepsilon_e - \eta^2/(2(1-\phi^2))` (:math:`\phi` = 0.8, :math:`\eta` = 0.35;
stochastic volatility), and one price path of ``n_steps`` steps over the horizon is drawn by
:func:`crossmargin.simulation.paths.gbm_jump_returns` (correlation 0.7, Merton jumps) from the
book's prices. Forecasts use what is known at the epoch's start: volatilities estimated by
EWMA (RiskMetrics :math:`\lambda` = 0.94) of the realized daily variance of the *previous*
epochs' paths. The target is 1 when some margin group's maint health, valued by the kernel at
the path's prices, is below zero at one of the ``n_steps`` monitoring times (an exchange
checking health at that interval; the baseline carries the matching Broadie-Glasserman-Kou
correction). Paths move prices at once for all of an epoch's accounts, without the cascade's
price impact. The epochs are tiled (:meth:`MarketTables.tile`): one kernel call per step values
all of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from crossmargin.errors import InputError
from crossmargin.margin.arrays import MAINT, FloatArray, IntArray, MarketTables, PortfolioArrays
from crossmargin.margin.kernel import evaluate_groups, market_marks_usd
from crossmargin.predict.baseline import (
    AccountBaseline,
    MarketModel,
    account_baseline,
    default_market_model,
    group_barriers,
    group_deltas,
)

ACCOUNT_FEATURES = (
    "p_analytic",
    "distance_sd",
    "health_sd",
    "health_ratio",
    "leverage",
    "net_delta_ratio",
    "stable_share",
    "collateral_hhi",
    "borrow_ratio",
    "top_position_share",
    "n_positions",
    "sigma_dominant",
)
REGIME_PERSISTENCE = 0.8
REGIME_VOL = 0.35
EWMA_LAMBDA = 0.94
#: fewest epochs of a simulated history (train, calibration and test need several each)
MIN_EPOCHS = 10


@dataclass(frozen=True, eq=False)
class AccountFeatures:
    values: FloatArray  # [n_accounts, len(ACCOUNT_FEATURES)]
    names: tuple[str, ...]
    baseline: AccountBaseline


def account_features(
    tables: MarketTables,
    arrays: PortfolioArrays,
    market: MarketModel,
    horizon_days: float,
    monitor_days: float = 0.0,
    method: str = "linear",
    group_sigma: FloatArray | None = None,
) -> AccountFeatures:
    """The module docstring's features of every account of ``arrays``. ``group_sigma``
    (``[n_groups, n_assets]``) overrides the volatilities per group."""
    deltas = group_deltas(tables, arrays)
    barriers = group_barriers(tables, arrays, method, deltas)  # type: ignore[arg-type]
    base = account_baseline(
        tables,
        arrays,
        market,
        horizon_days,
        monitor_days,
        method=method,  # type: ignore[arg-type]
        barriers=barriers,
        group_sigma=group_sigma,
    )
    health = barriers[0]
    n, n_groups = arrays.n_accounts, arrays.n_groups
    sigma = np.broadcast_to(
        market.sigma_daily if group_sigma is None else group_sigma, (n_groups, tables.n_assets)
    )
    # s^2 = Delta' Sigma Delta per group, Sigma = diag(sigma) rho diag(sigma)
    scaled = deltas * sigma
    s2 = np.einsum("ga,ab,gb->g", scaled, market.correlation, scaled)
    _wa, _wl, equity_g = evaluate_groups(tables, arrays, MAINT)
    equity = np.bincount(arrays.group_account, weights=equity_g, minlength=n)
    g = base.group
    with np.errstate(divide="ignore", invalid="ignore"):
        health_sd = np.where(
            s2[g] > 0.0, health[g] / np.sqrt(s2[g] * horizon_days), np.sign(health[g]) * np.inf
        )
    health_sd = np.where(np.isinf(health_sd), np.sign(health_sd) * 1e6, health_sd)
    marks = market_marks_usd(tables)
    notional = np.abs(arrays.pos_qty) * marks[arrays.pos_market]
    pos_account = arrays.group_account[arrays.pos_group]
    gross = np.bincount(pos_account, weights=notional, minlength=n)
    top = np.zeros(n)
    np.maximum.at(top, pos_account, notional)
    n_pos = np.bincount(pos_account, minlength=n).astype(np.float64)
    value = arrays.bal_qty * tables.price_usd[arrays.bal_asset]
    bal_account = arrays.group_account[arrays.bal_group]
    deposits = np.bincount(bal_account, weights=np.maximum(value, 0.0), minlength=n)
    borrows = np.bincount(bal_account, weights=np.maximum(-value, 0.0), minlength=n)
    stable_asset = market.sigma_daily == 0.0
    stable = np.bincount(
        bal_account,
        weights=np.where(stable_asset[arrays.bal_asset], np.maximum(value, 0.0), 0.0),
        minlength=n,
    )
    by_asset = np.zeros((n, tables.n_assets))
    np.add.at(by_asset, (bal_account, arrays.bal_asset), np.maximum(value, 0.0))
    # risky assets only: over all assets (stablecoins too) the deltas sum to the health itself
    # (health is homogeneous of degree 1 in the prices: Euler)
    account_delta = np.zeros((n, tables.n_assets))
    np.add.at(account_delta, arrays.group_account, np.where(stable_asset, 0.0, deltas))
    with np.errstate(divide="ignore", invalid="ignore"):
        positive = equity > 0.0
        eq = np.where(positive, equity, np.nan)
        dep = np.where(deposits > 0.0, deposits, np.nan)
        columns = {
            "p_analytic": base.probability,
            "distance_sd": np.minimum(base.distance_sd, 1e6),
            "health_sd": health_sd,
            "health_ratio": base.maint_health_usd / eq,
            "leverage": gross / eq,
            "net_delta_ratio": account_delta.sum(axis=1) / eq,
            "stable_share": stable / dep,
            "collateral_hhi": ((by_asset / dep[:, None]) ** 2).sum(axis=1),
            "borrow_ratio": borrows / dep,
            "top_position_share": np.where(gross > 0.0, top / np.where(gross > 0, gross, 1), 0.0),
            "n_positions": n_pos,
            "sigma_dominant": base.sigma_daily,
        }
    values = np.column_stack([columns[name] for name in ACCOUNT_FEATURES]).astype(np.float64)
    return AccountFeatures(values, ACCOUNT_FEATURES, base)


@dataclass(frozen=True, eq=False)
class AccountHistory:
    """Simulated accounts in epoch order: features, target, baseline and provenance."""

    values: FloatArray
    names: tuple[str, ...]
    target: npt.NDArray[np.int64]
    analytic: FloatArray
    epoch: IntArray  # per row
    regime: FloatArray  # per epoch: true volatility multiplier v_e
    horizon_days: float
    monitor_days: float
    info: dict[str, Any] = field(default_factory=dict)


def epoch_tiles(
    arrays: PortfolioArrays, epoch_of_account: IntArray, n_assets: int, n_markets: int
) -> PortfolioArrays:
    """The rows re-pointed at their epoch's copy of :meth:`MarketTables.tile`."""
    group_epoch = epoch_of_account[arrays.group_account]
    return replace(
        arrays,
        bal_asset=arrays.bal_asset + group_epoch[arrays.bal_group] * n_assets,
        pos_market=arrays.pos_market + group_epoch[arrays.pos_group] * n_markets,
    )


def vol_estimates(cum: FloatArray, prior_daily: FloatArray, horizon_days: float) -> FloatArray:
    """``[n_epochs, n_assets]`` daily volatility known at each epoch's start: EWMA
    (:data:`EWMA_LAMBDA`) of the realized daily variance :math:`r^2/T` of the previous epochs'
    paths (``cum[e, -1]`` is epoch ``e``'s log return over the horizon), from ``prior_daily``."""
    estimate = np.empty((cum.shape[0], cum.shape[2]))
    variance = np.asarray(prior_daily, dtype=np.float64) ** 2
    for e in range(cum.shape[0]):
        estimate[e] = np.sqrt(variance)
        variance = EWMA_LAMBDA * variance + (1.0 - EWMA_LAMBDA) * cum[e, -1] ** 2 / horizon_days
    return estimate


def simulate_accounts(
    n_epochs: int = 200,
    accounts_per_epoch: int = 400,
    horizon_days: float = 1.0,
    n_steps: int = 24,
    seed: int = 0,
    jump_per_day: float = 0.02,
) -> AccountHistory:
    """The module docstring's simulated history."""
    from crossmargin.simulation.generate import generate_book
    from crossmargin.simulation.paths import gbm_jump_returns

    if not (isinstance(n_epochs, int) and n_epochs >= MIN_EPOCHS):
        raise InputError("epochs", n_epochs, f"too short: need at least {MIN_EPOCHS} epochs")
    if not (isinstance(accounts_per_epoch, int) and accounts_per_epoch >= 10):
        raise InputError("accounts", accounts_per_epoch, "need at least 10 accounts per epoch")
    if not (isinstance(n_steps, int) and n_steps >= 1):
        raise InputError("steps", n_steps, "must be an integer >= 1")
    if not (math.isfinite(horizon_days) and horizon_days > 0.0):
        raise InputError("horizon", horizon_days, "must be a finite number of days > 0")
    book = generate_book(n_epochs * accounts_per_epoch, seed)
    tables, arrays = book.tables, book.to_arrays()
    base = default_market_model(tables)
    n_assets, n_markets = tables.n_assets, tables.n_markets
    rng = np.random.default_rng([seed, 16])
    # volatility regime: stationary log-AR(1) with E[v] = 1
    log_v = np.empty(n_epochs)
    stationary_sd = REGIME_VOL / math.sqrt(1.0 - REGIME_PERSISTENCE**2)
    x = rng.normal(0.0, stationary_sd)
    for e in range(n_epochs):
        x = REGIME_PERSISTENCE * x + REGIME_VOL * rng.normal() if e else x
        log_v[e] = x
    regime = np.exp(log_v - 0.5 * stationary_sd**2)
    dt = horizon_days / n_steps
    cum = np.empty((n_epochs, n_steps, n_assets))
    for e in range(n_epochs):
        steps = gbm_jump_returns(
            base.sigma_daily * regime[e],
            base.correlation,
            n_steps,
            dt,
            jump_per_day,
            seed=int(rng.integers(2**31)),
        )
        cum[e] = np.cumsum(steps, axis=0)
    estimate = vol_estimates(cum, base.sigma_daily, horizon_days)
    epoch = np.repeat(np.arange(n_epochs), accounts_per_epoch).astype(np.int64)
    group_sigma = estimate[epoch[arrays.group_account]]
    features = account_features(tables, arrays, base, horizon_days, dt, group_sigma=group_sigma)
    # target: some group below zero at a monitoring time of its epoch's path
    tiled = tables.tile(n_epochs)
    rows = epoch_tiles(arrays, epoch, n_assets, n_markets)
    hit = np.zeros(arrays.n_groups, dtype=bool)
    out = (np.empty(arrays.n_groups), np.empty(arrays.n_groups), np.empty(arrays.n_groups))
    for j in range(n_steps):
        prices = (tables.price_usd[None, :] * np.exp(cum[:, j, :])).reshape(-1)
        wa, wl, _ = evaluate_groups(tiled, rows, MAINT, prices, out=out)
        hit |= wa - wl < 0.0
    target = np.bincount(arrays.group_account, weights=hit, minlength=arrays.n_accounts) > 0
    return AccountHistory(
        values=features.values,
        names=features.names,
        target=target.astype(np.int64),
        analytic=features.baseline.probability,
        epoch=epoch,
        regime=regime,
        horizon_days=float(horizon_days),
        monitor_days=float(dt),
        info={
            "source": "simulated: crossmargin.simulation.generate_book + gbm_jump_returns",
            "seed": seed,
            "epochs": n_epochs,
            "accounts_per_epoch": accounts_per_epoch,
            "rows": int(target.size),
            "steps": n_steps,
            "jump_per_day": jump_per_day,
            "regime": {"persistence": REGIME_PERSISTENCE, "vol": REGIME_VOL},
        },
    )


__all__ = [
    "ACCOUNT_FEATURES",
    "AccountFeatures",
    "AccountHistory",
    "account_features",
    "epoch_tiles",
    "simulate_accounts",
    "vol_estimates",
]
