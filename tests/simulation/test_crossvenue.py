"""Cross-venue simulations: a bridge halting mid-crash, and AMMs vs an order book.

Checks are invariants and outside-referenced identities, not figures copied from a run: the
engine's value conservation (liquidation/engine.py: equity + liquidator + insurance fund +
makers - socialized is unchanged), a halted bridge strands collateral and can only add bad
debt, and venues of equal depth at the mid agree for small sales (a Uniswap v3 range is the
constant-product curve of the same L inside it: whitepaper section 2, 'virtual reserves').
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from crossmargin.amm.execution import AmmExecution
from crossmargin.liquidation import LiquidationConfig, LiquidationEngine
from crossmargin.margin.engine import MarginEngine
from crossmargin.simulation.crossvenue import (
    equal_capital_venues,
    equal_depth_venues,
    generate_located_book,
    run_amm_vs_book,
    run_bridge_halt,
    slippage_table,
)
from crossmargin.simulation.crossvenue_report import halt_rows, venue_rows

N = 60


@pytest.fixture(scope="module")
def halt():
    return run_bridge_halt(N, seed=3)


def test_halt_strands_collateral_only_while_halted(halt) -> None:
    for step in halt.cross_chain:
        assert (step.stranded_usd > 0.0) == step.halted
        if step.halted:
            assert step.eth_sold >= 0.0
    assert all(s.stranded_usd == 0.0 and not s.halted for s in halt.one_chain)


def test_halt_never_lowers_bad_debt(halt) -> None:
    """The same quantities on one chain end with no more bad debt than with the halt."""
    assert halt.cross_chain[-1].bad_debt_usd >= halt.one_chain[-1].bad_debt_usd
    assert halt.cross_chain[-1].bad_debt_usd > 0.0
    debts = [s.bad_debt_usd for s in halt.cross_chain]
    assert debts == sorted(debts)  # cumulative


def test_halt_is_deterministic(halt) -> None:
    again = run_bridge_halt(N, seed=3)
    assert again.to_dict() == halt.to_dict()
    assert len(halt_rows(halt)["cross-chain"]) == len(halt.cross_chain)


def test_equal_depth_venues_agree_for_small_sales() -> None:
    venues = equal_depth_venues(3000.0, 2e5, 0.15)
    rows = {r["venue"]: r for r in slippage_table(venues, [10.0])}
    cp, v3, book = (
        rows[k]["average_usd"] for k in ("constant product", "concentrated", "order book")
    )
    assert v3 == pytest.approx(cp, rel=1e-12)  # one range = the CP curve of the same L
    # the book charges no fee: within the fee plus the curvature of 10 ETH
    assert book == pytest.approx(cp / (1 - 0.003), rel=2e-3)


def test_equal_capital_concentration_cuts_slippage() -> None:
    rows = slippage_table(equal_capital_venues(3000.0, 2e5, 0.15), [1000.0])
    slip = {r["venue"]: r["slippage_frac"] for r in rows}
    assert slip["concentrated"] < slip["constant product"] / 5


def _total_equity(book, price: float) -> float:
    result = MarginEngine(book).evaluate(prices={"ETH": price})
    return float(np.sum(result.equity))


def test_one_round_into_a_pool_conserves_value() -> None:
    """A round of the AMM simulation: what the accounts lost is what the liquidators, the
    insurance fund and the pool (makers) gained, less what was socialized."""
    book = generate_located_book(N, seed=3, one_chain=True)
    venue = equal_depth_venues(3000.0, 2e5, 0.15)["constant product"]
    price = 2400.0
    venue = venue.with_price(price)
    config = LiquidationConfig.preset("generic", insurance_fund_usd=1e6)
    result = LiquidationEngine(
        book, config, AmmExecution({"ETH": venue}), prices={"ETH": price}
    ).liquidate()
    assert result.book_after is not None
    lost = _total_equity(book, price) - _total_equity(result.book_after, price)
    flows = result.flows
    gained = (
        flows.liquidator_usd
        + (flows.insurance_fund_usd - 1e6)
        + flows.makers_usd
        - flows.socialized_usd
    )
    assert lost > 0.0
    assert lost == pytest.approx(gained, rel=1e-9)


def test_amm_vs_book_runs_and_reports() -> None:
    result = run_amm_vs_book(N, seed=3, rounds=6)
    assert set(result.rounds) == {"constant product", "concentrated", "order book"}
    for rows in result.rounds.values():
        assert len(rows) == 6
        assert all(math.isfinite(r.venue_usd) and r.venue_usd > 0 for r in rows)
    assert len(venue_rows(result)) == 3


def test_crossvenue_command_tables_json_and_html(tmp_path) -> None:
    import json

    from typer.testing import CliRunner

    from crossmargin.cli import app

    runner = CliRunner()
    html = tmp_path / "cv.html"
    result = runner.invoke(app, ["crossvenue", "--accounts", "30", "--html", str(html)])
    assert result.exit_code == 0, result.output
    for text in ("Bridge halt mid-crash", "cross-chain", "one chain", "equal capital", "Slippage"):
        assert text in result.output
    page = html.read_text()
    assert page.count("<img") >= 3 and "stranded" in page
    data = json.loads(runner.invoke(app, ["crossvenue", "--accounts", "30", "--json"]).output)
    assert set(data) == {"bridge_halt", "venues", "slippage"}
    bad = runner.invoke(app, ["crossvenue", "--accounts", "0"])
    assert bad.exit_code == 2 and "--accounts" in bad.output
