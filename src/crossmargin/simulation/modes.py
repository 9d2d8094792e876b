"""The same book and shock under isolated, cross and portfolio margin: capital and risk.

For each mode the book's accounts are put in that mode (a generated book allocates isolated
collateral pro rata to position notional; a loaded cross account becomes isolated with its
positions unfunded) and **topped up** with cash until every account (every isolated bucket)
passes the init check. Then:

* **capital required** = collateral held + top-up (USD): what the traders must post;
* **risk** under the shock: isolated and cross books run the full cascade
  (:func:`~crossmargin.simulation.cascade.run_cascade`); a portfolio book is margined by its
  scenario grid, which the liquidation engine does not use, so it is *not cascaded*: the
  accounts whose portfolio maint margin is negative at the shocked prices are counted as
  liquidated and their negative equity as bad debt (no forced-flow feedback). The table says
  which rows cascaded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from crossmargin.book.schema import Account, Book
from crossmargin.errors import InputError
from crossmargin.margin.arrays import compile_accounts
from crossmargin.margin.engine import MarginEngine
from crossmargin.simulation.cascade import CascadeConfig, run_cascade, shocked_prices
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
        if mode == "portfolio":  # scenario-grid margin: counted at the shock, not cascaded
            symbols = engine.tables.asset_symbols
            reports = engine.margin(
                prices={s: float(shocked[i]) for i, s in enumerate(symbols)},
                with_liquidation_prices=False,
            )
            hit = [r for r in reports if r.liquidatable]
            risk = (len(hit), float("nan"), float(sum(max(0.0, -r.equity_usd) for r in hit)), 1)
        else:
            arrays = compile_accounts(engine.tables, book.accounts, settle_rows=True)
            result = run_cascade(engine.tables, arrays, shocked, config)
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
                cascaded=mode != "portfolio",
            )
        )
    return out


__all__ = ["MODES", "ModeOutcome", "book_in_mode", "compare_modes", "top_up"]
