"""Cross and isolated margin, what-if, liquidation prices and compare on hand-checked books.

Every expected number below is computed by hand in the test from the formulas in
docs/methodology.md, so that a change in the kernel's semantics fails here.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest

import crossmargin as cm
from crossmargin.book import book_from_data
from crossmargin.errors import InputError
from crossmargin.margin import MarginEngine, Trade
from tests.helpers import asset

BOOK: dict[str, Any] = {
    "assets": {
        "USDC": asset(1.0, 1.0, 1.0, 1.0, 1.0),
        "ETH": asset(2000.0, 0.8, 0.9, 1.2, 1.1),
        "BTC": asset(50000.0, 0.85, 0.9, 1.15, 1.1),
    },
    "markets": {
        "ETH-PERP": {
            "kind": "perp",
            "underlying": "ETH",
            "settle_asset": "USDC",
            "mark_price": 2010.0,
            "initial_margin_frac": 0.1,
            "maint_margin_frac": 0.05,
            "init_pnl_weight": 0.5,
            "maint_pnl_weight": 0.8,
        },
        "BTC-PERP": {
            "kind": "perp",
            "underlying": "BTC",
            "settle_asset": "USDC",
            "initial_margin_frac": 0.04,
            "maint_margin_frac": 0.02,
        },
    },
    "accounts": [
        {
            "id": "alice",
            "balances": {"ETH": 10.0, "USDC": -8000.0},
            "positions": [
                {
                    "market": "ETH-PERP",
                    "qty": -5.0,
                    "entry_price": 2110.0,
                    "unrealized_funding": 20.0,
                },
                {"market": "BTC-PERP", "qty": 1.0, "entry_price": 52000.0},
            ],
        }
    ],
}


def test_cross_account_by_hand() -> None:
    report = cm.margin(book_from_data(BOOK))[0]
    eth_pnl = -5.0 * (2010.0 - 2110.0) - 20.0  # +480: short gained, minus funding owed
    btc_pnl = 1.0 * (50000.0 - 52000.0)  # -2000
    assert report.equity_usd == pytest.approx(10 * 2000 - 8000 + eth_pnl + btc_pnl, rel=1e-14)
    # init: ETH 20,000 x 0.8; positive PnL 480 x 0.5; borrow 8,000 x 1.0;
    # margins 5 x 2010 x 0.1 and 50,000 x 0.04; negative PnL 2,000
    wa_init = 20000 * 0.8 + 480 * 0.5
    wl_init = 8000 * 1.0 + 5 * 2010 * 0.1 + 50000 * 0.04 + 2000
    assert report.init.weighted_assets_usd == pytest.approx(wa_init, rel=1e-14)
    assert report.init.weighted_liabilities_usd == pytest.approx(wl_init, rel=1e-14)
    assert report.init.health_usd == pytest.approx(wa_init - wl_init, rel=1e-12)
    wa_maint = 20000 * 0.9 + 480 * 0.8
    wl_maint = 8000 + 5 * 2010 * 0.05 + 50000 * 0.02 + 2000
    assert report.maint.health_usd == pytest.approx(wa_maint - wl_maint, rel=1e-12)
    assert report.maint.health_ratio == pytest.approx(wa_maint / wl_maint, rel=1e-12)
    assert not report.liquidatable


def test_eth_liquidation_price_is_the_linear_root() -> None:
    """Moving ETH moves the spot ETH and the ETH-PERP mark (basis 2010/2000 kept).

    maint health(P) = 10 P 0.9 + u(P) w - 8000 - 5 (1.005 P) 0.05 - 1000 - 2000, with the short's
    PnL u(P) = -5 (1.005 P - 2110) - 20 weighted 0.8 while positive and 1 once negative.
    """
    report = cm.margin(book_from_data(BOOK))[0]
    lp = report.liquidation_prices["ETH"]
    basis = 2010.0 / 2000.0
    # candidate root with u > 0: 9P + 0.8(10530 - 5.025P) - 0.25125P - 11000 = 0
    p = (11000 - 0.8 * 10530) / (9 - 0.8 * 5.025 - 0.25125)
    assert -5 * (basis * p - 2110) - 20 > 0  # the PnL is still positive there
    assert lp.below_usd == pytest.approx(p, rel=1e-10)
    assert lp.above_usd is None  # rising ETH: spot gains 9/unit, the short loses 5.025/unit
    moved = cm.margin(book_from_data(BOOK), prices={"ETH": p})[0]
    assert moved.maint.health_usd == pytest.approx(0.0, abs=1e-6)


def test_usdc_depeg_liquidation_price() -> None:
    """A USDC price above 1 inflates the USDC borrow and the settle-unit entry prices."""
    report = cm.margin(book_from_data(BOOK))[0]
    lp = report.liquidation_prices["USDC"]
    assert lp.above_usd is not None and lp.above_usd > 1.0
    at = cm.margin(book_from_data(BOOK), prices={"USDC": lp.above_usd})[0]
    assert at.maint.health_usd == pytest.approx(0.0, abs=1e-6)


def test_isolated_buckets_by_hand() -> None:
    data = copy.deepcopy(BOOK)
    data["accounts"] = [
        {
            "id": "iso",
            "mode": "isolated",
            "balances": {"USDC": 3000.0, "ETH": 1.0},
            "positions": [
                {
                    "market": "BTC-PERP",
                    "qty": 0.5,
                    "entry_price": 50000.0,
                    "isolated_collateral": {"USDC": 2000.0},
                },
                {"market": "ETH-PERP", "qty": 2.0, "entry_price": 2010.0},
            ],
        }
    ]
    report = cm.margin(book_from_data(data))[0]
    names = [b.name for b in report.buckets]
    assert names == ["free", "BTC-PERP", "ETH-PERP"]
    free, btc, eth = report.buckets
    assert free.maint.health_usd == pytest.approx(1000 + 2000 * 0.9, rel=1e-14)
    assert btc.maint.health_usd == pytest.approx(2000 - 25000 * 0.02, rel=1e-14)
    # the ETH bucket has no collateral: margin 2 x 2010 x 0.05 makes it liquidatable
    assert eth.maint.health_usd == pytest.approx(-2 * 2010 * 0.05, rel=1e-14)
    assert eth.liquidatable and report.liquidatable
    assert report.maint.health_usd == pytest.approx(
        free.maint.health_usd + btc.maint.health_usd + eth.maint.health_usd, rel=1e-14
    )
    # BTC bucket: 2000 + 0.5 (P - 50000) - 0.5 P 0.02 = 0
    assert btc.liquidation_prices["BTC"].below_usd == pytest.approx(
        (0.5 * 50000 - 2000) / (0.5 - 0.01), rel=1e-10
    )
    # the same positions under cross margin share the collateral and are healthy
    cross = cm.margin(book_from_data(data), mode="cross")[0]
    assert not cross.liquidatable


def test_tiers_make_liquidation_price_piecewise() -> None:
    """Collateral above 1,000,000 USD counts at half: the root lies on the tiered segment."""
    data = {
        "assets": {
            "USDC": asset(1.0, 1.0, 1.0, 1.0, 1.0),
            "GOV": asset(
                10.0, 0.5, 0.6, 1.5, 1.4, collateral_tiers=[{"above_usd": 1e6, "factor": 0.5}]
            ),
        },
        "accounts": [{"id": "whale", "balances": {"GOV": 300000.0, "USDC": -1.5e6}}],
    }
    report = cm.margin(book_from_data(data))[0]
    # value 3,000,000: weighted 0.6 (1e6 + 0.5 x 2e6) = 1.2e6 < 1.5e6: liquidatable now
    assert report.maint.weighted_assets_usd == pytest.approx(1.2e6, rel=1e-14)
    assert report.liquidatable
    # recovery price: 0.6 (1e6 + 0.5 (300000 P - 1e6)) = 1.5e6  ->  300000 P = 4e6
    lp = report.liquidation_prices["GOV"]
    assert lp.above_usd == pytest.approx(4e6 / 300000, rel=1e-10)
    assert lp.below_usd is None


def test_settle_netted_convention_nets_pnl_into_the_settle_balance() -> None:
    data = copy.deepcopy(BOOK)
    data["pnl_convention"] = "settle_netted"
    report = cm.margin(book_from_data(data))[0]
    eth_c = 480 - 5 * 2010 * 0.05  # -22.5: negative, so not discounted by the PnL weight
    btc_c = -2000 - 50000 * 0.02
    usdc = -8000 + eth_c + btc_c  # negative: weighted by the USDC liability weight (1)
    assert report.maint.health_usd == pytest.approx(20000 * 0.9 + usdc, rel=1e-12)
    # a profitable short: c > 0 is discounted by the PnL weight before joining the balance
    data["accounts"][0]["positions"][0]["entry_price"] = 2500.0
    report = cm.margin(book_from_data(data))[0]
    eth_c = (-5 * (2010 - 2500) - 20 - 5 * 2010 * 0.05) * 0.8
    usdc = -8000 + eth_c + btc_c
    assert report.maint.health_usd == pytest.approx(20000 * 0.9 + usdc, rel=1e-12)


def test_what_if_trade_accounting() -> None:
    engine = MarginEngine(book_from_data(BOOK))
    # buy back 2 of the 5 ETH short at 2000: realizes 2 x (2110 - 2000) = 220 USDC
    result = engine.what_if("alice", [Trade("ETH-PERP", 2.0, 2000.0)])
    before, after = result.before, result.after
    mark_gain_on_closed = 2 * (2010 - 2000)  # bought below the mark
    assert after.equity_usd == pytest.approx(before.equity_usd + mark_gain_on_closed, rel=1e-12)
    # flip: buy 8 at the mark -> long 3 at entry 2010, realized 5 x (2110 - 2010)
    flipped = engine.what_if("alice", [Trade("ETH-PERP", 8.0)])
    assert flipped.after.equity_usd == pytest.approx(before.equity_usd, rel=1e-12)


def test_what_if_withdrawal_is_refused_when_init_health_goes_negative() -> None:
    engine = MarginEngine(book_from_data(BOOK))
    init_health = engine.account_margin("alice").init.health_usd
    assert init_health > 0
    ok = engine.what_if("alice", withdrawals={"USDC": init_health * 0.99})
    assert ok.allowed
    refused = engine.what_if("alice", withdrawals={"USDC": init_health * 1.01})
    assert not refused.allowed
    # the withdrawal goes beyond the USDC balance: it is a borrow, weighted at 1.0
    assert refused.after.init.health_usd == pytest.approx(-0.01 * init_health, rel=1e-9)


def test_what_if_price_move_and_bad_input() -> None:
    engine = MarginEngine(book_from_data(BOOK))
    crash = engine.what_if("alice", prices={"ETH": 500.0})  # below the 544.7 liquidation price
    assert crash.after.liquidatable and not crash.before.liquidatable
    with pytest.raises(InputError, match=r"trade\.market"):
        engine.what_if("alice", [Trade("DOGE-PERP", 1.0)])
    with pytest.raises(InputError, match=r"trade\.qty"):
        engine.what_if("alice", [Trade("ETH-PERP", math.nan)])
    with pytest.raises(InputError, match=r"withdrawals\.ETH"):
        engine.what_if("alice", withdrawals={"ETH": math.inf})


def test_compare_by_hand() -> None:
    """Cross pools everything; isolated funds the wallet and each position on its own."""
    report = MarginEngine(book_from_data(BOOK)).compare()[0]
    cross_init = cm.margin(book_from_data(BOOK))[0].init.health_usd
    assert cross_init > 0 and report.cross_required_usd == 0.0
    wallet = 20000 * 0.8 - 8000  # healthy on its own
    eth = 480 * 0.5 - 5 * 2010 * 0.1  # -765: the short's margin exceeds its weighted PnL
    btc = -2000 - 50000 * 0.04  # -4000
    assert wallet > 0
    assert report.isolated_required_usd == pytest.approx(-eth - btc, rel=1e-12)
    assert report.freed_usd == pytest.approx(-eth - btc, rel=1e-12)
    assert report.cross_to_isolated == 0.0
    assert report.collateral_usd == pytest.approx(20000.0)


def test_account_with_nothing_has_infinite_ratio_and_no_liquidation_price() -> None:
    data = copy.deepcopy(BOOK)
    data["accounts"] = [{"id": "empty"}]
    report = cm.margin(book_from_data(data))[0]
    assert math.isinf(report.maint.health_ratio)
    assert report.maint.to_dict()["health_ratio"] is None
    assert report.liquidation_prices == {}
    assert not report.liquidatable


def test_collateral_only_account_has_no_liquidation_price() -> None:
    data = copy.deepcopy(BOOK)
    data["accounts"] = [{"id": "saver", "balances": {"ETH": 3.0, "USDC": 100.0}}]
    report = cm.margin(book_from_data(data))[0]
    assert report.liquidation_prices == {}  # health stays >= 0 for every price down to 0
