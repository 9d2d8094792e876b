"""Loaders: the shared CSV layouts (skipped when ../shared is absent) and bad input."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from crossmargin.errors import InputError
from crossmargin.market.loaders import (
    load_binance_liquidations,
    load_bitstamp_daily,
    load_cryptodatadownload_hourly,
    load_ohlcv_csv,
    log_returns,
)
from tests.helpers import SHARED, needs_shared


@needs_shared
def test_bitstamp_daily() -> None:
    data = load_bitstamp_daily(SHARED / "bitstamp_btc_eth_ltc_usd_daily.csv")
    assert set(data) == {"BTC", "ETH", "LTC"}
    btc = data["BTC"]
    assert btc.index[0] == pd.Timestamp("2014-11-28", tz="UTC")
    assert btc["close"].iloc[0] == 376.28  # the file's first BTC row
    assert btc.index.is_monotonic_increasing
    assert data["ETH"].index[0] > btc.index[0]  # ETH rows before its listing are dropped


@needs_shared
def test_coinbase_hourly_is_returned_oldest_first() -> None:
    btc = load_cryptodatadownload_hourly(SHARED / "coinbase_btc_usd_hourly.csv")
    assert btc.index[0] == pd.Timestamp("2017-07-01 11:00", tz="UTC")
    assert btc["close"].iloc[0] == 2509.17
    assert btc.index[-1] == pd.Timestamp("2019-10-17 09:00", tz="UTC")
    assert btc.index.is_monotonic_increasing


@needs_shared
def test_binance_minute_liquidations() -> None:
    eth = load_binance_liquidations(SHARED / "binance_ethusdt_1min_liquidations_2021-01.csv")
    assert len(eth) > 40_000
    assert eth.index[0].year == 2021 and eth.index[0].month == 1
    assert (eth["ask"] >= eth["bid"]).all()
    assert eth["mid"].iloc[0] == pytest.approx((730.8601369863013 + 730.7846771037182) / 2)
    assert eth["liq_long_qty"].iloc[0] == 51.95


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prices.csv"
    path.write_text(text)
    return path


def test_generic_csv_roundtrip_and_epoch_times(tmp_path: Path) -> None:
    path = _csv(tmp_path, "Time,Open,High,Low,Close,Volume\n2,10,12,9,11,5\n1,9,11,8,10,4\n")
    frame = load_ohlcv_csv(path, time_unit="s")
    assert list(frame["close"]) == [10.0, 11.0]  # sorted by time
    assert log_returns(frame["close"]).iloc[0] == pytest.approx(0.0953101798)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("time,open,high,low,close\n2020-01-01,1,2,1,nan\n", "finite numbers > 0"),
        ("time,open,high,low,close\n2020-01-01,1,2,1,-1\n", "finite numbers > 0"),
        ("time,open,high,low,close\n2020-01-01,1,2,1,0\n", "finite numbers > 0"),
        ("time,open,high,low,close\n2020-01-01,1,1,2,1\n", "below low"),
        (
            "time,open,high,low,close\n2020-01-01,1,2,1,1\n2020-01-01,1,2,1,1\n",
            "duplicate timestamp",
        ),
        ("date,close\n2020-01-01,1\n", "time_column"),
        ("time,open\n2020-01-01,1\n", "'close' column"),
        ("time,close\nnot-a-date,1\n", "unreadable time"),
    ],
)
def test_generic_csv_bad_input(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_ohlcv_csv(_csv(tmp_path, text))


def test_missing_file_and_short_series(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_ohlcv_csv(tmp_path / "nope.csv")
    frame = load_ohlcv_csv(_csv(tmp_path, "time,close\n2020-01-01,1\n"))
    with pytest.raises(InputError, match="two prices"):
        log_returns(frame["close"])
