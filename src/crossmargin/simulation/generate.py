r"""Synthetic books of many accounts, from stated distributions, for the cascade simulator.

The market is the demo book's (stablecoins, BTC, ETH, wstETH, SOL, AAVE; BTC, ETH and SOL
perps), unless another book's market is given. Each account (independent draws, one seed):

* **equity** :math:`E \sim \text{LogNormal}(\ln 10\,000, 1.5)` USD (median 10k, heavy tail);
* **collateral mix**: a Dirichlet(:math:`\alpha`) split of :math:`E` over the collateral assets,
  :math:`\alpha` = 2 for USDC, 1 for BTC and ETH, 0.5 for SOL, 0.3 for wstETH and AAVE (absent
  assets are skipped);
* **leverage** :math:`L = 1 + \text{Gamma}(2, 1.5)`, capped at ``max_leverage``: perp notional
  :math:`L E`, over 1 + Binomial(2, 0.3) perps chosen without replacement with weights
  BTC 0.4, ETH 0.4, SOL 0.2, split by a Dirichlet(1); each long with probability 0.65;
* **borrow**: with probability 0.25 a USDC borrow of :math:`b E`, :math:`b \sim U(0, 0.6)`,
  held as extra collateral in the account's largest non-stable asset (a levered spot long);
* entries at the mark (no open PnL), no funding;
* isolated (:meth:`GeneratedBook.to_book`): the wallet keeps collateral worth 1.5x the borrow,
  the rest is allocated to the position buckets pro rata to their notional;
* accounts that fail the init check are de-levered (positions and borrow halved, up to five
  times): every generated account could have been opened.

The same draws give the cross arrays of 1,000,000 accounts in a second
(:meth:`GeneratedBook.to_arrays`) and a validated :class:`~crossmargin.book.Book` in any mode
for smaller books (:meth:`GeneratedBook.to_book`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from crossmargin.book.io import book_from_data, load_demo_book
from crossmargin.book.schema import Book, OptionMarket
from crossmargin.errors import InputError
from crossmargin.margin.arrays import (
    INIT,
    FloatArray,
    MarketTables,
    PortfolioArrays,
    compile_market,
)
from crossmargin.margin.kernel import evaluate_groups, market_marks_usd

COLLATERAL_ALPHA = {"USDC": 2.0, "BTC": 1.0, "ETH": 1.0, "SOL": 0.5, "wstETH": 0.3, "AAVE": 0.3}
PERP_WEIGHT = {"BTC-PERP": 0.4, "ETH-PERP": 0.4, "SOL-PERP": 0.2}
BORROW_ASSET = "USDC"


def default_market() -> Book:
    """The demo book's assets and perp/future markets, without accounts."""
    demo = load_demo_book()
    markets = {k: m for k, m in demo.markets.items() if not isinstance(m, OptionMarket)}
    return demo.model_copy(update={"accounts": [], "markets": markets})


