"""Margin reports, what-if, liquidation prices and the capital-efficiency comparison.

The result types live in :mod:`crossmargin.margin.results` (re-exported here).

All numbers come from :func:`crossmargin.margin.kernel.health_kernel`; this module only compiles
inputs, calls the kernel on whole batches and shapes the results. Tolerances: float64 throughout;
liquidation prices are solved to a relative 1e-12 in price (exact at the first step where health
is linear in the price).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import ValidationError

from crossmargin.book.io import input_error_from_validation
from crossmargin.book.schema import (
    PRICE_MAX,
    PRICE_MIN,
    QTY_MAX,
    Account,
    Book,
    OptionMarket,
    Position,
)
from crossmargin.errors import (
    InputError,
    NonFiniteResultError,
    NotSupportedError,
    first_non_finite,
)
from crossmargin.margin.arrays import (
    INIT,
    LEVELS,
    MAINT,
    AccountMode,
    FloatArray,
    MarketTables,
    Mode,
    PortfolioArrays,
    compile_accounts,
    compile_market,
)
from crossmargin.margin.kernel import evaluate_groups, market_marks_usd
from crossmargin.margin.orders import (
    OrderRows,
    evaluate_with_orders,
    order_rows,
    with_order_rows,
)
from crossmargin.margin.results import (
    AccountMargin,
    BucketMargin,
    CapitalComparison,
    Contribution,
    LevelFigures,
    LiquidationPrice,
    Trade,
    WhatIf,
)
from crossmargin.market.oracle import AggregatedPrice, OracleState

if TYPE_CHECKING:
    from crossmargin.portfolio.engine import PortfolioMarginResult

#: Price multipliers searched for a sign change of maint health before refining the root:
#: moves of 0.1 % to 100 % down and 0.1 % to 1,000,000x up, log-spaced.
_DOWN_GRID = 1.0 - np.concatenate([np.logspace(-3, 0, 60)[:-1], [1.0]])
_UP_GRID = 1.0 + np.logspace(-3, 6, 100)
#: coarser brackets for portfolio-margin accounts (each point revalues the scenario grid)
_PM_DOWN_GRID = 1.0 - np.concatenate([np.logspace(-3, 0, 24)[:-1], [1.0 - 1e-6]])
_PM_UP_GRID = 1.0 + np.logspace(-3, 3, 30)
_ROOT_ITERATIONS = 100
_ROOT_RTOL = 1e-12


@dataclass(frozen=True, eq=False)
class MarginArrays:
    """Kernel results for a batch: per group and reduced per account (USD)."""

    tables: MarketTables
    arrays: PortfolioArrays
    price_usd: FloatArray
    weighted_assets: FloatArray  # [2, n_groups] init/maint
    weighted_liabs: FloatArray  # [2, n_groups]
    equity: FloatArray  # [n_groups]
    orders: OrderRows | None = None  # open orders, margined at their worst-case fill

    @property
    def health(self) -> FloatArray:
        """[2, n_groups] health, init and maint."""
        return self.weighted_assets - self.weighted_liabs

    def per_account(self, values: FloatArray) -> FloatArray:
        """Sum a per-group array over each account's groups."""
        sums: FloatArray = np.bincount(
            self.arrays.group_account, weights=values, minlength=self.arrays.n_accounts
        ).astype(np.float64)
        return sums

    @property
    def account_liquidatable(self) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """An account is liquidatable iff any of its groups has maint health < 0."""
        bad = (self.health[MAINT] < 0.0).astype(np.float64)
        return self.per_account(bad) > 0.0


def evaluate_arrays(
    tables: MarketTables,
    arrays: PortfolioArrays,
    price_usd: FloatArray | None = None,
    orders: OrderRows | None = None,
    init_funding: FloatArray | None = None,
) -> MarginArrays:
    """Run the kernel at both levels on a batch (open orders at their worst-case fill).

    ``init_funding`` replaces the positions' funding at init only: perp base values at the
    stable price (:func:`init_stable_funding`). Equity is the maint evaluation's.
    """
    prices = tables.price_usd if price_usd is None else price_usd
    wa = np.empty((2, arrays.n_groups))
    wl = np.empty((2, arrays.n_groups))
    equity = np.empty(arrays.n_groups)
    for level in (INIT, MAINT):
        out = (wa[level], wl[level], equity)
        rows = arrays
        if level == INIT and init_funding is not None:
            rows = replace(arrays, pos_funding=init_funding)
        if orders is None or orders.empty:
            evaluate_groups(tables, rows, level, prices, out=out)
        else:
            evaluate_with_orders(tables, rows, orders, level, prices, out=out)
    return MarginArrays(tables, arrays, prices, wa, wl, equity, orders)


