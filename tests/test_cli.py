"""The command line: output shape, JSON contract, and one-line errors with exit status 2."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crossmargin.book.io import demo_book_text
from crossmargin.cli import app

runner = CliRunner()
DEMO_PATH = (
    Path(__file__).resolve().parents[1] / "src" / "crossmargin" / "examples" / "demo_book.yaml"
)


@pytest.fixture
def book_file(tmp_path: Path) -> Path:
    path = tmp_path / "book.yaml"
    path.write_text(demo_book_text())
    return path


def test_demo_runs_end_to_end() -> None:
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    for text in ("basis-trader", "LIQUIDATABLE", "Liquidation prices", "cross frees"):
        assert text in result.output


def test_demo_json_and_show_book() -> None:
    result = runner.invoke(app, ["demo", "--json"])
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert {row["account_id"] for row in data["compare"]} == {
        a["account_id"] for a in data["accounts"]
    }
    shown = runner.invoke(app, ["demo", "--show-book"])
    assert shown.output == demo_book_text()


def test_margin_json_contract(book_file: Path) -> None:
    result = runner.invoke(app, ["margin", str(book_file), "--json"])
    assert result.exit_code == 0, result.output
    accounts = json.loads(result.output)["accounts"]
    assert len(accounts) == 7
    for account in accounts:
        assert {"equity_usd", "init", "maint", "liquidatable", "liquidation_prices"} <= set(account)
        for level in ("init", "maint"):
            assert {
                "health_usd",
                "weighted_assets_usd",
                "weighted_liabilities_usd",
                "health_ratio",
            } <= set(account[level])
            figures = account[level]
            assert figures["health_usd"] == pytest.approx(
                figures["weighted_assets_usd"] - figures["weighted_liabilities_usd"]
            )
        assert account["liquidatable"] == (account["maint"]["health_usd"] < 0)
    iso = next(a for a in accounts if a["mode"] == "isolated")
    assert [b["name"] for b in iso["buckets"]] == ["free", "BTC-PERP", "ETH-PERP", "SOL-PERP"]


def test_margin_one_account_with_price_and_mode(book_file: Path) -> None:
    base = runner.invoke(app, ["margin", str(book_file), "--json", "--account", "eth-levered"])
    moved = runner.invoke(
        app,
        ["margin", str(book_file), "--json", "--account", "eth-levered", "--price", "ETH=2400"],
    )
    before = json.loads(base.output)["accounts"]
    after = json.loads(moved.output)["accounts"]
    assert len(before) == len(after) == 1
    assert after[0]["liquidatable"] and not before[0]["liquidatable"]
    iso = runner.invoke(app, ["margin", str(book_file), "--json", "--mode", "isolated"])
    assert all(a["mode"] == "isolated" for a in json.loads(iso.output)["accounts"])


def test_a_bucket_without_debt_reads_no_debt_not_infinity(book_file: Path) -> None:
    """The health ratio WA / WL of iso-trader's free bucket (no liabilities) is unbounded: the
    table says so in words, JSON gives null; never a printed inf."""
    table = runner.invoke(app, ["margin", str(book_file)], env={"COLUMNS": "200"})
    free = next(line for line in table.output.splitlines() if "└ free" in line)
    assert "no debt" in free and "∞" not in table.output and "inf" not in free
    data = json.loads(runner.invoke(app, ["margin", str(book_file), "--json"]).output)
    iso = next(a for a in data["accounts"] if a["account_id"] == "iso-trader")
    assert any(b["maint"]["health_ratio"] is None for b in iso["buckets"])


def test_margin_explain(book_file: Path) -> None:
    result = runner.invoke(
        app, ["margin", str(book_file), "--json", "--account", "sol-degen", "--explain", "maint"]
    )
    data = json.loads(result.output)
    rows = data["contributions"]["rows"]
    assert {r["name"] for r in rows} == {"SOL", "USDT", "USDC", "SOL-PERP"}
    total = sum(r["contribution_usd"] for r in rows)
    assert total == pytest.approx(data["accounts"][0]["maint"]["health_usd"], rel=1e-12)
    table = runner.invoke(
        app, ["margin", str(book_file), "--account", "sol-degen", "--explain", "init"]
    )
    assert "contributions to init health" in table.output
    bad = runner.invoke(app, ["margin", str(book_file), "--explain", "worst"])
    assert bad.exit_code == 2 and "level" in bad.output


def test_compare_json(book_file: Path) -> None:
    result = runner.invoke(app, ["compare", str(book_file), "--json"])
    rows = json.loads(result.output)["accounts"]
    for row in rows:
        assert row["cross_required_usd"] <= row["isolated_required_usd"] + 1e-6
        assert row["freed_usd"] == pytest.approx(
            row["isolated_required_usd"] - row["cross_required_usd"]
        )


def test_what_if_command(book_file: Path) -> None:
    result = runner.invoke(
        app,
        [
            "what-if",
            str(book_file),
            "--account",
            "basis-trader",
            "--trade",
            "BTC-PERP=10@91000",
            "--withdraw",
            "USDC=1000",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["allowed"] is True
    assert data["after"]["equity_usd"] != data["before"]["equity_usd"]


def test_schema_is_json_schema() -> None:
    result = runner.invoke(app, ["schema"])
    schema = json.loads(result.output)
    assert {"assets", "markets", "accounts"} <= set(schema["properties"])
    assert "Asset" in schema["$defs"] and "OptionMarket" in schema["$defs"]


@pytest.mark.parametrize(
    ("args", "text", "message"),
    [
        (["margin"], "assets:\n  X: {price: .nan}\n", "assets.X.price"),
        (["margin"], "assets: [1\n", "not valid YAML or JSON"),
        (["margin", "--account", "nobody"], None, "no account with this id"),
        (["margin", "--price", "ETH=-3"], None, "prices.ETH"),
        (["margin", "--price", "ETH"], None, "expected NAME=NUMBER"),
        (["margin", "--mode", "spot"], None, "--mode"),
        (["what-if", "--account", "sol-degen", "--trade", "XYZ=1"], None, "unknown market"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, book_file: Path, args: list[str], text: str | None, message: str
) -> None:
    path = book_file
    if text is not None:
        path = tmp_path / "bad.yaml"
        path.write_text(text)
    command, *options = args
    result = runner.invoke(app, [command, str(path), *options])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert result.output.strip().count("\n") == 0  # one line


def test_installed_script_exits_2_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"assets": {"ETH": {"price": -1}}}')
    proc = subprocess.run(
        [sys.executable, "-c", "from crossmargin.cli import main; main()", "margin", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "assets.ETH.price" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_haircuts_command(tmp_path: Path) -> None:
    rows = ["time,open,high,low,close,volume"]
    price = 100.0
    for day in range(200):
        close = price * (1.03 if day % 2 else 0.98)
        high, low = max(price, close) * 1.01, min(price, close) * 0.99
        when = date(2024, 1, 1) + timedelta(days=day)
        rows.append(f"{when.isoformat()},{price},{high},{low},{close},50000")
        price = close
    path = tmp_path / "SOL.csv"
    path.write_text("\n".join(rows) + "\n")
    result = runner.invoke(app, ["haircuts", str(path), "--json", "--vol", "parkinson"])
    assert result.exit_code == 0, result.output
    (rec,) = json.loads(result.output)["assets"]
    assert rec["asset"] == "SOL"
    weights = rec["weights"]
    assert 0 <= weights["init_asset_weight"] <= weights["maint_asset_weight"] <= 1
    assert weights["init_liab_weight"] >= weights["maint_liab_weight"] >= 1
    assert rec["components"]["liquidity_frac"] > 0  # a volume column is present
    table = runner.invoke(app, ["haircuts", str(path)])
    assert "Recommended weights" in table.output
    bad = runner.invoke(app, ["haircuts", str(path), "--vol", "magic"])
    assert bad.exit_code == 2 and "--vol" in bad.output
    missing = runner.invoke(app, ["haircuts", str(path), "--assets", "BTC"])
    assert missing.exit_code == 2 and "not in the file" in missing.output


def test_error_text_keeps_brackets(tmp_path: Path) -> None:
    """Field paths such as accounts[0] must survive the terminal's markup."""
    path = tmp_path / "book.yaml"
    path.write_text(
        "assets:\n  USDC: {price: 1, init_asset_weight: 1, maint_asset_weight: 1,"
        " init_liab_weight: 1, maint_liab_weight: 1}\naccounts:\n  - {id: a, balances: {X: 1}}\n"
    )
    result = runner.invoke(app, ["margin", str(path)])
    assert result.exit_code == 2
    assert "accounts[0].balances.X" in result.output


