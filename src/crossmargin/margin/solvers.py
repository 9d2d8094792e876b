r"""Max solvers: the largest trade, borrow, withdrawal and swap that keep init health >= 0.

Every figure is solved on the one risk kernel. The account is compiled once (with a zero row
for every instrument the change touches); a change of size :math:`x \ge 0` only rewrites
quantities of that batch of one, and

.. math::  f(x) = \min_g H^{init}_g(x)

is the init health of its worst margin group after the change (USD). The answer is the
largest :math:`x` with :math:`f(x) \ge 0`:

* **trade** in market :math:`M` on one side, at the mark (settle-asset units): the position
  becomes :math:`q \pm x`; a reduction realizes :math:`\text{closed}\,(mark - entry)` into the
  settle balance, an increase averages the entry (``margin.engine.apply_changes``'s rule);
* **borrow** of asset :math:`A`: its balance falls by :math:`x` (through zero into a debt)
  - Aave's ``availableBorrows = (collateral x LTV - debt) / price`` when liability weights are 1;
* **withdraw** of :math:`A`: as a borrow, capped at the deposit (Drift's
  ``calculate_max_withdrawable_amount``: ``free_collateral / (asset_weight x price)``, capped at
  the tokens held; Mango's withdraw without borrow);
* **swap** :math:`X \to Y`: :math:`x` of :math:`X` out, :math:`x P_X / P_Y` of :math:`Y` in at
  the oracle (no fee; Mango's ``max_swap_source`` at price factor 1).

Health is piecewise linear in :math:`x` between *kinks* (a position or balance crossing zero;
bracket and tier edges; curved only under size premiums / discounts), and concave for valid
weights (liability weight >= asset weight, brackets and premiums increasing): the feasible set
is an interval. The solver evaluates :math:`f` at 0, at every kink where a row crosses zero and
on a doubling grid up to :data:`~crossmargin.book.schema.QTY_MAX`, takes the last grid point with
:math:`f \ge 0` and refines the crossing after it by Illinois regula falsi: exact in one step on
a linear piece; on a curved piece to a relative :data:`X_RTOL` in :math:`x`. The returned
amount is always on the feasible side (:math:`f \ge 0` up to float rounding of the kernel).
Portfolio-margin (scenario-grid) accounts are not supported: their health is not the kernel's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from crossmargin.book.schema import QTY_MAX, Account, Book, Position
from crossmargin.errors import InputError, NotSupportedError
from crossmargin.margin.arrays import (
    INIT,
    FloatArray,
    MarketTables,
    PortfolioArrays,
    compile_accounts,
    compile_market,
)
from crossmargin.margin.engine import _trade_position
from crossmargin.margin.kernel import evaluate_groups, market_marks_usd

X_RTOL = 1e-12
"""Relative tolerance in the amount on a curved piece (exact on linear pieces)."""

_MAX_ITERATIONS = 200
Kind = Literal["trade", "borrow", "withdraw", "swap"]
Change = tuple[FloatArray, FloatArray, FloatArray]  # bal_qty, pos_qty, pos_entry after a change
Side = Literal["buy", "sell"]
SIDES: tuple[Side, Side] = ("buy", "sell")


@dataclass(frozen=True)
class MaxResult:
    """The largest change of one kind that keeps init health >= 0 in every bucket."""

    account: str
    kind: Kind
    instrument: str  # market, asset, or "X:Y" for a swap
    side: str  # "buy" / "sell" for a trade, "" otherwise
    amount: float  # units: market qty, asset units, or source units of a swap
    amount_usd: float  # at the mark / oracle
    unbounded: bool  # no limit up to QTY_MAX
    limit: str  # what stops it: "init health", "balance", "none", "init health < 0"
    init_health_before_usd: float
    init_health_after_usd: float
    leverage_before: float  # Mango's liabilities / equity (:meth:`_Problem.leverage`)
    leverage_after: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class _Problem:
    """One account compiled once; :meth:`health` revalues it after a change of size ``x``."""

    def __init__(
        self,
        book: Book,
        account: Account,
        tables: MarketTables,
        assets: tuple[str, ...] = (),
        market: str | None = None,
        min_health_ratio_frac: float = 0.0,
    ) -> None:
        if not (math.isfinite(min_health_ratio_frac) and min_health_ratio_frac >= 0.0):
            raise InputError(
                "min_health_ratio_frac", min_health_ratio_frac, "must be a finite number >= 0"
            )
        self.ratio = min_health_ratio_frac
        if account.mode == "portfolio":
            raise NotSupportedError(
                f"account {account.id!r}: max solvers run on the risk kernel (cross or "
                "isolated); a portfolio-margin account's health is its scenario grid"
            )
        self.book, self.account, self.tables = book, account, tables
        placeholder, new_assets, new_market = _with_rows(book, account, assets, market)
        arrays = compile_accounts(tables, [placeholder], settle_rows=True)
        self.arrays: PortfolioArrays = arrays
        # the placeholder rows (compiled only when non-zero) back to zero
        bal, pos = arrays.bal_qty.copy(), arrays.pos_qty.copy()
        for asset in new_assets:
            bal[self.bal_row(asset)] = 0.0
        if new_market:
            assert market is not None
            pos[self.pos_row(market)] = 0.0
        self.arrays = replace(arrays, bal_qty=bal, pos_qty=pos)
        self.marks_usd = market_marks_usd(tables)

    def bal_row(self, asset: str) -> int:
        """The balance row of ``asset`` in the account's first (cross / wallet) group."""
        a = self.tables.asset_id(asset, f"asset {asset}")
        arr = self.arrays
        wallet = np.flatnonzero(arr.group_position < 0)
        group = int(wallet[0]) if wallet.size else 0
        rows = np.flatnonzero((arr.bal_asset == a) & (arr.bal_group == group))
        return int(rows[0])

    def pos_row(self, market: str) -> int:
        m = self.tables.market_id(market)
        return int(np.flatnonzero(self.arrays.pos_market == m)[0])

    def changed(self, rows: Change) -> PortfolioArrays:
        bal_qty, pos_qty, pos_entry = rows
        return replace(self.arrays, bal_qty=bal_qty, pos_qty=pos_qty, pos_entry=pos_entry)

    def health(self, rows: Change) -> float:
        """Init health of the worst group after the change (USD; the kernel)."""
        wa, wl, _ = evaluate_groups(self.tables, self.changed(rows), INIT)
        return float((wa - wl).min()) if wa.size else 0.0

    def target(self, rows: Change) -> float:
        """What the solver keeps >= 0: ``min_g WA - (1 + r) WL`` at init, i.e. Mango's init
        health ratio ``(WA - WL) / WL >= r`` (r = 0: init health >= 0)."""
        wa, wl, _ = evaluate_groups(self.tables, self.changed(rows), INIT)
        return float((wa - (1.0 + self.ratio) * wl).min()) if wa.size else 0.0

    def leverage(self, rows: Change) -> float:
        """Mango v4 ``HealthCache::leverage``: liabilities / (assets - liabilities) at the
        oracle, unweighted (``assets_and_liabs``: balances by sign; per position its base value
        ``q M`` and its quote ``-(q e + f) S`` by sign), equity floored at 0.001 USD."""
        arr, tables = self.changed(rows), self.tables
        prices = tables.price_usd
        settle = prices[tables.market_settle[arr.pos_market]]
        values = np.concatenate(
            (
                arr.bal_qty * prices[arr.bal_asset],
                arr.pos_qty * self.marks_usd[arr.pos_market],
                -(arr.pos_qty * arr.pos_entry + arr.pos_funding) * settle,
            )
        )
        assets = float(values[values > 0.0].sum())
        liabs = float(-values[values < 0.0].sum())
        return liabs / max(assets - liabs, 0.001)