@dataclass(frozen=True, eq=False)
class GeneratedBook:
    """Draws of ``n`` accounts over a market: quantities per asset and per market."""

    market: Book
    tables: MarketTables
    balance_qty: FloatArray  # [n, n_assets]
    position_qty: FloatArray  # [n, n_markets], signed
    entry_settle: FloatArray  # [n_markets] entry price in settle units (the mark)

    @property
    def n_accounts(self) -> int:
        return int(self.balance_qty.shape[0])

    def to_arrays(self) -> PortfolioArrays:
        """Cross arrays, one group per account; every position's settle asset has a row."""
        return _cross_arrays(self.tables, self.balance_qty, self.position_qty, self.entry_settle)

    def to_book(self, mode: Literal["cross", "isolated", "portfolio"] = "cross") -> Book:
        """A validated book (isolated: each position gets the collateral pro rata to its
        notional). For up to some 100,000 accounts; use :meth:`to_arrays` beyond."""
        symbols, markets = self.tables.asset_symbols, self.tables.market_symbols
        marks = market_marks_usd(self.tables)
        accounts: list[dict[str, Any]] = []
        for i in range(self.n_accounts):
            balances = {symbols[a]: float(q) for a, q in enumerate(self.balance_qty[i]) if q != 0.0}
            held = np.flatnonzero(self.position_qty[i])
            positions: list[dict[str, Any]] = [
                {
                    "market": markets[m],
                    "qty": float(self.position_qty[i, m]),
                    "entry_price": float(self.entry_settle[m]),
                }
                for m in held
            ]
            if mode == "isolated" and held.size:
                # the wallet keeps collateral worth 1.5x its borrow; the rest goes to the
                # position buckets pro rata to their notional
                values = self.balance_qty[i] * self.tables.price_usd
                owed = -values[values < 0.0].sum()
                kept = min(1.0, 1.5 * owed / max(values[values > 0.0].sum(), 1e-300))
                notional = np.abs(self.position_qty[i, held]) * marks[held]
                share = (1.0 - kept) * notional / notional.sum()
                for position, s in zip(positions, share, strict=True):
                    position["isolated_collateral"] = {
                        k: v * float(s) for k, v in balances.items() if v > 0.0
                    }
            accounts.append(
                {"id": f"g{i}", "mode": mode, "balances": balances, "positions": positions}
            )
        data = self.market.model_dump(mode="json", exclude_none=True)
        data["accounts"] = accounts
        return book_from_data(data)


def generate_book(
    n_accounts: int,
    seed: int = 0,
    market: Book | None = None,
    max_leverage: float = 20.0,
) -> GeneratedBook:
    """Draw ``n_accounts`` accounts (module docstring) over ``market`` (default: the demo's)."""
    if not (isinstance(n_accounts, int) and n_accounts >= 1):
        raise InputError("n_accounts", n_accounts, "must be an integer >= 1")
    if not (np.isfinite(max_leverage) and max_leverage >= 1.0):
        raise InputError("max_leverage", max_leverage, "must be a finite number >= 1")
    market = market or default_market()
    tables = compile_market(market)
    rng = np.random.default_rng(seed)
    n = n_accounts
    prices = tables.price_usd
    symbols = list(tables.asset_symbols)
    coll = [s for s in COLLATERAL_ALPHA if s in symbols]
    if not coll:
        raise InputError("market.assets", symbols, f"needs one of {sorted(COLLATERAL_ALPHA)}")
    perps = [m for m in PERP_WEIGHT if m in tables.market_symbols]
    equity = rng.lognormal(np.log(10_000.0), 1.5, n)
    split = rng.dirichlet([COLLATERAL_ALPHA[s] for s in coll], n)
    balance = np.zeros((n, tables.n_assets))
    coll_ids = np.array([symbols.index(s) for s in coll])
    balance[:, coll_ids] = split * equity[:, None] / prices[coll_ids]

    position = np.zeros((n, tables.n_markets))
    marks = market_marks_usd(tables)
    if perps:
        perp_ids = np.array([tables.market_symbols.index(m) for m in perps])
        weights = np.array([PERP_WEIGHT[m] for m in perps])
        leverage = np.minimum(1.0 + rng.gamma(2.0, 1.5, n), max_leverage)
        count = np.minimum(1 + rng.binomial(2, 0.3, n), len(perps))
        # choose `count` distinct perps by weight: rank Gumbel-perturbed log weights
        keys = np.log(weights)[None, :] + rng.gumbel(size=(n, len(perps)))
        rank = np.argsort(np.argsort(-keys, axis=1), axis=1)
        chosen = rank < count[:, None]
        shares = rng.dirichlet(np.ones(len(perps)), n) * chosen
        shares /= shares.sum(axis=1, keepdims=True)
        side = np.where(rng.random((n, len(perps))) < 0.65, 1.0, -1.0)
        notional = (leverage * equity)[:, None] * shares
        position[:, perp_ids] = side * notional / marks[perp_ids]
    if BORROW_ASSET in symbols:
        b = symbols.index(BORROW_ASSET)
        borrows = rng.random(n) < 0.25
        amount = np.where(borrows, rng.uniform(0.0, 0.6, n) * equity, 0.0)
        risky = [a for a in coll_ids if symbols[a] != BORROW_ASSET]
        if risky:
            largest = np.array(risky)[np.argmax(balance[:, risky] * prices[risky], axis=1)]
            balance[np.arange(n), largest] += amount / prices[largest]
            balance[:, b] -= amount / prices[b]

    entry = marks / prices[tables.market_settle]
    _delever(tables, balance, position, entry)
    return GeneratedBook(market, tables, balance, position, entry)


