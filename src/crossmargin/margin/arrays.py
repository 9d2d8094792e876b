"""Struct-of-arrays form of a book: the input of the one risk kernel.

Two parts, in the spirit of Mango v4's health cache:

* :class:`MarketTables` - per-asset and per-market parameters (prices, weights, tiers, brackets),
  compiled once per book;
* :class:`PortfolioArrays` - one row per balance and one row per derivative position, each row
  tagged with its *margin group*. A cross account is one group; an isolated account is one group
  per position plus one for its unallocated balances. Rows are sorted by group and groups by
  account, so an account is a contiguous slice.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt

from crossmargin.book.schema import Account, Book, Market, OptionMarket
from crossmargin.errors import InputError, UnknownNameError
from crossmargin.haircuts.weights import bracket_cums, open_interest_scaled_frac
from crossmargin.pricing import PricingInputError, implied_vol

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Mode = Literal["cross", "isolated"]
#: an account's mode; the kernel sees a portfolio account as one cross pool
AccountMode = Literal["cross", "isolated", "portfolio"]

#: Row index of the two margin levels in every ``[2, n]`` parameter array.
INIT, MAINT = 0, 1
LEVELS: dict[str, int] = {"init": INIT, "maint": MAINT}

PNL_SEPARATE, PNL_SETTLE_NETTED = 0, 1
SECONDS_PER_YEAR = 365.0 * 86_400.0


@dataclass(frozen=True, eq=False)
class MarketTables:
    """Per-asset and per-market parameters, indexed by asset id and market id."""

    asset_symbols: tuple[str, ...]
    price_usd: FloatArray  # [n_assets] USD per unit
    asset_weight: FloatArray  # [2, n_assets] init/maint
    liab_weight: FloatArray  # [2, n_assets]
    asset_imf: FloatArray  # [n_assets]
    tier_above_usd: FloatArray  # [n_assets, max_tiers] padded with +inf
    tier_factor: FloatArray  # [n_assets, max_tiers]
    tier_count: IntArray  # [n_assets]

    market_symbols: tuple[str, ...]
    market_underlying: IntArray  # [n_markets] asset id
    market_settle: IntArray  # [n_markets] asset id
    market_basis: FloatArray  # [n_markets] mark_usd / underlying_usd at book prices
    margin_frac: FloatArray  # [2, n_markets]
    market_imf: FloatArray  # [n_markets]
    bracket_floor_usd: FloatArray  # [n_markets, max_brackets]; column 0 is 0
    bracket_frac: FloatArray  # [2, n_markets, max_brackets]
    bracket_cum_usd: FloatArray  # [2, n_markets, max_brackets]
    bracket_count: IntArray  # [n_markets]
    pnl_weight: FloatArray  # [2, n_markets]
    pnl_imf: FloatArray  # [n_markets]
    market_is_option: npt.NDArray[np.bool_]  # [n_markets]
    option_strike: FloatArray  # [n_markets] settle-asset units; 0 for other markets
    option_vol: FloatArray  # [n_markets] mark vol per 1.0 per year; NaN: none (see option_issue)
    option_t_yrs: FloatArray  # [n_markets] time to expiry from as_of, years; NaN: no as_of
    option_is_call: npt.NDArray[np.bool_]  # [n_markets]
    option_min_frac: FloatArray  # [n_markets] initial_min_margin_frac
    option_issue: dict[int, InputError]  # market id -> why it cannot be valued (raised on use)
    pnl_convention: int  # PNL_SEPARATE or PNL_SETTLE_NETTED

    #: layout: the axis along which each per-asset / per-market array is indexed; the two
    #: asset-id-valued market fields are re-pointed, not copied (a test checks every field
    #: is classified, so a new field cannot be forgotten by take/tile)
    ASSET_AXIS: ClassVar[dict[str, int]] = {
        "price_usd": 0,
        "asset_weight": 1,
        "liab_weight": 1,
        "asset_imf": 0,
        "tier_above_usd": 0,
        "tier_factor": 0,
        "tier_count": 0,
    }
    MARKET_AXIS: ClassVar[dict[str, int]] = {
        "market_basis": 0,
        "margin_frac": 1,
        "market_imf": 0,
        "bracket_floor_usd": 0,
        "bracket_frac": 1,
        "bracket_cum_usd": 1,
        "bracket_count": 0,
        "pnl_weight": 1,
        "pnl_imf": 0,
        "market_is_option": 0,
        "option_strike": 0,
        "option_vol": 0,
        "option_t_yrs": 0,
        "option_is_call": 0,
        "option_min_frac": 0,
    }
    ASSET_ID_FIELDS: ClassVar[tuple[str, ...]] = ("market_underlying", "market_settle")
    OTHER_FIELDS: ClassVar[tuple[str, ...]] = (
        "asset_symbols",
        "market_symbols",
        "option_issue",
        "pnl_convention",
    )

    def take(self, assets: IntArray, markets: IntArray) -> MarketTables:
        """Only ``assets`` and ``markets`` (ids), renumbered in that order; the markets'
        underlying and settle assets must be among ``assets``."""
        new_asset = np.full(self.n_assets, -1, dtype=np.int64)
        new_asset[assets] = np.arange(assets.size)
        new_market = {int(m): j for j, m in enumerate(markets)}
        updates: dict[str, object] = {
            name: np.ascontiguousarray(np.take(getattr(self, name), assets, axis=axis))
            for name, axis in self.ASSET_AXIS.items()
        }
        updates |= {
            name: np.ascontiguousarray(np.take(getattr(self, name), markets, axis=axis))
            for name, axis in self.MARKET_AXIS.items()
        }
        for name in self.ASSET_ID_FIELDS:
            ids = new_asset[getattr(self, name)[markets]]
            if np.any(ids < 0):
                raise InputError(name, "...", "a market's asset is not among the kept assets")
            updates[name] = ids
        updates["asset_symbols"] = tuple(self.asset_symbols[int(a)] for a in assets)
        updates["market_symbols"] = tuple(self.market_symbols[int(m)] for m in markets)
        updates["option_issue"] = {
            new_market[m]: e for m, e in self.option_issue.items() if m in new_market
        }
        return replace(self, **updates)  # type: ignore[arg-type]

    def tile(self, copies: int) -> MarketTables:
        """``copies`` copies side by side: copy ``c`` owns assets ``c n_assets ...`` and markets
        ``c n_markets ...`` (one kernel call then values ``copies`` price vectors)."""

        def repeat(x: Any, axis: int) -> Any:
            return np.ascontiguousarray(np.concatenate([x] * copies, axis=axis))

        updates: dict[str, object] = {
            name: repeat(getattr(self, name), axis)
            for name, axis in (self.ASSET_AXIS | self.MARKET_AXIS).items()
        }
        offsets = (np.arange(copies, dtype=np.int64) * self.n_assets)[:, None]
        for name in self.ASSET_ID_FIELDS:
            updates[name] = (getattr(self, name)[None, :] + offsets).reshape(-1)
        updates["asset_symbols"] = self.asset_symbols * copies
        updates["market_symbols"] = self.market_symbols * copies
        updates["option_issue"] = {
            c * self.n_markets + m: e for c in range(copies) for m, e in self.option_issue.items()
        }
        return replace(self, **updates)  # type: ignore[arg-type]

    @property
    def n_assets(self) -> int:
        return len(self.asset_symbols)

    @property
    def n_markets(self) -> int:
        return len(self.market_symbols)

    def asset_id(self, symbol: str, field: str = "asset") -> int:
        try:
            return self.asset_symbols.index(symbol)
        except ValueError:
            raise UnknownNameError(field, symbol, "unknown asset") from None

    def market_id(self, symbol: str, field: str = "market") -> int:
        try:
            return self.market_symbols.index(symbol)
        except ValueError:
            raise UnknownNameError(field, symbol, "unknown market") from None

    def prices_with(self, overrides: dict[str, float] | None) -> FloatArray:
        """Book prices with some assets' USD prices replaced (validated: finite and > 0)."""
        prices = self.price_usd.copy()
        for symbol, price in (overrides or {}).items():
            value = float(price)
            if not np.isfinite(value) or value <= 0.0:
                raise InputError(f"prices.{symbol}", price, "price must be a finite number > 0")
            prices[self.asset_id(symbol, f"prices.{symbol}")] = value
        return prices


