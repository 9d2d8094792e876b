"""Drift v2's liquidation buffer (on liability value) and adaptive insurance-fund fee.

Numbers from Drift protocol-v2 ``programs/drift/src/math/liquidation/tests.rs``
(``calculate_perp_if_fee::test``, ``calculate_spot_if_fee::test``,
``calculate_base_asset_amount_to_cover_margin_shortage``) and
``programs/drift/src/math/margin/tests.rs::negative_perp_pnl_liquidation_buffer`` (anchors.md
DV-5, DV-6); formulas from ``math/liquidation.rs`` and ``state/margin_calculation.rs``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossmargin.book.io import book_from_data
from crossmargin.liquidation import FeeSchedule, LiquidationConfig, LiquidationEngine
from crossmargin.liquidation.engine import _Run
from crossmargin.liquidation.execution import OracleTransfer
from crossmargin.liquidation.policies import (
    drift_base_to_cover_shortage,
    drift_perp_if_fee,
    drift_spot_if_fee,
)
from crossmargin.margin.arrays import compile_accounts, compile_market
from tests.helpers import asset


@pytest.mark.parametrize(("shortage", "expected"), [(20.0, 0.019), (1.0, 0.03705), (1000.0, 0.0)])
def test_dv6_perp_if_fee(shortage: float, expected: float) -> None:
    """calculate_perp_if_fee::test: 10 base at $100, mr 5 %, f_liq 1 %, cap 5 % ->
    19000 / 37050 / 0 (LIQUIDATION_FEE_PRECISION 1e6) for shortage $20 / $1 / $1000."""
    fee = drift_perp_if_fee(shortage, 10.0, 100.0, 0.05, 0.01, 0.05)
    assert fee == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("shortage", "expected"), [(5.0, 0.036363), (1.0, 0.05), (100.0, 0.0)])
def test_dv6_spot_if_fee(shortage: float, expected: float) -> None:
    """calculate_spot_if_fee::test: 1 token at $100, aw 1, am 1.01, lw 1.1, cap 5 % ->
    36363 / 50000 / 0 for shortage $5 / $1 / $100 (integer truncation: 1e-6)."""
    fee = drift_spot_if_fee(shortage, 1.0, 100.0, 1.0, 1.01, 1.1, 1.0, 0.05)
    assert fee == pytest.approx(expected, abs=1e-6)


@settings(max_examples=200, deadline=None)
@given(
    shortage=st.floats(0, 1e6),
    base=st.floats(1e-6, 1e6),
    price=st.floats(1e-3, 1e5),
    mr=st.floats(0.0, 1.0),
    f_liq=st.floats(0.0, 0.2),
    cap=st.floats(0.0, 0.2),
)
def test_adaptive_perp_if_fee_never_above_the_cap_nor_the_margin_left(
    shortage: float, base: float, price: float, mr: float, f_liq: float, cap: float
) -> None:
    """0 <= fee <= cap, and fee + f_liq + shortage/notional <= mr whenever the fee is > 0."""
    fee = float(drift_perp_if_fee(shortage, base, price, mr, f_liq, cap))
    assert 0.0 <= fee <= cap
    if fee > 0:
        assert fee + f_liq + shortage / (base * price) <= mr + 1e-12


def _perp_book(qty: float, price: float, maint: float, usdc: float, **position: Any) -> Any:
    data = {
        "assets": {"USDC": asset(1.0), "SOL": asset(price)},
        "markets": {
            "SOL-PERP": {
                "kind": "perp",
                "underlying": "SOL",
                "settle_asset": "USDC",
                "initial_margin_frac": maint,
                "maint_margin_frac": maint,
            }
        },
        "accounts": [
            {
                "id": "liqee",
                "balances": {"USDC": usdc},
                "positions": [{"market": "SOL-PERP", "qty": qty, "entry_price": price, **position}],
            }
        ],
    }
    return book_from_data(data)


def _target(book: Any, config: LiquidationConfig) -> float:
    tables = compile_market(book)
    arrays = compile_accounts(tables, book.accounts, settle_rows=True)
    run = _Run(tables, arrays, config, OracleTransfer(), journal=False)
    return float(run.levels(run.state)[1][0])


def test_dv5_negative_pnl_counts_in_the_buffer() -> None:
    """negative_perp_pnl_liquidation_buffer: USDC 100, perp quote -100 (base 0), buffer 1 %:
    total collateral 0 and collateral plus buffer -1 USDC."""
    book = _perp_book(0.0, 100.0, 0.05, 100.0, unrealized_funding=100.0)
    config = LiquidationConfig.preset("drift", buffer_frac=0.01)
    assert _target(book, config) == pytest.approx(-1.0, abs=1e-12)


def test_buffer_is_on_notional_not_on_the_requirement() -> None:
    """Drift: shortage = MR + buffer x notional - TC. 100 base at $100, mr 8 %, buffer 2 %,
    USDC 790: MR 800 + 200 - 790 = 210 (the old rule, 2 % of MR, said 26)."""
    book = _perp_book(100.0, 100.0, 0.08, 790.0)
    drift = LiquidationConfig.preset("drift")
    assert _target(book, drift) == pytest.approx(-210.0, abs=1e-9)
    old = LiquidationConfig.preset("drift", buffer_on="requirement")
    assert _target(book, old) == pytest.approx(790.0 - 800.0 * 1.02, abs=1e-9)


@pytest.mark.parametrize(("f_liq", "cap"), [(0.0, 0.0), (0.01, 0.0), (0.01, 0.01)])
def test_engine_closes_drifts_base_with_the_buffer(f_liq: float, cap: float) -> None:
    """The engine closes base = shortage / (P (mr + buffer - f_liq) - P f_if) (math/liquidation.rs
    calculate_base_asset_amount_to_cover_margin_shortage with margin_ratio_with_buffer)."""
    book = _perp_book(100.0, 100.0, 0.08, 790.0)
    config = LiquidationConfig.preset(
        "drift", fees=FeeSchedule(liquidator_frac=f_liq, insurance_frac=cap)
    )
    result = LiquidationEngine(book, config).liquidate()
    (event,) = [e for e in result.events if e.kind == "reduce"]
    if_fee = drift_perp_if_fee(210.0, 100.0, 100.0, 0.10, f_liq, cap)
    assert if_fee == cap  # a small shortage: the cap applies
    expected = drift_base_to_cover_shortage(210.0, 100.0, 0.10, f_liq, if_fee)
    assert event.qty == pytest.approx(expected, rel=1e-9)
    assert event.insurance_fee_usd == pytest.approx(if_fee * expected * 100.0, rel=1e-9)
    assert event.target_health_after_usd == pytest.approx(0.0, abs=1e-6)


def test_engine_charges_the_dv6_adaptive_if_fee() -> None:
    """DV-6 calculate_perp_if_fee figures inside a run: 10 base at $100, mr 4 % + buffer 1 %,
    f_liq 1 %, cap 5 %, shortage $20 -> IF fee 1.9 % and base 20 / (100 (0.04) - 1.9)."""
    book = _perp_book(10.0, 100.0, 0.04, 30.0)
    config = LiquidationConfig.preset(
        "drift", buffer_frac=0.01, fees=FeeSchedule(liquidator_frac=0.01, insurance_frac=0.05)
    )
    assert _target(book, config) == pytest.approx(-20.0, abs=1e-12)
    result = LiquidationEngine(book, config).liquidate()
    (event,) = [e for e in result.events if e.kind == "reduce"]
    base = 20.0 / (100.0 * (0.05 - 0.01) - 100.0 * 0.019)
    assert event.qty == pytest.approx(base, rel=1e-9)
    assert event.insurance_fee_usd / (event.qty * 100.0) == pytest.approx(0.019, rel=1e-9)


def test_adaptive_fee_does_not_bankrupt_where_the_fixed_fee_does() -> None:
    """Equity $3 on a $1,000 perp, shortage $67: Drift's fee falls to 0.95 (7 % - 6.7 %) =
    0.285 % (the formula's purpose: 'avoid situation where fee leads to deposits == negative
    pnl'), the account ends solvent; a fixed 5 % fee takes ~$50 and leaves it bankrupt."""
    book = _perp_book(10.0, 100.0, 0.05, 3.0)
    fees = FeeSchedule(liquidator_frac=0.0, insurance_frac=0.05)
    adaptive = LiquidationEngine(book, LiquidationConfig.preset("drift", fees=fees)).liquidate()
    fixed = LiquidationEngine(
        book, LiquidationConfig.preset("drift", fees=fees, insurance_fee_rule="fixed")
    ).liquidate()
    (event,) = [e for e in adaptive.events if e.kind == "reduce"]
    fee = drift_perp_if_fee(67.0, 10.0, 100.0, 0.07, 0.0, 0.05)
    assert fee == pytest.approx(0.95 * 0.003, rel=1e-9)
    assert event.insurance_fee_usd == pytest.approx(fee * event.qty * 100.0, rel=1e-9)
    assert 0.0 < adaptive.outcomes[0].equity_after_usd < 3.0
    assert adaptive.outcomes[0].status == "restored"
    assert fixed.outcomes[0].status == "bankrupt"


@pytest.mark.parametrize(("if_cap"), [0.0, 0.01])
def test_engine_repays_drifts_liability_with_the_buffer(if_cap: float) -> None:
    """Spot: liab = shortage / (P (lw + buffer - aw) - P f_if (lw + buffer)) (DV-6
    calculate_liability_transfer_to_cover_margin_shortage, weights with the buffer added).
    aw 0.8, lw 1.2, 1 token of liability at $100, buffer 2 %; f_if from calculate_spot_if_fee."""
    data = {
        "assets": {"USDC": asset(100.0, iaw=0.8, maw=0.8), "SOL": asset(100.0, ilw=1.2, mlw=1.2)},
        "accounts": [{"id": "liqee", "balances": {"USDC": 1.1, "SOL": -1.0}}],
    }
    book = book_from_data(data)
    config = LiquidationConfig.preset(
        "drift", fees=FeeSchedule(liquidator_frac=0.0, insurance_frac=if_cap)
    )
    shortage = -_target(book, config)
    assert shortage == pytest.approx(1.2 * 100 + 2.0 - 0.8 * 110, abs=1e-9)
    result = LiquidationEngine(book, config).liquidate()
    (event,) = [e for e in result.events if e.kind == "repay"]
    f_if = drift_spot_if_fee(shortage, 1.0, 100.0, 0.8, 1.0, 1.22, 1.0, if_cap)
    expected = shortage / (100.0 * (1.22 - 0.8) - 100.0 * f_if * 1.22)
    liab_transfer = event.qty * event.price_usd / 100.0  # no liquidator fee: value repaid
    assert liab_transfer == pytest.approx(expected, rel=1e-9)
    assert np.isclose(event.insurance_fee_usd, f_if * liab_transfer * 100.0, rtol=1e-9)


@pytest.mark.parametrize(("quote", "expected"), [(0.99, 1.010101010), (1.01, 0.990099009)])
def test_dv6_usdc_not_one(quote: float, expected: float) -> None:
    """calculate_base_asset_amount_to_cover_margin_shortage::usdc_not_one: $10 shortage,
    MR 10 %, oracle $100 (quote units), quote $0.99 / $1.01 -> 1010101010 / 990099009."""
    base = drift_base_to_cover_shortage(10.0, 100.0 * quote, 0.1, 0.0, 0.0, quote_price_usd=quote)
    assert base == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    ("asset_mult", "liab_mult", "expected_asset", "expected_liab_per_10"),
    [(1.0, 1.0, 100.0, 0.1), (1.01, 0.99, 102.0202020, 0.098019802)],
)
def test_dv6_asset_and_liability_transfer_conversions(
    asset_mult: float, liab_mult: float, expected_asset: float, expected_liab_per_10: float
) -> None:
    """calculate_asset_transfer_for_liability_transfer: 1 token of a $100 liability buys
    100000000 / 102020202 of a $1 asset (6 decimals) with multipliers 1/1 and 1.01/0.99;
    calculate_liability_transfer_implied_by_asset_amount: $10 of asset -> 100000000 /
    98019802 (9 decimals) of the liability. In a run the repayment sells collateral and repays
    debt in exactly that ratio, with our one fee factor 1 + f_liq = am / lm."""
    data = {
        "assets": {"USDC": asset(1.0), "SOL": asset(100.0, ilw=1.2, mlw=1.2)},
        "accounts": [{"id": "liqee", "balances": {"USDC": 110.0, "SOL": -1.0}}],
    }
    config = LiquidationConfig.preset(
        "drift",
        buffer_frac=0.0,
        fees=FeeSchedule(liquidator_frac=asset_mult / liab_mult - 1.0, insurance_frac=0.0),
    )
    result = LiquidationEngine(book_from_data(data), config).liquidate()
    (event,) = [e for e in result.events if e.kind == "repay"]
    (liab_change,) = [c for c in event.changes if c.symbol == "SOL"]
    liab_repaid = liab_change.qty + 1.0
    asset_per_liab = event.qty / liab_repaid
    assert asset_per_liab == pytest.approx(expected_asset, rel=1e-7)
    assert 10.0 / asset_per_liab == pytest.approx(expected_liab_per_10, rel=1e-7)
