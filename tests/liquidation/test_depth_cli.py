"""The book's depth: section: liquidation executes against it and ADL is reachable from the
CLI; ``--bankruptcy adl`` never silently falls back (issue #15, item 4)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from crossmargin.book.io import book_from_data
from crossmargin.cli import app
from crossmargin.errors import InputError
from crossmargin.liquidation import LiquidationConfig, LiquidationEngine
from crossmargin.liquidation.execution import DepthExecution, execution_from_book
from tests.helpers import asset

runner = CliRunner()


def _data(depth: dict[str, Any] | None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "assets": {"USDC": asset(1.0), "X": asset(100.0)},
        "markets": {
            "X-PERP": {
                "kind": "perp",
                "underlying": "X",
                "settle_asset": "USDC",
                "initial_margin_frac": 0.1,
                "maint_margin_frac": 0.05,
            }
        },
        "accounts": [
            {
                "id": "levered",
                "balances": {"USDC": 1000.0},
                "positions": [{"market": "X-PERP", "qty": 100.0, "entry_price": 100.0}],
            },
            {
                "id": "shorty",
                "balances": {"USDC": 10_000.0},
                "positions": [{"market": "X-PERP", "qty": -50.0, "entry_price": 100.0}],
            },
        ],
    }
    if depth is not None:
        data["depth"] = depth
    return data


DEPTH = {"X-PERP": {"kind": "book", "bids": [[0.01, 10.0]], "asks": [[0.01, 10.0]]}}


def _write(tmp_path: Path, depth: dict[str, Any] | None) -> Path:
    path = tmp_path / "book.yaml"
    path.write_text(yaml.safe_dump(_data(depth)))
    return path


def test_depth_section_builds_the_execution_model() -> None:
    book = book_from_data(_data(DEPTH))
    model = execution_from_book(book)
    assert isinstance(model, DepthExecution) and set(model.books) == {"X-PERP"}
    with pytest.raises(InputError, match=r"depth\.NOPE"):
        book_from_data(_data({"NOPE": DEPTH["X-PERP"]}))
    with pytest.raises(InputError, match="best first"):
        book_from_data(_data({"X-PERP": {"kind": "book", "bids": [[0.02, 1], [0.01, 1]]}}))


def test_adl_from_the_cli(tmp_path: Path) -> None:
    """-20 %: 'levered' is 1,000 short of zero; 10 sell into the book at 1 % below, the rest
    is deleveraged against 'shorty' (50 short in profit) and 40 closed at the mark."""
    path = _write(tmp_path, DEPTH)
    out = runner.invoke(
        app, ["liquidate", str(path), "--shock", "X=-20%", "--bankruptcy", "adl", "--json"]
    )
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    kinds = [e["kind"] for e in data["events"]]
    assert "adl" in kinds and "unfilled" in kinds
    (unfilled,) = [e for e in data["events"] if e["kind"] == "unfilled"]
    assert "no opposite position in profit" in unfilled["reason"]
    assert data["flows"]["adl_usd"] != 0.0
    assert data["notes"] == []


def test_adl_without_depth_says_why(tmp_path: Path) -> None:
    path = _write(tmp_path, None)
    out = runner.invoke(app, ["liquidate", str(path), "--shock", "X=-20%", "--bankruptcy", "adl"])
    assert out.exit_code == 2
    assert out.output.count("\n") == 1 and "depth" in out.output
    # the dydx preset (ADL by default) runs, and its result says why ADL did not apply
    result = LiquidationEngine(
        book_from_data(_data(None)), LiquidationConfig.preset("dydx"), shocks={"X": -0.2}
    ).liquidate()
    assert result.notes and "cannot apply" in result.notes[0]
    assert "adl" not in [e.kind for e in result.events]
