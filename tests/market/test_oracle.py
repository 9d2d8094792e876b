"""Oracle aggregation, failure states and the Mango v4 stable price."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossmargin.errors import InputError
from crossmargin.market import (
    OracleBook,
    OracleConfig,
    OracleState,
    Quote,
    StablePrice,
    prices_for_margin,
)


def test_mango_stable_price_10x() -> None:
    """blockworks-foundation/mango-v4 programs/mango-v4/src/state/stable_price.rs
    ``test_stable_price_10x`` (anchor MV-6): reset at 1.0, oracle jumps to 10.

    The source asserts 1.8, 2.3 and 7.4 within 0.1; the anchors' transcription gives
    1.7806, 2.3089 and 7.4452, which we reproduce to 1e-4.
    """
    model = StablePrice.starting_at(1.0, 0.0)
    t = 0.0
    for _ in range(60):
        t += 60
        model.update(t, 10.0)
    assert model.stable_price == pytest.approx(1.7806, abs=1e-4)
    assert model.delay_prices[0] == pytest.approx(1.06, abs=1e-9)
    assert model.delay_prices[1:] == [1.0] * 23
    assert model.last_delay_slot == 1
    assert model.delay_accumulator_time_s == 0.0
    for _ in range(6 * 60):
        t += 10
        model.update(t, 10.0)
    assert model.stable_price == pytest.approx(2.3089, abs=1e-4)
    assert model.delay_prices[1] == pytest.approx(1.06 * 1.06, abs=1e-9)
    assert model.last_delay_slot == 2
    for _ in range(12 * 23):  # wrap around the 24-slot ring
        t += 300
        model.update(t, 10.0)
    assert model.stable_price == pytest.approx(7.4452, abs=1e-4)
    assert model.delay_prices[0] > model.delay_prices[23] > model.delay_prices[22]
    assert model.delay_prices[1] < model.delay_prices[0]
    assert model.last_delay_slot == 1


def test_stable_price_ignores_updates_closer_than_10s() -> None:
    model = StablePrice.starting_at(100.0, 0.0)
    assert model.update(5.0, 1000.0) == 100.0
    assert model.last_update_s == 0.0


def _three(book: OracleBook, asset: str, prices: tuple[float, float, float], t: float) -> None:
    for source, price in zip(("pyth", "chainlink", "binance"), prices, strict=True):
        assert book.push(asset, Quote(source, price, 1e-4 * price, t))


def test_healthy_degraded_halted_with_reasons() -> None:
    book = OracleBook(["ETH"], OracleConfig(max_age_s=60, min_sources_healthy=2))
    _three(book, "ETH", (3000.0, 3001.0, 2999.0), 0.0)
    agg = book.aggregate("ETH", 10.0)
    assert agg.state is OracleState.HEALTHY and agg.price_usd == 3000.0
    assert agg.n_used == 3
    book.push("ETH", Quote("pyth", 3002.0, 0.5, 50.0))
    book.push("ETH", Quote("chainlink", 3003.0, 0.5, 55.0))
    assert book.aggregate("ETH", 100.0).state is OracleState.HEALTHY  # binance is stale
    assert book.aggregate("ETH", 112.0).state is OracleState.DEGRADED  # only chainlink fresh
    halted = book.aggregate("ETH", 200.0)
    assert halted.state is OracleState.HALTED and math.isnan(halted.price_usd)
    states = [(e.old_state, e.new_state) for e in book.events if e.kind == "state"]
    assert states == [
        (OracleState.HALTED, OracleState.HEALTHY),
        (OracleState.HEALTHY, OracleState.DEGRADED),
        (OracleState.DEGRADED, OracleState.HALTED),
    ]
    degraded = next(e for e in book.events if e.new_state is OracleState.DEGRADED)
    assert "1 of 3 sources" in degraded.reason and "pyth 62s" in degraded.reason
    assert not OracleState.DEGRADED.allows_new_risk and OracleState.DEGRADED.allows_liquidation
    assert not OracleState.HALTED.allows_liquidation


def test_outlier_is_dropped_and_reported() -> None:
    book = OracleBook(["SOL"])
    _three(book, "SOL", (140.0, 140.2, 180.0), 0.0)
    agg = book.aggregate("SOL", 1.0)
    assert agg.price_usd == pytest.approx(140.1) and agg.n_used == 2
    assert agg.state is OracleState.HEALTHY
    # two of three disagreeing with the median leaves one source: degraded, with the reason
    book2 = OracleBook(["SOL"])
    _three(book2, "SOL", (100.0, 140.0, 180.0), 0.0)
    agg2 = book2.aggregate("SOL", 1.0)
    assert agg2.state is OracleState.DEGRADED and agg2.price_usd == 140.0
    assert "outliers" in book2.events[-1].reason


@pytest.mark.parametrize(
    ("quote", "reason"),
    [
        (Quote("pyth", math.nan, 0.1, 10.0), "finite number > 0"),
        (Quote("pyth", -5.0, 0.1, 10.0), "finite number > 0"),
        (Quote("pyth", 0.0, 0.1, 10.0), "finite number > 0"),
        (Quote("pyth", 100.0, -1.0, 10.0), "confidence must be"),
        (Quote("pyth", 100.0, 5.0, 10.0), "more than 2.00% of the price"),
        (Quote("pyth", 100.0, 0.1, -10.0), "out of order"),
        (Quote("pyth", 100.0, 0.1, 0.0), "repeated timestamp"),
        (Quote("pyth", 600.0, 0.1, 10.0), "jumps 6.0x"),
    ],
)
def test_bad_quotes_are_rejected_with_an_event(quote: Quote, reason: str) -> None:
    book = OracleBook(["BTC"])
    assert book.push("BTC", Quote("pyth", 100.0, 0.1, 0.0))
    assert not book.push("BTC", quote)
    assert reason in book.events[-1].reason
    assert book.events[-1].kind == "rejected" and book.events[-1].source == "pyth"


def test_conservative_and_stable_prices_after_a_spike() -> None:
    """A sudden 5x oracle spike: maint uses it, init values collateral at the stable price."""
    book = OracleBook(["GOV"], OracleConfig(max_jump_ratio=10.0))
    for t in range(0, 3600, 60):
        _three(book, "GOV", (10.0, 10.0, 10.0), float(t))
        book.aggregate("GOV", float(t))
    _three(book, "GOV", (50.0, 50.0, 50.1), 3600.0)
    agg = book.aggregate("GOV", 3600.0)
    assert agg.price_usd == 50.0
    assert agg.asset_price_usd < agg.price_usd < agg.liab_price_usd
    assert agg.confidence_usd <= 0.01 * agg.price_usd
    assert agg.stable_price_usd < 11.0  # moved at most 0.03 %/s for 60 s
    assert agg.init_asset_price_usd == agg.stable_price_usd
    assert agg.init_liab_price_usd == agg.liab_price_usd


def test_prices_for_margin_refuses_halted_assets() -> None:
    book = OracleBook(["ETH", "BTC"])
    _three(book, "ETH", (3000.0, 3000.0, 3000.0), 0.0)
    with pytest.raises(InputError, match=r"oracle\.BTC"):
        prices_for_margin(book.snapshot(1.0))
    _three(book, "BTC", (90000.0, 90010.0, 90020.0), 0.0)
    assert prices_for_margin(book.snapshot(1.0)) == {"ETH": 3000.0, "BTC": 90010.0}


honest = st.floats(1000.0, 1100.0)


@settings(max_examples=300, deadline=None)
@given(h1=honest, h2=honest, liar=st.floats(1e-3, 1e7), position=st.integers(0, 2))
def test_one_lying_source_never_leaves_the_honest_range(
    h1: float, h2: float, liar: float, position: int
) -> None:
    prices = [h1, h2]
    prices.insert(position, liar)
    book = OracleBook(["X"], OracleConfig(max_jump_ratio=1e12))
    _three(book, "X", (prices[0], prices[1], prices[2]), 0.0)
    agg = book.aggregate("X", 1.0)
    assert min(h1, h2) <= agg.price_usd <= max(h1, h2)
