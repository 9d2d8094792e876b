"""Every command that reads a book credits remote collateral as ``margin`` does (or refuses it).

The book is the shipped example ``cross-venue.yaml`` (``crossmargin demo --write-examples``):
account ``bridger`` holds 10 ETH at arbitrum (bridge haircut 5 %), 2 ETH in flight from
arbitrum (not final: credited 0 under the default policy) and USDC -20,000. ``margin`` is the
reference: equity = 12 x P_ETH - 20,000, maint WA = 10 x P x 0.9 x 0.95 (docs/cross-venue.md).
Each test compares another command's figures for the bridger with ``margin --json`` at the
same prices - a command that dropped the remote lots would see equity -20,000.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from crossmargin.cli import app
from tests.helpers import lp_book_data

runner = CliRunner()
ETH_QTY = 12.0  # 10 at arbitrum + 2 in flight
BORROW_USD = 20_000.0


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("examples")
    result = runner.invoke(app, ["demo", "--write-examples", str(folder)])
    assert result.exit_code == 0, result.output
    return folder


@pytest.fixture(scope="module")
def book(examples: Path) -> Path:
    return examples / "cross-venue.yaml"


@pytest.fixture(scope="module")
def book_with_perp(examples: Path) -> Path:
    """The example with the bridger short 5 ETH-PERP (greeks and hedge need a position)."""
    data = yaml.safe_load((examples / "cross-venue.yaml").read_text())
    for account in data["accounts"]:
        if account["id"] == "bridger":
            account["positions"] = [{"market": "ETH-PERP", "qty": -5.0, "entry_price": 3000.0}]
    path = examples / "cross-venue-perp.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_json(*args: str) -> Any:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def margin_of(book: Path, *prices: str) -> dict[str, Any]:
    args = ["margin", str(book), "--account", "bridger"]
    for price in prices:
        args += ["--price", price]
    report: dict[str, Any] = run_json(*args)["accounts"][0]
    return report


def test_margin_reference_includes_the_remote_eth(book: Path) -> None:
    report = margin_of(book)
    assert report["equity_usd"] == pytest.approx(ETH_QTY * 3040.0 - BORROW_USD, rel=1e-12)
    # in flight credited 0 (policy none); the located lot at 0.9 x (1 - 5 %)
    assert report["maint"]["weighted_assets_usd"] == pytest.approx(10 * 3040 * 0.9 * 0.95)


def test_stress_equals_margin_under_the_same_prices(book: Path) -> None:
    data = run_json("stress", str(book), "--scenario", "ftx-nov-2022", "--shock", "ETH=-10%")
    scenario = data["scenarios"][0]
    prices = scenario["prices_usd"]
    # the located and in-flight ETH move with ETH: (1 - 24.4 %)(1 - 10 %)
    assert prices["ETH"] == pytest.approx(3040.0 * 0.756 * 0.9, rel=1e-12)
    assert prices["ETH@arbitrum"] == prices["ETH@arbitrum>home"] == prices["ETH"]
    bridger = next(a for a in scenario["accounts"] if a["account_id"] == "bridger")
    reference = margin_of(book, f"ETH={prices['ETH']!r}", f"USDC={prices['USDC']!r}")
    assert bridger["equity_usd"] == pytest.approx(reference["equity_usd"], rel=1e-12)
    assert bridger["maint_health_usd"] == pytest.approx(reference["maint"]["health_usd"], rel=1e-12)
    assert bridger["equity_usd"] == pytest.approx(ETH_QTY * prices["ETH"] - BORROW_USD)


def test_compare_counts_the_remote_collateral(book: Path) -> None:
    rows = run_json("compare", str(book))["accounts"]
    bridger = next(r for r in rows if r["account_id"] == "bridger")
    reference = margin_of(book)
    assert bridger["collateral_usd"] == pytest.approx(ETH_QTY * 3040.0)
    assert bridger["cross_required_usd"] == 0.0  # init health > 0 with the remote credit
    assert bridger["cross_requirement_usd"] == pytest.approx(
        bridger["collateral_usd"] - reference["init"]["weighted_assets_usd"], rel=1e-12
    )


def test_what_if_before_is_margin_and_the_price_reaches_remote_lots(book: Path) -> None:
    data = run_json(
        "what-if",
        str(book),
        "--account",
        "bridger",
        "--withdraw",
        "USDC=-1000",
        "--price",
        "ETH=2500",
    )
    now, moved = margin_of(book), margin_of(book, "ETH=2500")  # the move is part of the change
    assert data["allowed"] is True
    assert data["before"]["equity_usd"] == pytest.approx(now["equity_usd"], rel=1e-12)
    assert data["before"]["maint"]["health_usd"] == pytest.approx(
        now["maint"]["health_usd"], rel=1e-12
    )
    assert data["after"]["equity_usd"] == pytest.approx(moved["equity_usd"] + 1000.0)
    assert data["after"]["maint"]["health_usd"] == pytest.approx(
        moved["maint"]["health_usd"] + 1000.0
    )


def test_greeks_count_remote_eth_as_delta(book_with_perp: Path) -> None:
    data = run_json("greeks", str(book_with_perp), "--account", "bridger")
    eth = data["accounts"]["bridger"]["ETH"]
    assert eth["delta_qty"] == pytest.approx(ETH_QTY - 5.0, rel=1e-12)


def test_hedge_starts_from_margin_and_joint_liquidation_price(
    book_with_perp: Path, tmp_path: Path
) -> None:
    data = run_json("hedge", str(book_with_perp), "--account", "bridger")
    # the delta hedge sells the 12 ETH less the 5 short, wherever the ETH is
    home = run_json(
        "hedge", str(_home_equivalent(book_with_perp, tmp_path)), "--account", "bridger"
    )
    ((trade,),) = [data["accounts"][0]["delta_hedge"]["trades"]]
    ((reference_trade,),) = [home["accounts"][0]["delta_hedge"]["trades"]]
    assert trade["market"] == reference_trade["market"] == "ETH-PERP"
    assert trade["qty"] == pytest.approx(reference_trade["qty"], rel=1e-9)
    before = data["accounts"][0]["before"]
    reference = margin_of(book_with_perp)
    assert before["maint_health_usd"] == pytest.approx(reference["maint"]["health_usd"])
    # every ETH lot moves together: one ETH level, the one margin shows, no ETH@arbitrum entry
    assert set(before["liquidation_prices"]) == set(reference["liquidation_prices"])
    assert before["liquidation_prices"]["ETH"] == pytest.approx(
        reference["liquidation_prices"]["ETH"]["nearest_usd"], rel=1e-9
    )


def _home_equivalent(book: Path, folder: Path) -> Path:
    """The bridger with its 12 ETH at home: the same equity, every day."""
    data = yaml.safe_load(book.read_text())
    for account in data["accounts"]:
        if account["id"] == "bridger":
            account["balances"] = {"ETH": ETH_QTY, "USDC": -BORROW_USD}
            account.pop("in_flight")
    path = folder / "home.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_risk_revalues_remote_eth_with_eth_returns(book: Path, examples: Path) -> None:
    prices = str(examples / "prices.csv")
    args = ["--returns", prices, "--account", "bridger", "--paths", "500"]
    report = run_json("risk", str(book), *args)["accounts"][0]
    reference = margin_of(book)
    assert report["equity_usd"] == pytest.approx(reference["equity_usd"], rel=1e-12)
    assert report["maint_health_usd"] == pytest.approx(reference["maint"]["health_usd"])
    assert report["assets"]["ETH@arbitrum"].startswith("ETH")
    # equity is unweighted: the same 12 ETH at home have the same equity VaR / ES
    home = run_json("risk", str(_home_equivalent(book, examples)), *args)["accounts"][0]
    for ours, theirs in zip(report["figures"], home["figures"], strict=True):
        assert ours["method"] == theirs["method"]
        assert ours["equity_var_usd"] == pytest.approx(theirs["equity_var_usd"], rel=1e-9)
        assert ours["equity_es_usd"] == pytest.approx(theirs["equity_es_usd"], rel=1e-9)
    # its stress column is the stress command's
    stress = run_json("stress", str(book), "--scenario", "ftx-nov-2022")["scenarios"][0]
    bridger = next(a for a in stress["accounts"] if a["account_id"] == "bridger")
    assert report["stress_maint_health_usd"]["ftx-nov-2022"] == pytest.approx(
        bridger["maint_health_usd"], rel=1e-12
    )


def test_predict_baseline_uses_margin_health_and_joint_liquidation_price(book: Path) -> None:
    data = run_json("predict", str(book), "--account", "bridger", "--horizon", "1d")
    baseline = data["accounts"][0]["baseline"]
    reference = margin_of(book)
    assert baseline["maint_health_usd"] == pytest.approx(reference["maint"]["health_usd"])
    assert baseline["asset"] == "ETH" and baseline["direction"] == "down"
    assert baseline["liquidation_price_usd"] == pytest.approx(
        reference["liquidation_prices"]["ETH"]["below_usd"], rel=1e-9
    )
    # the located lots are ETH's factor: the same volatility
    sigma = data["market"]["sigma_daily"]
    assert sigma["ETH@arbitrum"] == sigma["ETH@arbitrum>home"] == sigma["ETH"]


def test_predict_monte_carlo_equals_the_home_book_when_weights_match(
    book: Path, examples: Path, tmp_path: Path
) -> None:
    """With a 0 haircut and the in-flight lot credited in full, the remote book's health is
    the home book's at every price: the Monte Carlo probabilities must agree exactly."""
    data = yaml.safe_load(book.read_text())
    data["locations"]["arbitrum"]["bridge_haircut_frac"] = 0.0
    data["in_flight_credit"] = {"mode": "discount", "discount_frac": 0.0}
    remote = tmp_path / "remote.yaml"
    remote.write_text(yaml.safe_dump(data, sort_keys=False))
    args = ["--account", "bridger", "--horizon", "7d", "--paths", "400", "--seed", "3"]
    ours = run_json("predict", str(remote), *args)["accounts"][0]
    theirs = run_json("predict", str(_home_equivalent(book, examples)), *args)["accounts"][0]
    assert ours["baseline"]["maint_health_usd"] == pytest.approx(
        theirs["baseline"]["maint_health_usd"], rel=1e-12
    )
    assert ours["baseline"]["liquidation_price_usd"] == pytest.approx(
        theirs["baseline"]["liquidation_price_usd"], rel=1e-9
    )
    assert 0.0 < theirs["monte_carlo"]["probability"] < 1.0
    assert ours["monte_carlo"]["probability"] == pytest.approx(
        theirs["monte_carlo"]["probability"], rel=1e-9
    )


