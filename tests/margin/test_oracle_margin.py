"""The kernel on oracle prices: conservative valuation, stable price at init, risk gates."""

from __future__ import annotations

import pytest

from crossmargin.book import book_from_data
from crossmargin.errors import InputError
from crossmargin.margin import MarginEngine, Trade
from crossmargin.market import OracleBook, OracleConfig, Quote
from tests.helpers import asset

BOOK = {
    "assets": {
        "USDC": asset(1.0),
        "ETH": asset(2000.0, 0.8, 0.9, 1.2, 1.1),
    },
    "markets": {
        "ETH-PERP": {
            "kind": "perp",
            "underlying": "ETH",
            "settle_asset": "USDC",
            "initial_margin_frac": 0.1,
            "maint_margin_frac": 0.05,
        }
    },
    "accounts": [
        {
            "id": "a",
            "balances": {"ETH": 10.0, "USDC": -5000.0},
            "positions": [{"market": "ETH-PERP", "qty": 1.0, "entry_price": 2000.0}],
        }
    ],
}


def _feed(book: OracleBook, asset: str, prices: tuple[float, ...], conf: float, t: float) -> None:
    for i, price in enumerate(prices):
        book.push(asset, Quote(f"s{i}", price, conf, t))


def test_conservative_prices_enter_through_the_weights() -> None:
    oracle = OracleBook(["USDC", "ETH"], OracleConfig(confidence_cap_frac=0.01))
    _feed(oracle, "USDC", (1.0, 1.0, 1.0), 0.0, 0.0)
    _feed(oracle, "ETH", (2100.0, 2100.0, 2100.0), 5.0, 0.0)  # conf 5 USD
    snapshot = oracle.snapshot(1.0)
    report = MarginEngine(book_from_data(BOOK), snapshot).margin(with_liquidation_prices=False)[0]
    # maint: ETH collateral at 2100 - 5; the borrow at 1 + 0; perp PnL and margin at the mid
    pnl = 2100.0 - 2000.0
    assert report.maint.weighted_assets_usd == pytest.approx(10 * 2095 * 0.9 + pnl)
    assert report.maint.weighted_liabilities_usd == pytest.approx(5000 + 2100 * 0.05)
    assert report.equity_usd == pytest.approx(10 * 2100 - 5000 + pnl)


def test_init_uses_the_stable_price_after_a_spike() -> None:
    """Mango v4: a sudden oracle jump is not borrowable at once (stable price, MV-6 model)."""
    oracle = OracleBook(["USDC", "ETH"], OracleConfig(max_jump_ratio=10.0))
    for t in range(0, 3600, 60):
        _feed(oracle, "USDC", (1.0, 1.0, 1.0), 0.0, float(t))
        _feed(oracle, "ETH", (2000.0, 2000.0, 2000.0), 0.0, float(t))
        oracle.snapshot(float(t))
    _feed(oracle, "USDC", (1.0, 1.0, 1.0), 0.0, 3600.0)
    _feed(oracle, "ETH", (4000.0, 4000.0, 4000.0), 0.0, 3600.0)
    snapshot = oracle.snapshot(3600.0)
    stable = snapshot["ETH"].stable_price_usd
    assert 2000.0 < stable < 2100.0
    report = MarginEngine(book_from_data(BOOK), snapshot).margin(with_liquidation_prices=False)[0]
    assert report.maint.weighted_assets_usd == pytest.approx(10 * 4000 * 0.9 + 2000.0)
    # init: ETH collateral and the long perp's base both at the stable price (issue #15: Mango
    # values perp base at min(oracle, stable) at init), margin 10 % of that base value
    init_health = 10 * stable * 0.8 + (stable - 2000.0) - 0.1 * stable - 5000.0
    assert report.init.health_usd == pytest.approx(init_health, rel=1e-12)


def test_degraded_oracle_blocks_new_risk_but_not_deposits_or_reductions() -> None:
    oracle = OracleBook(["USDC", "ETH"], OracleConfig(min_sources_healthy=2))
    _feed(oracle, "USDC", (1.0, 1.0), 0.0, 0.0)
    _feed(oracle, "ETH", (2000.0,), 0.0, 0.0)  # one source: degraded
    snapshot = oracle.snapshot(1.0)
    engine = MarginEngine(book_from_data(BOOK), snapshot)
    withdraw = engine.what_if("a", withdrawals={"ETH": 0.1})
    assert not withdraw.allowed and "ETH oracle is degraded" in withdraw.blocked[0]
    assert engine.what_if("a", withdrawals={"ETH": -1.0}).allowed  # a deposit
    assert engine.what_if("a", [Trade("ETH-PERP", -0.5)]).allowed  # reduces the long
    more = engine.what_if("a", [Trade("ETH-PERP", 0.5)])
    assert not more.allowed and more.blocked


def test_halted_oracle_is_refused() -> None:
    oracle = OracleBook(["USDC", "ETH"])
    _feed(oracle, "USDC", (1.0, 1.0), 0.0, 0.0)
    with pytest.raises(InputError, match=r"oracle\.ETH: no usable price"):
        MarginEngine(book_from_data(BOOK), oracle.snapshot(1.0))