def liquidation_price_arrays(result: MarginArrays) -> tuple[FloatArray, FloatArray]:
    """Per group and asset, the nearest prices below and above at which maint health is 0.

    Returns ``(below, above)``, each ``[n_groups, n_assets]`` in USD, NaN where no crossing
    exists in that direction (searched down to a price of 0 and up to 1,000,000x). The search
    moves one asset's price for all groups at once: a log-spaced grid brackets the first sign
    change, then Illinois regula falsi refines it (exact in one step where health is linear).
    """
    tables, arrays = result.tables, result.arrays
    n_groups, n_assets = arrays.n_groups, tables.n_assets
    below = np.full((n_groups, n_assets), np.nan)
    above = np.full((n_groups, n_assets), np.nan)
    if n_groups == 0:
        return below, above
    h0 = result.health[MAINT]
    exposed = _exposure(tables, arrays)
    for a in np.flatnonzero(exposed.any(axis=0)):
        groups = exposed[:, a]

        def health_at(mult: FloatArray, asset: int = int(a)) -> FloatArray:
            if result.orders is not None and not result.orders.empty:
                wa, wl, _ = evaluate_with_orders(
                    tables, arrays, result.orders, MAINT, result.price_usd, asset, mult
                )
            else:
                wa, wl, _ = evaluate_groups(tables, arrays, MAINT, result.price_usd, asset, mult)
            return wa - wl

        for grid, out in ((_DOWN_GRID, below), (_UP_GRID, above)):
            roots = _first_crossing(health_at, h0, grid, groups)
            out[:, a] = roots * result.price_usd[a]
    return below, above


def _exposure(tables: MarketTables, arrays: PortfolioArrays) -> np.ndarray[Any, Any]:
    """[n_groups, n_assets] bool: the group's health depends on the asset's price."""
    exposed = np.zeros((arrays.n_groups, tables.n_assets), dtype=bool)
    exposed[arrays.bal_group, arrays.bal_asset] = True
    exposed[arrays.pos_group, tables.market_underlying[arrays.pos_market]] = True
    exposed[arrays.pos_group, tables.market_settle[arrays.pos_market]] = True
    return exposed


def _first_crossing(
    health_at: Any, h0: FloatArray, grid: FloatArray, groups: np.ndarray[Any, Any]
) -> FloatArray:
    """Multiplier of the first sign change of health along ``grid`` (NaN if none)."""
    n = h0.shape[0]
    start_negative = h0 < 0.0
    lo = np.ones(n)
    f_lo = h0.copy()
    hi = np.full(n, np.nan)
    f_hi = np.full(n, np.nan)
    open_ = groups.copy()
    for x in grid:
        h = health_at(np.full(n, x))
        crossed = open_ & ((h < 0.0) != start_negative)
        hi[crossed], f_hi[crossed] = x, h[crossed]
        open_ &= ~crossed
        still = open_
        lo[still], f_lo[still] = x, h[still]
        if not open_.any():
            break
    found = ~np.isnan(hi)
    root = np.full(n, np.nan)
    if not found.any():
        return root
    # exact zero at a grid point or at the start
    root[found & (f_hi == 0.0)] = hi[found & (f_hi == 0.0)]
    active = found & (f_hi != 0.0)
    side = np.zeros(n)  # Illinois: which end was replaced last time (-1 lo, +1 hi)
    for _ in range(_ROOT_ITERATIONS):
        if not active.any():
            break
        denom = f_hi - f_lo
        safe = active & (denom != 0.0) & np.isfinite(denom)
        secant = hi - f_hi * (hi - lo) / np.where(safe, denom, 1.0)
        inside = safe & (secant > np.minimum(lo, hi)) & (secant < np.maximum(lo, hi))
        # fall back to bisection where the secant step is undefined or leaves the bracket
        x_new = np.where(inside, secant, 0.5 * (lo + hi))
        x_new = np.where(active, x_new, 1.0)
        f_new = health_at(x_new)
        hit = active & (f_new == 0.0)
        root[hit] = x_new[hit]
        active &= ~hit
        same_as_hi = active & ((f_new < 0.0) == (f_hi < 0.0))
        same_as_lo = active & ~same_as_hi
        # replace the end on the same side; halve the kept end's value if kept twice (Illinois)
        f_lo = np.where(same_as_hi & (side == 1), f_lo * 0.5, f_lo)
        f_hi = np.where(same_as_lo & (side == -1), f_hi * 0.5, f_hi)
        hi = np.where(same_as_hi, x_new, hi)
        f_hi = np.where(same_as_hi, f_new, f_hi)
        lo = np.where(same_as_lo, x_new, lo)
        f_lo = np.where(same_as_lo, f_new, f_lo)
        side = np.where(same_as_hi, 1, np.where(same_as_lo, -1, side))
        width = np.abs(hi - lo)
        done = active & (width <= _ROOT_RTOL * np.maximum(np.abs(hi), np.abs(lo)))
        root[done] = np.where(np.abs(f_lo) <= np.abs(f_hi), lo, hi)[done]
        active &= ~done
    # unconverged (not expected for piecewise-linear health): take the end nearest zero
    root[active] = np.where(np.abs(f_lo) <= np.abs(f_hi), lo, hi)[active]
    return root


