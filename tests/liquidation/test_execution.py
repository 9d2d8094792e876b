"""Execution against depth, partial fills and lot sizes."""

from __future__ import annotations

import numpy as np
import pytest

from crossmargin.liquidation import (
    DepthExecution,
    FeeSchedule,
    LiquidationConfig,
    LiquidationEngine,
    RelativeBook,
)
from crossmargin.market.liquidity import OrderBook
from tests.liquidation.test_anchors import _drift_shortage_book


def test_relative_book_walks_levels_like_the_order_book() -> None:
    book = OrderBook(bids=[(99.0, 1.0), (98.0, 2.0)], asks=[(101.0, 1.0), (103.0, 1.0)])
    relative = RelativeBook.from_order_book(book)
    filled, price = relative.fill(np.array([2.0, -1.5, 5.0]), np.array([100.0, 100.0, 100.0]))
    assert filled.tolist() == [2.0, -1.5, 3.0]  # the last sale runs out of bids
    assert price[0] == pytest.approx(book.execute(2.0).average_price)
    assert price[1] == pytest.approx(book.execute(-1.5).average_price)
    assert price[2] == pytest.approx((99 + 2 * 98) / 3)


def test_depth_partial_fill_is_journaled_and_continues_deeper() -> None:
    """A $10 shortage needs 1 base at MR 10 %; only 0.4 sit at the first level."""
    levels = RelativeBook(
        np.array([0.001, 0.01]), np.array([0.4, 100.0]), np.array([]), np.array([])
    )
    config = LiquidationConfig.preset("drift", buffer_frac=0.0, fees=FeeSchedule())
    execution = DepthExecution(books={"SOL-PERP": levels})
    result = LiquidationEngine(
        _drift_shortage_book(0.1, 100.0, 10.0), config, execution
    ).liquidate()
    reduces = [e for e in result.events if e.kind == "reduce"]
    total = sum(e.qty for e in reduces)
    assert total > 1.0  # slippage costs health: more than the 1 base of the frictionless case
    assert all(e.price_usd < 100.0 for e in reduces)
    assert sum(e.slippage_usd for e in reduces) == pytest.approx(result.flows.makers_usd)
    assert result.outcomes[0].status == "restored"


def test_lot_size_rounds_up_by_less_than_one_lot() -> None:
    config = LiquidationConfig.preset(
        "drift", buffer_frac=0.0, fees=FeeSchedule(), lot_qty={"SOL-PERP": 0.3}
    )
    result = LiquidationEngine(_drift_shortage_book(0.1, 100.0, 10.0), config).liquidate()
    (event,) = [e for e in result.events if e.kind == "reduce"]
    assert event.qty == pytest.approx(1.2)  # 1 base needed -> 4 lots of 0.3
    assert event.target_health_after_usd >= 0.0


def test_adl_closes_against_the_most_profitable_most_leveraged_first() -> None:
    """No bids at all: the insolvent long is auto-deleveraged at its bankruptcy price.

    Ranking by profit ratio x leverage (Binance and Hyperliquid ADL docs): winner-a
    (1000/6000) x (5000/2000) = 0.417 before winner-b (1000/21000) x (20000/11000) = 0.087.
    Bankruptcy price (dYdX v4, anchors DY-2): mark - equity / qty = 1000 + 900 / 10 = 1090.
    """
    from crossmargin.book.io import book_from_data
    from tests.helpers import asset

    perp = {
        "kind": "perp",
        "underlying": "ETH",
        "initial_margin_frac": 0.1,
        "maint_margin_frac": 0.05,
    }
    book = book_from_data(
        {
            "assets": {"USDC": asset(1.0), "ETH": asset(1000.0, iaw=0.8, maw=0.9)},
            "markets": {"ETH-PERP": perp},
            "accounts": [
                {
                    "id": "loser",
                    "balances": {"USDC": 100.0},
                    "positions": [{"market": "ETH-PERP", "qty": 10.0, "entry_price": 1100.0}],
                },
                {
                    "id": "winner-a",
                    "balances": {"USDC": 1000.0},
                    "positions": [{"market": "ETH-PERP", "qty": -5.0, "entry_price": 1200.0}],
                },
                {
                    "id": "winner-b",
                    "balances": {"USDC": 10000.0},
                    "positions": [{"market": "ETH-PERP", "qty": -20.0, "entry_price": 1050.0}],
                },
            ],
        }
    )
    no_bids = RelativeBook(np.array([]), np.array([]), np.array([0.01]), np.array([1e9]))
    config = LiquidationConfig(bankruptcy="adl", fees=FeeSchedule())
    engine = LiquidationEngine(book, config, DepthExecution(books={"ETH-PERP": no_bids}))
    result = engine.liquidate()
    outcome = {o.account: o for o in result.outcomes}
    assert outcome["loser"].status == "bankrupt"
    assert outcome["loser"].equity_after_usd == pytest.approx(0.0, abs=1e-9)
    positions = {a.id: [p.qty for p in a.positions] for a in result.book_after.accounts}
    assert positions["loser"] == []
    assert positions["winner-a"] == []  # ranked first: closed in full
    assert positions["winner-b"] == [pytest.approx(-15.0)]
    assert result.flows.adl_usd == pytest.approx(10 * 90.0)
    assert not [e for e in result.events if e.kind == "socialize"]
    total_before = sum(o.equity_before_usd for o in result.outcomes)
    total_after = sum(o.equity_after_usd for o in result.outcomes)
    assert total_after == pytest.approx(total_before, abs=1e-9)
