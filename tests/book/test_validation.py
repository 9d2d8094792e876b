"""Bad input gets a clear error naming the field and the value."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from crossmargin.book import book_from_data, load_book, load_demo_book, parse_book
from crossmargin.errors import InputError, UnknownNameError
from crossmargin.margin import MarginEngine

BASE: dict[str, Any] = {
    "assets": {
        "USDC": {
            "price": 1.0,
            "init_asset_weight": 1.0,
            "maint_asset_weight": 1.0,
            "init_liab_weight": 1.0,
            "maint_liab_weight": 1.0,
        },
        "ETH": {
            "price": 3000.0,
            "init_asset_weight": 0.8,
            "maint_asset_weight": 0.9,
            "init_liab_weight": 1.2,
            "maint_liab_weight": 1.1,
        },
    },
    "markets": {
        "ETH-PERP": {
            "kind": "perp",
            "underlying": "ETH",
            "settle_asset": "USDC",
            "initial_margin_frac": 0.05,
            "maint_margin_frac": 0.03,
        }
    },
    "accounts": [
        {
            "id": "alice",
            "balances": {"USDC": 1000.0, "ETH": 1.0},
            "positions": [{"market": "ETH-PERP", "qty": 2.0, "entry_price": 2900.0}],
        }
    ],
}


def _with(path: str, value: Any) -> dict[str, Any]:
    """A deep copy of BASE with one dotted path (list indices as integers) set to ``value``."""
    data = copy.deepcopy(BASE)
    keys = [int(k) if k.isdigit() else k for k in path.split(".")]
    target = data
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value
    return data


def test_base_book_is_valid() -> None:
    book = book_from_data(BASE)
    assert book.account("alice").positions[0].qty == 2.0


@pytest.mark.parametrize(
    ("path", "value", "field", "message"),
    [
        ("assets.ETH.price", float("nan"), "assets.ETH.price", "finite"),
        ("assets.ETH.price", float("inf"), "assets.ETH.price", "finite"),
        ("assets.ETH.price", 0.0, "assets.ETH.price", "greater than or equal to 1e-12"),
        ("assets.ETH.price", -5.0, "assets.ETH.price", "greater than or equal to 1e-12"),
        ("assets.ETH.price", "abc", "assets.ETH.price", "number"),
        ("assets.ETH.init_asset_weight", 0.95, "assets.ETH.init_asset_weight", "maint"),
        ("assets.ETH.init_liab_weight", 1.05, "assets.ETH.init_liab_weight", "maint"),
        ("assets.ETH.maint_asset_weight", 1.5, "assets.ETH.maint_asset_weight", "less than"),
        ("assets.ETH.maint_liab_weight", 0.5, "assets.ETH.maint_liab_weight", "greater than"),
        (
            "assets.ETH.collateral_tiers",
            [{"above_usd": 2e6, "factor": 0.9}, {"above_usd": 1e6, "factor": 0.8}],
            "assets.ETH.collateral_tiers[1].above_usd",
            "strictly increasing",
        ),
        (
            "assets.ETH.collateral_tiers",
            [{"above_usd": 1e6, "factor": 0.8}, {"above_usd": 2e6, "factor": 0.9}],
            "assets.ETH.collateral_tiers[1].factor",
            "must not increase",
        ),
        ("markets.ETH-PERP.underlying", "DOGE", "markets.ETH-PERP.underlying", "unknown asset"),
        ("markets.ETH-PERP.maint_margin_frac", 0.1, "markets.ETH-PERP.initial_margin_frac", ""),
        (
            "markets.ETH-PERP.brackets",
            [
                {"notional_floor_usd": 1e6, "initial_margin_frac": 0.1, "maint_margin_frac": 0.05},
                {"notional_floor_usd": 5e5, "initial_margin_frac": 0.2, "maint_margin_frac": 0.1},
            ],
            "markets.ETH-PERP.brackets[1].notional_floor_usd",
            "strictly increasing",
        ),
        ("markets.ETH-PERP.kind", "swap", "markets.ETH-PERP", "tag"),
        ("accounts.0.balances.DOGE", 1.0, "accounts[0].balances.DOGE", "unknown asset"),
        ("accounts.0.balances.ETH", float("nan"), "accounts[0].balances.ETH", "finite"),
        ("accounts.0.positions.0.market", "BTC-PERP", "accounts[0].positions[0].market", "unknown"),
        ("accounts.0.positions.0.qty", float("inf"), "accounts[0].positions[0].qty", "finite"),
        ("accounts.0.positions.0.entry_price", -1.0, "accounts[0].positions[0].entry_price", ""),
        ("accounts.0.mode", "portfolio-x", "accounts[0].mode", "cross"),
        ("accounts.0.colour", "blue", "accounts[0].colour", "unknown field"),
    ],
)
def test_bad_field_names_field_and_value(path: str, value: Any, field: str, message: str) -> None:
    with pytest.raises(InputError) as info:
        book_from_data(_with(path, value))
    assert info.value.field == field
    assert message in str(info.value)
    assert "got" in str(info.value)


def test_missing_required_field() -> None:
    data = copy.deepcopy(BASE)
    del data["assets"]["ETH"]["maint_liab_weight"]
    with pytest.raises(InputError, match=r"assets\.ETH\.maint_liab_weight: required"):
        book_from_data(data)


def test_duplicate_account_ids() -> None:
    data = copy.deepcopy(BASE)
    data["accounts"].append(copy.deepcopy(data["accounts"][0]))
    with pytest.raises(InputError, match=r"accounts\[1\]\.id: duplicate account id"):
        book_from_data(data)


def test_duplicate_position_in_one_market() -> None:
    data = copy.deepcopy(BASE)
    data["accounts"][0]["positions"].append({"market": "ETH-PERP", "qty": 1.0, "entry_price": 1})
    with pytest.raises(InputError, match="duplicate position"):
        book_from_data(data)


def test_isolated_collateral_needs_isolated_mode_and_enough_balance() -> None:
    data = _with("accounts.0.positions.0.isolated_collateral", {"USDC": 500.0})
    with pytest.raises(InputError, match="only allowed in isolated mode"):
        book_from_data(data)
    data["accounts"][0]["mode"] = "isolated"
    assert book_from_data(data).accounts[0].mode == "isolated"
    data["accounts"][0]["positions"][0]["isolated_collateral"] = {"USDC": 1500.0}
    with pytest.raises(InputError, match="allocated more than the account's balance"):
        book_from_data(data)


def test_duplicate_yaml_key_is_an_error() -> None:
    text = "assets:\n  USDC: {price: 1}\n  USDC: {price: 2}\n"
    with pytest.raises(InputError, match="duplicate key"):
        parse_book(text)


def test_duplicate_json_key_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "book.json"
    path.write_text('{"assets": {"USDC": {}, "USDC": {}}}')
    with pytest.raises(InputError, match="duplicate key"):
        load_book(path)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("book.yaml", "assets: [1, 2\n", "not valid YAML or JSON"),
        ("book.json", "{not json", "not valid JSON"),
        ("book.yaml", "- just\n- a list\n", "top level must be a mapping"),
        ("book.yaml", "", "top level must be a mapping"),
    ],
)
def test_malformed_files(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        load_book(path)


def test_missing_file() -> None:
    with pytest.raises(InputError, match="no such file"):
        load_book("/nonexistent/book.yaml")


def test_json_and_yaml_give_the_same_book(tmp_path: Path) -> None:
    path = tmp_path / "book.json"
    path.write_text(json.dumps(BASE))
    assert load_book(path) == book_from_data(BASE)


def test_option_positions_need_a_valuation_time_a_vol_and_an_unexpired_market() -> None:
    data = copy.deepcopy(BASE)
    data["markets"]["ETH-C-3500"] = {
        "kind": "option",
        "underlying": "ETH",
        "settle_asset": "USDC",
        "strike": 3500.0,
        "expiry": "2026-12-26T08:00:00Z",
        "option_type": "call",
    }
    book = book_from_data(data)  # an option market nobody holds needs nothing
    assert book.markets["ETH-C-3500"].kind == "option"
    data["accounts"][0]["positions"].append(
        {"market": "ETH-C-3500", "qty": -1.0, "entry_price": 150.0}
    )
    with pytest.raises(InputError, match=r"as_of.*valuation time"):
        book_from_data(data)
    data["as_of"] = "2026-12-26T08:00:00"  # naive: UTC, equal to the expiry
    with pytest.raises(InputError, match=r"markets\.ETH-C-3500\.expiry.*expired"):
        book_from_data(data)
    data["as_of"] = "2026-11-26T08:00:00"
    with pytest.raises(InputError, match=r"markets\.ETH-C-3500\.mark_vol"):
        MarginEngine(book_from_data(data)).margin()
    data["markets"]["ETH-C-3500"]["mark_price"] = 1.0  # an OTM call worth 1 USDC: a low vol
    assert MarginEngine(book_from_data(data)).margin()[0].maint.health_usd < 1e9
    data["markets"]["ETH-C-3500"]["strike"] = 2000.0  # ITM by 1000: a 1.0 mark is impossible
    with pytest.raises(InputError, match=r"markets\.ETH-C-3500\.mark_price"):
        MarginEngine(book_from_data(data)).margin()
    data["markets"]["ETH-C-3500"]["brackets"] = [
        {"notional_floor_usd": 1e6, "initial_margin_frac": 0.2, "maint_margin_frac": 0.1}
    ]
    with pytest.raises(InputError, match="brackets"):
        book_from_data(data)


def test_profile_only_in_portfolio_mode() -> None:
    with pytest.raises(InputError, match=r"accounts\[0\].profile"):
        book_from_data(_with("accounts.0.profile", "deribit"))


def test_unknown_account_and_price_overrides() -> None:
    engine = MarginEngine(book_from_data(BASE))
    with pytest.raises(UnknownNameError, match="account: no account"):
        engine.account_margin("bob")
    with pytest.raises(UnknownNameError, match=r"prices\.DOGE"):
        engine.margin(prices={"DOGE": 1.0})
    for bad in (float("nan"), 0.0, -1.0, float("inf")):
        with pytest.raises(InputError, match=r"prices\.ETH: price must be a finite number > 0"):
            engine.margin(prices={"ETH": bad})


def test_demo_book_is_valid() -> None:
    book = load_demo_book()
    assert {"USDC", "USDT", "BTC", "ETH", "SOL", "AAVE", "wstETH"} <= set(book.assets)
    assert any(a.mode == "isolated" for a in book.accounts)
    assert any(v < 0 for a in book.accounts for v in a.balances.values())


def test_a_future_past_its_expiry_is_refused_like_an_option() -> None:
    """A dated future held past its expiry at ``as_of`` was margined like a live perp."""
    data = copy.deepcopy(BASE)
    data["as_of"] = "2026-12-31T00:00:00Z"
    data["markets"]["ETH-26DEC26"] = {
        "kind": "future",
        "underlying": "ETH",
        "settle_asset": "USDC",
        "expiry": "2026-12-26T08:00:00Z",
        "initial_margin_frac": 0.05,
        "maint_margin_frac": 0.025,
    }
    data["accounts"] = [
        {
            "id": "a",
            "balances": {"USDC": 1000},
            "positions": [{"market": "ETH-26DEC26", "qty": 1, "entry_price": 3000}],
        }
    ]
    with pytest.raises(InputError, match=r"markets\.ETH-26DEC26\.expiry.*expired"):
        book_from_data(data)
    data["as_of"] = "2026-12-01T00:00:00Z"
    assert book_from_data(data).accounts[0].positions[0].qty == 1
