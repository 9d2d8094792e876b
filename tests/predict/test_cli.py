"""``crossmargin predict`` and ``crossmargin train``: JSON contract, HTML reports, model files
and one-line errors with exit status 2. The commands are registered on a local app (the same
``register`` the main CLI calls)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from crossmargin.book.io import demo_book_text
from crossmargin.commands.predict import register
from tests.predict.helpers import SHARED, synthetic_minute_frame, write_binance_csv

runner = CliRunner()
app = typer.Typer(pretty_exceptions_enable=False)
register(app)


@app.callback()
def _root() -> None:
    """A group (two commands) like the real CLI."""


@pytest.fixture
def book_file(tmp_path: Path) -> Path:
    path = tmp_path / "book.yaml"
    path.write_text(demo_book_text())
    return path


def _error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    return lines[0]


def test_predict_json_baseline_and_monte_carlo(book_file: Path, tmp_path: Path) -> None:
    html = tmp_path / "p.html"
    result = runner.invoke(
        app,
        [
            "predict",
            str(book_file),
            "--horizon",
            "1d",
            "--paths",
            "200",
            "--steps",
            "6",
            "--json",
            "--html",
            str(html),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["horizon"] == "1d" and data["horizon_days"] == 1.0
    rows = {a["account"]: a for a in data["accounts"]}
    assert rows["sol-degen"]["baseline"]["probability"] == 1.0  # liquidatable now
    assert rows["sol-degen"]["monte_carlo"]["probability"] == 1.0
    iso = rows["iso-trader"]["baseline"]
    assert iso["asset"] == "ETH" and iso["direction"] == "up" and 0.1 < iso["probability"] < 1
    for a in data["accounts"]:
        assert 0.0 <= a["baseline"]["probability"] <= 1.0
        assert a.get("learned") is None
    assert "data:image/png;base64," in html.read_text()


@pytest.mark.skipif(
    not (SHARED / "bitstamp_btc_eth_ltc_usd_daily.csv").is_file(),
    reason="../shared/data is absent (the shared data folder is not in a fresh clone)",
)
def test_predict_with_volatilities_from_a_price_history(book_file: Path) -> None:
    """--returns: EWMA daily vols of the history (SOL and AAVE by proxy, wstETH by alias,
    stablecoins 0) replace the defaults; the baseline moves with them."""
    history = str(SHARED / "bitstamp_btc_eth_ltc_usd_daily.csv")
    args = ["predict", str(book_file), "--horizon", "1d", "--json"]
    default = json.loads(runner.invoke(app, args).output)
    result = runner.invoke(
        app, [*args, "--returns", history, "--proxy", "SOL=ETH", "--proxy", "AAVE=ETH"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    sigma = data["market"]["sigma_daily"]
    assert sigma["USDC"] == 0.0 and sigma["SOL"] == sigma["ETH"] == sigma["wstETH"] > 0.0
    assert sigma["ETH"] != 0.04
    assert data["market"]["source"]["SOL"] == "EWMA of proxy ETH"
    p = {a["account"]: a["baseline"]["probability"] for a in data["accounts"]}
    p0 = {a["account"]: a["baseline"]["probability"] for a in default["accounts"]}
    assert p["eth-levered"] != p0["eth-levered"]
    result = runner.invoke(app, [*args, "--returns", history])  # SOL has no series
    assert result.exit_code == 2 and "SOL" in _error_line(result.output)


def test_predict_table_and_horizon_errors(book_file: Path) -> None:
    result = runner.invoke(app, ["predict", str(book_file), "--account", "iso-trader"])
    assert result.exit_code == 0, result.output
    assert "iso-trader" in result.output and "basis-trader" not in result.output
    assert "within 1h" in result.output
    for bad in ("1x", "0h", "-2d", "h"):
        result = runner.invoke(app, ["predict", str(book_file), "--horizon", bad])
        assert result.exit_code == 2
        line = _error_line(result.output)
        assert line.startswith("error: --horizon") and repr(bad) in line
    result = runner.invoke(app, ["predict"])
    assert result.exit_code == 2 and "BOOK" in _error_line(result.output)


@pytest.fixture(scope="module")
def accounts_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("model")
    out, html = folder / "acc.json", folder / "acc.html"
    result = runner.invoke(
        app,
        [
            "train",
            "accounts",
            "--epochs",
            "40",
            "--accounts",
            "60",
            "--steps",
            "8",
            "--seed",
            "1",
            "--out",
            str(out),
            "--html",
            str(html),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Held-out scores" in result.output and "analytic" in result.output
    return out, html


def test_train_then_predict_with_the_model(
    accounts_model: tuple[Path, Path], book_file: Path
) -> None:
    out, html = accounts_model
    page = html.read_text()
    assert "Reliability diagram" in page and "Held-out scores" in page
    assert page.count("data:image/png;base64,") == 2
    envelope = json.loads(out.read_text())
    assert envelope["version"] == 1 and len(envelope["content_sha256"]) == 64
    assert envelope["data"]["epochs"] == 40 and envelope["horizon"]["days"] == 1.0
    result = runner.invoke(app, ["predict", str(book_file), "--model", str(out), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["horizon"] == "1d"  # the model's
    assert data["model"]["content_sha256"] == envelope["content_sha256"]
    for a in data["accounts"]:
        learned = a["learned"]
        assert 0.0 <= learned["probability"] <= 1.0
        if a["account"] == "sol-degen":
            assert learned["probability"] == 1.0  # liquidatable now
        else:
            assert len(learned["drivers"]) == 3
    # the demo's isolated short sits 0.5 sd from liquidation: nothing like the training books
    iso = next(a for a in data["accounts"] if a["account"] == "iso-trader")
    assert "distance_sd" in iso["learned"]["outside_training_range"]
    # a horizon other than the model's is refused
    result = runner.invoke(app, ["predict", str(book_file), "--model", str(out), "--horizon", "1h"])
    assert result.exit_code == 2 and "trained for 1d" in _error_line(result.output)


def test_predict_refuses_a_bad_model_file(
    accounts_model: tuple[Path, Path], book_file: Path, tmp_path: Path
) -> None:
    out, _ = accounts_model
    envelope = json.loads(out.read_text())
    from crossmargin.predict.model import content_hash

    newer = dict(envelope, version=99)
    newer["content_sha256"] = content_hash(newer)
    (tmp_path / "v99.json").write_text(json.dumps(newer))
    edited = dict(envelope, created="2000-01-01T00:00:00+00:00")
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    expectations = {
        "v99.json": "error: model.version: unknown model version",
        "edited.json": "error: model.content_sha256: content hash mismatch",
    }
    for name, start in expectations.items():
        result = runner.invoke(app, ["predict", str(book_file), "--model", str(tmp_path / name)])
        assert result.exit_code == 2
        assert _error_line(result.output).startswith(start)


def test_train_market_and_the_wave_alert(tmp_path: Path) -> None:
    csv = write_binance_csv(synthetic_minute_frame(4_000, seed=5), tmp_path / "minutes.csv")
    out = tmp_path / "wave.pkl"
    result = runner.invoke(
        app, ["train", "market", "--data", str(csv), "--minutes", "10", "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["evaluation"]["kind"] == "market" and len(data["content_sha256"]) == 64
    result = runner.invoke(
        app, ["predict", "--market", str(csv), "--model", str(out), "--last", "4", "--json"]
    )
    assert result.exit_code == 0, result.output
    wave = json.loads(result.output)
    assert wave["minutes_ahead"] == 10 and len(wave["rows"]) == 4
    # the wrong kind of model for a book, and a book model for --market
    result = runner.invoke(app, ["predict", "--market", str(csv)])
    assert result.exit_code == 2 and "--model" in _error_line(result.output)


def test_train_bad_input(tmp_path: Path) -> None:
    csv = write_binance_csv(synthetic_minute_frame(1_000, seed=5), tmp_path / "short.csv")
    cases = [
        (
            ["train", "market", "--data", str(csv), "--out", str(tmp_path / "m.json")],
            "error: data: too short",
        ),
        (["train", "market", "--out", str(tmp_path / "m.json")], "error: --data"),
        (["train", "market", "--data", str(csv), "--out", str(tmp_path / "m.txt")], "error: --out"),
        (["train", "weather", "--out", str(tmp_path / "m.json")], "error: TARGET"),
        (
            ["train", "accounts", "--epochs", "3", "--out", str(tmp_path / "m.json")],
            "error: epochs: too short",
        ),
        (
            ["train", "accounts", "--horizon", "1x", "--out", str(tmp_path / "m.json")],
            "error: --horizon",
        ),
        (
            ["train", "accounts", "--calibration", "beta", "--out", str(tmp_path / "m.json")],
            "error: --calibration",
        ),
    ]
    for args, start in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert _error_line(result.output).startswith(start), (args, result.output)
    nan_csv = tmp_path / "nan.csv"
    text = csv.read_text().splitlines()
    cells = text[300].split(",")
    cells[3] = "nan"
    text[300] = ",".join(cells)
    nan_csv.write_text("\n".join(text) + "\n")
    result = runner.invoke(
        app, ["train", "market", "--data", str(nan_csv), "--out", str(tmp_path / "m.json")]
    )
    assert result.exit_code == 2
    assert "liq_long_qty" in _error_line(result.output)