@dataclass(frozen=True, eq=False)
class PortfolioArrays:
    """Rows of balances and positions of many accounts, grouped into margin groups."""

    account_ids: tuple[str, ...]
    account_mode: tuple[Mode, ...]
    group_account: IntArray  # [n_groups] account index
    group_position: IntArray  # [n_groups] position row of an isolated bucket, -1 otherwise
    account_group_start: IntArray  # [n_accounts + 1] CSR offsets into groups

    bal_group: IntArray  # [n_bal]
    bal_asset: IntArray
    bal_qty: FloatArray

    pos_group: IntArray  # [n_pos]
    pos_market: IntArray
    pos_qty: FloatArray  # signed, units of the underlying
    pos_entry: FloatArray  # settle-asset units
    pos_funding: FloatArray  # settle-asset units owed by the account
    pos_settle_row: IntArray  # balance row of (group, settle asset); -1 if none

    # derived: CSR offsets of each group's rows (rows are sorted by group), set in __post_init__
    bal_start: IntArray = field(init=False, repr=False)  # [n_groups + 1]
    pos_start: IntArray = field(init=False, repr=False)  # [n_groups + 1]

    def __post_init__(self) -> None:
        n_groups = len(self.group_account)
        for name in ("bal_group", "pos_group"):
            groups = getattr(self, name)
            if groups.size and (
                np.any(groups[1:] < groups[:-1]) or groups[0] < 0 or groups[-1] >= n_groups
            ):
                raise InputError(name, "...", f"must be sorted group ids in [0, {n_groups})")
        bounds = np.arange(n_groups + 1)
        object.__setattr__(self, "bal_start", np.searchsorted(self.bal_group, bounds))
        object.__setattr__(self, "pos_start", np.searchsorted(self.pos_group, bounds))

    @property
    def n_accounts(self) -> int:
        return len(self.account_ids)

    def with_quantities(
        self, bal_qty: FloatArray, pos_qty: FloatArray, pos_funding: FloatArray
    ) -> PortfolioArrays:
        """The same rows with other quantities (no re-validation: the row order is unchanged).

        For loops that revalue a state many times (liquidation, cascades).
        """
        out = copy.copy(self)
        object.__setattr__(out, "bal_qty", bal_qty)
        object.__setattr__(out, "pos_qty", pos_qty)
        object.__setattr__(out, "pos_funding", pos_funding)
        return out

    @property
    def n_groups(self) -> int:
        return len(self.group_account)

    def group_names(self, tables: MarketTables) -> list[str]:
        """'cross', 'free' (an isolated account's unallocated balances) or the bucket's market."""
        names: list[str] = []
        for g in range(self.n_groups):
            row = int(self.group_position[g])
            if row >= 0:
                names.append(tables.market_symbols[int(self.pos_market[row])])
            else:
                mode = self.account_mode[int(self.group_account[g])]
                names.append("cross" if mode == "cross" else "free")
        return names


