"""Cascades: row bookkeeping, the impact and recovery law on a hand-computed case, invariants."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossmargin.book import book_from_data
from crossmargin.errors import InputError
from crossmargin.margin.arrays import MAINT, compile_accounts, compile_market
from crossmargin.margin.kernel import evaluate_groups
from crossmargin.simulation import CascadeConfig, generate_book, run_cascade, shocked_prices
from crossmargin.simulation.rows import put_back, take_accounts
from tests.helpers import asset


def _book(accounts: list[dict[str, Any]]) -> Any:
    return book_from_data(
        {
            "assets": {"USDC": asset(1.0), "ETH": asset(2000.0, 0.8, 0.9, 1.2, 1.1)},
            "markets": {
                "ETH-PERP": {
                    "kind": "perp",
                    "underlying": "ETH",
                    "initial_margin_frac": 0.1,
                    "maint_margin_frac": 0.05,
                }
            },
            "accounts": accounts,
        }
    )


def _compiled(book: Any) -> tuple[Any, Any]:
    tables = compile_market(book)
    return tables, compile_accounts(tables, book.accounts, settle_rows=True)


def test_take_and_put_back_rows_round_trip() -> None:
    generated = generate_book(300, seed=4)
    arrays = generated.to_arrays()
    accounts = np.array([3, 10, 11, 250])
    subset = take_accounts(arrays, accounts)
    full = evaluate_groups(generated.tables, arrays, MAINT)
    part = evaluate_groups(generated.tables, subset.arrays, MAINT)
    for f, p in zip(full, part, strict=True):
        np.testing.assert_array_equal(f[accounts], p)  # one group per account here
    bal, pos, fund = arrays.bal_qty.copy(), arrays.pos_qty.copy(), arrays.pos_funding.copy()
    put_back(bal, pos, fund, subset, subset.arrays)
    np.testing.assert_array_equal(bal, arrays.bal_qty)
    np.testing.assert_array_equal(pos, arrays.pos_qty)


def test_impact_and_recovery_follow_the_square_root_law() -> None:
    """Account a: 10 ETH, a 15,000 USDC borrow; ETH -30 % to F = 1400 makes maint health
    14,000 x 0.9 - 15,000 < 0: it is liquidated and sells ETH (flow f0 < 0). Round 1's price is
    F exp(i0), i0 = -k sigma sqrt(|f0| / V) (k = 1). Account b (borrow 12,590: liquidatable
    below 1398.9) then goes under and sells f1; round 2's price is F exp(2^(-1/h) i0 + i1),
    the first impact having decayed with half-life h = 2 rounds."""
    book = _book(
        [
            {"id": "a", "balances": {"ETH": 10.0, "USDC": -15_000.0}},
            {"id": "b", "balances": {"ETH": 10.0, "USDC": -12_590.0}},
        ]
    )
    tables, arrays = _compiled(book)
    config = CascadeConfig(
        sigma_daily={"ETH": 0.05},
        daily_volume_usd={"ETH": 1e6},
        recovery_half_life_rounds=2.0,
        max_rounds=6,
    )
    result = run_cascade(tables, arrays, shocked_prices(tables, {"ETH": -0.3}), config)
    r0, r1, r2 = result.rounds[:3]
    assert (r0.liquidated_accounts, r1.liquidated_accounts) == (1, 1)
    i0 = -0.05 * math.sqrt(-r0.forced_flow_usd["ETH"] / 1e6)
    i1 = -0.05 * math.sqrt(-r1.forced_flow_usd["ETH"] / 1e6)
    assert r1.price_usd["ETH"] == pytest.approx(1400.0 * math.exp(i0), rel=1e-12)
    assert r2.price_usd["ETH"] == pytest.approx(1400.0 * math.exp(2**-0.5 * i0 + i1), rel=1e-12)
    assert r1.price_usd["USDC"] == 1.0  # no vol: a stablecoin does not move
    assert result.converged


def test_closeout_bad_debt_is_the_negative_equity_beyond_the_insurance_fund() -> None:
    """No impact (deep market): an account worth -1,000 after the shock is bad debt; a fund of
    400 pays part of it."""
    book = _book(
        [
            {"id": "under", "balances": {"ETH": 10.0, "USDC": -15_000.0}},  # 14,000 - 15,000
            {"id": "fine", "balances": {"USDC": 10_000.0}},
        ]
    )
    tables, arrays = _compiled(book)
    from crossmargin.liquidation import LiquidationConfig

    config = CascadeConfig(
        model="closeout",
        sigma_daily={},
        liquidation=LiquidationConfig(insurance_fund_usd=400.0),
    )
    result = run_cascade(tables, arrays, shocked_prices(tables, {"ETH": -0.3}), config)
    assert result.bad_debt_usd == pytest.approx(1_000.0)
    assert result.rounds[0].insurance_fund_usd == pytest.approx(0.0)
    assert result.liquidated_accounts == 1
    assert result.rounds[0].forced_flow_usd == pytest.approx({"ETH": -14_000.0, "USDC": 15_000.0})


def test_bad_shocks_are_refused_naming_the_asset() -> None:
    tables, _ = _compiled(_book([]))
    with pytest.raises(InputError, match=r"shock\.ETH"):
        shocked_prices(tables, {"ETH": -1.0})
    with pytest.raises(InputError, match=r"shock\.DOGE"):
        shocked_prices(tables, {"DOGE": -0.1})


@st.composite
def long_books(draw: st.DrawFn) -> Any:
    """Accounts long ETH spot, borrowing USDC, each at its own leverage (a monotone book)."""
    n = draw(st.integers(1, 12))
    leverage = draw(st.lists(st.floats(0.0, 0.85), min_size=n, max_size=n))
    return _book(
        [
            {"id": f"a{i}", "balances": {"ETH": 1.0, "USDC": -2000.0 * lev}}
            for i, lev in enumerate(leverage)
        ]
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(book=long_books(), a=st.floats(0.0, 0.6), b=st.floats(0.0, 0.6))
def test_a_larger_shock_never_liquidates_fewer_accounts(book: Any, a: float, b: float) -> None:
    small, large = sorted((a, b))
    tables, arrays = _compiled(book)
    config = CascadeConfig(sigma_daily={"ETH": 0.05}, daily_volume_usd={"ETH": 1e5})
    low = run_cascade(tables, arrays, shocked_prices(tables, {"ETH": -small}), config)
    high = run_cascade(tables, arrays, shocked_prices(tables, {"ETH": -large}), config)
    assert high.liquidated_accounts >= low.liquidated_accounts
    assert high.bad_debt_usd >= low.bad_debt_usd - 1e-9
    for result in (low, high):
        assert result.bad_debt_usd >= 0.0
        assert all(r.insurance_fund_usd >= 0.0 for r in result.rounds)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), shock=st.floats(0.05, 0.5))
def test_generated_cascades_end_with_no_liquidatable_account(seed: int, shock: float) -> None:
    generated = generate_book(200, seed=seed)
    result = run_cascade(
        generated.tables,
        generated.to_arrays(),
        shocked_prices(generated.tables, {"ETH": -shock, "BTC": -shock / 2}),
    )
    assert result.converged
    assert result.rounds[-1].liquidatable_groups == 0
    assert result.bad_debt_usd >= 0.0
