"""Max trade / borrow / withdraw / swap solved on the kernel (crossmargin.margin.solvers).

Venue references:
* Aave v3 ``GenericLogic.calculateAvailableBorrows`` (anchors.md 3.1):
  ``availableBorrows = max(0, totalCollateral x avgLTV - totalDebt)`` in the base currency;
* Drift v2 ``math/margin.rs::calculate_max_withdrawable_amount``: ``free_collateral /
  (initial asset weight x oracle price)``, capped at the tokens held;
* Mango v4 ``health/client.rs::test_max_borrow``: 100 of a weight-1 token at price 1 -> max
  borrow 100; 50 of a token at price 2 with init weight 0.8 -> "2*50*0.8 = 80 health";
  ``test_max_perp`` / ``test_max_swap`` check that the max is feasible and one unit more is
  not - here against an independent path (``MarginEngine.what_if`` on a rebuilt account).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from crossmargin.book.io import book_from_data, load_book
from crossmargin.errors import InputError, NotSupportedError
from crossmargin.margin.engine import MarginEngine
from crossmargin.margin.results import Trade
from crossmargin.margin.solvers import max_all, max_borrow, max_swap, max_trade, max_withdraw
from tests.helpers import asset

DEMO = Path(__file__).parents[2] / "src" / "crossmargin" / "examples" / "demo_book.yaml"


def _book(assets: dict[str, Any], balances: dict[str, float], **extra: Any) -> Any:
    return book_from_data(
        {"assets": assets, "accounts": [{"id": "a", "balances": balances}], **extra}
    )


def test_aave_available_borrows() -> None:
    """10 ETH at $2,000 with LTV 0.8 and a $5,000 debt: 20,000 x 0.8 - 5,000 = 11,000 USD of
    borrowing power: 11,000 DAI at $1, 22,000 at $0.5."""
    for dai_price, expected in ((1.0, 11_000.0), (0.5, 22_000.0)):
        book = _book(
            {
                "USDC": asset(1.0),
                "DAI": asset(dai_price),
                "ETH": asset(2000.0, iaw=0.8, maw=0.85),
            },
            {"ETH": 10.0, "USDC": -5000.0},
        )
        result = max_borrow(book, "a", "DAI")
        assert result.amount == pytest.approx(expected, rel=1e-12)
        assert result.limit == "init health"
        assert result.init_health_after_usd == pytest.approx(0.0, abs=1e-9)


def test_drift_max_withdrawable_amount() -> None:
    """SOL 100 at $100 (iaw 0.8), USDC debt 5,000: free collateral 3,000 -> 3,000 / (0.8 x 100)
    = 37.5 SOL; with 5,000 USDC deposited instead, 13,000 / 80 = 162.5 > the 100 SOL held."""
    assets = {"USDC": asset(1.0), "SOL": asset(100.0, iaw=0.8, maw=0.9, ilw=1.2, mlw=1.1)}
    book = _book(assets, {"SOL": 100.0, "USDC": -5000.0})
    assert max_withdraw(book, "a", "SOL").amount == pytest.approx(37.5, rel=1e-12)
    book = _book(assets, {"SOL": 100.0, "USDC": 5000.0})
    capped = max_withdraw(book, "a", "SOL")
    assert capped.amount == 100.0 and capped.limit == "balance"
    # a borrow goes on past the deposit: 5,000 USD of health left at 100 x 1.2 per SOL
    assert max_borrow(book, "a", "SOL").amount == pytest.approx(100 + 5000 / 120, rel=1e-12)


def test_mango_max_borrow() -> None:
    """client.rs test_max_borrow: token0 (price 1, weights 1) 100 -> 100; token1 50 at price 2,
    init asset weight 0.8 -> 80 health -> 80 of token0."""
    tokens = {"T0": asset(1.0), "T1": asset(2.0, iaw=0.8, maw=0.9, ilw=1.2, mlw=1.1)}
    assert max_borrow(_book(tokens, {"T0": 100.0}), "a", "T0").amount == pytest.approx(100.0)
    assert max_borrow(_book(tokens, {"T1": 50.0}), "a", "T0").amount == pytest.approx(80.0)


def test_swap_across_the_kink() -> None:
    """10 ETH (iaw 0.8, ilw 1.2) into USDC: health rises to 20,000 at 10 ETH, then falls by
    0.2 x 2,000 per ETH borrowed: 10 + 50 = 60 ETH."""
    book = _book(
        {"USDC": asset(1.0), "ETH": asset(2000.0, iaw=0.8, maw=0.9, ilw=1.2, mlw=1.1)},
        {"ETH": 10.0},
    )
    result = max_swap(book, "a", "ETH", "USDC")
    assert result.amount == pytest.approx(60.0, rel=1e-12)
    back = max_swap(book, "a", "USDC", "ETH")  # USDC debt 1.0 vs ETH asset 0.8: 16,000 / 0.2
    assert back.amount == pytest.approx(16_000 / 0.2, rel=1e-12)


def test_perp_trade_closed_form() -> None:
    """USDC 1,000; a perp with init margin 10 %: buy or sell 1,000 / (0.1 x 50) = 200 at $50;
    long 100 already: sell 100 + 200 = 300, buy 200 - 100 = 100."""
    data = {
        "assets": {"USDC": asset(1.0), "X": asset(50.0)},
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
            {"id": "flat", "balances": {"USDC": 1000.0}},
            {
                "id": "long",
                "balances": {"USDC": 1500.0},
                "positions": [{"market": "X-PERP", "qty": 100, "entry_price": 50.0}],
            },
        ],
    }
    book = book_from_data(data)
    assert max_trade(book, "flat", "X-PERP", "buy").amount == pytest.approx(200.0)
    assert max_trade(book, "flat", "X-PERP", "sell").amount == pytest.approx(200.0)
    assert max_trade(book, "long", "X-PERP", "sell").amount == pytest.approx(400.0)
    assert max_trade(book, "long", "X-PERP", "buy").amount == pytest.approx(200.0)


def _allowed(engine: MarginEngine, result: Any, amount: float) -> bool:
    """The independent path: rebuild the account with the change, margin it, check init."""
    if result.kind == "trade":
        qty = amount if result.side == "buy" else -amount
        return engine.what_if(result.account, trades=[Trade(result.instrument, qty)]).allowed
    if result.kind in ("borrow", "withdraw"):
        return engine.what_if(result.account, withdrawals={result.instrument: amount}).allowed
    source, target = result.instrument.split(":")
    book = engine.book
    price = {a: book.assets[a].price for a in (source, target)}
    out = {source: amount, target: -amount * price[source] / price[target]}
    return engine.what_if(result.account, withdrawals=out).allowed


@pytest.mark.parametrize("account", ["basis-trader", "eth-levered", "aave-whale", "market-maker"])
def test_demo_book_against_what_if(account: str) -> None:
    """Every bounded max on the demo book is allowed by what_if and 1e-6 more is refused."""
    book = load_book(DEMO)
    engine = MarginEngine(book)
    results = max_all(book, account)
    swaps = [max_swap(book, account, "USDC", a) for a in ("ETH", "BTC")]
    checked = 0
    for result in [*results, *swaps]:
        if result.unbounded or result.amount == 0.0 or result.limit == "balance":
            continue
        assert _allowed(engine, result, result.amount * (1 - 1e-9)), result
        assert not _allowed(engine, result, result.amount * (1 + 1e-6)), result
        checked += 1
    assert checked >= 10


def test_errors_name_the_field() -> None:
    book = load_book(DEMO)
    with pytest.raises(InputError, match="market"):
        max_trade(book, "eth-levered", "NOPE", "buy")
    with pytest.raises(InputError, match="asset"):
        max_borrow(book, "eth-levered", "NOPE")
    with pytest.raises(InputError, match="swap"):
        max_swap(book, "eth-levered", "ETH", "ETH")
    with pytest.raises(NotSupportedError, match="portfolio"):
        max_borrow(book, "options-desk", "USDC")


def test_already_below_init_reports_zero() -> None:
    book = load_book(DEMO)
    result = max_borrow(book, "sol-degen", "USDC")
    assert result.amount == 0.0 and result.limit == "init health < 0"


def test_cli_max() -> None:
    import json

    from typer.testing import CliRunner

    from crossmargin.cli import app

    runner = CliRunner()
    out = runner.invoke(app, ["max", str(DEMO), "--account", "eth-levered", "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    book = load_book(DEMO)
    direct = max_borrow(book, "eth-levered", "USDC")
    (row,) = [r for r in rows if r["kind"] == "borrow" and r["instrument"] == "USDC"]
    assert row["amount"] == direct.amount
    table = runner.invoke(
        app, ["max", str(DEMO), "--account", "eth-levered", "--market", "ETH-PERP"]
    )
    assert table.exit_code == 0 and "trade sell" in table.output
    for bad in (["--swap", "ETH"], ["--borrow", "NOPE"], ["--market", "X", "--borrow", "USDC"]):
        out = runner.invoke(app, ["max", str(DEMO), "--account", "eth-levered", *bad])
        assert out.exit_code == 2 and out.output.count("\n") == 1, out.output


# ---- brute force ---------------------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=12, deadline=None)
@given(
    usdc=st.floats(-5_000, 50_000),
    eth=st.floats(0, 50),
    qty=st.floats(-100, 100),
    iaw=st.floats(0.5, 0.95),
    margin=st.floats(0.02, 0.3),
    side=st.sampled_from(["buy", "sell"]),
)
def test_max_against_a_brute_force_scan(
    usdc: float, eth: float, qty: float, iaw: float, margin: float, side: str
) -> None:
    """A scan of [0, 2 x max] through the independent what-if path: no point beyond the
    solver's max is feasible, the max itself (less 1e-9) is."""
    data = {
        "assets": {
            "USDC": asset(1.0),
            "ETH": asset(2000.0, iaw=iaw, maw=(1 + iaw) / 2, ilw=2 - iaw, mlw=1.5 - iaw / 2),
        },
        "markets": {
            "ETH-PERP": {
                "kind": "perp",
                "underlying": "ETH",
                "settle_asset": "USDC",
                "initial_margin_frac": margin,
                "maint_margin_frac": margin / 2,
                "imf_factor": 0.001,
            }
        },
        "accounts": [
            {
                "id": "a",
                "balances": {"USDC": usdc, "ETH": eth},
                "positions": [{"market": "ETH-PERP", "qty": qty, "entry_price": 1900.0}],
            }
        ],
    }
    book = book_from_data(data)
    engine = MarginEngine(book)
    for result in (
        max_trade(book, "a", "ETH-PERP", side),  # type: ignore[arg-type]
        max_borrow(book, "a", "USDC"),
        max_swap(book, "a", "ETH", "USDC"),
    ):
        if result.unbounded or result.amount == 0.0:
            continue
        beyond = result.amount * np.array([1.0 + 1e-6, 1.001, 1.01, 1.1, 1.5, 2.0, 4.0])
        feasible_beyond = [x for x in beyond if _allowed(engine, result, float(x))]
        assert not feasible_beyond, (result, feasible_beyond[:3])
        assert _allowed(engine, result, result.amount * (1 - 1e-9)), result