def compile_market(book: Book) -> MarketTables:
    """Compile the assets and markets of a book into :class:`MarketTables`."""
    symbols = tuple(book.assets)
    assets = list(book.assets.values())
    for symbol, asset in book.assets.items():
        if not asset.has_weights:
            raise InputError(
                f"assets.{symbol}.weights",
                asset.weights,
                "unresolved dynamic weights: load the file with load_book, or call "
                "crossmargin.haircuts.resolve.resolve_dynamic_weights",
            )
    n_assets = len(assets)
    max_tiers = max((len(a.collateral_tiers) for a in assets), default=0)
    tier_above = np.full((n_assets, max(max_tiers, 1)), np.inf)
    tier_factor = np.ones((n_assets, max(max_tiers, 1)))
    for i, asset in enumerate(assets):
        for k, tier in enumerate(asset.collateral_tiers):
            tier_above[i, k] = tier.above_usd
            tier_factor[i, k] = tier.factor
    price = np.array([a.price for a in assets], dtype=np.float64)

    market_symbols = tuple(book.markets)
    markets = list(book.markets.values())
    n_markets = len(markets)
    underlying = np.array([symbols.index(m.underlying) for m in markets], dtype=np.int64)
    settle = np.array([symbols.index(m.settle_asset) for m in markets], dtype=np.int64)
    basis = np.ones(n_markets)
    for j, market in enumerate(markets):
        if market.mark_price is not None and not isinstance(market, OptionMarket):
            # basis = mark in USD / index in USD; it keeps the mark-index ratio under price moves
            basis[j] = market.mark_price * price[settle[j]] / price[underlying[j]]
    options = _compile_options(book, markets, price, settle)
    max_brackets = 1 + max((len(m.brackets) for m in markets), default=0)
    floors = np.full((n_markets, max_brackets), np.inf)
    fracs = np.zeros((2, n_markets, max_brackets))
    cums = np.zeros((2, n_markets, max_brackets))
    counts = np.ones(n_markets, dtype=np.int64)
    for j, market in enumerate(markets):
        row_floor = [0.0] + [b.notional_floor_usd for b in market.brackets]
        row_init = [
            open_interest_scaled_frac(
                f, market.open_interest_usd, market.oi_lower_cap_usd, market.oi_upper_cap_usd
            )
            for f in [market.initial_margin_frac] + [b.initial_margin_frac for b in market.brackets]
        ]
        row_maint = [market.maint_margin_frac] + [b.maint_margin_frac for b in market.brackets]
        n = len(row_floor)
        counts[j] = n
        floors[j, :n] = row_floor
        fracs[INIT, j, :n] = row_init
        fracs[MAINT, j, :n] = row_maint
        cums[INIT, j, :n] = bracket_cums(row_floor, row_init)
        cums[MAINT, j, :n] = bracket_cums(row_floor, row_maint)

    def level_pair(values: Iterable[tuple[float, float]]) -> FloatArray:
        array = np.array(list(values), dtype=np.float64).reshape(-1, 2)
        return np.ascontiguousarray(array.T)

    return MarketTables(
        asset_symbols=symbols,
        price_usd=price,
        asset_weight=level_pair(
            (float(a.init_asset_weight or 0.0), float(a.maint_asset_weight or 0.0)) for a in assets
        ),
        liab_weight=level_pair(
            (float(a.init_liab_weight or 0.0), float(a.maint_liab_weight or 0.0)) for a in assets
        ),
        asset_imf=np.array([a.imf_factor for a in assets], dtype=np.float64),
        tier_above_usd=tier_above,
        tier_factor=tier_factor,
        tier_count=np.array([len(a.collateral_tiers) for a in assets], dtype=np.int64),
        market_symbols=market_symbols,
        market_underlying=underlying,
        market_settle=settle,
        market_basis=basis,
        margin_frac=np.ascontiguousarray(fracs[:, :, 0]),
        market_imf=np.array([m.imf_factor for m in markets], dtype=np.float64),
        bracket_floor_usd=floors,
        bracket_frac=fracs,
        bracket_cum_usd=cums,
        bracket_count=counts,
        pnl_weight=level_pair((m.init_pnl_weight, m.maint_pnl_weight) for m in markets),
        pnl_imf=np.array([m.pnl_imf_factor for m in markets], dtype=np.float64),
        market_is_option=np.array([isinstance(m, OptionMarket) for m in markets], dtype=bool),
        option_strike=options[0],
        option_vol=options[1],
        option_t_yrs=options[2],
        option_is_call=options[3],
        option_min_frac=options[4],
        option_issue=options[5],
        pnl_convention=PNL_SETTLE_NETTED
        if book.pnl_convention == "settle_netted"
        else PNL_SEPARATE,
    )


