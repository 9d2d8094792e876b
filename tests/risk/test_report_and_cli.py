"""The HTML report (structure always; a headless-Chromium render when installed) and the
``crossmargin risk`` / ``crossmargin hedge`` commands."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from crossmargin.book.io import demo_book_text
from crossmargin.cli import app
from crossmargin.risk.report import analyze_account, render_html
from tests.risk.risk_data import option_book, synthetic_prices, synthetic_returns

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ACCOUNTS = [
    {
        "id": "desk",
        "balances": {"ETH": 50.0, "BTC": 1.0, "USDC": -60_000.0},
        "positions": [
            {"market": "ETH-P-2800", "qty": -40.0, "entry_price": 55.0},
            {"market": "BTC-PERP", "qty": -0.5, "entry_price": 90_000.0},
        ],
    }
]


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.tags: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        if tag == "img":
            self.images.append(values.get("src") or "")
        for key in ("src", "href"):
            if tag in ("script", "link") and values.get(key):
                self.external.append(values[key] or "")


@pytest.fixture(scope="module")
def page() -> str:
    book = option_book(ACCOUNTS)
    data = synthetic_returns(days=320)
    report = analyze_account(book, "desk", data, n_paths=2000, window=250)
    assert report.backtests and report.grid_health_usd.shape == (6, 10)
    assert np.isfinite(report.stress_health_usd).all()
    return render_html("risk report", [report], {"other": "no returns for GOV"})


def test_html_is_self_contained_with_embedded_non_empty_images(page: str) -> None:
    parser = _Images()
    parser.feed(page)
    assert page.startswith("<!DOCTYPE html>") and "</html>" in page
    assert len(parser.images) == 4  # PnL distribution, heatmap, collateral, stress
    for src in parser.images:
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert png.startswith(PNG_MAGIC) and len(png) > 5_000
    assert parser.external == [] and "http" not in page.replace("docs/risk-analytics.md", "")
    assert parser.tags.count("table") >= 2
    for caption in ("PnL distribution", "spot x vol", "Collateral composition", "stress"):
        assert caption in page
    assert "other skipped" in page


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_html_renders_in_headless_chromium(page: str, tmp_path: Path) -> None:
    from matplotlib import image

    html_file = tmp_path / "report.html"
    html_file.write_text(page, "utf-8")
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            shutil.which("chromium") or "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--screenshot={shot}",
            "--window-size=1200,2400",
            html_file.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    pixels = image.imread(shot)
    assert pixels.shape[0] >= 2400 - 1 and pixels.shape[1] >= 1200 - 1
    # not a blank page: the figures put many distinct colours on it
    assert len(np.unique(pixels.reshape(-1, pixels.shape[-1])[::97], axis=0)) > 50


def _files(tmp_path: Path, accounts: list[dict[str, object]] = ACCOUNTS) -> tuple[Path, list[Path]]:
    book = tmp_path / "book.json"
    book.write_text(option_book(accounts).model_dump_json(), "utf-8")
    csvs = []
    for symbol, close in synthetic_prices(days=320).items():
        path = tmp_path / f"{symbol}.csv"
        pd.DataFrame({"date": close.index.strftime("%Y-%m-%d"), "close": close.values}).to_csv(
            path, index=False
        )
        csvs.append(path)
    return book, csvs


def test_risk_command_json_and_html(tmp_path: Path) -> None:
    book, csvs = _files(tmp_path)
    html = tmp_path / "r.html"
    args = [
        "risk",
        str(book),
        "--account",
        "desk",
        "--paths",
        "1000",
        "--json",
        "--html",
        str(html),
    ]
    for csv in csvs:
        args += ["--returns", str(csv)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    (account,) = out["accounts"]
    assert account["account_id"] == "desk" and len(account["figures"]) == 20
    assert account["wrong_way"]["flagged"] is True  # ETH collateral behind a short ETH put
    assert html.read_text("utf-8").count("data:image/png;base64,") == 4


def test_risk_command_tables(tmp_path: Path) -> None:
    book, csvs = _files(tmp_path, [*ACCOUNTS, {"id": "hodl", "balances": {"BTC": 2.0}}])
    args = ["risk", str(book), "--paths", "1000"]
    for csv in csvs:
        args += ["--returns", str(csv)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    for title in ("VaR / ES of desk", "Backtests of desk", "Wrong-way risk", "Pool of 2"):
        assert title in result.stdout


def test_risk_command_errors_are_one_line(tmp_path: Path) -> None:
    book, csvs = _files(tmp_path)
    result = CliRunner().invoke(app, ["risk", str(book)])
    assert result.exit_code == 2 and "--returns" in result.output
    result = CliRunner().invoke(
        app, ["risk", str(book), "--returns", str(csvs[0]), "--proxy", "nonsense"]
    )
    assert result.exit_code == 2 and "--proxy" in result.output
    demo = tmp_path / "demo.yaml"
    demo.write_text(demo_book_text(), "utf-8")
    result = CliRunner().invoke(
        app, ["risk", str(demo), "--account", "aave-whale", "--returns", str(csvs[0])]
    )
    assert result.exit_code == 2 and "returns.ETH: no return series" in result.output


def test_hedge_command(tmp_path: Path) -> None:
    demo = tmp_path / "demo.yaml"
    demo.write_text(demo_book_text(), "utf-8")
    result = CliRunner().invoke(
        app, ["hedge", str(demo), "--account", "iso-trader", "--budget-usd", "100000", "--json"]
    )
    assert result.exit_code == 0, result.output
    (plan,) = json.loads(result.stdout)["accounts"]
    assert plan["account_id"] == "iso-trader" and plan["budget_hedge"] is not None
    assert "stress" in plan["scenarios"]
    result = CliRunner().invoke(app, ["hedge", str(demo), "--account", "iso-trader"])
    assert result.exit_code == 0 and "delta hedge" in result.stdout