def explain_arrays(
    tables: MarketTables, arrays: PortfolioArrays, level: int, price_usd: FloatArray | None = None
) -> list[Contribution]:
    """Per-row health contributions of a batch at one level (from the kernel itself)."""
    bal_contrib = np.zeros(arrays.bal_qty.shape[0])
    pos_contrib = np.zeros(arrays.pos_qty.shape[0])
    evaluate_groups(
        tables, arrays, level, price_usd, bal_contrib=bal_contrib, pos_contrib=pos_contrib
    )
    names = arrays.group_names(tables)
    rows = []
    for r in range(bal_contrib.shape[0]):
        g = int(arrays.bal_group[r])
        rows.append(
            Contribution(
                account_id=arrays.account_ids[int(arrays.group_account[g])],
                bucket=names[g],
                kind="balance",
                name=tables.asset_symbols[int(arrays.bal_asset[r])],
                qty=float(arrays.bal_qty[r]),
                contribution_usd=float(bal_contrib[r]),
            )
        )
    for r in range(pos_contrib.shape[0]):
        g = int(arrays.pos_group[r])
        rows.append(
            Contribution(
                account_id=arrays.account_ids[int(arrays.group_account[g])],
                bucket=names[g],
                kind="position",
                name=tables.market_symbols[int(arrays.pos_market[r])],
                qty=float(arrays.pos_qty[r]),
                contribution_usd=float(pos_contrib[r]),
            )
        )
    return rows