def test_mango_leverage() -> None:
    """client.rs::test_leverage: only deposits -> 0; tokens -9 at $1 and 5 at $2 (assets 10,
    equity 1) -> 9; token 1 and a perp short of 9 base at $1.1 with quote 9.9 -> 9.9."""
    from crossmargin.margin.solvers import leverage

    tokens = {"T0": asset(1.0), "T1": asset(2.0, iaw=0.8, maw=0.9, ilw=1.2, mlw=1.1)}
    assert leverage(_book(tokens, {"T0": 1.0}), "a") == 0.0
    assert leverage(_book(tokens, {"T0": -9.0, "T1": 5.0}), "a") == pytest.approx(9.0)
    perp_book = book_from_data(
        {
            "assets": {"T0": asset(1.0), "B": asset(1.1)},
            "markets": {
                "B-PERP": {
                    "kind": "perp",
                    "underlying": "B",
                    "settle_asset": "T0",
                    "initial_margin_frac": 0.1,
                    "maint_margin_frac": 0.1,
                }
            },
            "accounts": [
                {
                    "id": "a",
                    "balances": {"T0": 1.0},
                    "positions": [{"market": "B-PERP", "qty": -9.0, "entry_price": 1.1}],
                }
            ],
        }
    )
    assert leverage(perp_book, "a") == pytest.approx(9.9)
    # the max results carry it: buying back the short lowers it
    result = max_trade(perp_book, "a", "B-PERP", "buy")
    assert result.leverage_before == pytest.approx(9.9)