def _compile_options(
    book: Book, markets: Sequence[Market], price: FloatArray, settle: IntArray
) -> tuple[
    FloatArray, FloatArray, FloatArray, npt.NDArray[np.bool_], FloatArray, dict[int, InputError]
]:
    """Strike, mark vol, time to expiry, call flag, init floor of every option market.

    The vol is ``mark_vol``, else the Black-76 vol implied by ``mark_price`` at the book's
    prices (forward = the underlying's price, no discounting). A market that cannot be valued
    (no ``as_of``, no vol and no mark, a mark below intrinsic) is recorded, not raised: it
    matters only if an account holds it.
    """
    n = len(markets)
    strike, vol, t_yrs = np.zeros(n), np.full(n, np.nan), np.full(n, np.nan)
    is_call, min_frac = np.zeros(n, dtype=bool), np.zeros(n)
    issues: dict[int, InputError] = {}
    symbols = list(book.markets)
    for j, market in enumerate(markets):
        if not isinstance(market, OptionMarket):
            continue
        where = f"markets.{symbols[j]}"
        strike[j], is_call[j] = market.strike, market.option_type == "call"
        min_frac[j] = market.initial_min_margin_frac
        if book.as_of is not None:
            t_yrs[j] = (market.expiry - book.as_of).total_seconds() / SECONDS_PER_YEAR
        if market.mark_vol is not None:
            vol[j] = market.mark_vol
        elif market.mark_price is not None and t_yrs[j] > 0.0:
            settle_usd = price[settle[j]]
            try:
                vol[j] = implied_vol(
                    market.mark_price * settle_usd,
                    book.assets[market.underlying].price,
                    market.strike * settle_usd,
                    float(t_yrs[j]),
                    1.0,
                    bool(is_call[j]),
                )
            except PricingInputError as exc:
                issues[j] = InputError(f"{where}.mark_price", market.mark_price, str(exc))
        if book.as_of is None:
            issues[j] = InputError("as_of", None, f"{where}: options need the valuation time")
        elif not t_yrs[j] > 0.0:
            issues[j] = InputError(f"{where}.expiry", market.expiry.isoformat(), "expired")
        elif np.isnan(vol[j]) and j not in issues:
            issues[j] = InputError(
                f"{where}.mark_vol", None, "an option needs mark_vol or mark_price"
            )
    return strike, vol, t_yrs, is_call, min_frac, issues