class MarginEngine:
    """Compiles a book's market once; evaluates accounts, what-ifs and comparisons.

    With an ``oracle`` snapshot (see :class:`crossmargin.market.OracleBook`) the aggregated
    prices replace the book's, valuation is conservative (collateral at ``price - conf``,
    liabilities at ``price + conf``; at init also against the stable price) and what-ifs that
    add risk on a degraded or halted price are blocked.
    """

    def __init__(self, book: Book, oracle: Mapping[str, AggregatedPrice] | None = None) -> None:
        self.book = book
        self.tables = compile_market(book)
        self._account_index: dict[int, int] | None = None
        self.oracle_states: dict[str, OracleState] = {}
        #: per asset, init price / mid for a long and a short base (stable price, Mango v4)
        self.init_price_ratio: tuple[FloatArray, FloatArray] | None = None
        if oracle:
            self.tables = apply_oracle(self.tables, oracle)
            self.oracle_states = {sym: agg.state for sym, agg in oracle.items()}
            self.init_price_ratio = init_price_ratios(self.tables, oracle)

    def evaluate(
        self,
        accounts: Sequence[Account] | None = None,
        mode: Mode | None = None,
        prices: Mapping[str, float] | None = None,
    ) -> MarginArrays:
        """Kernel results for a batch of accounts (default: all accounts of the book)."""
        chosen = self.book.accounts if accounts is None else accounts
        prices_usd = self.tables.prices_with(dict(prices or {}))
        orders = None
        if any(account.orders for account in chosen):
            chosen = with_order_rows(chosen)
        arrays = compile_accounts(self.tables, chosen, mode)
        if any(account.orders for account in chosen):
            orders = order_rows(self.tables, arrays, chosen)
        init_funding = None
        if self.init_price_ratio is not None:
            init_funding = init_stable_funding(
                self.tables, arrays, prices_usd, *self.init_price_ratio
            )
        return evaluate_arrays(self.tables, arrays, prices_usd, orders, init_funding)

    def margin(
        self,
        accounts: Sequence[Account] | None = None,
        mode: AccountMode | None = None,
        prices: Mapping[str, float] | None = None,
        with_liquidation_prices: bool = True,
    ) -> list[AccountMargin]:
        """Per-account margin report (see :class:`AccountMargin`).

        Accounts in portfolio mode (their own, or ``mode="portfolio"`` for all) that hold a
        position get the scenario-grid requirement of their profile (default ``generic``):
        weighted assets = mark-to-market, weighted liabilities = the requirement, no
        liquidation prices. One without positions is a spot pool, margined by the kernel.
        """
        chosen = self.book.accounts if accounts is None else accounts
        kernel_mode: Mode | None = "cross" if mode == "portfolio" else mode
        result = self.evaluate(chosen, kernel_mode, prices)
        check_finite_result(result, chosen, prices)
        reports = account_margins(result, with_liquidation_prices)
        price_usd = result.price_usd
        for i, account in enumerate(chosen):
            if (mode or account.mode) == "portfolio":
                reports[i] = self._portfolio_report(
                    reports[i], account, price_usd, with_liquidation_prices
                )
                if reports[i].portfolio is not None:
                    _check_portfolio_finite(reports[i], account, prices)
        return reports

    def portfolio_result(
        self, account: Account, price_usd: FloatArray | None = None
    ) -> PortfolioMarginResult:
        """Scenario-grid portfolio margin of one account under its profile (default generic)."""
        from crossmargin.portfolio import get_profile, portfolio_from_book, portfolio_margin

        if self._account_index is None:  # by identity: model equality is slow on big books
            self._account_index = {id(a): i for i, a in enumerate(self.book.accounts)}
        index = self._account_index.get(id(account), -1)
        profile_name = account.profile or "generic"
        try:
            profile = get_profile(profile_name)
        except InputError:
            raise InputError(
                f"accounts[{index}].profile", profile_name, "unknown portfolio-margin profile"
            ) from None
        book = self.book if index >= 0 else self.book.model_copy(update={"accounts": [account]})
        spec = portfolio_from_book(book, account.id, tables=self.tables, price_usd=price_usd)
        return portfolio_margin(spec.to_portfolio(), profile)

    def _portfolio_or_none(self, account: Account) -> PortfolioMarginResult | None:
        if not account.positions:
            return None
        try:
            return self.portfolio_result(account)
        except NotSupportedError:  # e.g. a borrowed underlying: no portfolio figure
            return None

    def _portfolio_report(
        self,
        report: AccountMargin,
        account: Account,
        price_usd: FloatArray,
        with_liquidation_prices: bool = True,
    ) -> AccountMargin:
        if not account.positions:
            return replace(report, mode="portfolio")
        result = self.portfolio_result(account, price_usd)
        init = LevelFigures(result.mtm_usd, result.initial.requirement_usd)
        maint = LevelFigures(result.mtm_usd, result.maint.requirement_usd)
        bucket = BucketMargin("portfolio", report.equity_usd, init, maint)
        return replace(
            report,
            mode="portfolio",
            init=init,
            maint=maint,
            liquidatable=maint.health_usd < 0.0,
            liquidation_prices=self.portfolio_liquidation_prices(account, price_usd)
            if with_liquidation_prices
            else {},
            buckets=(bucket,),
            portfolio=result,
        )

    def portfolio_liquidation_prices(
        self, account: Account, price_usd: FloatArray
    ) -> dict[str, LiquidationPrice]:
        """Per asset the account holds or trades on: the nearest prices below and above where
        its scenario-grid maint margin (mark-to-market - MM requirement) crosses zero, other
        prices fixed. The same search as the kernel accounts' (a log-spaced bracket, then
        Illinois regula falsi), each point a full portfolio-margin revaluation."""
        tables = self.tables
        assets = {tables.asset_id(s) for s, q in account.balances.items() if q != 0.0}
        for position in account.positions:
            m = tables.market_id(position.market)
            assets |= {int(tables.market_underlying[m]), int(tables.market_settle[m])}
        h0 = np.array([self.portfolio_result(account, price_usd).maint.margin_usd])
        out: dict[str, LiquidationPrice] = {}
        for a in sorted(assets):

            def health_at(mult: FloatArray, asset: int = a) -> FloatArray:
                moved = price_usd.copy()
                moved[asset] *= float(mult[0])
                if not moved[asset] > 0.0:  # a price of 0: the PM revaluation needs > 0
                    moved[asset] = price_usd[asset] * 1e-12
                try:
                    margin = self.portfolio_result(account, moved).maint.margin_usd
                except InputError:  # e.g. an option that cannot be valued at this price
                    margin = math.nan
                return np.array([margin if math.isfinite(margin) else -math.inf])

            found = []
            for grid in (_PM_DOWN_GRID, _PM_UP_GRID):
                root = _first_crossing(health_at, h0, grid, np.array([True]))[0]
                found.append(None if math.isnan(root) else float(root * price_usd[a]))
            out[tables.asset_symbols[a]] = LiquidationPrice(
                tables.asset_symbols[a], float(price_usd[a]), found[0], found[1]
            )
        return out

    def account_margin(
        self,
        account_id: str,
        mode: AccountMode | None = None,
        prices: Mapping[str, float] | None = None,
    ) -> AccountMargin:
        """One account's report: a batch of one through the same kernel."""
        return self.margin([self.book.account(account_id)], mode, prices)[0]

    def explain(
        self,
        accounts: Sequence[Account] | None = None,
        level: str = "maint",
        mode: Mode | None = None,
        prices: Mapping[str, float] | None = None,
    ) -> list[Contribution]:
        """Each balance's and position's contribution to health at ``level`` (init or maint)."""
        if level not in LEVELS:
            raise InputError("level", level, "must be 'init' or 'maint'")
        chosen = self.book.accounts if accounts is None else accounts
        arrays = compile_accounts(self.tables, chosen, mode)
        prices_usd = self.tables.prices_with(dict(prices or {}))
        return explain_arrays(self.tables, arrays, LEVELS[level], prices_usd)

    def what_if(
        self,
        account_id: str,
        trades: Sequence[Trade] = (),
        withdrawals: Mapping[str, float] | None = None,
        prices: Mapping[str, float] | None = None,
    ) -> WhatIf:
        """Evaluate a hypothetical trade, withdrawal (negative: deposit) or price move.

        Only the one account is rebuilt; the book is not copied. Trades update the average entry
        price and realize PnL into the settle-asset balance when they reduce a position.
        """
        account = self.book.account(account_id)
        before = self.margin([account])[0]
        changed = apply_changes(self.book, account, trades, withdrawals or {}, self.tables)
        after = self.margin([changed], prices=prices)[0]
        return WhatIf(before, after, self._oracle_blocks(account, trades, withdrawals or {}))

    def _oracle_blocks(
        self, account: Account, trades: Sequence[Trade], withdrawals: Mapping[str, float]
    ) -> tuple[str, ...]:
        """Reasons a change adds risk on a price that is not healthy (empty: none)."""
        risky: dict[str, str] = {}
        for asset, qty in withdrawals.items():
            if qty > 0:
                risky.setdefault(asset, f"withdrawal of {asset}")
        positions = {p.market: p.qty for p in account.positions}
        for trade in trades:
            old = positions.get(trade.market, 0.0)
            if abs(old + trade.qty) > abs(old):  # reducing a position is always allowed
                market = self.book.markets[trade.market]
                for asset in (market.underlying, market.settle_asset):
                    risky.setdefault(asset, f"trade in {trade.market}")
            positions[trade.market] = old + trade.qty
        reasons = []
        for asset, what in risky.items():
            state = self.oracle_states.get(asset, OracleState.HEALTHY)
            if not state.allows_new_risk:
                reasons.append(f"{what}: the {asset} oracle is {state.value}, new risk blocked")
        return tuple(reasons)

    def compare(self, accounts: Sequence[Account] | None = None) -> list[CapitalComparison]:
        """Capital each account must add to pass the init check, isolated vs cross.

        Cross: ``max(0, -H_init)`` of the whole account, every balance a collateral for every
        position. Isolated: the wallet (all balances, no positions) and each position (alone,
        no collateral) are separate buckets, and each bucket's deficit ``max(0, -H_b)`` must be
        funded on its own; a bucket's surplus cannot fund another. Since
        ``max(0, -sum H_b) <= sum max(0, -H_b)``, cross never needs more. Portfolio:
        ``max(0, IM - MTM)`` of the scenario-grid margin (:meth:`portfolio_result`).

        Requirements (the capital the risk ties up, whatever the account holds): cross
        ``equity - H_init``, portfolio its IM requirement; they compare hedges across models.
        """
        chosen = self.book.accounts if accounts is None else accounts
        deficits = {}
        for mode in ("cross", "isolated"):
            arrays = compile_accounts(self.tables, chosen, mode, use_allocations=False)
            result = evaluate_arrays(self.tables, arrays)
            check_finite_result(result, chosen)
            deficits[mode] = result.per_account(np.maximum(-result.health[INIT], 0.0))
            if mode == "cross":
                cross_requirement = result.per_account(result.equity - result.health[INIT])
        prices = self.tables.price_usd
        comparisons = []
        for i, account in enumerate(chosen):
            collateral = sum(
                qty * float(prices[self.tables.asset_id(sym)])
                for sym, qty in account.balances.items()
                if qty > 0
            )
            pm = self._portfolio_or_none(account)
            comparisons.append(
                CapitalComparison(
                    account_id=account.id,
                    isolated_required_usd=float(deficits["isolated"][i]),
                    cross_required_usd=float(deficits["cross"][i]),
                    collateral_usd=collateral,
                    cross_requirement_usd=float(cross_requirement[i]),
                    portfolio_required_usd=None if pm is None else max(0.0, -pm.initial.margin_usd),
                    portfolio_requirement_usd=None if pm is None else pm.initial.requirement_usd,
                )
            )
        return comparisons


