"""Stress scenarios: the library, measured shocks, hand-checked re-margining, user files."""

from __future__ import annotations

from pathlib import Path

import pytest

import crossmargin as cm
from crossmargin.book import book_from_data
from crossmargin.errors import InputError, UnknownNameError
from crossmargin.risk import builtin_scenarios, load_scenarios, run_stress
from tests.helpers import SHARED, asset

BOOK = {
    "assets": {
        "USDC": asset(1.0),
        "ETH": asset(2000.0, 0.8, 0.9, 1.2, 1.1),
        "wstETH": asset(2400.0, 0.7, 0.8, 1.3, 1.2),
        "SOL": asset(150.0, 0.6, 0.7, 1.4, 1.3),
    },
    "markets": {
        "ETH-PERP": {
            "kind": "perp",
            "underlying": "ETH",
            "settle_asset": "USDC",
            "initial_margin_frac": 0.1,
            "maint_margin_frac": 0.05,
        }
    },
    "accounts": [
        {
            "id": "hedged",
            "balances": {"ETH": 10.0, "USDC": 1000.0},
            "positions": [{"market": "ETH-PERP", "qty": -10.0, "entry_price": 2000.0}],
        },
        {"id": "levered", "balances": {"wstETH": 10.0, "SOL": 100.0, "USDC": -19000.0}},
    ],
}


def test_library_loads_with_sources() -> None:
    library = builtin_scenarios()
    assert {
        "black-thursday-2020",
        "may-2021-crash",
        "terra-may-2022",
        "ftx-nov-2022",
        "oct-10-2025",
    } <= set(library.scenarios)
    for name, scenario in library.scenarios.items():
        assert scenario.source, name
        assert all(-1.0 < s <= 1.0 for s in scenario.shocks.values()), name


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is absent")
def test_measured_scenarios_match_the_shared_data() -> None:
    """Every `measured` scenario is the day's low against the previous close in the data."""
    from crossmargin.market.loaders import load_bitstamp_daily

    data = load_bitstamp_daily(SHARED / "bitstamp_btc_eth_ltc_usd_daily.csv")
    measured = {n: s for n, s in builtin_scenarios().scenarios.items() if s.measured}
    assert len(measured) >= 3
    for name, scenario in measured.items():
        assert scenario.date is not None
        day = scenario.date.isoformat()
        for symbol, shock in scenario.shocks.items():
            frame = data[symbol]
            expected = frame["low"].loc[day] / frame["close"].shift(1).loc[day] - 1.0
            assert shock == pytest.approx(float(expected), abs=5e-5), (name, symbol)


def test_stress_by_hand_with_aliases_and_stables() -> None:
    """FTX scenario: ETH -24.4 %, wstETH follows ETH (alias), SOL -61.6 %, USDC 0."""
    book = book_from_data(BOOK)
    (result,) = run_stress(book, builtin_scenarios(), ["ftx-nov-2022"])
    assert result.prices_usd["ETH"] == pytest.approx(2000 * 0.756)
    assert result.prices_usd["wstETH"] == pytest.approx(2400 * 0.756)
    assert result.prices_usd["SOL"] == pytest.approx(150 * 0.384)
    assert result.prices_usd["USDC"] == 1.0
    hedged, levered = result.accounts
    eth = 2000 * 0.756
    # spot ETH loses what the short perp gains; margin shrinks with the notional
    assert hedged.maint.health_usd == pytest.approx(
        10 * eth * 0.9 + 1000 + 10 * (2000 - eth) - 10 * eth * 0.05
    )
    assert levered.maint.health_usd == pytest.approx(
        10 * 2400 * 0.756 * 0.8 + 100 * 150 * 0.384 * 0.7 - 19000
    )
    assert levered.liquidatable and not hedged.liquidatable


