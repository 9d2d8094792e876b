"""The CryptoDataDownload single-pair layout: asset named by its symbol column, volume in units.

Layout (https://www.cryptodatadownload.com/data/ - a banner line, then newest-first rows):
``unix,date,symbol,open,high,low,close,Volume BTC,Volume USD``; the shared Coinbase file is an
older variant, ``date,symbol,...,volume_btc,volume`` (its ``volume`` is USD). The liquidity
term of the dynamic haircuts is a square-root impact in units of the asset
(``crossmargin.market.liquidity.SqrtImpact``): read the USD column as units and a 1 M USD
position of BTC looked ~8,000 times smaller than it is against the day's volume (0.00 %).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from crossmargin.cli import app
from crossmargin.haircuts.dynamic import daily_volume_qty, recommend_from_history
from crossmargin.market.loaders import asset_of_pair, load_history
from tests.helpers import SHARED, needs_shared

BANNER = "https://www.CryptoDataDownload.com\n"


def _write(path: Path, n_hours: int = 24 * 40) -> pd.DataFrame:
    """An hourly BTC/USD file of the current layout, newest first; returns the rows, oldest
    first, with the numbers written."""
    rng = np.random.default_rng(5)
    times = pd.date_range("2024-01-01", periods=n_hours, freq="h", tz="UTC")
    close = 40_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.004, n_hours)))
    volume_btc = rng.uniform(50.0, 150.0, n_hours).round(4)
    rows = pd.DataFrame(
        {
            "unix": (times.asi8 // 10**9).astype(np.int64),
            "date": times.strftime("%Y-%m-%d %H:%M:%S"),
            "symbol": "BTC/USD",
            "open": close.round(2),
            "high": (close * 1.002).round(2),
            "low": (close * 0.998).round(2),
            "close": close.round(2),
            "Volume BTC": volume_btc,
            "Volume USD": (volume_btc * close).round(2),
        }
    )
    path.write_text(BANNER + rows.iloc[::-1].to_csv(index=False))
    return rows


def test_asset_named_by_symbol_and_volume_read_in_units(tmp_path: Path) -> None:
    path = tmp_path / "Coinbase_BTCUSD_1h.csv"
    rows = _write(path)
    history = load_history(path)
    assert list(history) == ["BTC"]  # not the file name
    frame = history["BTC"]
    assert frame.index.is_monotonic_increasing and len(frame) == len(rows)
    np.testing.assert_array_equal(frame["volume"].to_numpy(), rows["Volume BTC"].to_numpy())
    np.testing.assert_array_equal(frame["volume_usd"].to_numpy(), rows["Volume USD"].to_numpy())
    assert frame.index[0] == pd.Timestamp("2024-01-01", tz="UTC")
    # 30 days of hourly BTC volume, per day: 24 x the hourly mean
    recent = rows["Volume BTC"].to_numpy()[-30 * 24 :]
    assert daily_volume_qty(frame) == pytest.approx(24.0 * recent.mean(), rel=1e-9)


def test_liquidity_term_is_charged_on_units(tmp_path: Path) -> None:
    path = tmp_path / "btc.csv"
    _write(path)
    frame = load_history(path)["BTC"]
    ours = recommend_from_history("BTC", frame, position_usd=5_000_000.0)
    in_usd = frame.assign(volume=frame["volume_usd"])  # the old reading of the file
    wrong = recommend_from_history("BTC", in_usd, position_usd=5_000_000.0)
    assert ours.liquidity_frac > 1e-3  # 5 M USD against ~2,400 BTC a day
    # square-root impact: volume in USD instead of units is ~price times larger
    ratio = ours.liquidity_frac / wrong.liquidity_frac
    assert ratio == pytest.approx(math.sqrt(frame["close"].iloc[-30 * 24 :].mean()), rel=0.05)


@pytest.mark.parametrize(
    ("symbol", "unit", "asset"),
    [
        ("BTC/USD", None, "BTC"),
        ("ETH-USDT", None, "ETH"),
        ("BTCUSD", "BTC", "BTC"),
        ("SOLUSDC", None, "SOL"),
        ("ethusd", None, "ETH"),
    ],
)
def test_asset_of_pair(symbol: str, unit: str | None, asset: str) -> None:
    assert asset_of_pair(symbol, unit) == asset


def test_an_explicit_asset_name_wins(tmp_path: Path) -> None:
    path = tmp_path / "btc.csv"
    _write(path, 48)
    assert list(load_history(path, asset="XBT")) == ["XBT"]


@needs_shared
def test_real_coinbase_file_names_btc_and_charges_liquidity() -> None:
    path = SHARED / "coinbase_btc_usd_hourly.csv"
    frame = load_history(path)["BTC"]
    # the file's first data row (newest): 2019-10-17 09-AM, volume_btc 61.25, volume 492394.56
    assert frame.index[-1] == pd.Timestamp("2019-10-17 09:00", tz="UTC")
    assert frame["volume"].iloc[-1] == 61.25
    assert frame["volume_usd"].iloc[-1] == 492394.56
    result = CliRunner().invoke(app, ["haircuts", str(path), "--json"])
    assert result.exit_code == 0, result.output
    (asset,) = json.loads(result.stdout)["assets"]
    assert asset["asset"] == "BTC"
    assert asset["components"]["liquidity_frac"] > 1e-3