def check_finite_result(
    result: MarginArrays,
    accounts: Sequence[Account],
    prices: Mapping[str, float] | None = None,
) -> None:
    """Raise :class:`NonFiniteResultError` if any kernel figure is NaN or infinite, naming the
    account, the figure and the input most likely responsible (an override beyond the
    bounds, else the account's largest row in USD).

    Cannot happen within the bounds of docs/methodology.md ("Bounds"); a guard for library
    callers that bypass them (arrays, overrides).
    """
    figures = (
        ("init.weighted_assets_usd", result.weighted_assets[INIT]),
        ("maint.weighted_assets_usd", result.weighted_assets[MAINT]),
        ("init.weighted_liabilities_usd", result.weighted_liabs[INIT]),
        ("maint.weighted_liabilities_usd", result.weighted_liabs[MAINT]),
        ("equity_usd", result.equity),
    )
    for name, values in figures:
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            i = int(result.arrays.group_account[bad[0]])
            account = accounts[i] if i < len(accounts) else None
            _raise_non_finite(
                result.arrays.account_ids[i], name, float(values[bad[0]]), account, result, prices
            )


def _check_portfolio_finite(
    report: AccountMargin, account: Account, prices: Mapping[str, float] | None
) -> None:
    assert report.portfolio is not None
    found = first_non_finite(report.portfolio.to_dict(False))
    if found is not None:
        path, value, _ = found
        _raise_non_finite(account.id, f"portfolio.{path}", value, account, None, prices)