@pytest.mark.parametrize("ratio", [0.0, 0.5, 1.0])
def test_mango_target_health_ratio(ratio: float) -> None:
    """client.rs test_max_borrow at ratio 50 %: 100 of a weight-1 token -> borrow 100 (then no
    liabilities); and for a perp trade the init ratio (WA - WL) / WL at the max is the target,
    one unit more falls below it (Mango's check_max_trade)."""
    tokens = {"T0": asset(1.0), "T1": asset(2.0, iaw=0.8, maw=0.9, ilw=1.2, mlw=1.1)}
    book = _book(tokens, {"T0": 100.0})
    assert max_borrow(book, "a", "T0", min_health_ratio_frac=ratio).amount == pytest.approx(100)
    demo = load_book(DEMO)
    engine = MarginEngine(demo)
    result = max_trade(demo, "market-maker", "ETH-PERP", "buy", min_health_ratio_frac=ratio)

    def init_ratio(qty: float) -> float:
        after = engine.what_if("market-maker", trades=[Trade("ETH-PERP", qty)]).after.init
        return after.weighted_assets_usd / after.weighted_liabilities_usd - 1.0

    assert init_ratio(result.amount) == pytest.approx(ratio, abs=1e-9)
    assert init_ratio(result.amount + 1.0) < ratio


def test_cli_min_ratio() -> None:
    from typer.testing import CliRunner

    from crossmargin.cli import app

    runner = CliRunner()
    args = ["max", str(DEMO), "--account", "eth-levered", "--borrow", "USDC", "--json"]
    import json

    plain = json.loads(runner.invoke(app, args).output)[0]["amount"]
    strict = json.loads(runner.invoke(app, [*args, "--min-ratio", "50"]).output)[0]["amount"]
    assert strict < plain
    bad = runner.invoke(app, [*args, "--min-ratio", "-1"])
    assert bad.exit_code == 2 and "--min-ratio" in bad.output
