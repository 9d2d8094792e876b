"""The ccxt downloader, replayed offline from a response in ccxt's layout (no network)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from crossmargin.errors import InputError, NotSupportedError
from crossmargin.market.download import ccxt_exchange, download_ohlcv, save_ohlcv
from crossmargin.market.loaders import load_ohlcv_csv

FIXTURE = json.loads((Path(__file__).parent / "data" / "ccxt_btcusdt_1d.json").read_text())


class ReplayExchange:
    """Answers ``fetch_ohlcv`` from recorded candles, honouring ``since`` and ``limit``."""

    def __init__(self, candles: list[list[float]]) -> None:
        self.candles = candles
        self.calls: list[tuple[int | None, int | None]] = []

    def parse_timeframe(self, timeframe: str) -> int:
        return {"1d": 86400, "1h": 3600}[timeframe]

    def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: int | None = None, limit: int | None = None
    ) -> list[list[float]]:
        self.calls.append((since, limit))
        rows = [c for c in self.candles if since is None or c[0] >= since]
        return rows[:limit] if limit else rows


def test_pages_until_the_end_and_roundtrips_through_csv(tmp_path: Path) -> None:
    exchange = ReplayExchange(FIXTURE["candles"])
    frame = download_ohlcv(exchange, "BTC/USDT", "1d", since="2025-01-01", page_limit=3)
    assert len(frame) == 8 and len(exchange.calls) == 3  # 3 + 3 + 2 candles
    assert frame.index[0] == pd.Timestamp("2025-01-01", tz="UTC")
    assert frame["close"].iloc[-1] == 95043.5
    path = save_ohlcv(frame, tmp_path / "btc.csv")
    again = load_ohlcv_csv(path)
    pd.testing.assert_frame_equal(again, frame, check_freq=False)


def test_until_cuts_and_overlapping_pages_do_not_duplicate() -> None:
    candles = FIXTURE["candles"]
    frame = download_ohlcv(ReplayExchange(candles), "BTC/USDT", "1d", until="2025-01-04")
    assert list(frame.index.day) == [1, 2, 3, 4]


def test_bad_responses() -> None:
    with pytest.raises(InputError, match="no candles"):
        download_ohlcv(ReplayExchange([]), "BTC/USDT")
    bad = [list(row) for row in FIXTURE["candles"]]
    bad[2][4] = -1.0
    with pytest.raises(InputError, match="finite numbers > 0"):
        download_ohlcv(ReplayExchange(bad), "BTC/USDT")


def test_ccxt_is_optional() -> None:
    try:
        import ccxt  # noqa: F401
    except ImportError:
        with pytest.raises(NotSupportedError, match="crossmargin\\[download\\]"):
            ccxt_exchange("binance")
    else:
        with pytest.raises(InputError, match="not a ccxt exchange"):
            ccxt_exchange("no-such-exchange")