def test_predict_with_a_learned_model_refuses_located_lots(book: Path, tmp_path: Path) -> None:
    from crossmargin.book.io import load_book
    from crossmargin.errors import NotSupportedError
    from crossmargin.predict.api import predict_book

    model = SimpleNamespace(kind="accounts", horizon={"days": 1.0})
    with pytest.raises(NotSupportedError, match="--model"):
        predict_book(load_book(book), model=model)


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["simulate", "{book}", "--shock", "ETH=-30%"], "crossmargin crossvenue"),
        (["calibrate", "{book}"], "crossmargin crossvenue"),
        (["serve", "{book}", "--duration", "1", "--db", "sqlite:///{db}"], "live service"),
    ],
)
def test_commands_that_cannot_credit_remote_lots_refuse_them(
    book: Path, tmp_path: Path, args: list[str], hint: str
) -> None:
    db = tmp_path / "service.db"
    filled = [a.format(book=book, db=db) for a in args]
    result = runner.invoke(app, filled)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert "accounts[7].balances.ETH" in lines[0] and hint in lines[0]
    assert not db.exists()  # refused before the service touched its database


def test_service_core_refuses_a_located_book(book: Path, tmp_path: Path) -> None:
    from crossmargin.book.io import load_book
    from crossmargin.errors import InputError
    from crossmargin.service import db
    from crossmargin.service.core import MarginCore

    engine = db.connect(f"sqlite:///{tmp_path / 'core.db'}")
    db.upgrade(engine)
    with pytest.raises(InputError, match=r"accounts\[7\]\.balances\.ETH"):
        MarginCore.initialize(engine, load_book(book))


