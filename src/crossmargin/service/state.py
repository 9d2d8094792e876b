"""The service's in-memory working set: every account as rows of the one risk kernel.

The layout is *dense*: a cross (or portfolio) account is one margin group holding one balance
row per asset and one position row per market, most of them zero; an isolated account is a
free group (one row per asset) plus one bucket group per market (one row per asset and the
market's position row). Zero rows contribute nothing to health, and a fixed layout means a
trade or deposit only writes numbers into rows that already exist: no recompilation, no
reallocation, on the hot path. Opening an account rebuilds the arrays (rare).

Re-margining a set of accounts runs :func:`crossmargin.margin.evaluate_groups` on exactly
their groups (``groups=``), at init and maint - the same kernel as every other figure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from crossmargin.book.schema import Account, Book, OptionMarket, Position
from crossmargin.errors import InputError, UnknownNameError
from crossmargin.margin.arrays import (
    INIT,
    MAINT,
    PNL_SETTLE_NETTED,
    SECONDS_PER_YEAR,
    FloatArray,
    IntArray,
    MarketTables,
    PortfolioArrays,
)
from crossmargin.margin.kernel import evaluate_groups

BoolArray = npt.NDArray[np.bool_]

#: account status codes, ordered by severity
HEALTHY, MARGIN_CALL, LIQUIDATABLE, BANKRUPT = range(4)
STATUS_NAMES = ("healthy", "margin_call", "liquidatable", "bankrupt")


@dataclass(frozen=True)
class StatusThresholds:
    """When an account is in a margin call: init health < 0 (it can no longer add risk), or its
    maint health ratio (weighted assets / weighted liabilities) below ``margin_call_ratio``."""

    margin_call_ratio: float = 1.1


class WorkingSet:
    """Dense struct-of-arrays of every account, plus the latest kernel figures."""

    def __init__(self, market_book: Book, accounts: Sequence[Account], owners: Sequence[str]):
        self.market_book = market_book
        self.asset_symbols = tuple(market_book.assets)
        self.market_symbols = tuple(market_book.markets)
        self.n_assets = len(self.asset_symbols)
        self.n_markets = len(self.market_symbols)
        self._asset_index = {s: a for a, s in enumerate(self.asset_symbols)}
        self._market_index = {s: m for m, s in enumerate(self.market_symbols)}
        self.accounts: list[Account] = []
        self.owners: list[str] = []
        self.index: dict[str, int] = {}
        self._rebuild(list(accounts), list(owners))

    # -- layout -----------------------------------------------------------------------------
    def asset_id(self, symbol: str, field: str = "asset") -> int:
        try:
            return self._asset_index[symbol]
        except KeyError:
            raise UnknownNameError(field, symbol, "unknown asset") from None

    def market_id(self, symbol: str, field: str = "market") -> int:
        try:
            return self._market_index[symbol]
        except KeyError:
            raise UnknownNameError(field, symbol, "unknown market") from None

    def account_index(self, account_id: str) -> int:
        try:
            return self.index[account_id]
        except KeyError:
            raise UnknownNameError("account", account_id, "no account with this id") from None

    def _groups_per_account(self, mode: str) -> int:
        return 1 + self.n_markets if mode == "isolated" else 1

    def _rebuild(self, accounts: list[Account], owners: list[str]) -> None:
        n_a, n_m = self.n_assets, self.n_markets
        modes = [acc.mode for acc in accounts]
        n_groups_each = np.array([self._groups_per_account(m) for m in modes], dtype=np.int64)
        account_group_start = np.concatenate([[0], np.cumsum(n_groups_each)]).astype(np.int64)
        n_groups = int(account_group_start[-1])
        group_account = np.repeat(np.arange(len(accounts), dtype=np.int64), n_groups_each)
        is_iso = np.array([m == "isolated" for m in modes], dtype=bool)
        # group kind: -1 cross/free, m >= 0 the isolated bucket of market m
        group_market = np.full(n_groups, -1, dtype=np.int64)
        for iso in np.flatnonzero(is_iso).tolist():
            g0 = int(account_group_start[iso])
            group_market[g0 + 1 : g0 + 1 + n_m] = np.arange(n_m)
        bal_group = np.repeat(np.arange(n_groups, dtype=np.int64), n_a)
        bal_asset = np.tile(np.arange(n_a, dtype=np.int64), n_groups)
        # positions: a cross group holds all markets; an isolated bucket its one market
        pos_count = np.where(group_market >= 0, 1, np.where(is_iso[group_account], 0, n_m))
        pos_group = np.repeat(np.arange(n_groups, dtype=np.int64), pos_count)
        pos_start = np.concatenate([[0], np.cumsum(pos_count)]).astype(np.int64)
        within = np.arange(pos_group.size, dtype=np.int64) - pos_start[pos_group]
        pos_market = np.where(group_market[pos_group] >= 0, group_market[pos_group], within)
        settle = np.array(
            [self.asset_symbols.index(m.settle_asset) for m in self.market_book.markets.values()],
            dtype=np.int64,
        )
        pos_settle_row = pos_group * n_a + settle[pos_market] if n_m else pos_market
        group_position = np.full(n_groups, -1, dtype=np.int64)
        bucket = group_market >= 0
        group_position[bucket] = pos_start[:-1][bucket]
        self.arrays = PortfolioArrays(
            account_ids=tuple(acc.id for acc in accounts),
            account_mode=tuple("isolated" if m == "isolated" else "cross" for m in modes),
            group_account=group_account,
            group_position=group_position,
            account_group_start=account_group_start,
            bal_group=bal_group,
            bal_asset=bal_asset,
            bal_qty=np.zeros(bal_group.size),
            pos_group=pos_group,
            pos_market=pos_market.astype(np.int64),
            pos_qty=np.zeros(pos_group.size),
            pos_entry=np.zeros(pos_group.size),
            pos_funding=np.zeros(pos_group.size),
            pos_settle_row=pos_settle_row.astype(np.int64),
        )
        self.group_market = group_market
        self.accounts = []
        self.owners = list(owners)
        self.index = {}
        n = len(accounts)
        self.exposure = np.zeros((self.n_assets, n), dtype=bool)
        self.weighted_assets = np.zeros((2, n_groups))
        self.weighted_liabs = np.zeros((2, n_groups))
        self.group_equity = np.zeros(n_groups)
        self.init_health = np.zeros(n)
        self.maint_health = np.zeros(n)
        self.maint_wa = np.zeros(n)
        self.maint_wl = np.zeros(n)
        self.min_group_maint = np.zeros(n)
        self.equity = np.zeros(n)
        self.status = np.zeros(n, dtype=np.int64)
        for i, account in enumerate(accounts):
            self.index[account.id] = i
            self.accounts.append(account)
            self.write_account(i, account)

    def add_account(self, account: Account, owner: str) -> int:
        """Append an account (rebuilds the arrays, keeping every other account's rows)."""
        if account.id in self.index:
            raise InputError("account.id", account.id, "an account with this id exists")
        current = [self.account_model(i) for i in range(len(self.accounts))]
        self._rebuild([*current, account], [*self.owners, owner])
        return self.index[account.id]

    # -- rows -------------------------------------------------------------------------------
    def first_group(self, i: int) -> int:
        return int(self.arrays.account_group_start[i])

    def balance_row(self, i: int, asset: int, bucket_market: int = -1) -> int:
        """Row of ``asset`` in the account's cross/free group, or in an isolated bucket."""
        g = self.first_group(i) + (1 + bucket_market if bucket_market >= 0 else 0)
        return g * self.n_assets + asset

    def position_row(self, i: int, market: int) -> int:
        g0 = self.first_group(i)
        if self.arrays.account_mode[i] == "isolated":
            return int(self.arrays.pos_start[g0 + 1 + market])
        return int(self.arrays.pos_start[g0]) + market

    def write_account(self, i: int, account: Account) -> None:
        """Set the account's rows from a validated :class:`Account` (zeros elsewhere)."""
        arrays = self.arrays
        groups = range(self.first_group(i), int(arrays.account_group_start[i + 1]))
        for g in groups:
            arrays.bal_qty[g * self.n_assets : (g + 1) * self.n_assets] = 0.0
            lo, hi = int(arrays.pos_start[g]), int(arrays.pos_start[g + 1])
            arrays.pos_qty[lo:hi] = arrays.pos_entry[lo:hi] = arrays.pos_funding[lo:hi] = 0.0
        free = {self.asset_id(s): q for s, q in account.balances.items()}
        isolated = arrays.account_mode[i] == "isolated"
        for position in account.positions:
            m = self.market_id(position.market)
            r = self.position_row(i, m)
            arrays.pos_qty[r] = position.qty
            arrays.pos_entry[r] = position.entry_price
            arrays.pos_funding[r] = position.unrealized_funding
            if isolated:
                for symbol, qty in position.isolated_collateral.items():
                    a = self.asset_id(symbol)
                    arrays.bal_qty[self.balance_row(i, a, m)] = qty
                    free[a] = free.get(a, 0.0) - qty
        for a, qty in free.items():
            arrays.bal_qty[self.balance_row(i, a)] = qty
        self.accounts[i] = account
        self._update_exposure(i)

    def _update_exposure(self, i: int) -> None:
        account = self.accounts[i]
        column = np.zeros(self.n_assets, dtype=bool)
        for symbol, qty in account.balances.items():
            if qty != 0.0:
                column[self.asset_id(symbol)] = True
        for position in account.positions:
            if position.qty != 0.0 or position.unrealized_funding != 0.0:
                market = self.market_book.markets[position.market]
                column[self.asset_id(market.underlying)] = True
                column[self.asset_id(market.settle_asset)] = True
        self.exposure[:, i] = column

    def account_model(self, i: int) -> Account:
        """The account as the library's :class:`Account` (what the rows hold)."""
        return self.accounts[i]

    def exposed_accounts(self, assets: Sequence[int]) -> IntArray:
        """Accounts whose health depends on any of ``assets`` (the exposure index)."""
        if len(assets) == 1:
            return np.flatnonzero(self.exposure[assets[0]])
        return np.flatnonzero(self.exposure[list(assets)].any(axis=0))

    def groups_of(self, accounts: IntArray) -> IntArray:
        """Every group of ``accounts`` (ascending accounts give ascending groups)."""
        starts = self.arrays.account_group_start[accounts]
        counts = self.arrays.account_group_start[accounts + 1] - starts
        if accounts.size and np.all(counts == 1):
            return starts.astype(np.int64)
        offsets = np.repeat(np.cumsum(counts) - counts, counts)
        groups: IntArray = np.repeat(starts, counts) + np.arange(int(counts.sum())) - offsets
        return groups.astype(np.int64)

    # -- kernel -----------------------------------------------------------------------------
    def remargin(
        self, tables: MarketTables, accounts: IntArray, thresholds: StatusThresholds
    ) -> IntArray:
        """Re-run the kernel on ``accounts`` (sorted account indices); returns their old
        statuses (the new ones are in :attr:`status`)."""
        old = self.status[accounts].copy()
        if accounts.size == 0:
            return old
        groups = self.groups_of(accounts)
        for level in (INIT, MAINT):
            evaluate_groups(
                tables,
                self.arrays,
                level,
                out=(self.weighted_assets[level], self.weighted_liabs[level], self.group_equity),
                groups=groups,
            )
        counts = (
            self.arrays.account_group_start[accounts + 1]
            - self.arrays.account_group_start[accounts]
        )
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        wa, wl = self.weighted_assets[:, groups], self.weighted_liabs[:, groups]
        health = wa - wl
        self.init_health[accounts] = np.add.reduceat(health[INIT], starts)
        self.maint_health[accounts] = np.add.reduceat(health[MAINT], starts)
        self.maint_wa[accounts] = np.add.reduceat(wa[MAINT], starts)
        self.maint_wl[accounts] = np.add.reduceat(wl[MAINT], starts)
        self.min_group_maint[accounts] = np.minimum.reduceat(health[MAINT], starts)
        self.equity[accounts] = np.add.reduceat(self.group_equity[groups], starts)
        self.status[accounts] = self._status(accounts, thresholds)
        return old

    def _status(self, accounts: IntArray, thresholds: StatusThresholds) -> IntArray:
        wa, wl = self.maint_wa[accounts], self.maint_wl[accounts]
        low_ratio = (wl > 0.0) & (wa < thresholds.margin_call_ratio * wl)
        status = np.where((self.init_health[accounts] < 0.0) | low_ratio, MARGIN_CALL, HEALTHY)
        status = np.where(self.min_group_maint[accounts] < 0.0, LIQUIDATABLE, status)
        return np.where(self.equity[accounts] < 0.0, BANKRUPT, status).astype(np.int64)

    def health_ratio(self, i: int) -> float | None:
        wl = float(self.maint_wl[i])
        return None if wl <= 0.0 else float(self.maint_wa[i]) / wl

    def summary(self, i: int) -> dict[str, Any]:
        """The live figures of one account (USD), as the API and streams show them."""
        return {
            "account_id": self.accounts[i].id,
            "owner": self.owners[i],
            "mode": self.accounts[i].mode,
            "status": STATUS_NAMES[int(self.status[i])],
            "equity_usd": float(self.equity[i]),
            "init_health_usd": float(self.init_health[i]),
            "maint_health_usd": float(self.maint_health[i]),
            "maint_weighted_assets_usd": float(self.maint_wa[i]),
            "maint_weighted_liabilities_usd": float(self.maint_wl[i]),
            "health_ratio": self.health_ratio(i),
        }


def market_book_of(book: Book) -> Book:
    """The book without its accounts: assets and markets (the service's market state)."""
    return book.model_copy(update={"accounts": []})


def option_expiries_s(book: Book) -> FloatArray:
    """Expiry (epoch seconds) of each market; NaN for markets that are not options."""
    return np.array(
        [
            m.expiry.timestamp() if isinstance(m, OptionMarket) else math.nan
            for m in book.markets.values()
        ],
        dtype=np.float64,
    )


def live_tables(
    base: MarketTables,
    price_usd: FloatArray,
    weight_factors: FloatArray,
    expiries_s: FloatArray,
    now_s: float,
) -> MarketTables:
    """Tables at the live prices: the oracle's conservative valuation enters as factors on the
    base weights (``[4, n_assets]``: init asset, init liab, maint asset, maint liab; see
    :func:`crossmargin.margin.engine.apply_oracle`), options' time to expiry runs from now
    (floored at one second, as the pricer does)."""
    asset_weight = base.asset_weight.copy()
    liab_weight = base.liab_weight.copy()
    asset_weight[INIT] *= weight_factors[0]
    liab_weight[INIT] *= weight_factors[1]
    asset_weight[MAINT] *= weight_factors[2]
    liab_weight[MAINT] *= weight_factors[3]
    t_yrs = base.option_t_yrs
    if base.market_is_option.any():
        t_yrs = np.where(
            base.market_is_option,
            np.maximum((expiries_s - now_s) / SECONDS_PER_YEAR, 1.0 / SECONDS_PER_YEAR),
            base.option_t_yrs,
        )
    return replace(
        base,
        price_usd=price_usd.copy(),
        asset_weight=asset_weight,
        liab_weight=liab_weight,
        option_t_yrs=t_yrs,
    )


def position_dict(position: Position) -> dict[str, Any]:
    return position.model_dump()


def balances_of(account: Account) -> Mapping[str, float]:
    return account.balances


__all__ = [
    "BANKRUPT",
    "HEALTHY",
    "LIQUIDATABLE",
    "MARGIN_CALL",
    "PNL_SETTLE_NETTED",
    "STATUS_NAMES",
    "BoolArray",
    "StatusThresholds",
    "WorkingSet",
    "live_tables",
    "market_book_of",
    "option_expiries_s",
]
