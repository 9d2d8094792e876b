"""Portfolio mode in a portfolio file: margin, compare's portfolio column, CLI commands.

Outside references: QuantLib's ``BlackCalculator`` for the Greeks; Derive's PM2 reference cases
(../shared/reference/derive_pm2, derivexyz/v2-core at 7736900d) for the import-derive round trip.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from scipy.stats import norm
from typer.testing import CliRunner

from crossmargin.book import book_from_data
from crossmargin.cli import app
from crossmargin.errors import InputError
from crossmargin.margin import MarginEngine
from crossmargin.portfolio import get_profile, portfolio_from_book, portfolio_margin
from tests.helpers import asset

ql = pytest.importorskip("QuantLib")

SPOT, VOL = 3000.0, 0.6
T_M1 = 30.0 / 365.0
M1, M2 = "2026-12-25T08:00:00Z", "2027-01-29T08:00:00Z"
_D1 = 0.5 * VOL * math.sqrt(T_M1)  # ATM: ln(F/K) = 0
#: perp that neutralizes a short ATM straddle of 10: 10 x (N(d1) - N(-d1))
HEDGE_QTY = float(10.0 * (norm.cdf(_D1) - norm.cdf(-_D1)))
DERIVE_CASES = Path(__file__).resolve().parents[2].parent / "shared/reference/derive_pm2"


def _option(strike: float, kind: str, expiry: str) -> dict[str, Any]:
    return {
        "kind": "option",
        "underlying": "ETH",
        "settle_asset": "USDC",
        "strike": strike,
        "expiry": expiry,
        "option_type": kind,
        "mark_vol": VOL,
    }


def _position(market: str, qty: float, entry: float = 0.0) -> dict[str, Any]:
    return {"market": market, "qty": qty, "entry_price": entry}


def modes_book() -> dict[str, Any]:
    """The issue's hedges (covered call, calendar, delta-hedged short straddle, cash and
    carry) and two naked positions, on ETH at 3000 with 60 % vol."""
    return {
        "as_of": "2026-11-25T08:00:00Z",
        "assets": {"USDC": asset(1.0), "ETH": asset(SPOT, 0.8, 0.9, 1.2, 1.1)},
        "markets": {
            "ETH-PERP": {
                "kind": "perp",
                "underlying": "ETH",
                "initial_margin_frac": 0.1,
                "maint_margin_frac": 0.05,
            },
            "C3300-M1": _option(3300, "call", M1),
            "C3300-M2": _option(3300, "call", M2),
            "C3000-M1": _option(3000, "call", M1),
            "P3000-M1": _option(3000, "put", M1),
        },
        "accounts": [
            {
                "id": "covered-call",
                "balances": {"ETH": 10.0},
                "positions": [_position("C3300-M1", -10.0)],
            },
            {
                "id": "calendar",
                "positions": [_position("C3300-M2", 10.0), _position("C3300-M1", -10.0)],
            },
            {
                "id": "hedged-straddle",
                "positions": [
                    _position("C3000-M1", -10.0),
                    _position("P3000-M1", -10.0),
                    _position("ETH-PERP", HEDGE_QTY, SPOT),
                ],
            },
            {
                "id": "cash-and-carry",
                "balances": {"ETH": 10.0},
                "positions": [_position("ETH-PERP", -10.0, SPOT)],
            },
            {"id": "naked-call", "positions": [_position("C3000-M1", -10.0)]},
            {"id": "naked-perp", "positions": [_position("ETH-PERP", 10.0, SPOT)]},
        ],
    }


HEDGED = ("covered-call", "calendar", "hedged-straddle", "cash-and-carry")
NAKED = ("naked-call", "naked-perp")


def test_hedges_need_less_under_portfolio_than_cross_and_naked_positions_do_not() -> None:
    rows = {r.account_id: r for r in MarginEngine(book_from_data(modes_book())).compare()}
    for name in HEDGED:
        row = rows[name]
        assert row.portfolio_requirement_usd is not None
        assert row.portfolio_requirement_usd < row.cross_requirement_usd, name
    for name in NAKED:
        row = rows[name]
        assert row.portfolio_requirement_usd is not None
        assert row.portfolio_requirement_usd >= row.cross_requirement_usd, name
    # capital to add: nothing for the two hedges that hold their ETH, no more than cross for all
    assert rows["covered-call"].portfolio_required_usd == 0.0
    assert rows["cash-and-carry"].portfolio_required_usd == 0.0
    for name in HEDGED:
        assert rows[name].portfolio_required_usd <= rows[name].cross_required_usd  # type: ignore[operator]


def test_portfolio_mode_reports_the_scenario_margin_of_the_accounts_profile() -> None:
    data = modes_book()
    for account in data["accounts"]:
        account["mode"] = "portfolio"
    data["accounts"][0]["profile"] = "deribit"
    book = book_from_data(data)
    engine = MarginEngine(book)
    reports = engine.margin()
    for account, report in zip(book.accounts, reports, strict=True):
        expected = portfolio_margin(
            portfolio_from_book(book, account.id).to_portfolio(),
            get_profile(account.profile or "generic"),
        )
        assert report.mode == "portfolio" and report.portfolio is not None
        assert report.portfolio.profile == (account.profile or "generic")
        assert report.maint.health_usd == pytest.approx(expected.maint.margin_usd, rel=1e-12)
        assert report.init.health_usd == pytest.approx(expected.initial.margin_usd, rel=1e-12)
        assert report.liquidatable == (expected.maint.margin_usd < 0.0)
        # issue #15: portfolio accounts get liquidation prices from the scenario grid
        # (tests/portfolio/test_pm_liquidation_prices.py checks MM margin is 0 there)
        assert set(report.liquidation_prices) <= set(book.assets)
        assert report.liquidation_prices
    # the same accounts forced into portfolio mode from cross give the same figures (generic)
    forced = MarginEngine(book_from_data(modes_book())).margin(mode="portfolio")
    assert forced[1].to_dict() == reports[1].to_dict()


def test_portfolio_mode_follows_price_moves_and_rejects_unknown_profiles() -> None:
    data = modes_book()
    data["accounts"][4]["mode"] = "portfolio"
    engine = MarginEngine(book_from_data(data))
    calm = engine.margin([engine.book.accounts[4]])[0]
    rally = engine.margin([engine.book.accounts[4]], prices={"ETH": 3600.0})[0]
    assert rally.maint.health_usd < calm.maint.health_usd  # a short call loses in a rally
    data["accounts"][4]["profile"] = "nope"
    with pytest.raises(InputError, match=r"accounts\[4\]\.profile"):
        MarginEngine(book_from_data(data)).margin()


def test_greeks_match_quantlib_and_include_perps_and_spot(tmp_path: Path) -> None:
    """Covered call: delta = 10 (spot) - 10 x call delta; gamma per 1 % = 0.01 G S^2."""
    path = tmp_path / "book.yaml"
    path.write_text(yaml.safe_dump(modes_book()))
    out = CliRunner().invoke(app, ["greeks", str(path), "--account", "covered-call", "--json"])
    assert out.exit_code == 0, out.output
    eth = json.loads(out.output)["accounts"]["covered-call"]["ETH"]
    t = (math.floor(30 * 86400) / 86400) / 365.0
    std = VOL * math.sqrt(t)
    calc = ql.BlackCalculator(ql.PlainVanillaPayoff(ql.Option.Call, 3300.0), SPOT, std, 1.0)
    assert eth["delta_qty"] == pytest.approx(10.0 - 10.0 * calc.delta(SPOT), rel=1e-10)
    assert eth["delta_usd"] == pytest.approx(eth["delta_qty"] * SPOT, rel=1e-12)
    assert eth["gamma_usd_per_1pct"] == pytest.approx(
        -10.0 * calc.gamma(SPOT) * SPOT * SPOT * 0.01, rel=1e-10
    )
    assert eth["vega_usd_per_vol_point"] == pytest.approx(-10.0 * calc.vega(t) / 100.0, rel=1e-10)
    table = CliRunner().invoke(app, ["greeks", str(path)])
    assert table.exit_code == 0 and "hedged-straddle" in table.output


def test_margin_cli_shows_the_portfolio_breakdown(tmp_path: Path) -> None:
    path = tmp_path / "book.yaml"
    path.write_text(yaml.safe_dump(modes_book()))
    out = CliRunner().invoke(app, ["margin", str(path), "--mode", "portfolio"])
    assert out.exit_code == 0, out.output
    assert "worst scenario" in out.output and "spot" in out.output
    compare = CliRunner().invoke(app, ["compare", str(path), "--json"])
    rows = json.loads(compare.output)["accounts"]
    assert all("portfolio_requirement_usd" in r for r in rows)
    bad = CliRunner().invoke(app, ["margin", str(path), "--mode", "portfolio", "--explain", "init"])
    assert bad.exit_code == 2 and "--explain" in bad.output


@pytest.mark.skipif(not DERIVE_CASES.is_dir(), reason=f"{DERIVE_CASES} is absent")
def test_import_derive_then_portfolio_margin_reproduces_the_case(tmp_path: Path) -> None:
    case = sorted(DERIVE_CASES.glob("*.json"))[0]
    converted = tmp_path / "case.yaml"
    out = CliRunner().invoke(app, ["import-derive", str(case), "--out", str(converted)])
    assert out.exit_code == 0, out.output
    data = yaml.safe_load(converted.read_text())
    assert data["mismatches"] == []
    run = CliRunner().invoke(app, ["portfolio-margin", str(converted), "--json"])
    assert run.exit_code == 0, run.output
    result = json.loads(run.output)
    for ours, key in (("maint", "MM"), ("initial", "IM")):
        assert result[ours]["margin_usd"] == pytest.approx(
            data["reference"][key], rel=1e-6, abs=1e-6
        )
    table = CliRunner().invoke(app, ["portfolio-margin", str(converted)])
    assert table.exit_code == 0 and "margin (MTM - requirement)" in table.output


def test_portfolio_margin_cli_bad_input_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("profile: generic\n")
    out = CliRunner().invoke(app, ["portfolio-margin", str(path)])
    assert out.exit_code == 2 and "portfolio" in out.output
    missing = CliRunner().invoke(app, ["import-derive", str(tmp_path / "nope.json")])
    assert missing.exit_code == 2