def test_located_symbols_take_their_base_assets_shock_and_returns() -> None:
    import numpy as np

    from crossmargin.risk.returns import ReturnData, map_assets
    from crossmargin.risk.stress import builtin_scenarios

    library = builtin_scenarios()
    scenario = library.scenario("ftx-nov-2022")
    stable, aliases = frozenset(library.stablecoins), library.aliases
    for symbol in ("ETH@arbitrum", "ETH@arbitrum>home", "wstETH@base", "USDC@arbitrum"):
        base = symbol.split("@")[0]
        assert scenario.shock_for(symbol, stable, aliases) == scenario.shock_for(
            base, stable, aliases
        )
    import pandas as pd

    values = np.random.default_rng(1).normal(0.0, 0.03, (40, 2))
    dates = pd.date_range("2025-01-01", periods=40, tz="UTC")
    data = ReturnData(dates, ("BTC", "ETH"), values)
    mapping = map_assets(["ETH@arbitrum", "wstETH@base", "USDC@arbitrum", "BTC"], data)
    assert mapping.column == (1, 1, -1, 0)  # ETH, ETH via its alias, stable, BTC


def test_python_api_credits_remote_lots_and_the_raw_engine_refuses_them(book: Path) -> None:
    import crossmargin
    from crossmargin.book.io import load_book
    from crossmargin.errors import InputError
    from crossmargin.margin.engine import MarginEngine

    raw = load_book(book)
    reference = margin_of(book, "ETH=2500")
    (ours,) = [
        r for r in crossmargin.margin(raw, prices={"ETH": 2500.0}) if r.account_id == "bridger"
    ]
    assert ours.equity_usd == pytest.approx(reference["equity_usd"], rel=1e-12)
    assert ours.maint.health_usd == pytest.approx(reference["maint"]["health_usd"], rel=1e-12)
    assert ours.liquidation_prices["ETH"].below_usd == pytest.approx(
        reference["liquidation_prices"]["ETH"]["below_usd"], rel=1e-12
    )
    (row,) = [r for r in crossmargin.compare(raw) if r.account_id == "bridger"]
    assert row.collateral_usd == pytest.approx(ETH_QTY * 3040.0)
    change = crossmargin.what_if(raw, "bridger", prices={"ETH": 2500.0})
    assert change.after.equity_usd == pytest.approx(reference["equity_usd"], rel=1e-12)
    # the engine on the raw book would see no ETH: refused, naming the field
    with pytest.raises(InputError, match=r"accounts\[7\]\.remote_balances.*located_view"):
        MarginEngine(raw).margin()


