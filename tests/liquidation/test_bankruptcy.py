"""Bankruptcy rules (crossmargin.liquidation.bankruptcy), each against its venue.

* Drift v2 ``math/liquidation/tests.rs::calculate_funding_rate_deltas_to_resolve_bankruptcy``
  (anchors.md DV-6): a loss of $100 on a market with 7 base long and 4 base short -> a
  cumulative funding delta of 9090910000 (1e-9 per base per 1e-6 quote: 100 / 11 = 9.0909 USD
  per base), paid by longs and shorts alike.
* A loss left in a closed (zero-size) position is settled and resolved, not left on the
  account (Drift ``settle_pnl`` before ``resolve_perp_bankruptcy``).
"""

from __future__ import annotations

from typing import Any

import pytest

from crossmargin.book.io import book_from_data
from crossmargin.liquidation import LiquidationConfig, LiquidationEngine
from crossmargin.liquidation.engine import replay_journal
from tests.helpers import asset


def _book() -> Any:
    """'broke': a closed X-PERP position still owing 150 USDC of PnL, 50 USDC: equity -100.
    'long' 7 X-PERP and 'short' -4 X-PERP, rich; 'saver' a USDC depositor."""
    perp = {
        "kind": "perp",
        "underlying": "X",
        "settle_asset": "USDC",
        "initial_margin_frac": 0.1,
        "maint_margin_frac": 0.05,
    }
    return book_from_data(
        {
            "assets": {"USDC": asset(1.0), "X": asset(100.0)},
            "markets": {"X-PERP": perp},
            "accounts": [
                {
                    "id": "broke",
                    "balances": {"USDC": 50.0},
                    "positions": [
                        {
                            "market": "X-PERP",
                            "qty": 0.0,
                            "entry_price": 100.0,
                            "unrealized_funding": 150.0,
                        }
                    ],
                },
                {
                    "id": "long",
                    "balances": {"USDC": 10_000.0},
                    "positions": [{"market": "X-PERP", "qty": 7.0, "entry_price": 100.0}],
                },
                {
                    "id": "short",
                    "balances": {"USDC": 10_000.0},
                    "positions": [{"market": "X-PERP", "qty": -4.0, "entry_price": 100.0}],
                },
                {"id": "saver", "balances": {"USDC": 1_000.0}},
            ],
        }
    )


def _equity(result: Any) -> dict[str, float]:
    return {o.account: o.equity_after_usd for o in result.outcomes}


def test_drift_perp_bankruptcy_over_open_interest() -> None:
    """DV-6: $100 over 7 long + 4 short = 100/11 USD per base, from both sides."""
    book = _book()
    result = LiquidationEngine(book, LiquidationConfig.preset("drift")).liquidate()
    equity = _equity(result)
    assert equity["broke"] == pytest.approx(0.0, abs=1e-9)
    per_base = 100.0 / 11.0
    assert per_base * 1e9 == pytest.approx(9090910000, rel=1e-6)  # Drift's integer
    assert equity["long"] == pytest.approx(10_000.0 - 7 * per_base, rel=1e-12)
    assert equity["short"] == pytest.approx(10_000.0 - 4 * per_base, rel=1e-12)
    assert equity["saver"] == 1_000.0  # depositors untouched
    kinds = [e.kind for e in result.events]
    assert kinds[0] == "settle" and "haircut" in kinds
    (haircut,) = [e for e in result.events if e.kind == "haircut"]
    assert haircut.account == "(open interest)" and haircut.socialized_usd == pytest.approx(100)
    assert result.flows.socialized_usd == pytest.approx(100.0)
    # value conserved: the open interest's loss is the bankrupt account's gain
    before = sum(o.equity_before_usd for o in result.outcomes)
    assert sum(equity.values()) == pytest.approx(before, rel=1e-12)
    assert result.flows.socialized_external_usd == 0.0
    assert replay_journal(book, result.events) == result.book_after


