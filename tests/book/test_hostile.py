"""Hostile and extreme portfolio files: each a one-line error in milliseconds (issue #13).

Safe loading (alias bombs, complex keys, deep nesting, huge files and integers), strict number
types, the documented bounds of every numeric field, printable names and ids, the profile and
market-kind checks, and a bounded error line.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from crossmargin.book import book_from_data, load_book, parse_book
from crossmargin.book.io import MAX_ALIAS_NODES, MAX_DEPTH, MAX_FILE_BYTES, read_structured
from crossmargin.book.schema import (
    ID_MAX_CHARS,
    IMF_MAX,
    LIAB_WEIGHT_MAX,
    PRICE_MAX,
    PRICE_MIN,
    QTY_MAX,
    USD_MAX,
)
from crossmargin.cli import app
from crossmargin.commands import common
from crossmargin.errors import InputError
from crossmargin.margin import MarginEngine
from crossmargin.portfolio.profiles import PROFILES
from tests.book.test_validation import BASE, _with

runner = CliRunner()


def _billion_laughs() -> str:
    """The classic alias bomb: 9 levels of 9 aliases each, 9**9 = 387 million strings."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    previous = "a"
    for name in "bcdefghi":
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
        previous = name
    return "\n".join(lines) + "\n"


def _load_error(tmp_path: Path, name: str, text: str | bytes) -> tuple[str, float]:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, "utf-8")
    start = time.perf_counter()
    with pytest.raises(InputError) as info:
        load_book(path)
    return str(info.value), time.perf_counter() - start


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bomb.yaml", _billion_laughs(), f"aliases expand to more than {MAX_ALIAS_NODES:,}"),
        ("recursive.yaml", "a: &a [*a]\n", "recursive alias"),
        ("complex.yaml", "assets: {? [x, y] : 1.0}\n", "complex key"),
        ("deep-flow.yaml", "assets: " + "[" * 1000 + "]" * 1000 + "\n", "nested deeper"),
        (
            "deep-block.yaml",
            "".join(" " * 2 * i + f"k{i}:\n" for i in range(200)) + " " * 400 + "v: 1\n",
            f"nested deeper than {MAX_DEPTH}",
        ),
        ("deep.json", '{"assets": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested deeper"),
        ("deep-shallow.json", '{"assets": ' + "[" * 100 + "]" * 100 + "}", "nested deeper"),
        ("int.yaml", "assets: {ETH: {price: " + "9" * 5000 + "}}\n", "longer than 4300 digits"),
        ("int.json", '{"assets": {"ETH": {"price": ' + "9" * 5000 + "}}}", "longer than 4300"),
        ("merge.yaml", "assets:\n  USDC: {<<: 5, price: 1}\n", "merge key"),
        ("latin1.yaml", "assets: {caf\xe9: 1}\n".encode("latin-1"), "not UTF-8"),
        ("tag.yaml", "assets: !!python/object:os.system {}\n", "not valid YAML"),
    ],
)
def test_hostile_files_fail_fast_with_one_line(
    tmp_path: Path, name: str, text: str | bytes, message: str
) -> None:
    error, seconds = _load_error(tmp_path, name, text)
    assert message in error
    assert error.startswith("file: ")
    assert "\n" not in error and len(error) <= 300
    assert seconds < 1.0  # milliseconds in practice; generous for a loaded CI machine


def test_file_size_limit_reads_only_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with path.open("wb") as handle:
        handle.write(b"# ")
        handle.seek(MAX_FILE_BYTES + 10)
        handle.write(b"\n")
    with pytest.raises(InputError, match="larger than the limit of 20 MB"):
        load_book(path)


