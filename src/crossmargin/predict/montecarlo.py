r"""First passage of the whole portfolio: Monte Carlo paths through the kernel, bridged.

Paths are the simulator's (:func:`crossmargin.simulation.paths.gbm_jump_returns`: correlated
GBM with Merton jumps, so fat-tailed), drawn for ``n_steps`` steps of
:math:`\Delta t = T / n` days and cumulated. At every step the kernel values maint health
:math:`h_{g,k}` of every margin group :math:`g` at the path's prices (the accounts are tiled, one
copy per path, so that one kernel call values a chunk of paths).

Between two observations the path is unobserved; a group above zero at both ends may still have
dipped below. With health locally an arithmetic Brownian motion of volatility
:math:`s_{g,k}` (USD per :math:`\sqrt{\text{day}}`), the Brownian-bridge probability of that
dip is

.. math::

    q_{g,k} = \exp\!\left(-\frac{2\, h_{g,k-1}\, h_{g,k}}{s_{g,k-1}^2\, \Delta t}\right),
    \qquad s_{g,k}^2 = \sum_{a,b} \Delta_{g,a}(k)\, \Delta_{g,b}(k)\, \sigma_a \sigma_b
    \rho_{ab},

(:math:`q = 1` once an observation is below zero) with the sensitivities
:math:`\Delta_{g,a}(k) = c_{g,a} P_{a,k}` (:math:`c_{g,a} = \partial H_g / \partial P_a` by
central differences at the start: exact for health linear in the prices: balances, perps,
futures). For a one-factor linear account this is the log-price bridge
:math:`\exp(-2\ln(x_0/b)\ln(x_1/b)/(\sigma^2\Delta t))` to first order in
:math:`\sigma\sqrt{\Delta t}`. Per path, an account survives with probability
:math:`\prod_{g,k} (1 - q_{g,k})` (its groups' bridges taken as independent given the
observations: exact for a cross account, one group); the estimate is the mean over paths of one
minus that product (a conditional expectation: lower variance than counting observed
crossings), with its standard error. Jumps happen at the observation dates (they are part of the
step's increment); the bridge corrects the diffusive part only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from crossmargin.errors import InputError
from crossmargin.margin.arrays import MAINT, FloatArray, IntArray, MarketTables, PortfolioArrays
from crossmargin.margin.kernel import evaluate_groups
from crossmargin.predict.baseline import MarketModel, group_deltas
from crossmargin.predict.located import factor_index

#: bound on the floats of one chunk's sensitivity tensor (paths x groups x assets)
MAX_CHUNK_FLOATS = 4_000_000


@dataclass(frozen=True, eq=False)
class PassageResult:
    """Per account: first-passage probability over the horizon, bridged and observed only."""

    account_ids: tuple[str, ...]
    probability: FloatArray  # bridged estimate
    stderr: FloatArray
    probability_observed: FloatArray  # share of paths with an observation below zero
    n_paths: int
    n_steps: int
    horizon_days: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "paths": self.n_paths,
            "steps": self.n_steps,
            "horizon_days": self.horizon_days,
            "accounts": [
                {
                    "account": a,
                    "probability": float(p),
                    "stderr": float(s),
                    "probability_observed": float(o),
                }
                for a, p, s, o in zip(
                    self.account_ids,
                    self.probability,
                    self.stderr,
                    self.probability_observed,
                    strict=True,
                )
            ],
        }


def restrict(
    tables: MarketTables, arrays: PortfolioArrays
) -> tuple[MarketTables, PortfolioArrays, IntArray]:
    """Tables with only the assets and markets the rows use, the rows re-pointed at them, and
    the kept assets' global ids."""
    markets = np.unique(arrays.pos_market).astype(np.int64)
    assets = np.unique(
        np.concatenate(
            [arrays.bal_asset, tables.market_underlying[markets], tables.market_settle[markets]]
        )
    ).astype(np.int64)
    asset_new = np.full(tables.n_assets, -1, dtype=np.int64)
    asset_new[assets] = np.arange(assets.size)
    market_new = np.full(tables.n_markets, -1, dtype=np.int64)
    market_new[markets] = np.arange(markets.size)
    rows = replace(
        arrays, bal_asset=asset_new[arrays.bal_asset], pos_market=market_new[arrays.pos_market]
    )
    return tables.take(assets, markets), rows, assets


def tile_rows(a: PortfolioArrays, n_assets: int, n_markets: int, copies: int) -> PortfolioArrays:
    """The rows once per copy of :meth:`MarketTables.tile`: copy ``c`` points at that copy's
    asset and market ids (one kernel call then values ``copies`` price vectors)."""
    ng, nb, npos, na = a.n_groups, a.bal_qty.size, a.pos_qty.size, a.n_accounts
    c = np.arange(copies, dtype=np.int64)[:, None]

    def shifted(x: IntArray, offset: int) -> IntArray:
        return np.asarray((x[None, :] + c * offset).reshape(-1), dtype=np.int64)

    settle = np.where(a.pos_settle_row[None, :] >= 0, a.pos_settle_row[None, :] + c * nb, -1)
    position = np.where(a.group_position[None, :] >= 0, a.group_position[None, :] + c * npos, -1)
    group_account = shifted(a.group_account, na)
    return PortfolioArrays(
        account_ids=a.account_ids * copies,
        account_mode=a.account_mode * copies,
        group_account=group_account,
        group_position=position.reshape(-1).astype(np.int64),
        account_group_start=np.searchsorted(group_account, np.arange(copies * na + 1)).astype(
            np.int64
        ),
        bal_group=shifted(a.bal_group, ng),
        bal_asset=shifted(a.bal_asset, n_assets),
        bal_qty=np.tile(a.bal_qty, copies),
        pos_group=shifted(a.pos_group, ng),
        pos_market=shifted(a.pos_market, n_markets),
        pos_qty=np.tile(a.pos_qty, copies),
        pos_entry=np.tile(a.pos_entry, copies),
        pos_funding=np.tile(a.pos_funding, copies),
        pos_settle_row=settle.reshape(-1).astype(np.int64),
    )


