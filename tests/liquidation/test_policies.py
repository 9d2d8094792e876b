"""Closed-form anchor formulas: dYdX v4 DY-2..DY-4, Aave v3 AV-2/AV-3, Drift v2 DV-6.

Numbers from ../shared/reference/anchors.md, which cites each source test.
"""

from __future__ import annotations

import pytest

from crossmargin.book.io import book_from_data
from crossmargin.liquidation import LiquidationConfig, LiquidationEngine
from crossmargin.liquidation.policies import (
    aave_close_factor,
    bankruptcy_price_usd,
    drift_base_to_cover_shortage,
    dydx_fillable_price_usd,
    dydx_insurance_fund_delta_usd,
    spiral_threshold,
)
from tests.helpers import asset

BTC = 50_000.0  # DY-2..DY-4 setup: BTC oracle $50,000, 0.1 BTC, MMR 10 %


@pytest.mark.parametrize(
    ("qty", "usdc", "close", "expected_quote"),
    [
        (0.1, -4_501.0, 0.1, 4_501.0),
        (-0.1, 5_499.0, -0.1, -5_499.0),
        (0.1, -5_000.0, 0.1, 5_000.0),
        (0.1, -5_000.0, 0.05, 2_500.0),
        (0.1, -5_100.0, 0.1, 5_100.0),
    ],
)
def test_dy2_bankruptcy_price(qty: float, usdc: float, close: float, expected_quote: float) -> None:
    """DY-2 liquidations_test.go TestGetBankruptcyPriceInQuoteQuantums (l.2473)."""
    equity = qty * BTC + usdc
    share = close / qty  # closing half a single position carries half its maintenance margin
    price = bankruptcy_price_usd(close, BTC, equity, share)
    assert close * price == pytest.approx(expected_quote, rel=1e-12)


@pytest.mark.parametrize(
    ("qty", "usdc", "ba", "smmr", "expected"),
    [
        (0.1, -4_501.0, 1.0, 0.1, 49_999.0),
        (0.1, -4_501.0, 2.0, 0.1, 49_998.0),
        (0.1, -4_501.0, 1.0, 0.2, 49_998.0),
        (-0.1, 5_499.0, 1.0, 0.1, 50_001.0),
        (-0.1, 5_499.0, 2.0, 0.1, 50_002.0),
    ],
)
def test_dy3_fillable_price(
    qty: float, usdc: float, ba: float, smmr: float, expected: float
) -> None:
    """DY-3 TestGetFillablePrice (l.2931): 49_999/100 quote quantums per base quantum = $49,999."""
    maint = abs(qty) * BTC * 0.1
    price = dydx_fillable_price_usd(
        qty,
        BTC,
        qty * BTC + usdc,
        maint,
        maint,
        bankruptcy_adjustment=ba,
        spread_to_maint_ratio=smmr,
    )
    assert price == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("fee", "expected"), [(0.005, 28.05), (0.025, 140.25), (1.0, 510.0)])
def test_dy4_insurance_fund_delta(fee: float, expected: float) -> None:
    """DY-4 TestGetLiquidationInsuranceFundDelta (l.3441): BP $5,100, fill $5,610."""
    assert dydx_insurance_fund_delta_usd(5_610.0, 5_100.0, fee) == pytest.approx(expected)
    assert dydx_insurance_fund_delta_usd(5_000.0, 5_100.0, fee) == pytest.approx(-100.0)


@pytest.mark.parametrize(
    ("hf", "collateral", "debt", "expected"),
    [
        (0.94, 100 * 2_000.0, 150_000.0, 1.0),  # AV-2: HF <= 0.95 -> 100 %
        (0.97, 0.5 * 2_000.0, 900.0, 1.0),  # AV-2: 0.5 WETH is under $2,000 -> 100 %
        (0.97, 100 * 2_000.0, 150_000.0, 0.5),  # AV-2: 50 %
    ],
)
def test_av2_close_factor(hf: float, collateral: float, debt: float, expected: float) -> None:
    """AV-2 Pool.Liquidations.CloseFactor.t.sol (v3.3 rules)."""
    assert aave_close_factor(hf, collateral, debt) == expected


def test_av3_threshold_example() -> None:
    """AV-3 (v3.3 features doc): threshold $1,000, $1,200 collateral, $900 debt, HF 0.96: 100 %."""
    assert aave_close_factor(0.96, 1_200.0, 900.0, min_usd=1_000.0) == 1.0


def test_drift_closed_form_matches_dv6() -> None:
    """DV-6: $10 shortage, MR 10 %, $100 -> 1, 10/9, 1.25; quote $0.99 -> 1.0101..."""
    assert drift_base_to_cover_shortage(10, 100, 0.1, 0.0, 0.0) == pytest.approx(1.0)
    assert drift_base_to_cover_shortage(10, 100, 0.1, 0.01, 0.0) == pytest.approx(10 / 9)
    assert drift_base_to_cover_shortage(10, 100, 0.1, 0.01, 0.01) == pytest.approx(1.25)
    assert drift_base_to_cover_shortage(10, 100, 0.1, 0.1, 0.0) == float("inf")


def _aave_book(collateral_eth: float, debt_usdc: float) -> object:
    return book_from_data(
        {
            "assets": {
                "USDC": asset(1.0, iaw=0.8, maw=0.86, ilw=1.0, mlw=1.0),
                "WETH": asset(2_000.0, iaw=0.8, maw=0.825),
            },
            "accounts": [{"id": "u", "balances": {"WETH": collateral_eth, "USDC": -debt_usdc}}],
        }
    )


def test_engine_close_factor_policy_repays_half_then_all() -> None:
    """Aave policy in the engine: HF 0.97 with large amounts repays 50 % of the debt in a step."""
    # HF = 100 * 2000 * 0.825 / debt = 0.97
    debt = 100 * 2_000 * 0.825 / 0.97
    engine = LiquidationEngine(_aave_book(100.0, debt), LiquidationConfig.preset("aave"))
    result = engine.liquidate()
    first = next(e for e in result.events if e.kind == "repay")
    repaid = first.qty * first.price_usd / 1.05  # collateral sold / bonus = debt repaid
    assert repaid == pytest.approx(0.5 * debt, rel=1e-9)
    assert result.outcomes[0].maint_health_after_usd >= 0.0


def test_spiral_is_reported_not_looped() -> None:
    """Debt/collateral 0.97 > 1/(1+5 %): every bonus-paying sale lowers health (CRV, Nov 2022)."""
    book = book_from_data(
        {
            "assets": {
                "USDC": asset(1.0),
                "CRV": asset(1.0, iaw=0.0, maw=0.98),
            },
            "accounts": [{"id": "u", "balances": {"CRV": 1000.0, "USDC": -990.0}}],
        }
    )
    config = LiquidationConfig.preset(
        "generic", fees={"liquidator_frac": 0.05, "insurance_frac": 0.0}, buffer_frac=0.0
    )
    result = LiquidationEngine(book, config).liquidate()
    assert result.outcomes[0].status == "spiral"
    (event,) = [e for e in result.events if e.kind == "spiral"]
    assert f"{spiral_threshold(0.05):.4f}" in event.reason
    assert not [e for e in result.events if e.kind == "repay"]
