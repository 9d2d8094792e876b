"""Health of an account before, during and after a transfer - all from the one kernel."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from crossmargin.book.schema import Book
from crossmargin.display import rounded_repr
from crossmargin.locations.transfers import advance, start_transfer
from crossmargin.locations.view import located_view, transfer_finality_s
from crossmargin.margin.engine import MarginEngine


@rounded_repr
@dataclass(frozen=True)
class Stage:
    """One moment of a transfer: the account's figures (USD) and where its asset sits."""

    stage: str
    elapsed_s: float
    equity_usd: float
    init_health_usd: float
    maint_health_usd: float
    source_qty: float
    in_flight_qty: float
    destination_qty: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def account_figures(book: Book, account_id: str) -> tuple[float, float, float]:
    """(equity, init health, maint health) of one account, USD, located rows included."""
    view = located_view(book)
    engine = MarginEngine(view.book)
    report = engine.margin([view.book.account(account_id)], with_liquidation_prices=False)[0]
    return report.equity_usd, report.init.health_usd, report.maint.health_usd


def _stage(
    name: str, book: Book, account_id: str, asset: str, source: str, destination: str, t: float
) -> Stage:
    from crossmargin.locations.transfers import held_qty

    account = book.account(account_id)
    flying = sum(
        f.qty
        for f in account.in_flight
        if f.asset == asset and f.from_location == source and f.to_location == destination
    )
    equity, init, maint = account_figures(book, account_id)
    return Stage(
        name,
        t,
        equity,
        init,
        maint,
        held_qty(account, asset, source),
        flying,
        held_qty(account, asset, destination),
    )


def transfer_timeline(
    book: Book, account_id: str, asset: str, qty: float, source: str, destination: str
) -> tuple[list[Stage], float, float]:
    """Stages ``before``, ``in flight`` (just sent) and ``after finality``, the cost in USD
    and the finality in seconds."""
    before = _stage("before", book, account_id, asset, source, destination, 0.0)
    sent, cost_usd = start_transfer(book, account_id, asset, qty, source, destination)
    transfer = sent.account(account_id).in_flight[-1]
    finality_s = transfer_finality_s(sent, transfer)
    during = _stage("in flight", sent, account_id, asset, source, destination, 0.0)
    landed = advance(sent, finality_s)
    after = _stage("after finality", landed, account_id, asset, source, destination, finality_s)
    return [before, during, after], cost_usd, finality_s
