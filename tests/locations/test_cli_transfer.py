"""The command line with located collateral: transfer, margin and liquidate."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from crossmargin.cli import app

from .conftest import book_data

runner = CliRunner()


@pytest.fixture
def book_file(tmp_path: Path) -> Path:
    data = book_data(transfer_cost_usd=10.0)
    path = tmp_path / "book.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_transfer_shows_health_before_in_flight_and_after(book_file: Path) -> None:
    args = ["transfer", str(book_file), "--account", "alice", "--asset", "ETH", "--qty", "5"]
    result = runner.invoke(app, [*args, "--from", "arbitrum", "--to", "home"])
    assert result.exit_code == 0, result.output
    for text in ("before", "in flight", "after finality", "liquidatable", "600"):
        assert text in result.output
    data = json.loads(
        runner.invoke(app, [*args, "--from", "arbitrum", "--to", "home", "--json"]).output
    )
    before, during, after = data["stages"]
    assert during["maint_health_usd"] < 0 < before["maint_health_usd"] < after["maint_health_usd"]
    assert after["equity_usd"] == pytest.approx(before["equity_usd"] - data["cost_usd"])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--from", "solana", "--to", "home"], "--from: unknown location"),
        (["--from", "arbitrum", "--to", "arbitrum"], "--to: same as --from"),
    ],
)
def test_transfer_bad_input_is_one_line(book_file: Path, extra, message: str) -> None:
    args = ["transfer", str(book_file), "--account", "alice", "--asset", "ETH", "--qty", "5"]
    result = runner.invoke(app, [*args, *extra])
    assert result.exit_code == 2
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_margin_reads_located_balances(book_file: Path) -> None:
    result = runner.invoke(app, ["margin", str(book_file), "--json", "--price", "ETH=2500"])
    assert result.exit_code == 0, result.output
    account = json.loads(result.output)["accounts"][0]
    # 10 ETH at arbitrum (5 % bridge haircut) at 2,500, 20,000 USDC borrowed
    assert account["maint"]["health_usd"] == pytest.approx(10 * 2500 * 0.9 * 0.95 - 20000)
    assert account["equity_usd"] == pytest.approx(10 * 2500 - 20000)


def test_liquidate_strands_a_halted_bridge(tmp_path: Path) -> None:
    data = book_data(state="halted")
    data["accounts"][0]["balances"]["ETH"] = [{"qty": 5, "location": "arbitrum"}, {"qty": 5}]
    path = tmp_path / "halted.yaml"
    path.write_text(yaml.safe_dump(data))
    result = runner.invoke(app, ["liquidate", str(path), "--json", "--shock", "ETH=-10%"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    sold = {e["paid_with"] for e in out["events"] if e["kind"] == "repay"}
    assert sold == {"ETH"}  # the local lot only: the halted one is stranded
    account = out["accounts"][0]
    # the stranded 5 ETH (at 2,700) are still the owner's equity
    assert account["equity_after_usd"] > 5 * 2700 - 20000 + 5 * 2700 * 0.9


texts = st.one_of(
    st.sampled_from(["home", "arbitrum", "solana", "", " ", "[red]x[/red]", "\x00", "a" * 500]),
    st.text(max_size=20),
)
numbers = st.one_of(
    st.sampled_from(["nan", "inf", "-inf", "0", "-1", "1e308", "5", "10", "1e-300"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(account=texts, asset=texts, qty=numbers, source=texts, destination=texts)
def test_transfer_survives_hostile_input(
    book_file: Path, account: str, asset: str, qty: str, source: str, destination: str
) -> None:
    """Any option values (numbers click parses): success, or exit 2 with one line; never a
    traceback, inf or NaN."""
    args = ["transfer", str(book_file), "--account", account, "--asset", asset, "--qty", qty]
    result = runner.invoke(app, [*args, "--from", source, "--to", destination, "--json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    if result.exit_code == 0:
        data = json.loads(result.output)
        for stage in data["stages"]:
            assert all(math.isfinite(v) for v in stage.values() if isinstance(v, float))
    else:
        assert result.exit_code == 2, result.output
        assert len(result.output.strip().splitlines()) <= 1


def test_margin_liquidation_price_moves_every_lot(tmp_path: Path) -> None:
    """5 ETH at home and 5 at arbitrum (5 % bridge haircut), 20,000 USDC borrowed: maint
    health 0 when 5 P 0.9 + 5 P 0.9 0.95 = 20,000, all lots at the same price P."""
    data = book_data()
    data["accounts"][0]["balances"]["ETH"] = [{"qty": 5}, {"qty": 5, "location": "arbitrum"}]
    path = tmp_path / "book.yaml"
    path.write_text(yaml.safe_dump(data))
    result = runner.invoke(app, ["margin", str(path), "--json"])
    assert result.exit_code == 0, result.output
    prices = json.loads(result.output)["accounts"][0]["liquidation_prices"]
    assert "ETH@arbitrum" not in prices  # the located symbol is not reported on its own
    assert prices["ETH"]["below_usd"] == pytest.approx(20000 / (5 * 0.9 + 5 * 0.9 * 0.95), rel=1e-9)
    shocked = runner.invoke(app, ["margin", str(path), "--json", "--price", "ETH=2500"])
    moved = json.loads(shocked.output)["accounts"][0]["liquidation_prices"]["ETH"]
    assert moved["below_usd"] == pytest.approx(prices["ETH"]["below_usd"], rel=1e-9)
    assert moved["price_usd"] == 2500


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (
            {"accounts": [{"id": "a", "balances": {"ETH": {"qty": 1, "location": "solana"}}}]},
            "accounts[0].balances.ETH.location: unknown location",
        ),
        (
            {
                "pools": {
                    "p": {"kind": "constant_product", "base": "ETH", "base_qty": -1}
                    | {"quote_qty": 1}
                }
            },
            "pools.p.constant_product.base_qty: reserves must be > 0",
        ),
        (
            {
                "pools": {
                    "p": {"kind": "concentrated", "base": "ETH", "price": 3000}
                    | {"ticks": [60, 0], "liquidity_net": [1, -1]}
                }
            },
            "pools.p.concentrated.ticks[1]: out of order",
        ),
    ],
)
def test_bad_book_is_exit_2_one_line(tmp_path: Path, patch, message: str) -> None:
    data = book_data() | patch
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    for command in ("margin", "liquidate"):
        result = runner.invoke(app, [command, str(path)])
        assert result.exit_code == 2
        assert message in result.output
        assert len(result.output.strip().splitlines()) == 1