class _RowBuilder:
    """Accumulates rows group by group; groups are numbered in the order they are opened."""

    def __init__(self, tables: MarketTables) -> None:
        self.tables = tables
        self.group_account: list[int] = []
        self.group_position: list[int] = []
        self.bal: list[tuple[int, int, float]] = []
        self.pos: list[tuple[int, int, float, float, float]] = []
        self.pos_settle_row: list[int] = []

    def open_group(self, account: int) -> int:
        self.group_account.append(account)
        self.group_position.append(-1)
        return len(self.group_account) - 1

    def add_balances(self, group: int, balances: dict[int, float]) -> None:
        for asset in sorted(balances):
            self.bal.append((group, asset, balances[asset]))

    def add_position(
        self, group: int, market: int, qty: float, entry: float, funding: float
    ) -> None:
        self.pos.append((group, market, qty, entry, funding))

    def build(
        self, account_ids: Sequence[str], modes: Sequence[Mode], settle_rows: bool = False
    ) -> PortfolioArrays:
        tables = self.tables
        bal = self.bal
        linked = settle_rows or tables.pnl_convention == PNL_SETTLE_NETTED
        if linked:
            # every (group, settle asset) needs a balance row to receive netted PnL
            present = {(g, a) for g, a, _ in bal}
            for g, m, *_ in self.pos:
                key = (g, int(tables.market_settle[m]))
                if key not in present:
                    present.add(key)
                    bal.append((g, key[1], 0.0))
        bal.sort(key=lambda row: (row[0], row[1]))
        row_of = {(g, a): r for r, (g, a, _) in enumerate(bal)}
        settle_row_of_pos = [
            row_of.get((g, int(tables.market_settle[m])), -1) if linked else -1
            for g, m, *_ in self.pos
        ]
        n_accounts = len(account_ids)
        group_account = np.array(self.group_account, dtype=np.int64)
        starts = np.searchsorted(group_account, np.arange(n_accounts + 1)).astype(np.int64)
        return PortfolioArrays(
            account_ids=tuple(account_ids),
            account_mode=tuple(modes),
            group_account=group_account,
            group_position=np.array(self.group_position, dtype=np.int64),
            account_group_start=starts,
            bal_group=np.array([r[0] for r in bal], dtype=np.int64),
            bal_asset=np.array([r[1] for r in bal], dtype=np.int64),
            bal_qty=np.array([r[2] for r in bal], dtype=np.float64),
            pos_group=np.array([r[0] for r in self.pos], dtype=np.int64),
            pos_market=np.array([r[1] for r in self.pos], dtype=np.int64),
            pos_qty=np.array([r[2] for r in self.pos], dtype=np.float64),
            pos_entry=np.array([r[3] for r in self.pos], dtype=np.float64),
            pos_funding=np.array([r[4] for r in self.pos], dtype=np.float64),
            pos_settle_row=np.array(settle_row_of_pos, dtype=np.int64),
        )