def test_located_view_is_idempotent_with_lp_positions() -> None:
    from crossmargin.book.io import book_from_data
    from crossmargin.locations.view import located_view
    from crossmargin.margin.engine import MarginEngine

    data = lp_book_data()
    once = located_view(book_from_data(data)).book
    twice = located_view(once).book
    assert twice.accounts[0].balances == once.accounts[0].balances
    first = MarginEngine(once).margin()[0]
    assert MarginEngine(twice).margin()[0].equity_usd == first.equity_usd


def test_wrong_way_sees_remote_eth_as_eth(book: Path, examples: Path, tmp_path: Path) -> None:
    """Long ETH-PERP behind ETH collateral is flagged whether the ETH is home or at arbitrum."""

    def with_long_perp(path: Path, name: str) -> Path:
        data = yaml.safe_load(path.read_text())
        for account in data["accounts"]:
            if account["id"] == "bridger":
                account["positions"] = [{"market": "ETH-PERP", "qty": 3.0, "entry_price": 3000.0}]
        out = tmp_path / name
        out.write_text(yaml.safe_dump(data, sort_keys=False))
        return out

    args = ["--returns", str(examples / "prices.csv"), "--account", "bridger", "--paths", "200"]
    remote = with_long_perp(book, "remote.yaml")
    home = with_long_perp(_home_equivalent(book, tmp_path), "home-perp.yaml")
    ours = run_json("risk", str(remote), *args)["accounts"][0]["wrong_way"]
    theirs = run_json("risk", str(home), *args)["accounts"][0]["wrong_way"]
    assert ours["flagged"] and theirs["flagged"]
    assert set(ours["by_asset"]) == set(theirs["by_asset"]) == {"ETH"}
    assert ours["by_asset"]["ETH"]["collateral_usd"] == pytest.approx(ETH_QTY * 3040.0)
    for key in ("collateral_usd", "exposure_delta_usd"):
        assert ours["by_asset"]["ETH"][key] == pytest.approx(
            theirs["by_asset"]["ETH"][key], rel=1e-9
        )