def _with_rows(
    book: Book, account: Account, assets: tuple[str, ...], market: str | None
) -> tuple[Account, list[str], bool]:
    """``account`` with a placeholder balance of 1 for each of ``assets`` it has none of (or
    holds 0 of) and a placeholder position of 1 in ``market``: the rows a change writes to
    (the compiler drops zero rows). Returns the account, the placeholder assets and whether
    the position is a placeholder."""
    for asset in assets:
        if asset not in book.assets:
            raise InputError("asset", asset, "unknown asset")
    new_assets = [a for a in assets if account.balances.get(a, 0.0) == 0.0]
    balances = {**account.balances, **{a: 1.0 for a in new_assets}}
    positions = list(account.positions)
    new_market = False
    if market is not None:
        if market not in book.markets:
            raise InputError("market", market, "unknown market")
        held = [p for p in positions if p.market == market]
        if not held or (held[0].qty == 0.0 and held[0].unrealized_funding == 0.0):
            positions = [p for p in positions if p.market != market]
            positions.append(Position(market=market, qty=1.0, entry_price=0.0))
            new_market = True
    updated = account.model_copy(update={"balances": balances, "positions": positions})
    return updated, new_assets, new_market


def _solve(f: Callable[[float], float], kinks: list[float], scale: float) -> tuple[float, bool]:
    """Largest ``x`` in ``[0, QTY_MAX]`` with ``f(x) >= 0`` (module docstring).

    Returns ``(x, unbounded)``; ``x = 0`` and ``f(0) < 0`` when no size is feasible on the grid.
    """
    scale = scale if math.isfinite(scale) and scale > 0 else 1.0
    grid = [0.0, QTY_MAX]
    grid += [k for k in kinks if 0.0 < k < QTY_MAX and math.isfinite(k)]
    grid += [x for x in scale * 2.0 ** np.arange(-40, 120) if x < QTY_MAX]
    points = np.unique(np.array(grid))
    values = np.array([f(float(x)) for x in points])
    feasible = np.flatnonzero(values >= 0.0)
    if feasible.size == 0:
        return 0.0, False
    i = int(feasible[-1])
    if i == points.size - 1:
        return float(points[i]), True
    lo, hi, f_lo, f_hi = float(points[i]), float(points[i + 1]), values[i], values[i + 1]
    side = 0
    for _ in range(_MAX_ITERATIONS):
        if hi - lo <= X_RTOL * max(abs(hi), 1e-300):
            break
        x = lo - f_lo * (hi - lo) / (f_hi - f_lo)
        if not lo < x < hi:
            x = 0.5 * (lo + hi)
        fx = f(x)
        if fx >= 0.0:
            lo, f_lo = x, fx
            if side == -1:
                f_hi *= 0.5  # Illinois: the same end moved twice
            side = -1
            if fx == 0.0:
                break
        else:
            hi, f_hi = x, fx
            if side == 1:
                f_lo *= 0.5
            side = 1
    return lo, False