def _delever(
    tables: MarketTables, balance: FloatArray, position: FloatArray, entry: FloatArray
) -> None:
    """Halve positions and the borrow of accounts below init health 0, up to five times."""
    borrow_col = (
        tables.asset_symbols.index(BORROW_ASSET) if BORROW_ASSET in tables.asset_symbols else -1
    )
    prices = tables.price_usd
    for _ in range(5):
        arrays = _cross_arrays(tables, balance, position, entry)
        wa, wl, _eq = evaluate_groups(tables, arrays, INIT)
        bad = np.flatnonzero(wa - wl < 0.0)
        if bad.size == 0:
            return
        position[bad] *= 0.5
        if borrow_col >= 0:
            owed = np.minimum(balance[bad, borrow_col], 0.0)
            repay_usd = -0.5 * owed * prices[borrow_col]
            # repay half the borrow out of the largest non-stable holding
            values = balance[bad] * prices
            values[:, borrow_col] = -np.inf
            source = np.argmax(values, axis=1)
            balance[bad, source] -= (
                np.minimum(repay_usd, np.maximum(values[np.arange(bad.size), source], 0.0))
                / prices[source]
            )
            balance[bad, borrow_col] -= 0.5 * owed


def _cross_arrays(
    tables: MarketTables, balance: FloatArray, position: FloatArray, entry: FloatArray
) -> PortfolioArrays:
    n, n_assets = balance.shape
    settle_assets = np.unique(tables.market_settle[np.flatnonzero(position.any(axis=0))])
    keep_bal: npt.NDArray[np.bool_] = np.asarray(balance != 0.0)
    holds = np.asarray(position.any(axis=1), dtype=bool)
    keep_bal[:, settle_assets] |= holds[:, None]
    keep_pos = position != 0.0
    bal_group, bal_asset = np.nonzero(keep_bal)  # row-major: sorted by account, then asset
    pos_group, pos_market = np.nonzero(keep_pos)
    row_of = np.full((n, n_assets), -1, dtype=np.int64)
    row_of[bal_group, bal_asset] = np.arange(bal_group.size)
    groups = np.arange(n, dtype=np.int64)
    return PortfolioArrays(
        account_ids=tuple(f"g{i}" for i in range(n)),
        account_mode=("cross",) * n,
        group_account=groups,
        group_position=np.full(n, -1, dtype=np.int64),
        account_group_start=np.arange(n + 1, dtype=np.int64),
        bal_group=bal_group.astype(np.int64),
        bal_asset=bal_asset.astype(np.int64),
        bal_qty=balance[bal_group, bal_asset].astype(np.float64),
        pos_group=pos_group.astype(np.int64),
        pos_market=pos_market.astype(np.int64),
        pos_qty=position[pos_group, pos_market].astype(np.float64),
        pos_entry=entry[pos_market].astype(np.float64),
        pos_funding=np.zeros(pos_group.size),
        pos_settle_row=row_of[pos_group, tables.market_settle[pos_market]],
    )


__all__ = ["GeneratedBook", "default_market", "generate_book"]