def _refuse_uncompiled(index: int, account: Account) -> None:
    """Located lots are rows of the compiled book (``located_view``): compiled here without
    them they would silently give less collateral."""
    from crossmargin.errors import InputError

    field = (
        "remote_balances"
        if account.remote_balances
        else "in_flight"
        if account.in_flight
        else "lp_positions"
    )
    raise InputError(
        f"accounts[{index}].{field}",
        account.id,
        "collateral at another location: compile the book with "
        "crossmargin.locations.view.located_view(book).book first",
    )


def compile_accounts(
    tables: MarketTables,
    accounts: Sequence[Account],
    mode: Mode | None = None,
    *,
    use_allocations: bool = True,
    settle_rows: bool = False,
) -> PortfolioArrays:
    """Compile accounts into :class:`PortfolioArrays`.

    ``settle_rows=True`` gives every (group, settle asset) of a position a balance row (zero if
    the account holds none) and links it in ``pos_settle_row``: liquidation realizes PnL there.

    ``mode`` overrides each account's own mode. With ``use_allocations=False`` an isolated
    account keeps all its balances in its free bucket and its position buckets start empty: the
    view :meth:`crossmargin.margin.MarginEngine.compare` uses to price isolated margin.
    """
    builder = _RowBuilder(tables)
    modes: list[Mode] = []
    for a, account in enumerate(accounts):
        if account.remote_balances or account.in_flight or account.lp_positions:
            _refuse_uncompiled(a, account)  # never margin a book without its remote lots
        # a portfolio account is one pool in the kernel; its requirement is the scenario one
        account_mode: Mode = mode or ("cross" if account.mode == "portfolio" else account.mode)
        modes.append(account_mode)
        balances = {
            tables.asset_id(sym, f"accounts[{a}].balances.{sym}"): float(qty)
            for sym, qty in account.balances.items()
        }
        markets = []
        for j, position in enumerate(account.positions):
            market = tables.market_id(position.market, f"accounts[{a}].positions[{j}].market")
            if market in tables.option_issue:
                raise tables.option_issue[market]
            markets.append(market)
        if account_mode == "cross":
            group = builder.open_group(a)
            builder.add_balances(group, {k: v for k, v in balances.items() if v != 0.0})
            for market, position in zip(markets, account.positions, strict=True):
                builder.add_position(
                    group, market, position.qty, position.entry_price, position.unrealized_funding
                )
            continue
        free = dict(balances)
        buckets: list[tuple[int, dict[int, float]]] = []
        for market, position in zip(markets, account.positions, strict=True):
            allocation: dict[int, float] = {}
            if use_allocations:
                for sym, qty in position.isolated_collateral.items():
                    asset = tables.asset_id(sym)
                    allocation[asset] = float(qty)
                    free[asset] = free.get(asset, 0.0) - float(qty)
            buckets.append((market, allocation))
        group = builder.open_group(a)
        builder.add_balances(group, {k: v for k, v in free.items() if v != 0.0})
        for (market, allocation), position in zip(buckets, account.positions, strict=True):
            group = builder.open_group(a)
            builder.add_balances(group, {k: v for k, v in allocation.items() if v != 0.0})
            builder.group_position[group] = len(builder.pos)
            builder.add_position(
                group, market, position.qty, position.entry_price, position.unrealized_funding
            )
    return builder.build([acc.id for acc in accounts], modes, settle_rows)


def compile_book(book: Book, mode: Mode | None = None) -> tuple[MarketTables, PortfolioArrays]:
    """Compile a whole book: market tables and the arrays of all its accounts."""
    tables = compile_market(book)
    return tables, compile_accounts(tables, book.accounts, mode)