def portfolio_first_passage(
    tables: MarketTables,
    arrays: PortfolioArrays,
    market: MarketModel,
    horizon_days: float,
    n_steps: int = 24,
    n_paths: int = 2_000,
    seed: int = 0,
    jump_per_day: float = 0.02,
    bridge: bool = True,
    chunk: int = 256,
) -> PassageResult:
    """Probability per account that some group's maint health falls below zero within the
    horizon (module docstring). ``market`` gives the volatilities and correlation of the
    tables' assets; ``jump_per_day=0`` gives pure correlated GBM."""
    # the simulation package imports pandas: only when paths are asked for
    from crossmargin.simulation.paths import gbm_jump_returns

    if not (math.isfinite(horizon_days) and horizon_days > 0.0):
        raise InputError("horizon", horizon_days, "must be a finite number of days > 0")
    for name, value in (("steps", n_steps), ("paths", n_paths), ("chunk", chunk)):
        if not (isinstance(value, int) and value >= 1):
            raise InputError(name, value, "must be an integer >= 1")
    sub_tables, rows, kept = restrict(tables, arrays)
    sigma = market.sigma_daily[kept]
    corr = market.correlation[np.ix_(kept, kept)]
    k, ng, n_acc = kept.size, rows.n_groups, rows.n_accounts
    dt = horizon_days / n_steps
    # the lots of one asset (ETH, ETH@arbitrum: #17) are one factor: simulate it once
    rep = factor_index(sub_tables.asset_symbols)
    factors, column = np.unique(rep, return_inverse=True)
    steps = gbm_jump_returns(
        sigma[factors],
        corr[np.ix_(factors, factors)],
        n_paths * n_steps,
        dt,
        jump_per_day,
        seed=seed,
    )
    if factors.size < k:  # copy each factor's returns to its located lots
        steps = steps[:, column]
    cum = np.cumsum(steps.reshape(n_paths, n_steps, k), axis=1)
    p0 = sub_tables.price_usd
    wa, wl, _ = evaluate_groups(sub_tables, rows, MAINT)
    h0 = wa - wl
    # c[g, a] = dH/dP_a (USD per USD of price): the health's USD volatility follows P_a(t)
    c = group_deltas(sub_tables, rows) / p0[None, :]
    copies = max(1, min(chunk, n_paths, MAX_CHUNK_FLOATS // max(1, ng * k)))
    tiled_tables = sub_tables.tile(copies)
    tiled_rows = tile_rows(rows, k, sub_tables.n_markets, copies)
    out = (np.empty(copies * ng), np.empty(copies * ng), np.empty(copies * ng))
    survive_acc = np.empty((n_paths, n_acc))
    observed_acc = np.empty((n_paths, n_acc), dtype=bool)
    starts = rows.account_group_start[:-1]
    for start in range(0, n_paths, copies):
        stop = min(start + copies, n_paths)
        m = stop - start
        survive = np.ones((m, ng))
        observed = np.broadcast_to(h0 < 0.0, (m, ng)).copy()
        h_prev = np.broadcast_to(h0, (m, ng))
        price_prev = np.broadcast_to(p0, (m, k))
        prices = np.empty((copies, k))
        prices[m:] = p0
        for j in range(n_steps):
            np.exp(cum[start:stop, j], out=prices[:m])
            prices[:m] *= p0
            a, b, _ = evaluate_groups(tiled_tables, tiled_rows, MAINT, prices.reshape(-1), out=out)
            h = (a - b).reshape(copies, ng)[:m]
            hit = h < 0.0
            if bridge:
                d = c[None, :, :] * (price_prev * sigma[None, :])[:, None, :]  # [m, g, a]
                s2 = np.einsum("pga,ab,pgb->pg", d, corr, d)
                with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                    expo = np.where(s2 > 0.0, -2.0 * h_prev * h / (s2 * dt), -np.inf)
                q = np.where(hit | (h_prev < 0.0), 1.0, np.exp(np.minimum(expo, 0.0)))
            else:
                q = hit.astype(np.float64)
            survive *= 1.0 - q
            observed |= hit
            h_prev = h.copy()
            price_prev = prices[:m].copy()
        survive_acc[start:stop] = np.multiply.reduceat(survive, starts, axis=1)
        observed_acc[start:stop] = np.logical_or.reduceat(observed, starts, axis=1)
    p_path = 1.0 - survive_acc
    return PassageResult(
        account_ids=arrays.account_ids,
        probability=p_path.mean(axis=0),
        stderr=p_path.std(axis=0, ddof=1) / math.sqrt(n_paths) if n_paths > 1 else np.zeros(n_acc),
        probability_observed=observed_acc.mean(axis=0),
        n_paths=n_paths,
        n_steps=n_steps,
        horizon_days=float(horizon_days),
    )


__all__ = ["PassageResult", "portfolio_first_passage", "restrict", "tile_rows"]