def test_liquidate_json_and_journal(tmp_path: Path) -> None:
    """`crossmargin liquidate` on the demo book after a crash: JSON result and a JSONL journal."""
    journal = tmp_path / "journal.jsonl"
    result = runner.invoke(
        app,
        [
            "liquidate",
            str(DEMO_PATH),
            "--shock",
            "ETH=-20%",
            "--shock",
            "BTC=-20%",
            "--shock",
            "SOL=-20%",
            "--policy",
            "drift",
            "--journal",
            str(journal),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    statuses = {a["account"]: a["status"] for a in data["accounts"]}
    assert statuses["eth-levered"] == "restored"
    assert len(journal.read_text().splitlines()) == len(data["events"]) + 2 > 2  # begin, commit


def test_liquidate_bad_input_is_one_line() -> None:
    result = runner.invoke(app, ["liquidate", str(DEMO_PATH), "--shock", "BTC=-120%"])
    assert result.exit_code == 2
    assert "cannot fall 100 %" in result.output
    result = runner.invoke(app, ["liquidate", str(DEMO_PATH), "--policy", "binance"])
    assert result.exit_code == 2 and "unknown policy" in result.output


def test_write_examples_gives_the_files_the_readme_uses(tmp_path: Path) -> None:
    from crossmargin.book.io import load_book
    from crossmargin.market.loaders import load_history
    from crossmargin.portfolio import import_derive

    result = runner.invoke(app, ["demo", "--write-examples", str(tmp_path)])
    assert result.exit_code == 0, result.output
    book = load_book(tmp_path / "book.yaml")
    history = load_history(tmp_path / "prices.csv")
    assert sorted(history) == ["AAVE", "BTC", "ETH", "wstETH"]
    for symbol, frame in history.items():
        assert len(frame) == 730 and {"close", "volume"} <= set(frame.columns)
        # the simulated history ends at the demo book's price on its as_of date
        assert frame["close"].iloc[-1] == pytest.approx(book.assets[symbol].price, rel=1e-5)
        assert frame.index[-1].date() == book.as_of.date()
    converted = import_derive(tmp_path / "case.json")
    assert converted["mismatches"] == [] and converted["profile"]["name"] == "derive-pm2"
    assert converted["margin"]["maint"]["margin_usd"] > 0


def test_unknown_account_lists_the_ids_and_the_nearest(tmp_path: Path) -> None:
    path = tmp_path / "book.yaml"
    path.write_text(demo_book_text())
    result = runner.invoke(app, ["margin", str(path), "--account", "eth-lever"])
    assert result.exit_code == 2
    assert "did you mean 'eth-levered'?" in result.output
    assert "basis-trader" in result.output and "options-desk" in result.output


def test_what_if_refused_exits_3(book_file: Path) -> None:
    args = ["what-if", str(book_file), "--account", "sol-degen", "--trade", "SOL-PERP=100"]
    table = runner.invoke(app, args)
    assert table.exit_code == 3, table.output
    assert "refused: init health < 0 after the change" in table.output
    as_json = runner.invoke(app, [*args, "--json"])
    assert as_json.exit_code == 3 and json.loads(as_json.output)["allowed"] is False


def test_portfolio_mode_prints_no_empty_liquidation_table(book_file: Path) -> None:
    """Portfolio accounts have liquidation prices (where the scenario-grid MM crosses zero,
    issue #15); the table is never printed empty."""
    result = runner.invoke(app, ["margin", str(book_file), "--mode", "portfolio"])
    assert result.exit_code == 0, result.output
    table = result.output.split("Liquidation prices", 1)[1].split("Portfolio margin", 1)[0]
    assert "options-desk" in table and "ETH" in table
    assert "IM portfolio > IM cross for" in runner.invoke(app, ["compare", str(book_file)]).output


def _command_paths() -> list[list[str]]:
    paths = [[c.name or c.callback.__name__] for c in app.registered_commands]  # type: ignore[union-attr]
    for group in app.registered_groups:
        sub = group.typer_instance
        assert sub is not None and group.name is not None
        paths += [[group.name, c.name or c.callback.__name__] for c in sub.registered_commands]  # type: ignore[union-attr]
    return paths


@pytest.mark.parametrize("path", _command_paths(), ids=" ".join)
def test_help_reads_like_a_tool(path: list[str]) -> None:
    """Value names, not Python types; no raw markup; examples in every command's help."""
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    text = result.output
    for python in ("<bool>", "<str>", "<int>", "<float>", "<path>", "list[", "{file}", "``"):
        assert python not in text, (path, python)
    assert "Examples" in text and f"crossmargin {' '.join(path)}" in text


def test_download_help_keeps_the_extra_name() -> None:
    result = CliRunner().invoke(app, ["download", "--help"], env={"COLUMNS": "200"})
    assert "crossmargin[download]" in result.output


def test_few_paths_warning_counts_the_tail() -> None:
    from crossmargin.commands.common import few_paths_warning

    # 50 paths: 0.5 beyond the 99 % quantile and 2.5 beyond the 95 % one (< 10 each)
    message = few_paths_warning(50, (0.95, 0.99), "VaR")
    assert message is not None and "0.5 paths beyond the 99 %" in message
    assert "--paths 1,000" in message and "95/99 %" in message
    assert few_paths_warning(1_000, (0.95, 0.99), "VaR") is None  # exactly 10 in the tail
    assert "--paths 1,000" in (few_paths_warning(999, (0.99,), "VaR") or "")
    assert few_paths_warning(0, (0.99,), "VaR") is None  # no Monte Carlo asked for


def test_simulate_warns_when_paths_cannot_estimate_the_tail() -> None:
    from crossmargin.commands.simulate import MC_LEVELS
    from crossmargin.simulation.montecarlo import LEVELS

    assert MC_LEVELS == LEVELS
    args = ["simulate", "--generate", "200", "--shock", "ETH=-25%", "--paths", "50", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert "not estimable" in data["warnings"][0]


def test_json_usd_figures_carry_no_summation_noise(book_file: Path) -> None:
    from crossmargin.commands.common import clean_usd

    assert clean_usd({"a_usd": 3684250.0000000005, "n": 0.1 + 0.2}) == {
        "a_usd": 3684250.0,
        "n": 0.30000000000000004,  # not a USD figure: untouched
    }
    assert clean_usd({"prices_usd": {"ETH": 10384.800000000047}}) == {
        "prices_usd": {"ETH": 10384.8}
    }
    text = runner.invoke(app, ["margin", str(book_file), "--json"]).output
    noisy = re.findall(r"\d+\.\d*(?:0000000|9999999)\d+", text)
    assert not noisy, noisy[:5]


def test_insurance_and_socialized_steps_show_their_own_part(book_file: Path) -> None:
    """The fund (20,000 plus the fees drift's adaptive insurance fee collected in the run)
    pays part of a 48,708 deficit: -48,708 -> -(48,708 - paid), then the rest is socialized
    -(48,708 - paid) -> 0 (issue #18: it showed -48,708 -> 0 twice)."""
    args = ["liquidate", str(book_file), "--shock", "BTC=-30%", "--policy", "drift"]
    result = runner.invoke(app, [*args, "--insurance-fund", "20000"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    insurance = next(line for line in result.output.splitlines() if "│ insurance" in line)
    socialize = next(line for line in result.output.splitlines() if "│ socialize" in line)
    paid = float(insurance.split("│")[5].replace(",", ""))  # the step's USD column
    assert 20_000 <= paid < 48_708
    left = f"-{48_708 - paid:,.0f}"
    assert f"-48,708 -> {left}" in insurance and f"{left} -> 0" in socialize
    assert "insurance fund paid out" in result.output  # human flow labels, not keys