def _raise_non_finite(
    account_id: str,
    figure: str,
    value: float,
    account: Account | None,
    result: MarginArrays | None,
    prices: Mapping[str, float] | None,
) -> None:
    culprit = "its inputs"
    for symbol, price in (prices or {}).items():
        if not (math.isfinite(price) and PRICE_MIN <= price <= PRICE_MAX):
            culprit = f"the price override {symbol}={price:g}"
            break
    else:
        if account is not None and result is not None:
            culprit = _largest_input(account, result)
    raise NonFiniteResultError(
        f"account {account_id!r} {figure}",
        value,
        f"not a finite number; check {culprit} against the bounds (docs/methodology.md)",
    )


def _largest_input(account: Account, result: MarginArrays) -> str:
    """The balance or position of ``account`` with the largest USD magnitude."""
    tables, price = result.tables, result.price_usd
    best, label = -1.0, "its inputs"
    with np.errstate(all="ignore"):
        for symbol, qty in account.balances.items():
            size = abs(qty) * float(price[tables.asset_id(symbol)])
            if not size <= best:
                best, label = size, f"balances.{symbol} = {qty:g}"
        for j, p in enumerate(account.positions):
            m = tables.market_symbols.index(p.market)
            settle = float(price[tables.market_settle[m]])
            under = float(price[tables.market_underlying[m]])
            for field, size in (
                ("qty", abs(p.qty) * under * float(tables.market_basis[m])),
                ("entry_price", abs(p.qty) * p.entry_price * settle),
                ("unrealized_funding", abs(p.unrealized_funding) * settle),
            ):
                if not size <= best:
                    best, label = size, f"positions[{j}].{field} = {getattr(p, field):g}"
    return label


def account_margins(
    result: MarginArrays, with_liquidation_prices: bool = True
) -> list[AccountMargin]:
    """Shape batch kernel results into one :class:`AccountMargin` per account."""
    tables, arrays = result.tables, result.arrays
    if with_liquidation_prices:
        below, above = liquidation_price_arrays(result)
    names = arrays.group_names(tables)
    liquidatable = result.account_liquidatable
    reports = []
    for i, account_id in enumerate(arrays.account_ids):
        start, stop = arrays.account_group_start[i], arrays.account_group_start[i + 1]
        buckets = []
        for g in range(int(start), int(stop)):
            prices: dict[str, LiquidationPrice] = {}
            if with_liquidation_prices:
                prices = _liquidation_prices_of(tables, result.price_usd, below[g], above[g])
            buckets.append(
                BucketMargin(
                    name=names[g],
                    equity_usd=float(result.equity[g]),
                    init=_level(result, INIT, slice(g, g + 1)),
                    maint=_level(result, MAINT, slice(g, g + 1)),
                    liquidation_prices=prices,
                )
            )
        account_prices: dict[str, LiquidationPrice] = {}
        if with_liquidation_prices:
            account_prices = _liquidation_prices_of(
                tables,
                result.price_usd,
                np.nanmax(below[start:stop], axis=0, initial=-np.inf),
                np.nanmin(above[start:stop], axis=0, initial=np.inf),
            )
        reports.append(
            AccountMargin(
                account_id=account_id,
                mode=arrays.account_mode[i],
                equity_usd=float(result.equity[start:stop].sum()),
                init=_level(result, INIT, slice(start, stop)),
                maint=_level(result, MAINT, slice(start, stop)),
                liquidatable=bool(liquidatable[i]),
                liquidation_prices=account_prices,
                buckets=tuple(buckets),
            )
        )
    return reports