def test_extra_shocks_and_user_scenarios(tmp_path: Path) -> None:
    book = book_from_data(BOOK)
    (result,) = run_stress(book, builtin_scenarios(), ["ftx-nov-2022"], {"USDC": -0.1})
    assert result.prices_usd["USDC"] == pytest.approx(0.9)
    extra = tmp_path / "mine.yaml"
    extra.write_text(
        "scenarios:\n  sol-halving:\n    description: mine\n    source: assumption\n"
        "    shocks: {SOL: -0.5}\n"
    )
    library = load_scenarios(extra)
    assert "sol-halving" in library.scenarios and "ftx-nov-2022" in library.scenarios
    (mine,) = run_stress(book, library, ["sol-halving"])
    assert mine.prices_usd["SOL"] == 75.0 and mine.prices_usd["ETH"] == 2000.0


def test_bad_scenario_input(tmp_path: Path) -> None:
    book = book_from_data(BOOK)
    with pytest.raises(UnknownNameError, match="scenario: unknown"):
        run_stress(book, builtin_scenarios(), ["no-such-day"])
    with pytest.raises(UnknownNameError, match="DOGE"):
        run_stress(book, builtin_scenarios(), None, {"DOGE": -0.5})
    with pytest.raises(InputError, match="100 %"):
        run_stress(book, builtin_scenarios(), None, {"ETH": -1.0})
    bad = tmp_path / "bad.yaml"
    bad.write_text("scenarios:\n  x:\n    default_shock: -2\n")
    with pytest.raises(InputError, match=r"scenarios\.x\.default_shock"):
        load_scenarios(bad)
    with pytest.raises(InputError, match="no such file"):
        load_scenarios(tmp_path / "missing.yaml")


def test_stress_cli(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from crossmargin.cli import app

    path = tmp_path / "book.json"
    path.write_text(json.dumps(BOOK))
    runner = CliRunner()
    result = runner.invoke(app, ["stress", str(path), "--json", "--scenario", "oct-10-2025"])
    assert result.exit_code == 0, result.output
    (scenario,) = json.loads(result.output)["scenarios"]
    assert scenario["scenario"] == "oct-10-2025"
    assert {a["account_id"] for a in scenario["accounts"]} == {"hedged", "levered"}
    table = runner.invoke(app, ["stress", str(path), "--shock", "ETH=-30%"])
    assert table.exit_code == 0 and "black-thursday-2020" in table.output
    assert cm.margin(book_from_data(BOOK))[0].maint.health_usd > 0


def test_extra_shock_compounds_with_the_scenario() -> None:
    """--shock ETH=-10% on ftx-nov-2022 compounds on the price: (1 + s)(1 + x) - 1; the assets
    the user did not shock keep the scenario's move (issue #18 item 2)."""
    from crossmargin.book.io import load_demo_book

    book = load_demo_book()
    library = builtin_scenarios()
    (plain_run,) = run_stress(book, library, ["ftx-nov-2022"])
    (shocked,) = run_stress(book, library, ["ftx-nov-2022"], {"ETH": -0.10})
    eth = book.assets["ETH"].price
    scenario_move = plain_run.prices_usd["ETH"] / eth - 1.0
    assert scenario_move < -0.2  # the scenario moves ETH itself
    assert shocked.prices_usd["ETH"] == pytest.approx(eth * (1 + scenario_move) * 0.9, rel=1e-12)
    assert shocked.prices_usd["wstETH"] == plain_run.prices_usd["wstETH"]
    move = shocked.extra_shocks["ETH"]
    assert move.total_frac == pytest.approx((1 + scenario_move) * 0.9 - 1, rel=1e-12)
    assert shocked.to_dict()["extra_shocks"]["ETH"]["shock_frac"] == -0.10


def test_stress_names_the_failing_isolated_bucket() -> None:
    from crossmargin.book.io import load_demo_book
    from crossmargin.risk.stress import failing_buckets

    book = load_demo_book()
    (result,) = run_stress(book, builtin_scenarios(), ["ftx-nov-2022"], {"ETH": -0.10})
    iso = next(a for a in result.accounts if a.account_id == "iso-trader")
    failing = failing_buckets(iso)
    assert failing and all(b.maint.health_usd < 0 for b in iso.buckets if b.name in failing)
    row = next(r for r in result.to_dict()["accounts"] if r["account_id"] == "iso-trader")
    assert row["liquidatable_buckets"] == failing