def _result(
    problem: _Problem,
    kind: Kind,
    instrument: str,
    side: str,
    amount: float,
    unbounded: bool,
    unit_usd: float,
    limit: str,
    change: Callable[[float], Change],
) -> MaxResult:
    before = problem.health(change(0.0))
    return MaxResult(
        account=problem.account.id,
        kind=kind,
        instrument=instrument,
        side=side,
        amount=float(amount),
        amount_usd=float(amount) * unit_usd,
        unbounded=unbounded,
        limit=limit,
        init_health_before_usd=before,
        init_health_after_usd=problem.health(change(amount)),
        leverage_before=problem.leverage(change(0.0)),
        leverage_after=problem.leverage(change(amount)),
    )


def _limit(x: float, unbounded: bool, f0: float) -> str:
    if unbounded:
        return "none"
    return "init health < 0" if x == 0.0 and f0 < 0.0 else "init health"


def max_trade(
    book: Book, account_id: str, market: str, side: Side, *, min_health_ratio_frac: float = 0.0
) -> MaxResult:
    """Largest quantity of ``market`` bought (or sold) at the mark with init health >= 0
    (or Mango's init health ratio >= ``min_health_ratio_frac``)."""
    if side not in ("buy", "sell"):
        raise InputError("side", side, "must be buy or sell")
    account = book.account(account_id)
    if market not in book.markets:
        raise InputError("market", market, "unknown market")
    settle = book.markets[market].settle_asset
    tables = compile_market(book)
    problem = _Problem(book, account, tables, (settle,), market, min_health_ratio_frac)
    arr, r = problem.arrays, problem.pos_row(market)
    s = int(arr.pos_settle_row[r])
    m = int(arr.pos_market[r])
    mark_usd = float(problem.marks_usd[m])
    settle_usd = float(tables.price_usd[tables.market_settle[m]])
    mark = mark_usd / settle_usd  # settle units, as a trade at the mark fills
    q0, e0 = float(arr.pos_qty[r]), float(arr.pos_entry[r])
    sign = 1.0 if side == "buy" else -1.0

    def change(x: float) -> Change:
        qty, entry, realized = _trade_position(q0, e0, sign * x, mark)
        bal, pos, ent = arr.bal_qty.copy(), arr.pos_qty.copy(), arr.pos_entry.copy()
        bal[s] += realized
        pos[r], ent[r] = qty, entry
        return bal, pos, ent

    def health_at(x: float) -> float:
        return problem.target(change(x))

    reduces = q0 * sign < 0.0
    equity = max(abs(health_at(0.0)), 1.0)
    x, unbounded = _solve(health_at, [abs(q0)] if reduces else [], equity / mark_usd)
    limit = _limit(x, unbounded, health_at(0.0))
    return _result(problem, "trade", market, side, x, unbounded, mark_usd, limit, change)