def test_closed_position_loss_to_depositors_is_resolved() -> None:
    """The generic policy: the same loss is settled and haircut from the USDC depositors."""
    book = _book()
    result = LiquidationEngine(book, LiquidationConfig.preset("generic")).liquidate()
    equity = _equity(result)
    assert equity["broke"] == pytest.approx(0.0, abs=1e-9)
    depositors = 10_000 + 10_000 + 1_000
    assert equity["saver"] == pytest.approx(1_000.0 * (1 - 100.0 / depositors), rel=1e-12)
    assert result.outcomes[0].status == "bankrupt"
    assert replay_journal(book, result.events) == result.book_after


def test_insurance_fund_pays_first() -> None:
    book = _book()
    config = LiquidationConfig.preset("drift", insurance_fund_usd=60.0)
    result = LiquidationEngine(book, config).liquidate()
    equity = _equity(result)
    assert result.flows.insurance_paid_usd == pytest.approx(60.0)
    assert equity["long"] == pytest.approx(10_000.0 - 7 * 40.0 / 11.0, rel=1e-12)


def test_drift_spot_bankruptcy_deposit_interest_delta() -> None:
    """calculate_cumulative_deposit_interest_delta_to_resolve_bankruptcy (DV-6): a borrow of
    $11 left over 120 of deposits (cumulative interest 1e10) -> delta 916666667, a haircut of
    11 / 120 on every deposit."""
    book = book_from_data(
        {
            "assets": {"USDC": asset(1.0)},
            "accounts": [
                {"id": "broke", "balances": {"USDC": -11.0}},
                {"id": "d1", "balances": {"USDC": 100.0}},
                {"id": "d2", "balances": {"USDC": 20.0}},
            ],
        }
    )
    result = LiquidationEngine(book, LiquidationConfig.preset("drift")).liquidate()
    after = {a.id: a.balances["USDC"] for a in result.book_after.accounts}
    assert after["broke"] == pytest.approx(0.0, abs=1e-12)
    haircut = 1.0 - after["d1"] / 100.0
    assert haircut * 1e10 == pytest.approx(916666667, abs=1.0)
    assert after["d2"] == pytest.approx(20.0 * (1 - 11 / 120), rel=1e-12)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=30, deadline=None)
@given(
    owed=st.floats(60.0, 5_000.0),
    fund=st.floats(0.0, 2_000.0),
    sizes=st.lists(st.floats(-50.0, 50.0).filter(lambda q: abs(q) > 1e-3), min_size=1, max_size=5),
)
def test_open_interest_socialization_conserves_value(
    owed: float, fund: float, sizes: list[float]
) -> None:
    """Any loss, fund and open interest: value is conserved, the bankrupt account ends at 0,
    and each position pays in proportion to |qty|."""
    data = _book().model_dump(mode="json")
    data["accounts"] = [data["accounts"][0]]
    data["accounts"][0]["positions"][0]["unrealized_funding"] = owed
    for i, q in enumerate(sizes):
        data["accounts"].append(
            {
                "id": f"p{i}",
                "balances": {"USDC": 1e6},
                "positions": [{"market": "X-PERP", "qty": q, "entry_price": 100.0}],
            }
        )
    book = book_from_data(data)
    config = LiquidationConfig.preset("drift", insurance_fund_usd=fund)
    result = LiquidationEngine(book, config).liquidate()
    flows = result.flows
    before = sum(o.equity_before_usd for o in result.outcomes) + fund
    after = sum(o.equity_after_usd for o in result.outcomes) + flows.insurance_fund_usd
    assert after - flows.socialized_external_usd == pytest.approx(before, rel=1e-12, abs=1e-6)
    assert result.outcomes[0].equity_after_usd == pytest.approx(0.0, abs=1e-6)
    loss = max(owed - 50.0 - fund, 0.0)
    charges = [1e6 - o.equity_after_usd for o in result.outcomes[1:]]
    total = sum(abs(q) for q in sizes)
    for q, charge in zip(sizes, charges, strict=True):
        assert charge == pytest.approx(loss * abs(q) / total, rel=1e-9, abs=1e-6)
