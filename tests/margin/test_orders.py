"""Open orders margined at their worst-case fill (crossmargin.margin.orders).

Venue figures: Mango v4 ``programs/mango-v4/src/health/cache.rs::tests::test_health1`` cases 0
and 1 (perp1 = (base lots, quote, bid lots, ask lots) = (3, -131, 7, 11) and (-10, -131, 7,
11); "scenario: bids execute" / "scenario: asks execute"), with the serum3 open-orders term of
the source expression left out (serum3 reserved funds are not modelled): the published
expression minus 0.8 x (20 + 15 x 5) (case 0) and minus 0.5 x (20 + 15 x 5) (case 1).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import crossmargin as cm
from crossmargin.book.io import book_from_data
from crossmargin.margin.engine import MarginEngine
from crossmargin.margin.results import Trade
from tests.helpers import asset
from tests.margin.test_anchors import mango_book

BASE_LOTS_TO_QUOTE = 10.0 * 5.0


def _mango_with_orders(
    token1: float, token2: float, base_lots: int, quote: float, bids: int, asks: int
) -> dict[str, Any]:
    data = mango_book(token1, base_lots, quote)
    account = data["accounts"][0]
    account["balances"] = {"TOKEN1": token1, "BASE1": token2}
    # Mango margins resting perp orders as filled at the oracle: no price given
    account["orders"] = [
        {"market": "PERP1", "side": "buy", "qty": bids * 10.0},
        {"market": "PERP1", "side": "sell", "qty": asks * 10.0},
    ]
    return data


def test_mango_test_health1_case0_bids_execute() -> None:
    expected = (
        0.8 * (100.0 + (3.0 + 7.0) * BASE_LOTS_TO_QUOTE * 0.8 + (-131.0 - 7.0 * BASE_LOTS_TO_QUOTE))
        - 10.0 * 5.0 * 1.5
    )
    assert expected == pytest.approx(-59.8)
    (report,) = cm.margin(book_from_data(_mango_with_orders(100, -10, 3, -131, 7, 11)))
    assert report.init.health_usd == pytest.approx(expected, rel=1e-12)


def test_mango_test_health1_case1_asks_execute() -> None:
    expected = (
        1.2
        * (
            -100.0
            + (-10.0 - 11.0) * BASE_LOTS_TO_QUOTE * 1.2
            + (-131.0 + 11.0 * BASE_LOTS_TO_QUOTE)
        )
        + (10.0 * 5.0) * 0.5
    )
    assert expected == pytest.approx(-1104.2)
    (report,) = cm.margin(book_from_data(_mango_with_orders(-100, 10, -10, -131, 7, 11)))
    assert report.init.health_usd == pytest.approx(expected, rel=1e-12)


def _perp_book(orders: list[dict[str, Any]], qty: float = 0.0) -> Any:
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
                },
                "Y-PERP": {
                    "kind": "perp",
                    "underlying": "X",
                    "settle_asset": "USDC",
                    "initial_margin_frac": 0.2,
                    "maint_margin_frac": 0.1,
                },
            },
            "accounts": [
                {
                    "id": "a",
                    "balances": {"USDC": 1000.0},
                    "positions": [{"market": "X-PERP", "qty": qty, "entry_price": 100.0}],
                    "orders": orders,
                }
            ],
        }
    )


def test_limit_price_fill_loss_counts() -> None:
    """A bid of 2 at 110 on a mark of 100: requirement 0.1 x 200 = 20 plus the fill's loss
    2 x 10 = 20 -> init health 1000 - 40; at the mark only the 20 of requirement."""
    (priced,) = cm.margin(_perp_book([{"market": "X-PERP", "side": "buy", "qty": 2, "price": 110}]))
    assert priced.init.health_usd == pytest.approx(960.0)
    (at_mark,) = cm.margin(_perp_book([{"market": "X-PERP", "side": "buy", "qty": 2}]))
    assert at_mark.init.health_usd == pytest.approx(980.0)


def test_worse_side_per_market() -> None:
    """Long 5: bids of 3 make 8 (requirement 80), asks of 6 make -1 (10): bids are worse;
    a second market's orders take their own worse side (Mango's per-market minimum)."""
    orders = [
        {"market": "X-PERP", "side": "buy", "qty": 3},
        {"market": "X-PERP", "side": "sell", "qty": 6},
        {"market": "Y-PERP", "side": "sell", "qty": 1},
    ]
    (report,) = cm.margin(_perp_book(orders, qty=5.0))
    assert report.init.health_usd == pytest.approx(1000.0 - 80.0 - 20.0)


def test_orders_never_raise_health() -> None:
    """Adding orders never raises init or maint health (the no-fill side is one of the
    cases: a side without orders leaves the position as it is)."""
    rng = np.random.default_rng(7)
    for _ in range(40):
        qty = float(rng.normal(0, 10))
        orders = [
            {"market": m, "side": s, "qty": float(rng.uniform(0.1, 20)), "price": p}
            for m in ("X-PERP", "Y-PERP")
            for s in ("buy", "sell")
            for p in (None, float(rng.uniform(80, 120)))
            if rng.random() < 0.5
        ]
        (base,) = cm.margin(_perp_book([], qty))
        (with_orders,) = cm.margin(_perp_book(orders, qty))
        assert with_orders.init.health_usd <= base.init.health_usd + 1e-9
        assert with_orders.maint.health_usd <= base.maint.health_usd + 1e-9


def test_liquidation_price_with_orders_is_where_health_crosses_zero() -> None:
    book = _perp_book([{"market": "X-PERP", "side": "buy", "qty": 150}], qty=50.0)
    engine = MarginEngine(book)
    (report,) = engine.margin()
    price = report.liquidation_prices["X"].below_usd
    assert price is not None
    (at,) = engine.margin(prices={"X": price}, with_liquidation_prices=False)
    assert at.maint.health_usd == pytest.approx(0.0, abs=1e-6)
    assert price > 100.0 - 1000.0 / (200 * 1.05)  # orders make it nearer than the position alone


def test_what_if_keeps_the_orders() -> None:
    book = _perp_book([{"market": "X-PERP", "side": "buy", "qty": 5}])
    what = MarginEngine(book).what_if("a", trades=[Trade("X-PERP", 1.0)])
    assert what.after.init.health_usd == pytest.approx(1000.0 - 0.1 * 600)


def test_order_validation() -> None:
    with pytest.raises(cm.InputError, match=r"orders\[0\]\.market"):
        _perp_book([{"market": "NOPE", "side": "buy", "qty": 1}])
    with pytest.raises(cm.InputError, match="qty"):
        _perp_book([{"market": "X-PERP", "side": "buy", "qty": 0}])


# ---- Mango v4 stable price on perp base values at init ---------------------------------------


def test_mango_stable_price_on_perp_base_at_init() -> None:
    """client.rs::test_health_stable_price_token, account3: perp long 10 lots of 10 (100 base)
    with quote -100, oracle 1, perp stable price 0.5; weights (0.2, 0.1), settle token liab
    1.2 / 1.1: Init = 1.2 (0.8 x 0.5 x 100 - 100) = -72, Maint = 1.1 (0.9 x 100 - 100) = -11."""
    from crossmargin.market.oracle import AggregatedPrice, OracleState

    data = mango_book(0.0, 10, -100.0)
    data["assets"]["BASE1"]["price"] = 1.0
    book = book_from_data(data)

    def quote(asset: str, stable: float) -> AggregatedPrice:
        return AggregatedPrice(asset, 0.0, OracleState.HEALTHY, 1.0, 0.0, stable, 1, 1, 1)

    oracle = {"BASE1": quote("BASE1", 0.5), "TOKEN1": quote("TOKEN1", 0.5)}
    (report,) = MarginEngine(book, oracle=oracle).margin()
    assert report.init.health_usd == pytest.approx(1.2 * (0.8 * 0.5 * 100 - 100), rel=1e-12)
    assert report.maint.health_usd == pytest.approx(1.1 * (0.9 * 1.0 * 100 - 100), rel=1e-12)
    # accounts 1 and 2 of the same test: token1 +100 / -100 at oracle 1, stable 0.5 ->
    # init 0.8 x 0.5 x 100 / -1.2 x 1 x 100, maint 0.9 x 100 / -1.1 x 100
    for token1, init, maint in ((100.0, 40.0, 90.0), (-100.0, -120.0, -110.0)):
        tokens = mango_book(token1, 0, 0.0)
        tokens["accounts"][0]["positions"] = []
        (acc,) = MarginEngine(book_from_data(tokens), oracle=oracle).margin()
        assert acc.init.health_usd == pytest.approx(init, rel=1e-12)
        assert acc.maint.health_usd == pytest.approx(maint, rel=1e-12)
    # a short base is valued at max(oracle, stable): a stable price above the oracle
    data = mango_book(300.0, -10, 100.0)
    data["assets"]["BASE1"]["price"] = 1.0
    (short,) = MarginEngine(book_from_data(data), oracle={"BASE1": quote("BASE1", 1.5)}).margin()
    # contribution 100 - 1.2 x 1.5 x 100 = -80 netted into 300 TOKEN1 (weight 0.8)
    assert short.init.health_usd == pytest.approx(0.8 * (300 + 100 - 1.2 * 1.5 * 100), rel=1e-12)
