"""Optional download of OHLCV candles through ccxt (``pip install "crossmargin[download]"``).

For users with network access; the tests replay a recorded response through the same code path
and never touch the network. Candles come back in the generic OHLCV layout that
:func:`crossmargin.market.loaders.load_ohlcv_csv` reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import pandas as pd

from crossmargin.errors import InputError, NotSupportedError
from crossmargin.market.loaders import validate_ohlcv


class CandleSource(Protocol):
    """The part of a ccxt exchange this module uses."""

    def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: int | None = None, limit: int | None = None
    ) -> list[list[float]]: ...

    def parse_timeframe(self, timeframe: str) -> int: ...


def ccxt_exchange(exchange_id: str) -> CandleSource:
    """A ccxt exchange client by id (e.g. ``"binance"``), rate-limited."""
    try:
        import ccxt  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise NotSupportedError(
            'downloading needs ccxt: pip install "crossmargin[download]"'
        ) from None
    if exchange_id not in ccxt.exchanges:
        raise InputError("exchange", exchange_id, "not a ccxt exchange id")
    client: CandleSource = getattr(ccxt, exchange_id)({"enableRateLimit": True})
    return client


def download_ohlcv(
    source: CandleSource,
    symbol: str,
    timeframe: str = "1d",
    since: pd.Timestamp | str | None = None,
    until: pd.Timestamp | str | None = None,
    page_limit: int = 1000,
    max_pages: int = 1000,
) -> pd.DataFrame:
    """Page through ``fetch_ohlcv`` from ``since`` to ``until`` and return validated candles."""
    step_ms = int(source.parse_timeframe(timeframe)) * 1000
    start = None if since is None else int(pd.Timestamp(since, tz="UTC").value // 1_000_000)
    stop = None if until is None else int(pd.Timestamp(until, tz="UTC").value // 1_000_000)
    rows: list[list[float]] = []
    for _ in range(max_pages):
        page = source.fetch_ohlcv(symbol, timeframe, since=start, limit=page_limit)
        if not page:
            break
        fresh = [row for row in page if not rows or row[0] > rows[-1][0]]
        if not fresh:
            break
        rows.extend(fresh)
        last = int(rows[-1][0])
        if (stop is not None and last >= stop) or len(page) < page_limit:
            break
        start = last + step_ms
    if not rows:
        raise InputError("download", f"{symbol} {timeframe}", "the exchange returned no candles")
    frame = pd.DataFrame(rows, columns=["time", "open", "high", "low", "close", "volume"])
    if stop is not None:
        frame = frame[frame["time"] <= stop]
    frame.index = pd.to_datetime(frame.pop("time"), unit="ms", utc=True)
    frame.index.name = "time"
    return validate_ohlcv(frame, f"{symbol} {timeframe}")


def save_ohlcv(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write candles in the generic layout (ISO times) for :func:`load_ohlcv_csv`."""
    file = Path(path)
    out = frame.copy()
    out.index = out.index.strftime("%Y-%m-%dT%H:%M:%SZ")
    out.to_csv(file, index_label="time")
    return file