def _balance_change(
    book: Book,
    account_id: str,
    asset: str,
    kind: Literal["borrow", "withdraw"],
    min_health_ratio_frac: float,
) -> MaxResult:
    account = book.account(account_id)
    tables = compile_market(book)
    problem = _Problem(book, account, tables, (asset,), None, min_health_ratio_frac)
    arr, row = problem.arrays, problem.bal_row(asset)
    held = float(arr.bal_qty[row])
    price = float(tables.price_usd[tables.asset_id(asset, f"asset {asset}")])

    def change(x: float) -> Change:
        bal = arr.bal_qty.copy()
        bal[row] -= x
        return bal, arr.pos_qty, arr.pos_entry

    def health_at(x: float) -> float:
        return problem.target(change(x))

    f0 = health_at(0.0)
    x, unbounded = _solve(health_at, [held] if held > 0 else [], max(abs(f0), 1.0) / price)
    limit = _limit(x, unbounded, f0)
    if kind == "withdraw":
        held = max(held, 0.0)
        if unbounded or x >= held:
            x, unbounded, limit = held, False, "balance"
    return _result(problem, kind, asset, "", x, unbounded, price, limit, change)


def max_borrow(
    book: Book, account_id: str, asset: str, *, min_health_ratio_frac: float = 0.0
) -> MaxResult:
    """Largest amount of ``asset`` taken out (deposit first, then a debt): init health >= 0."""
    return _balance_change(book, account_id, asset, "borrow", min_health_ratio_frac)


def max_withdraw(
    book: Book, account_id: str, asset: str, *, min_health_ratio_frac: float = 0.0
) -> MaxResult:
    """Largest withdrawal of ``asset`` without borrowing it: init health >= 0."""
    return _balance_change(book, account_id, asset, "withdraw", min_health_ratio_frac)


def max_swap(
    book: Book,
    account_id: str,
    source: str,
    target: str,
    *,
    min_health_ratio_frac: float = 0.0,
) -> MaxResult:
    """Largest amount of ``source`` swapped into ``target`` at the oracle: init health >= 0."""
    if source == target:
        raise InputError("swap", f"{source}:{target}", "source and target must differ")
    account = book.account(account_id)
    tables = compile_market(book)
    problem = _Problem(book, account, tables, (source, target), None, min_health_ratio_frac)
    arr = problem.arrays
    r_x, r_y = problem.bal_row(source), problem.bal_row(target)
    p_x = float(tables.price_usd[tables.asset_id(source, f"asset {source}")])
    p_y = float(tables.price_usd[tables.asset_id(target, f"asset {target}")])
    held_x, held_y = float(arr.bal_qty[r_x]), float(arr.bal_qty[r_y])

    def change(x: float) -> Change:
        bal = arr.bal_qty.copy()
        bal[r_x] -= x
        bal[r_y] += x * p_x / p_y
        return bal, arr.pos_qty, arr.pos_entry

    def health_at(x: float) -> float:
        return problem.target(change(x))

    kinks = [held_x] if held_x > 0 else []
    if held_y < 0:
        kinks.append(-held_y * p_y / p_x)
    f0 = health_at(0.0)
    x, unbounded = _solve(health_at, kinks, max(abs(f0), 1.0) / p_x)
    limit = _limit(x, unbounded, f0)
    name = f"{source}:{target}"
    return _result(problem, "swap", name, "", x, unbounded, p_x, limit, change)


def max_all(book: Book, account_id: str, *, min_health_ratio_frac: float = 0.0) -> list[MaxResult]:
    """Every market on both sides, every asset's borrow and withdrawal, for one account."""
    r = min_health_ratio_frac
    out = [
        max_trade(book, account_id, market, side, min_health_ratio_frac=r)
        for market in book.markets
        for side in SIDES
    ]
    account = book.account(account_id)
    for asset in book.assets:
        out.append(max_borrow(book, account_id, asset, min_health_ratio_frac=r))
        if account.balances.get(asset, 0.0) > 0.0:
            out.append(max_withdraw(book, account_id, asset, min_health_ratio_frac=r))
    return out


def leverage(book: Book, account_id: str) -> float:
    """Mango v4's account leverage, liabilities / equity at the oracle (see
    :meth:`_Problem.leverage`); 0 for an account without liabilities."""
    account = book.account(account_id)
    problem = _Problem(book, account, compile_market(book))
    arr = problem.arrays
    return problem.leverage((arr.bal_qty, arr.pos_qty, arr.pos_entry))