def test_alias_bomb_through_the_cli_is_a_fast_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(_billion_laughs())
    assert len(path.read_bytes()) < 450
    start = time.perf_counter()
    result = runner.invoke(app, ["margin", str(path)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "aliases expand" in result.stderr
    assert time.perf_counter() - start < 5.0


def test_anchors_aliases_and_merge_keys_within_the_limit(tmp_path: Path) -> None:
    text = """
assets:
  USDC: &stable {price: 1, init_asset_weight: 1, maint_asset_weight: 1,
                 init_liab_weight: 1, maint_liab_weight: 1}
  USDT: *stable
  ETH:
    <<: *stable
    price: 3e3
    init_asset_weight: 0.8
    maint_asset_weight: 0.9
  BTC: {<<: [*stable], price: 6.5E+4, init_liab_weight: 1.2}
accounts:
  - {id: a, balances: {ETH: 1e-3, USDC: -1_000}}
"""
    book = parse_book(text)
    assert book.assets["USDT"] == book.assets["USDC"]
    assert book.assets["ETH"].price == 3000.0 and book.assets["ETH"].init_liab_weight == 1.0
    assert book.assets["BTC"].price == 65_000.0 and book.assets["BTC"].init_liab_weight == 1.2
    assert book.accounts[0].balances == {"ETH": 0.001, "USDC": -1000.0}
    path = tmp_path / "scenarios.yaml"
    path.write_text("x: &x [1, 2]\ny: *x\n")
    assert read_structured(path) == {"x": [1, 2], "y": [1, 2]}


def test_merge_keys_keep_duplicate_key_checks() -> None:
    with pytest.raises(InputError, match="duplicate key"):
        parse_book("a: &a {x: 1}\nb: {<<: *a, y: 1, y: 2}\n")


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("assets.ETH.price", True),
        ("assets.ETH.price", "3000"),
        ("accounts.0.positions.0.qty", "yes"),
        ("accounts.0.positions.0.qty", False),
        ("accounts.0.balances.USDC", "1e3"),
        ("markets.ETH-PERP.maint_margin_frac", True),
        ("assets.ETH.dynamic", {"maint_horizon_days": True}),
    ],
)
def test_bools_and_strings_are_not_numbers(path: str, value: Any) -> None:
    with pytest.raises(InputError, match="number"):
        book_from_data(_with(path, value))


def test_yaml_yes_and_true_are_refused_as_numbers() -> None:
    text = (
        "assets:\n  USDC: {price: true, init_asset_weight: 1, maint_asset_weight: 1, "
        "init_liab_weight: 1, maint_liab_weight: 1}\n"
    )
    with pytest.raises(InputError, match=r"assets\.USDC\.price: Input should be a valid number"):
        parse_book(text)
    data = copy.deepcopy(BASE)
    data["accounts"][0]["positions"][0]["qty"] = 2  # an int is a number
    assert book_from_data(data).accounts[0].positions[0].qty == 2.0


@pytest.mark.parametrize(
    ("path", "inside", "outside"),
    [
        ("assets.ETH.price", PRICE_MAX, PRICE_MAX * 10),
        ("assets.ETH.price", PRICE_MIN, PRICE_MIN / 10),
        ("assets.ETH.price", PRICE_MIN, 5e-324),
        ("accounts.0.balances.ETH", -QTY_MAX, -QTY_MAX * 10),
        ("accounts.0.positions.0.qty", QTY_MAX, 1e308),
        ("accounts.0.positions.0.entry_price", PRICE_MAX, 1e300),
        ("accounts.0.positions.0.unrealized_funding", -QTY_MAX * PRICE_MAX, -1e300),
        ("markets.ETH-PERP.mark_price", PRICE_MAX, 1e200),
        ("markets.ETH-PERP.imf_factor", IMF_MAX, 1e10),
        ("markets.ETH-PERP.pnl_imf_factor", IMF_MAX, 2.0),
        ("markets.ETH-PERP.open_interest_usd", USD_MAX, 1e308),
        ("assets.ETH.imf_factor", IMF_MAX, 1e300),
        ("assets.ETH.liquidity_position_usd", USD_MAX, 1e306),
        ("assets.ETH.maint_liab_weight", 1.1, LIAB_WEIGHT_MAX * 2),
        ("assets.ETH.init_liab_weight", LIAB_WEIGHT_MAX, 1e308),
        ("accounts.0.balances.ETH", 1.0, 10**400),
    ],
)
def test_every_numeric_field_is_bounded(path: str, inside: Any, outside: Any) -> None:
    book_from_data(_with(path, inside))
    with pytest.raises(InputError) as info:
        book_from_data(_with(path, outside))
    field = path.replace(".0.", "[0].").replace("accounts.0", "accounts[0]")
    assert info.value.field == field


def test_tiers_brackets_strikes_and_vols_are_bounded() -> None:
    data = _with("assets.ETH.collateral_tiers", [{"above_usd": 1e308, "factor": 0.5}])
    with pytest.raises(InputError, match=r"collateral_tiers\[0\]\.above_usd"):
        book_from_data(data)
    brackets = [
        {
            "notional_floor_usd": 1e3 * (i + 1),
            "initial_margin_frac": 0.05,
            "maint_margin_frac": 0.03,
        }
        for i in range(33)
    ]
    with pytest.raises(InputError, match=r"brackets: List should have at most 32"):
        book_from_data(_with("markets.ETH-PERP.brackets", brackets))
    option = {
        "kind": "option",
        "underlying": "ETH",
        "strike": 3000.0,
        "expiry": "2027-01-01T00:00:00Z",
        "option_type": "call",
        "mark_vol": 1e-300,
    }
    data = _with("markets.ETH-C", option)
    with pytest.raises(InputError, match=r"markets\.ETH-C\.mark_vol"):
        book_from_data(data)
    option["mark_vol"], option["strike"] = 0.6, 1e300
    with pytest.raises(InputError, match=r"markets\.ETH-C\.strike"):
        book_from_data(data)