def _level(result: MarginArrays, level: int, groups: slice) -> LevelFigures:
    return LevelFigures(
        weighted_assets_usd=float(result.weighted_assets[level, groups].sum()),
        weighted_liabilities_usd=float(result.weighted_liabs[level, groups].sum()),
    )


def _liquidation_prices_of(
    tables: MarketTables, prices: FloatArray, below: FloatArray, above: FloatArray
) -> dict[str, LiquidationPrice]:
    out = {}
    for a, symbol in enumerate(tables.asset_symbols):
        lo, hi = float(below[a]), float(above[a])
        lo_ok, hi_ok = math.isfinite(lo), math.isfinite(hi)
        if lo_ok or hi_ok:
            out[symbol] = LiquidationPrice(
                asset=symbol,
                price_usd=float(prices[a]),
                below_usd=lo if lo_ok else None,
                above_usd=hi if hi_ok else None,
            )
    return out


def init_price_ratios(
    tables: MarketTables, oracle: Mapping[str, AggregatedPrice]
) -> tuple[FloatArray, FloatArray]:
    """Per asset: init price of a long base / mid and of a short base / mid (1 without a
    quote): ``min(P - c, stable) / P`` and ``max(P + c, stable) / P`` (Mango v4 ``Prices``)."""
    long_ratio = np.ones(tables.n_assets)
    short_ratio = np.ones(tables.n_assets)
    for symbol, aggregated in oracle.items():
        a = tables.asset_id(symbol, f"oracle.{symbol}")
        mid = aggregated.price_usd
        long_ratio[a] = aggregated.init_asset_price_usd / mid
        short_ratio[a] = aggregated.init_liab_price_usd / mid
    return long_ratio, short_ratio


def init_stable_funding(
    tables: MarketTables,
    arrays: PortfolioArrays,
    price_usd: FloatArray,
    long_ratio: FloatArray,
    short_ratio: FloatArray,
) -> FloatArray:
    r"""Funding rows that put each perp / future base at its init price (Mango v4).

    Mango values a perp's base at init at ``min(oracle, stable)`` when long and
    ``max(oracle, stable)`` when short, weighted ``1 -/+ mr``: the contribution
    ``q P_i - mr |q| P_i``. With :math:`P_i = r P` the kernel gets it at the mark through the
    funding term: :math:`f_i = f + (q - mr|q|)\,M (1 - r) / S` - exact under the
    ``settle_netted`` convention (the contribution is linear in the base value), the PnL part
    of it under ``separate``. Options keep their premium.
    """
    m = arrays.pos_market
    q = arrays.pos_qty
    ratio = np.where(
        q > 0.0, long_ratio[tables.market_underlying[m]], short_ratio[tables.market_underlying[m]]
    )
    mark = market_marks_usd(tables, price_usd)[m]
    settle = price_usd[tables.market_settle[m]]
    weighted_base = q - tables.margin_frac[INIT, m] * np.abs(q)
    linear = ~tables.market_is_option[m] & (settle > 0.0)
    shift = np.divide(
        weighted_base * mark * (1.0 - ratio), settle, out=np.zeros_like(q), where=linear
    )
    result: FloatArray = arrays.pos_funding + shift
    return result


def apply_oracle(tables: MarketTables, oracle: Mapping[str, AggregatedPrice]) -> MarketTables:
    """Tables priced and weighted from an oracle snapshot.

    The mid price replaces the book's; the conservative valuation enters as weight factors,
    which is exact for balances: ``q * P * w * (P - c) / P = q * (P - c) * w``. Maint uses
    ``P -/+ c``, init ``min(P - c, stable)`` / ``max(P + c, stable)`` (Mango v4). A halted
    oracle is an error naming the asset.
    """
    prices = tables.price_usd.copy()
    asset_weight = tables.asset_weight.copy()
    liab_weight = tables.liab_weight.copy()
    for symbol, aggregated in oracle.items():
        a = tables.asset_id(symbol, f"oracle.{symbol}")
        mid = aggregated.price_usd
        if aggregated.state is OracleState.HALTED or not (math.isfinite(mid) and mid > 0):
            raise InputError(f"oracle.{symbol}", aggregated.state.value, "no usable price")
        prices[a] = mid
        asset_weight[MAINT, a] *= aggregated.asset_price_usd / mid
        liab_weight[MAINT, a] *= aggregated.liab_price_usd / mid
        asset_weight[INIT, a] *= aggregated.init_asset_price_usd / mid
        liab_weight[INIT, a] *= aggregated.init_liab_price_usd / mid
    return replace(tables, price_usd=prices, asset_weight=asset_weight, liab_weight=liab_weight)


