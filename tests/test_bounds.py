"""Property test (issue #13): extreme numbers, hostile strings and ids through every command.

Hypothesis mutates a small valid book - values across the whole float64 range (+-1e308,
5e-324, subnormals, NaN, inf, integers beyond float64), bools and strings where numbers
belong, markup and control characters in ids and names - and drives it, with equally extreme
``--price/--trade/--withdraw/--shock`` overrides, through ``margin``, ``compare``,
``what-if``, ``stress``, ``greeks``, ``liquidate`` and ``risk`` in-process. Every run must
exit 0 or 2, print no traceback and no ``inf``/``nan``, keep a failure to one bounded line,
and raise no numerical RuntimeWarning (which the CLI would hide).
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from crossmargin.cli import app
from crossmargin.commands import common
from tests.helpers import asset

runner = CliRunner()

BOOK: dict[str, Any] = {
    "as_of": "2026-01-01T00:00:00Z",
    "assets": {
        "USDC": asset(1.0),
        "ETH": asset(
            3000.0,
            0.8,
            0.9,
            1.2,
            1.1,
            imf_factor=0.001,
            collateral_tiers=[{"above_usd": 1e6, "factor": 0.9}],
        ),
        "BTC": asset(60_000.0, 0.85, 0.9, 1.15, 1.1),
    },
    "markets": {
        "ETH-PERP": {  # no kind: a perp
            "underlying": "ETH",
            "initial_margin_frac": 0.05,
            "maint_margin_frac": 0.03,
            "imf_factor": 0.0005,
            "pnl_imf_factor": 0.001,
            "open_interest_usd": 1e6,
            "oi_lower_cap_usd": 1e5,
            "oi_upper_cap_usd": 1e8,
            "brackets": [
                {"notional_floor_usd": 1e6, "initial_margin_frac": 0.1, "maint_margin_frac": 0.05}
            ],
        },
        "BTC-FUT": {
            "kind": "future",
            "underlying": "BTC",
            "expiry": "2026-06-26T08:00:00Z",
            "initial_margin_frac": 0.05,
            "maint_margin_frac": 0.025,
            "mark_price": 61_000.0,
        },
        "ETH-C": {
            "kind": "option",
            "underlying": "ETH",
            "strike": 3200.0,
            "expiry": "2026-03-27T08:00:00Z",
            "option_type": "call",
            "mark_vol": 0.6,
        },
    },
    "accounts": [
        {
            "id": "whale",
            "balances": {"USDC": 10_000.0, "ETH": 2.0, "BTC": -0.01},
            "positions": [
                {
                    "market": "ETH-PERP",
                    "qty": 5.0,
                    "entry_price": 2900.0,
                    "unrealized_funding": 10.0,
                },
                {"market": "ETH-C", "qty": -2.0, "entry_price": 150.0},
            ],
        },
        {
            "id": "iso",
            "mode": "isolated",
            "balances": {"USDC": 5000.0},
            "positions": [
                {
                    "market": "BTC-FUT",
                    "qty": -0.1,
                    "entry_price": 60_000.0,
                    "isolated_collateral": {"USDC": 2000.0},
                }
            ],
        },
        {
            "id": "pm",
            "mode": "portfolio",
            "profile": "deribit",
            "balances": {"USDC": 20_000.0},
            "positions": [
                {"market": "ETH-C", "qty": 10.0, "entry_price": 100.0},
                {"market": "ETH-PERP", "qty": -3.0, "entry_price": 3000.0},
            ],
        },
        {"id": "only-id"},
    ],
}

#: fields a mutation may add (not in BOOK)
EXTRA_NUMERIC = [
    ("assets", "ETH", "liquidity_position_usd"),
    ("assets", "BTC", "imf_factor"),
    ("markets", "BTC-FUT", "imf_factor"),
    ("markets", "ETH-C", "mark_price"),
    ("markets", "ETH-PERP", "mark_price"),
    ("accounts", 1, "positions", 0, "unrealized_funding"),
]


def _numeric_paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(data, dict):
        return [p for k, v in data.items() for p in _numeric_paths(v, (*prefix, k))]
    if isinstance(data, list):
        return [p for i, v in enumerate(data) for p in _numeric_paths(v, (*prefix, i))]
    if isinstance(data, int | float) and not isinstance(data, bool):
        return [prefix]
    return []


NUMERIC_PATHS = _numeric_paths(BOOK) + EXTRA_NUMERIC
#: account ids and names that a mutation may replace by a hostile string (as JSON tokens)
NAME_TOKENS = ["whale", "iso", "pm", "BTC", "ETH-PERP", "ETH-C", "deribit", "USDC"]

HOSTILE_STRINGS = [
    "[/]",
    "[b]whale[/b]",
    "[red]x",
    ":smile:",
    "a\nb",
    "\x00",
    "\x1b[31mred",
    " pad",
    "rtl\u202e",
    "",
    "\\",
    "x" * 200,
    "k" * 5000,
    "[link=https://example.com]x[/link]",
    "whale",  # a duplicate id
    "caf\u00e9",
    "\U0001f600",
]

EXTREME_FLOATS = [
    1e308,
    -1e308,
    1.7976931348623157e308,
    5e-324,
    -5e-324,
    2.2250738585072014e-308,
    1e-310,
    1e-300,
    1e300,
    1e-13,
    1e-12,
    1e12,
    1e13,
    1e15,
    -1e15,
    1e16,
    0.0,
    -0.0,
    1.0,
    -1.0,
    math.nan,
    math.inf,
    -math.inf,
]

values = st.one_of(
    st.sampled_from(EXTREME_FLOATS),
    st.floats(),  # the whole float64 range, subnormals, NaN and infinities included
    st.integers(-(10**20), 10**20),
    st.sampled_from([10**400, -(10**400), 10**4000]),
    st.sampled_from([True, False, "3000", "yes", "1e3", None, [], {}, [1.0]]),
)

#: the extremes each kind of field accepts (docs/methodology.md, "Bounds")
IN_BOUNDS: dict[str, list[float]] = {
    "price": [1e-12, 1e12, 2.5e-12, 9.99e11],
    "qty": [1e15, -1e15, 1e-300, -5e-324, 0.0, 1e-18],
    "funding": [1e27, -1e27, 5e-324],
    "usd": [1e30, 1e-300, 5e-324, 1.0],
    "fraction": [0.0, 1.0, 5e-324, 0.999999999],
    "liab_weight": [1.0, 100.0],
    "imf": [0.0, 1.0, 5e-324],
    "vol": [1e-4, 20.0],
}


def _kind(path: tuple[Any, ...]) -> str:
    last = str(path[-1])
    if "balances" in path or last == "qty" or "isolated_collateral" in path:
        return "qty"
    if last in ("price", "mark_price", "strike", "entry_price"):
        return "price"
    if last == "unrealized_funding":
        return "funding"
    if last.endswith("_usd"):
        return "usd"
    if "liab_weight" in last:
        return "liab_weight"
    if "imf" in last:
        return "imf"
    if last == "mark_vol":
        return "vol"
    return "fraction"


@st.composite
def mutation(draw: st.DrawFn) -> tuple[tuple[Any, ...], Any]:
    """A field and a value: half the time an extreme the field accepts, else anything."""
    path = draw(st.sampled_from(NUMERIC_PATHS))
    if draw(st.booleans()):
        return path, draw(st.sampled_from(IN_BOUNDS[_kind(path)]))
    return path, draw(values)


hostile = st.one_of(
    st.sampled_from(HOSTILE_STRINGS),
    st.text(max_size=12).map(lambda t: re.sub(r"(?i)inf|nan", "x", t)),
)


def _number_text(x: float) -> str:
    return repr(x) if isinstance(x, float) else str(x)


override_numbers = st.one_of(
    # accepted extremes: prices, quantities, shocks at their bounds
    st.sampled_from(["1e12", "1e-12", "1e15", "-1e15", "100", "-0.9999999", "-99.99999%", "0"]),
    st.sampled_from(EXTREME_FLOATS).map(_number_text),
    st.floats().map(_number_text),
    st.sampled_from(["1e400", "-1e400", "abc", "", "50%", "-100%", "-99.99%", "1e308%", "0x10"]),
)
asset_names = st.sampled_from(["ETH", "BTC", "USDC", "DOGE", "[/]"])
market_names = st.sampled_from(["ETH-PERP", "BTC-FUT", "ETH-C", "NOPE", "[/]"])


def _set(data: Any, path: tuple[Any, ...], value: Any) -> None:
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


@st.composite
def books(draw: st.DrawFn) -> str:
    """A mutated book as JSON text (YAML is written from it by the caller)."""
    data = copy.deepcopy(BOOK)
    for _ in range(draw(st.integers(0, 3))):
        _set(data, *draw(mutation()))
    if draw(st.booleans()):
        accounts = data["accounts"]
        accounts[draw(st.integers(0, len(accounts) - 1))]["id"] = draw(hostile)
    text = json.dumps(data)
    if draw(st.integers(0, 3)) == 0:
        token = json.dumps(draw(st.sampled_from(NAME_TOKENS)))
        text = text.replace(token, json.dumps(draw(hostile)))
    return text


@st.composite
def pairs(draw: st.DrawFn, names: st.SearchStrategy[str], option: str) -> list[str]:
    out: list[str] = []
    for _ in range(draw(st.integers(0, 2))):
        value = draw(override_numbers)
        if option == "--trade" and draw(st.booleans()):
            value = f"{value}@{draw(override_numbers)}"
        out += [option, f"{draw(names)}={value}"]
    return out


ACCOUNTS = st.sampled_from(["whale", "iso", "pm", "only-id", "[/]"])


@st.composite
def invocations(draw: st.DrawFn) -> list[str]:
    """Arguments after the file: one of the seven commands with random options."""
    command = draw(
        st.sampled_from(["margin", "compare", "what-if", "stress", "greeks", "liquidate", "risk"])
    )
    args = [command]
    json_flag = ["--json"] if draw(st.booleans()) else []
    if command == "margin":
        if draw(st.booleans()):
            args += ["--account", draw(ACCOUNTS)]
        if draw(st.integers(0, 3)) == 0:
            args += ["--mode", draw(st.sampled_from(["cross", "isolated", "portfolio"]))]
        args += draw(pairs(asset_names, "--price"))
    elif command == "what-if":
        args += ["--account", draw(ACCOUNTS)]
        args += draw(pairs(market_names, "--trade"))
        args += draw(pairs(asset_names, "--withdraw"))
        args += draw(pairs(asset_names, "--price"))
    elif command in ("stress", "liquidate"):
        args += draw(pairs(asset_names, "--shock"))
        if command == "stress":
            args += ["--scenario", draw(st.sampled_from(["ftx-nov-2022", "black-thursday-2020"]))]
        elif draw(st.booleans()):
            args += ["--policy", draw(st.sampled_from(["generic", "mango", "drift", "aave"]))]
    elif command == "greeks" and draw(st.booleans()):
        args += ["--account", draw(ACCOUNTS)]
    elif command == "risk":
        args += ["--paths", "200", "--window", "30"]
        if draw(st.booleans()):
            args += ["--account", draw(ACCOUNTS)]
    return args + json_flag


NON_FINITE = re.compile(r"(?i)(?<![a-z])(inf|infinity|nan)(?![a-z])")


@pytest.fixture(scope="module")
def returns_csv(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Daily closes of ETH and BTC (120 days: enough for VaR, too few for backtests)."""
    folder = tmp_path_factory.mktemp("returns")
    rng = np.random.default_rng(13)
    days = pd.date_range("2025-06-01", periods=121, freq="D")
    files = []
    for symbol, start in (("ETH", 3000.0), ("BTC", 60_000.0)):
        close = start * np.exp(np.cumsum(rng.normal(0.0, 0.03, days.size)))
        path = folder / f"{symbol}.csv"
        pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "close": close}).to_csv(path, index=False)
        files.append(path)
    return files


