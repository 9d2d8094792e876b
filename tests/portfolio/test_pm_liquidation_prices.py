"""Liquidation prices of portfolio-margin accounts, and the table's direction labels for
accounts that are liquidatable now (issue #15, item 5)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from crossmargin.book.io import load_book
from crossmargin.margin.engine import MarginEngine
from crossmargin.report import liquidation_table

DEMO = Path(__file__).parents[2] / "src" / "crossmargin" / "examples" / "demo_book.yaml"


def test_portfolio_account_has_liquidation_prices_where_mm_margin_is_zero() -> None:
    book = load_book(DEMO)
    engine = MarginEngine(book)
    (report,) = engine.margin([book.account("options-desk")])
    assert report.mode == "portfolio" and report.liquidation_prices
    checked = 0
    for symbol, lp in report.liquidation_prices.items():
        for crossing in (lp.below_usd, lp.above_usd):
            if crossing is None:
                continue
            prices = engine.tables.price_usd.copy()
            prices[engine.tables.asset_id(symbol)] = crossing
            margin = engine.portfolio_result(book.account("options-desk"), prices).maint
            assert margin.margin_usd == pytest.approx(0.0, abs=1e-6 * margin.requirement_usd)
            checked += 1
    assert checked >= 1


def test_underwater_account_labels_point_the_right_way() -> None:
    """sol-degen is liquidatable at SOL 142.50 and healthy above 144.26: the table says
    'liq. below 144.26' (it said 'liq. above' before)."""
    book = load_book(DEMO)
    (report,) = MarginEngine(book).margin([book.account("sol-degen")])
    assert report.liquidatable
    sol = report.liquidation_prices["SOL"]
    assert sol.below_usd is None and sol.above_usd is not None  # the crossing is above
    console = Console(width=200, record=True)
    console.print(liquidation_table([report]))
    (row,) = [line for line in console.export_text().splitlines() if " SOL " in line]
    cells = [c.strip() for c in row.split("│")]
    assert cells[4] == f"{sol.above_usd:,.2f}"  # the 'liq. below $' column
    assert cells[5] == "-"
    assert cells[6].startswith("now")
