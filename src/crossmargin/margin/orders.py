r"""Open orders, margined at their worst-case fill through the one risk kernel.

Venues margin a resting order as if it filled, on the side that hurts most: Mango v4 computes
each perp market's health contribution with all bids filled and with all asks filled and keeps
the lower (``health/cache.rs`` ``PerpInfo``, bids/asks lots); Drift v2 margins the worst case
of ``position + bids`` and ``position - asks`` per market (``worst_case_base_asset_amount``).

For a position row with quantity :math:`q`, entry :math:`e` and funding :math:`f` (settle
units), filling a signed quantity :math:`\delta` at limit price :math:`p` (the mark
:math:`M/S` at the evaluated prices for an order without a price) gives
:math:`q' = q + \delta` and keeps the entry, with the fill's PnL carried by the funding term:

.. math::  f' = f + \delta\,(p - e)

so that :math:`u' = q'(M - eS) - f'S = u + \delta(M - pS)` exactly (no division at a flip).
Three kernel evaluations per level: all bids filled (row contributions :math:`c^{bid}`), all
asks filled (:math:`c^{ask}`), then each market on its worse side
(:math:`c^{bid} \le c^{ask}`: bids) - Mango's per-market minimum, which is exact under both
PnL conventions because balances do not change and each row's contribution is its own (under
``settle_netted`` the netted contributions add to the settle balance before it is weighted, a
monotone map). Equity is the account's without orders (an order is not value).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from crossmargin.book.schema import Account, Position
from crossmargin.margin.arrays import FloatArray, IntArray, MarketTables, PortfolioArrays
from crossmargin.margin.kernel import NO_SHOCK, evaluate_groups, market_marks_usd


@dataclass(frozen=True)
class OrderRows:
    """Per position row: each side's quantity, its priced part's cost (settle units) and its
    part that fills at the mark."""

    bid_qty: FloatArray  # [n_pos] >= 0
    bid_cost: FloatArray  # [n_pos] sum qty x limit price over priced bids (settle units)
    bid_at_mark: FloatArray  # [n_pos] qty of bids without a price
    ask_qty: FloatArray
    ask_cost: FloatArray
    ask_at_mark: FloatArray
    rows: IntArray  # position rows with at least one order

    @property
    def empty(self) -> bool:
        return self.rows.size == 0


def with_order_rows(accounts: Sequence[Account]) -> list[Account]:
    """Accounts with a zero position in every market they have orders in but no position."""
    out = []
    for account in accounts:
        held = {p.market for p in account.positions}
        missing = [o.market for o in account.orders if o.market not in held]
        if not missing:
            out.append(account)
            continue
        extra = [Position(market=m, qty=0.0, entry_price=0.0) for m in dict.fromkeys(missing)]
        out.append(account.model_copy(update={"positions": [*account.positions, *extra]}))
    return out


def order_rows(
    tables: MarketTables, arrays: PortfolioArrays, accounts: Sequence[Account]
) -> OrderRows:
    """Map each account's orders onto its position rows (compiled from
    :func:`with_order_rows`; an isolated account's order goes to that market's bucket)."""
    n = arrays.pos_qty.size
    side = {
        "buy": (np.zeros(n), np.zeros(n), np.zeros(n)),
        "sell": (np.zeros(n), np.zeros(n), np.zeros(n)),
    }
    row_of: dict[tuple[int, int], int] = {}
    for r in range(n):
        owner = int(arrays.group_account[int(arrays.pos_group[r])])
        row_of.setdefault((owner, int(arrays.pos_market[r])), r)
    for i, account in enumerate(accounts):
        for order in account.orders:
            r = row_of[(i, tables.market_id(order.market))]
            qty, cost, at_mark = side[order.side]
            qty[r] += order.qty
            if order.price is None:
                at_mark[r] += order.qty
            else:
                cost[r] += order.qty * order.price
    bids, asks = side["buy"], side["sell"]
    rows = np.flatnonzero((bids[0] > 0) | (asks[0] > 0))
    return OrderRows(*bids, *asks, rows)


def _marks_settle(
    tables: MarketTables,
    arrays: PortfolioArrays,
    price_usd: FloatArray | None,
    shock_asset: int,
    shock_mult: FloatArray,
) -> FloatArray:
    """Per position row: the mark in settle units at the evaluation's prices (a shocked
    underlying or settle asset moves it; an option's premium is taken unshocked)."""
    prices = tables.price_usd if price_usd is None else price_usd
    m = arrays.pos_market
    mark = market_marks_usd(tables, prices)[m]
    settle = prices[tables.market_settle[m]]
    if shock_asset >= 0:
        mult = shock_mult[arrays.pos_group]
        linear = ~tables.market_is_option[m]
        mark = np.where(linear & (tables.market_underlying[m] == shock_asset), mark * mult, mark)
        settle = np.where(tables.market_settle[m] == shock_asset, settle * mult, settle)
    # a worthless settle asset (a -100 % shock, or a denormal one): the fill costs nothing
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        result: FloatArray = np.divide(mark, settle, out=np.zeros_like(mark), where=settle > 0.0)
    result[~np.isfinite(result)] = 0.0
    return result


