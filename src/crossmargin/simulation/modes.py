"""The same book and shock under isolated, cross and portfolio margin: capital and risk.

For each mode the book's accounts are put in that mode (a generated book allocates isolated
collateral pro rata to position notional; a loaded cross account becomes isolated with its
positions unfunded) and **topped up** with cash until every account (every isolated bucket)
passes the init check. Then:

* **capital required** = collateral held + top-up (USD): what the traders must post;
* **risk** under the shock: isolated and cross books run the full cascade
  (:func:`~crossmargin.simulation.cascade.run_cascade`, ``config.model``); a portfolio book is
  margined by its scenario grid, which the liquidation engine does not use, so it runs the
  same cascade (same impact law, same rounds) with the **close-out** model, an account being
  liquidatable when its scenario-grid maint health
  :math:`\text{MtM} - \text{MM}_{\text{grid}}` (:func:`portfolio_maint_health_usd`) is
  negative at the round's prices. The ``liquidation`` column says which model each row used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from crossmargin.book.schema import Account, Book
from crossmargin.errors import InputError
from crossmargin.margin.arrays import FloatArray, compile_accounts
from crossmargin.margin.engine import MarginEngine
from crossmargin.simulation.cascade import (
    CascadeConfig,
    GroupHealth,
    run_cascade,
    shocked_prices,
)
from crossmargin.simulation.generate import GeneratedBook

ModeName = Literal["isolated", "cross", "portfolio"]
MODES: tuple[ModeName, ...] = ("isolated", "cross", "portfolio")


@dataclass(frozen=True)
class ModeOutcome:
    mode: str
    accounts: int
    collateral_usd: float
    top_up_usd: float
    liquidated_accounts: int
    liquidated_notional_usd: float
    bad_debt_usd: float
    rounds: int
    cascaded: bool
    liquidation: str = "engine"  # engine, or closeout (portfolio: by the scenario grid)

    @property
    def capital_required_usd(self) -> float:
        return self.collateral_usd + self.top_up_usd

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "capital_required_usd": self.capital_required_usd}


def book_in_mode(source: Book | GeneratedBook, mode: ModeName) -> Book:
    """The accounts of ``source`` in ``mode`` (module docstring)."""
    if isinstance(source, GeneratedBook):
        return source.to_book(mode)
    accounts = [
        acc.model_copy(
            update={
                "mode": mode,
                "profile": acc.profile if mode == "portfolio" else None,
                "positions": [
                    p.model_copy(update={"isolated_collateral": {}}) for p in acc.positions
                ]
                if mode != "isolated" or acc.mode != "isolated"
                else acc.positions,
            }
        )
        for acc in source.accounts
    ]
    return Book.model_validate(
        {**source.model_dump(), "accounts": [a.model_dump() for a in accounts]}
    )


def portfolio_maint_health_usd(
    engine: MarginEngine, accounts: Sequence[Account], price_usd: FloatArray
) -> FloatArray:
    """Maint health (USD) of ``accounts`` under portfolio margin at ``price_usd`` (the
    tables' order): mark-to-market minus the scenario-grid maint requirement of each account's
    profile (default generic); an account without positions is a spot pool, margined by the
    kernel. The one place the simulator asks for the portfolio requirement."""
    symbols = engine.tables.asset_symbols
    prices = {s: float(price_usd[i]) for i, s in enumerate(symbols)}
    reports = engine.margin(
        list(accounts), mode="portfolio", prices=prices, with_liquidation_prices=False
    )
    return np.array([r.maint.health_usd for r in reports], dtype=np.float64)


def _portfolio_health(engine: MarginEngine, accounts: Sequence[Account]) -> GroupHealth:
    """Cascade hook: scenario-grid maint health of the accounts still in the cascade (one
    group per account: the cross compilation); closed-out accounts keep the kernel's."""

    def health(
        price_usd: FloatArray, kernel_health: FloatArray, done: npt.NDArray[np.bool_]
    ) -> FloatArray:
        out = kernel_health.copy()
        active = np.flatnonzero(~done)
        if active.size:
            chosen = [accounts[int(i)] for i in active]
            out[active] = portfolio_maint_health_usd(engine, chosen, price_usd)
        return out

    return health


def top_up(book: Book, cash_asset: str = "USDC") -> tuple[Book, float]:
    """Add ``cash_asset`` to every account (isolated: to every bucket) short of the init check."""
    if cash_asset not in book.assets:
        raise InputError("cash_asset", cash_asset, "not an asset of the book")
    price = book.assets[cash_asset].price
    reports = MarginEngine(book).margin(with_liquidation_prices=False)
    accounts: list[Account] = []
    total = 0.0
    for account, report in zip(book.accounts, reports, strict=True):
        balances = dict(account.balances)
        positions = list(account.positions)
        added = 0.0
        if account.mode == "isolated":
            by_market = {p.market: i for i, p in enumerate(positions)}
            for bucket in report.buckets:
                need = max(0.0, -bucket.init.health_usd) * 1.000001 / price
                if need == 0.0:
                    continue
                added += need
                if bucket.name in by_market:
                    i = by_market[bucket.name]
                    allocation = dict(positions[i].isolated_collateral)
                    allocation[cash_asset] = allocation.get(cash_asset, 0.0) + need
                    positions[i] = positions[i].model_copy(
                        update={"isolated_collateral": allocation}
                    )
        else:
            added = max(0.0, -report.init.health_usd) * 1.000001 / price
        if added:
            balances[cash_asset] = balances.get(cash_asset, 0.0) + added
            allocated = sum(p.isolated_collateral.get(cash_asset, 0.0) for p in positions)
            if balances[cash_asset] < allocated:  # a cash borrow: fund the buckets on top of it
                added += allocated - balances[cash_asset]
                balances[cash_asset] = allocated
            total += added * price
        accounts.append(account.model_copy(update={"balances": balances, "positions": positions}))
    funded = Book.model_validate(
        {**book.model_dump(), "accounts": [a.model_dump() for a in accounts]}
    )
    return funded, total


def compare_modes(
    source: Book | GeneratedBook,
    shocks: Mapping[str, float],
    config: CascadeConfig | None = None,
    modes: Sequence[str] = MODES,
    cash_asset: str = "USDC",
) -> list[ModeOutcome]:
    """Capital required and cascade outcome of ``source`` under each mode (module docstring)."""
    config = config or CascadeConfig()
    out = []
    for mode in modes:
        if mode not in MODES:
            raise InputError("--modes", mode, f"must be among {list(MODES)}")
        book, added = top_up(book_in_mode(source, mode), cash_asset)
        engine = MarginEngine(book)
        prices = engine.tables.price_usd
        collateral = (
            sum(
                q * float(prices[engine.tables.asset_id(s)])
                for acc in book.accounts
                for s, q in acc.balances.items()
                if q > 0.0
            )
            - added
        )
        shocked = shocked_prices(engine.tables, shocks)
        if mode == "portfolio":  # scenario-grid margin: close-out cascade (module docstring)
            arrays = compile_accounts(engine.tables, book.accounts, "cross", settle_rows=True)
            result = run_cascade(
                engine.tables,
                arrays,
                shocked,
                config.model_copy(update={"model": "closeout"}),
                maint_health=_portfolio_health(engine, book.accounts),
            )
            liquidation = "closeout (scenario grid)"
        else:
            arrays = compile_accounts(engine.tables, book.accounts, settle_rows=True)
            result = run_cascade(engine.tables, arrays, shocked, config)
            liquidation = config.model
        risk = (
            result.liquidated_accounts,
            result.liquidated_notional_usd,
            result.bad_debt_usd,
            len(result.rounds),
        )
        out.append(
            ModeOutcome(
                mode,
                len(book.accounts),
                collateral,
                added,
                *risk,
                cascaded=True,
                liquidation=liquidation,
            )
        )
    return out


__all__ = [
    "MODES",
    "ModeOutcome",
    "book_in_mode",
    "compare_modes",
    "portfolio_maint_health_usd",
    "top_up",
]