def apply_changes(
    book: Book,
    account: Account,
    trades: Sequence[Trade],
    withdrawals: Mapping[str, float],
    tables: MarketTables | None = None,
) -> Account:
    """A validated copy of ``account`` with trades and withdrawals applied (book untouched).

    A trade without a price fills at the market's mark (an option's: its Black-76 premium from
    ``tables``, default compiled from ``book``).
    """
    marks: list[float] = []
    balances = dict(account.balances)
    for asset, qty in withdrawals.items():
        if asset not in book.assets:
            raise InputError(f"withdrawals.{asset}", asset, "unknown asset")
        if not (math.isfinite(qty) and abs(qty) <= QTY_MAX):
            raise InputError(f"withdrawals.{asset}", qty, f"quantity must be within +-{QTY_MAX:g}")
        balances[asset] = balances.get(asset, 0.0) - qty
    positions = {p.market: p for p in account.positions}
    for trade in trades:
        market = book.markets.get(trade.market)
        if market is None:
            raise InputError("trade.market", trade.market, "unknown market")
        if not (math.isfinite(trade.qty) and abs(trade.qty) <= QTY_MAX):
            raise InputError("trade.qty", trade.qty, f"quantity must be within +-{QTY_MAX:g}")
        if trade.price is not None:
            price = trade.price
        else:
            if not marks:
                compiled = tables if tables is not None else compile_market(book)
                settle_usd = compiled.price_usd[compiled.market_settle]
                marks.extend(market_marks_usd(compiled) / settle_usd)
            price = marks[list(book.markets).index(trade.market)]
        # a far out-of-the-money option may be worth nothing; any other mark is positive
        floor_ok = price >= 0.0 if isinstance(market, OptionMarket) else price >= PRICE_MIN
        if not (math.isfinite(price) and floor_ok and price <= PRICE_MAX):
            raise InputError(
                "trade.price", price, f"price must be a number from {PRICE_MIN:g} to {PRICE_MAX:g}"
            )
        old = positions.get(trade.market)
        qty, entry = (old.qty, old.entry_price) if old else (0.0, 0.0)
        new_qty, new_entry, realized = _trade_position(qty, entry, trade.qty, price)
        if realized:
            settle = market.settle_asset
            balances[settle] = balances.get(settle, 0.0) + realized
        base = old or Position(market=trade.market, qty=0.0, entry_price=price)
        positions[trade.market] = base.model_copy(update={"qty": new_qty, "entry_price": new_entry})
    try:
        return Account.model_validate(
            {
                "id": account.id,
                "mode": account.mode,
                "profile": account.profile,
                "balances": balances,
                "positions": [p.model_dump() for p in positions.values()],
                "orders": [o.model_dump() for o in account.orders],
            }
        )
    except ValidationError as exc:  # e.g. a balance or position pushed beyond the bounds
        error = input_error_from_validation(exc)
        raise InputError(
            f"account {account.id!r} after the change: {error.field}", error.value, error.reason
        ) from None


def _trade_position(
    qty: float, entry: float, trade_qty: float, price: float
) -> tuple[float, float, float]:
    """New (qty, entry) and realized PnL (settle units) after trading ``trade_qty`` at ``price``.

    Increasing a position averages the entry; reducing realizes ``closed * (price - entry)``;
    flipping closes the old side and opens the rest at ``price``.
    """
    new_qty = qty + trade_qty
    if qty == 0.0 or (qty > 0) == (trade_qty > 0):
        new_entry = (qty * entry + trade_qty * price) / new_qty if new_qty != 0.0 else 0.0
        return new_qty, new_entry, 0.0
    closed = -trade_qty if abs(trade_qty) <= abs(qty) else qty  # signed like qty
    realized = closed * (price - entry)
    if new_qty == 0.0:
        return 0.0, 0.0, realized
    if (new_qty > 0) == (qty > 0):
        return new_qty, entry, realized
    return new_qty, price, realized