def _check(result: Any, args: list[str]) -> None:
    where = f"{args}\nstdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-2000:]}"
    assert result.exit_code in (0, 2), where
    assert result.exception is None or isinstance(result.exception, SystemExit), where
    assert "Traceback" not in result.output, where
    assert not common.suppressed_warnings, (
        [str(w.message) for w in common.suppressed_warnings],
        where,
    )
    if result.exit_code == 2:
        assert result.stderr.startswith("error: "), where
        assert result.stderr.count("\n") == 1 and len(result.stderr) <= 310, where
        return
    assert "Warning" not in result.stderr, where
    if "--json" in args:
        json.loads(result.stdout)  # strict: NaN / Infinity tokens would not parse back
        assert "NaN" not in result.stdout and "Infinity" not in result.stdout, where
    else:
        assert not NON_FINITE.search(result.stdout), where


@settings(
    # a longer fuzz run: CROSSMARGIN_FUZZ_EXAMPLES=2000 pytest tests/test_bounds.py
    max_examples=int(os.environ.get("CROSSMARGIN_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(book=books(), args=invocations(), as_yaml=st.booleans())
def test_every_command_survives_extreme_and_hostile_input(
    tmp_path_factory: pytest.TempPathFactory,
    returns_csv: list[Path],
    book: str,
    args: list[str],
    as_yaml: bool,
) -> None:
    folder = tmp_path_factory.mktemp("book")
    if as_yaml:
        path = folder / "book.yaml"
        path.write_text(yaml.safe_dump(json.loads(book), allow_unicode=True), "utf-8")
    else:
        path = folder / "book.json"
        path.write_text(book, "utf-8")
    full = [args[0], str(path), *args[1:]]
    if args[0] == "risk":
        for csv in returns_csv:
            full += ["--returns", str(csv)]
    result = runner.invoke(app, full, terminal_width=160)
    event(f"{args[0]} exit {result.exit_code}")
    _check(result, full)


@pytest.mark.parametrize(
    "args",
    [
        ["margin", "--json"],
        ["compare", "--json"],
        ["what-if", "--account", "whale", "--json"],
        ["stress", "--json"],
        ["greeks", "--json"],
        ["liquidate", "--json"],
        ["margin"],
        ["compare"],
        ["what-if", "--account", "whale"],
        ["stress", "--scenario", "ftx-nov-2022"],
        ["greeks"],
        ["liquidate"],
    ],
)
def test_the_unmutated_book_runs_everywhere(tmp_path: Path, args: list[str]) -> None:
    """The base of the property test is valid for every command (so mutations test bounds)."""
    path = tmp_path / "book.json"
    path.write_text(json.dumps(BOOK))
    result = runner.invoke(app, [args[0], str(path), *args[1:]], terminal_width=160)
    assert result.exit_code == 0, result.output
    _check(result, args)


def test_the_unmutated_book_runs_risk(tmp_path: Path, returns_csv: list[Path]) -> None:
    """Including the backtests of an account that has only an id (a numpy reshape error)."""
    path = tmp_path / "book.json"
    path.write_text(json.dumps(BOOK))
    args = ["risk", str(path), "--paths", "200", "--window", "30", "--json"]
    for csv in returns_csv:
        args += ["--returns", str(csv)]
    result = runner.invoke(app, args, terminal_width=160)
    assert result.exit_code == 0, result.output
    _check(result, args)
    data = json.loads(result.stdout)
    assert not data["skipped"]
    (empty,) = [a for a in data["accounts"] if a["account_id"] == "only-id"]
    assert empty["backtests"]  # 120 days, a 30-day window: backtests run, on no exposure


def _corner(high: bool) -> dict[str, Any]:
    """Every field at a bound at once: prices 1e12 (or 1e-12, the settle asset the other way),
    quantities 1e15, funding 1e27, liability weights 100, imf 1, USD sizes 1e30, the smallest
    vol and a 1 µs option."""
    data = copy.deepcopy(BOOK)
    data["assets"]["ETH"]["price"] = 1e12 if high else 1e-12
    data["assets"]["BTC"]["price"] = 1e-12 if high else 1e12
    data["assets"]["USDC"]["price"] = 1e-12 if high else 1e12
    for entry in data["assets"].values():
        entry["init_liab_weight"] = entry["maint_liab_weight"] = 100.0
    data["assets"]["ETH"].update(
        imf_factor=1.0, collateral_tiers=[{"above_usd": 1e30, "factor": 0.0}]
    )
    data["markets"]["ETH-PERP"].update(
        imf_factor=1.0,
        pnl_imf_factor=1.0,
        mark_price=1e12,
        open_interest_usd=1e30,
        oi_lower_cap_usd=0.0,
        oi_upper_cap_usd=1e30,
        brackets=[
            {"notional_floor_usd": 1e30, "initial_margin_frac": 1.0, "maint_margin_frac": 1.0}
        ],
    )
    data["markets"]["BTC-FUT"]["mark_price"] = 1e-12
    data["markets"]["ETH-C"].update(
        strike=1e-12 if high else 1e12, mark_vol=1e-4, expiry="2026-01-01T00:00:00.000001Z"
    )
    for account in data["accounts"]:
        account["balances"] = {k: 1e15 for k in account.get("balances", {})}
        for position in account.get("positions", []):
            position.update(
                qty=-1e15 if position["market"] == "ETH-C" else 1e15,
                entry_price=1e12,
                unrealized_funding=-1e27,
            )
            if "isolated_collateral" in position:
                position["isolated_collateral"] = {"USDC": 1e15}
    return data


@pytest.mark.parametrize("high", [True, False])
@pytest.mark.parametrize(
    "args",
    [
        ["margin", "--json", "--price", "ETH=1e12", "--price", "USDC=1e-12"],
        ["margin", "--mode", "portfolio"],
        ["compare"],
        ["what-if", "--account", "whale", "--trade", "ETH-PERP=-1e15@1e12", "--price", "ETH=1e-12"],
        ["stress", "--shock", "ETH=100", "--shock", "USDC=-0.9999999"],
        ["greeks", "--json"],
        ["liquidate", "--shock", "ETH=-0.9999999", "--shock", "BTC=100"],
        ["risk", "--paths", "200", "--window", "30", "--json"],
    ],
)
def test_every_field_at_its_bound_at_once(
    tmp_path: Path, returns_csv: list[Path], high: bool, args: list[str]
) -> None:
    """Within the bounds every figure is finite: the extreme corners run (exit 0) or give a
    one-line error (a what-if pushing a position beyond the bounds), never inf or a warning."""
    path = tmp_path / "book.json"
    path.write_text(json.dumps(_corner(high)))
    full = [args[0], str(path), *args[1:]]
    if args[0] == "risk":
        for csv in returns_csv:
            full += ["--returns", str(csv)]
    result = runner.invoke(app, full, terminal_width=160)
    _check(result, full)
    if args[0] != "what-if":
        assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--price", "ETH=1e308", "prices.ETH: --price must be >= 1e-12 and <= 1e+12"),
        ("--price", "ETH=5e-324", ">= 1e-12"),
        ("--price", "ETH=nan", "finite"),
        ("--shock", "ETH=1e300", "<= 100"),
        ("--shock", "ETH=-100%", "shock.ETH: a price cannot fall 100 % or more"),
        ("--withdraw", "USDC=1e16", "<= 1e+15"),
        ("--price", "ETH", "NAME=NUMBER"),
    ],
)
def test_override_parsers_enforce_the_bounds(option: str, value: str, message: str) -> None:
    from crossmargin.errors import InputError

    with pytest.raises(InputError, match=re.escape(message)):
        common.parse_pairs(option, [value])