def test_dynamic_haircut_parameters_are_bounded_and_named() -> None:
    for value, message in ((float("inf"), "finite"), (1e300, "within"), (5, "below maint")):
        data = _with("assets.ETH.dynamic", {"maint_horizon_days": value})
        with pytest.raises(InputError, match=rf"assets\.ETH\.dynamic\.\w+: .*{message}"):
            book_from_data(data)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a\nb", "printable"),
        ("tab\there", "printable"),
        ("\x00", "printable"),
        ("rtl\u202eevil", "printable"),
        ("zero\u200bwidth", "printable"),
        (" whale", "whitespace"),
        ("whale ", "whitespace"),
        ("", "at least 1 character"),
        ("x" * (ID_MAX_CHARS + 1), f"at most {ID_MAX_CHARS} characters"),
    ],
)
def test_account_ids_are_printable_and_bounded(value: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        book_from_data(_with("accounts.0.id", value))
    assert info.value.field == "accounts[0].id"


def test_ids_with_markup_emoji_and_unicode_are_valid() -> None:
    for value in ("[/]", "[b]whale[/b]", ":smile:", "café whale", "a" * ID_MAX_CHARS, "\\"):
        assert book_from_data(_with("accounts.0.id", value)).accounts[0].id == value


def test_asset_names_as_keys_are_checked() -> None:
    data = copy.deepcopy(BASE)
    data["assets"]["BAD\nNAME"] = data["assets"]["USDC"]
    with pytest.raises(InputError, match=r"assets\.BAD\\nNAME: name \(mapping key\): must be"):
        book_from_data(data)


@pytest.mark.parametrize("command", ["margin", "compare", "liquidate", "greeks", "stress"])
def test_markup_ids_are_shown_verbatim(
    tmp_path: Path, command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(common.console, "width", 400)  # no wrapped cells
    data = copy.deepcopy(BASE)
    data["accounts"][0]["id"] = "[/]"
    second = copy.deepcopy(data["accounts"][0])
    second["id"] = "[b]whale[/b] :smile:"
    data["accounts"].append(second)
    path = tmp_path / "book.json"
    path.write_text(json.dumps(data))
    result = runner.invoke(app, [command, str(path)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "[/]" in result.stdout
    assert "[b]whale[/b] :smile:" in result.stdout


def test_profile_is_validated_for_every_command(tmp_path: Path) -> None:
    assert set(PROFILES) == {"generic", "derive-pm2", "deribit"}  # the schema's Literal
    data = copy.deepcopy(BASE)
    data["accounts"][0]["mode"] = "portfolio"
    data["accounts"][0]["profile"] = "no-such-profile"
    path = tmp_path / "book.json"
    path.write_text(json.dumps(data))
    for args in (
        ["margin"],
        ["compare"],
        ["liquidate"],
        ["greeks"],
        ["stress"],
        ["what-if", "--account", "alice"],
    ):
        result = runner.invoke(app, [args[0], str(path), *args[1:]])
        assert result.exit_code == 2, (args, result.output)
        assert "accounts[0].profile" in result.stderr


def test_a_perp_market_may_omit_its_kind() -> None:
    data = copy.deepcopy(BASE)
    del data["markets"]["ETH-PERP"]["kind"]
    book = book_from_data(data)
    assert book.markets["ETH-PERP"].kind == "perp"
    assert MarginEngine(book).margin()[0].maint.health_usd > 0


def test_error_lines_are_bounded(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["accounts"][0]["k" * 1_000_000] = "v" * 1_000_000
    path = tmp_path / "book.json"
    path.write_text(json.dumps(data))
    result = runner.invoke(app, ["margin", str(path)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and len(result.stderr) < 320
    assert "unknown field" in result.stderr


def test_what_if_trade_beyond_the_bounds_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "book.json"
    path.write_text(json.dumps(BASE))
    for option, value, message in (
        ("--trade", "ETH-PERP=1e308", "trade.qty"),
        ("--trade", "ETH-PERP=1@1e300", "trade.price"),
        ("--trade", f"ETH-PERP={QTY_MAX}", "after the change: positions[0].qty"),
        ("--withdraw", "USDC=-1e15", "after the change: balances.USDC"),
        ("--price", "ETH=1e308", "--price"),
        ("--price", "ETH=5e-324", "--price"),
    ):
        result = runner.invoke(app, ["what-if", str(path), "--account", "alice", option, value])
        assert result.exit_code == 2, result.output
        assert message in result.stderr and result.stderr.count("\n") == 1
