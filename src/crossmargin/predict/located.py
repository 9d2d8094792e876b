r"""Predictions for a book with located collateral (issue #17): every lot of an asset is one
risk factor.

A compiled book holds ``ETH`` and its located symbols (``ETH@arbitrum``, ``ETH@arbitrum>home``)
as separate assets of the kernel with the same price. For the first-passage baseline they are
one factor: the volatility of a located symbol is its base asset's, their correlation is 1,
and a cross account's liquidation price of ``ETH`` moves all its lots together
(:func:`crossmargin.locations.liqprice.joint_crossings`); the located symbols' own columns are
dropped (NaN), as in ``crossmargin margin``'s liquidation table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from crossmargin.locations.liqprice import joint_crossings
from crossmargin.locations.schema import base_asset
from crossmargin.locations.view import LocatedView
from crossmargin.margin.arrays import FloatArray, MarketTables, PortfolioArrays
from crossmargin.margin.engine import MarginEngine
from crossmargin.predict.baseline import MarketModel


def factor_index(symbols: Sequence[str]) -> np.ndarray[tuple[int], np.dtype[np.int64]]:
    """Per asset: the index of the first asset of the same base (itself for a plain asset)."""
    first: dict[str, int] = {}
    return np.array(
        [first.setdefault(base_asset(s), i) for i, s in enumerate(symbols)], dtype=np.int64
    )


def tie_located(market: MarketModel, symbols: Sequence[str]) -> MarketModel:
    """``market`` with each located symbol's volatility and correlations those of its
    factor (correlation exactly 1 between the lots of one asset)."""
    rep = factor_index(symbols)
    if np.array_equal(rep, np.arange(rep.size)):
        return market
    sigma = market.sigma_daily[rep]
    corr = market.correlation[np.ix_(rep, rep)].copy()
    np.fill_diagonal(corr, 1.0)
    source = dict(market.source)
    for i, s in enumerate(symbols):
        if rep[i] != i:
            source[s] = f"{source.get(symbols[rep[i]], '')} ({symbols[rep[i]]})".strip()
    return replace(market, sigma_daily=sigma, correlation=corr, source=source)


def joint_barriers(
    view: LocatedView,
    tables: MarketTables,
    arrays: PortfolioArrays,
    barriers: tuple[FloatArray, FloatArray, FloatArray],
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``barriers`` (health, below, above per group and asset) with, for every cross account
    holding located symbols, the base asset's joint liquidation prices in the base's column
    and NaN in the located symbols' columns."""
    health, below, above = barriers
    below, above = below.copy(), above.copy()
    engine: MarginEngine | None = None
    for i, account_id in enumerate(arrays.account_ids):
        account = view.book.account(account_id)
        located = [s for s in account.balances if s in view.base_of]
        g0, g1 = int(arrays.account_group_start[i]), int(arrays.account_group_start[i + 1])
        if not located or arrays.account_mode[i] != "cross" or g1 - g0 != 1:
            continue  # an isolated account keeps the per-symbol figures (as margin does)
        engine = engine or MarginEngine(view.book)
        for symbol in located:
            a = tables.asset_id(symbol)
            below[g0, a] = above[g0, a] = np.nan
        for base in sorted({view.base_of[s] for s in located}):
            low, high = joint_crossings(view, engine, account_id, base)
            a = tables.asset_id(base)
            below[g0, a] = np.nan if low is None else low
            above[g0, a] = np.nan if high is None else high
    return health, below, above
