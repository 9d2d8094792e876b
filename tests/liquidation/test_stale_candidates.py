"""A bankrupt group's candidates are listed once and executed rank by rank: a later rank must
not act on a row an earlier rank changed (issue 13, slow suite, hypothesis seed 4)."""

from __future__ import annotations

import numpy as np
import pytest

from crossmargin.book.io import book_from_data
from crossmargin.liquidation import (
    DepthExecution,
    FeeSchedule,
    LiquidationConfig,
    LiquidationEngine,
    OracleTransfer,
    RelativeBook,
)
from crossmargin.margin import evaluate_arrays
from tests.helpers import asset


def _book() -> object:
    """acct2 owes 7 BTC against 20 ETH and is long a perp settled in ETH with 123 ETH of unpaid
    funding: closing the perp realizes the funding into the ETH row - the collateral of the
    (BTC debt, ETH) pair ranked after it - and turns it into a debt."""
    return book_from_data(
        {
            "as_of": "2026-01-01T00:00:00Z",
            "assets": {
                "USDC": asset(1.0, 0.0, 0.0, 1.0, 1.0),
                "BTC": asset(46_550.0, 0.0, 0.0, 1.0, 1.0),
                "ETH": asset(17_217.5, 0.0, 0.0, 2.0, 2.0),
            },
            "markets": {
                "M0": {
                    "kind": "perp",
                    "underlying": "USDC",
                    "settle_asset": "ETH",
                    "initial_margin_frac": 0.25,
                    "maint_margin_frac": 0.25,
                    "init_pnl_weight": 0.0,
                    "maint_pnl_weight": 0.0,
                }
            },
            "accounts": [
                {"id": "acct0", "balances": {"USDC": 0.5, "BTC": -1.0}},
                {"id": "acct1"},
                {
                    "id": "acct2",
                    "balances": {"USDC": 0.0, "BTC": -7.0, "ETH": 20.0},
                    "positions": [
                        {
                            "market": "M0",
                            "qty": 1.0,
                            "entry_price": 0.0,
                            "unrealized_funding": 123.0,
                        }
                    ],
                },
            ],
        }
    )


@pytest.mark.parametrize("depth", [True, False])
def test_no_negative_sale_after_a_loss_realized_into_the_collateral(depth: bool) -> None:
    """Filling against depth, the old engine sold -122.7 ETH (bought it with new BTC debt) for the
    stale pair: negative insurance fees took the fund from 0 to -34,596 USD after it had paid
    out 5,134 USD. The fund's payout may not overdraw it by rounding either."""
    book = _book()
    level = RelativeBook(
        np.array([0.005, 0.02, 0.1]),
        np.array([5.0, 20.0, 100.0]),
        np.array([0.005, 0.02, 0.1]),
        np.array([5.0, 20.0, 100.0]),
    )
    execution = (
        DepthExecution(books={s: level for s in ["USDC", "BTC", "ETH", "M0"]})
        if depth
        else OracleTransfer()
    )
    config = LiquidationConfig(
        fees=FeeSchedule(liquidator_frac=0.0, insurance_frac=0.015625), bankruptcy="socialize"
    )
    result = LiquidationEngine(book, config, execution).liquidate()  # type: ignore[arg-type]
    flows = result.flows
    assert flows.insurance_fees_usd >= 0.0
    assert flows.insurance_fund_usd >= 0.0
    for event in result.events:
        if event.kind == "repay":
            assert event.qty >= 0.0, event
    equity_before = evaluate_arrays(result.tables, result.start).equity.sum()
    equity_after = evaluate_arrays(result.tables, result.final).equity.sum()
    moved = (
        flows.liquidator_usd
        + flows.insurance_fees_usd
        - flows.insurance_paid_usd
        + flows.makers_usd
        - flows.socialized_external_usd
    )
    assert equity_after + moved == pytest.approx(equity_before, abs=1e-8 * abs(equity_before))
