"""The liquidation engine cancels an account's open orders before it closes positions.

Drift v2 (anchors.md 2.4, ``controller/liquidation.rs``): "every liquidation instruction first
cancels the user's open orders; if that clears the shortage, it returns". Mango v4 likewise
requires open orders cancelled before a perp base position is liquidated.
"""

from __future__ import annotations

from typing import Any

import pytest

from crossmargin.book.io import book_from_data
from crossmargin.liquidation import LiquidationConfig, LiquidationEngine
from crossmargin.liquidation.engine import replay_journal
from crossmargin.liquidation.journal import LiquidationEvent
from crossmargin.margin.engine import MarginEngine
from tests.helpers import asset


def _book(usdc: float, bid_qty: float) -> Any:
    return book_from_data(
        {
            "assets": {"USDC": asset(1.0), "X": asset(100.0)},
            "markets": {
                "X-PERP": {
                    "kind": "perp",
                    "underlying": "X",
                    "settle_asset": "USDC",
                    "initial_margin_frac": 0.1,
                    "maint_margin_frac": 0.05,
                }
            },
            "accounts": [
                {
                    "id": "a",
                    "balances": {"USDC": usdc},
                    "positions": [{"market": "X-PERP", "qty": 10.0, "entry_price": 100.0}],
                    "orders": [{"market": "X-PERP", "side": "buy", "qty": bid_qty}],
                },
                {
                    "id": "b",
                    "balances": {"USDC": 1e6},
                    "orders": [{"market": "X-PERP", "side": "sell", "qty": 5.0}],
                },
            ],
        }
    )


def test_cancel_alone_restores() -> None:
    """Maint: 10 long needs 50, USDC 60 -> +10; a bid of 10 more makes it 100 -> -40."""
    book = _book(60.0, 10.0)
    (report, _) = MarginEngine(book).margin()
    assert report.maint.health_usd == pytest.approx(-40.0)
    result = LiquidationEngine(book, LiquidationConfig.preset("drift")).liquidate()
    (event,) = result.events
    assert event.kind == "cancel" and event.account == "a" and event.seq == 1
    assert event.maint_health_before_usd == pytest.approx(-40.0)
    assert event.maint_health_after_usd == pytest.approx(10.0)
    assert result.outcomes[0].status == "restored"
    assert result.book_after is not None
    after = {a.id: a for a in result.book_after.accounts}
    assert after["a"].orders == [] and after["a"].positions[0].qty == 10.0
    assert len(after["b"].orders) == 1  # a healthy account keeps its orders
    assert replay_journal(book, result.events) == result.book_after


def test_cancel_then_close() -> None:
    """USDC 40: -10 without the orders: cancel first, then reduce; the journal replays."""
    book = _book(40.0, 10.0)
    result = LiquidationEngine(book, LiquidationConfig.preset("generic")).liquidate()
    kinds = [e.kind for e in result.events]
    assert kinds[0] == "cancel" and "reduce" in kinds[1:]
    assert [e.seq for e in result.events] == list(range(1, len(kinds) + 1))
    assert result.outcomes[0].status in ("restored", "partial")
    assert replay_journal(book, result.events) == result.book_after
    again = LiquidationEvent.from_dict(result.events[0].to_dict())
    assert again == result.events[0]