def _filled(
    arrays: PortfolioArrays, orders: OrderRows, take_bid: np.ndarray, mark: FloatArray
) -> PortfolioArrays:
    """Arrays with, on each order row, its bids (``take_bid``) or its asks filled."""
    with np.errstate(over="ignore", invalid="ignore"):  # a search's absurd prices (1e6 x)
        return _filled_rows(arrays, orders, take_bid, mark)


def _filled_rows(
    arrays: PortfolioArrays, orders: OrderRows, take_bid: np.ndarray, mark: FloatArray
) -> PortfolioArrays:
    bid_cost = orders.bid_cost + orders.bid_at_mark * mark
    ask_cost = orders.ask_cost + orders.ask_at_mark * mark
    qty = np.where(take_bid, orders.bid_qty, -orders.ask_qty)
    cost = np.where(take_bid, bid_cost, -ask_cost)
    # f' = f + delta (p - e) summed over the side's orders: + cost - delta e
    pos_qty = arrays.pos_qty + qty
    pos_funding = arrays.pos_funding + cost - qty * arrays.pos_entry
    return replace(arrays, pos_qty=pos_qty, pos_funding=pos_funding)


def evaluate_with_orders(
    tables: MarketTables,
    arrays: PortfolioArrays,
    orders: OrderRows,
    level: int,
    price_usd: FloatArray | None = None,
    shock_asset: int = -1,
    shock_mult: FloatArray = NO_SHOCK,
    out: tuple[FloatArray, FloatArray, FloatArray] | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Weighted assets and liabilities with every market's orders at their worse side; the
    equity without orders (module docstring). Without orders: one plain kernel call. The
    shock arguments are :func:`~crossmargin.margin.kernel.evaluate_groups`'s."""
    shock = (shock_asset, shock_mult)
    result = evaluate_groups(tables, arrays, level, price_usd, *shock, out=out)
    if orders.empty:
        return result
    n = arrays.pos_qty.size
    mark = _marks_settle(tables, arrays, price_usd, shock_asset, shock_mult)
    contrib = []
    for take_bid in (np.ones(n, dtype=bool), np.zeros(n, dtype=bool)):
        pos_contrib = np.zeros(n)
        evaluate_groups(
            tables,
            _filled(arrays, orders, take_bid, mark),
            level,
            price_usd,
            *shock,
            bal_contrib=NO_SHOCK,
            pos_contrib=pos_contrib,
        )
        contrib.append(pos_contrib)
    worse_is_bid = contrib[0] <= contrib[1]
    filled = _filled(arrays, orders, worse_is_bid, mark)
    wa, wl, _ = evaluate_groups(tables, filled, level, price_usd, *shock)
    weighted_assets, weighted_liabs, equity = result
    weighted_assets[:] = wa
    weighted_liabs[:] = wl
    return weighted_assets, weighted_liabs, equity
