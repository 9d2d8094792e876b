"""Loaders of price histories: the shared CSV layouts and a generic OHLCV CSV.

Every loader returns data sorted by time (ascending), indexed by a timezone-aware UTC
``DatetimeIndex``, and refuses data that would give a silently wrong number: missing or
non-numeric prices, non-positive prices, high below low, duplicate timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from crossmargin.errors import InputError

OHLC = ("open", "high", "low", "close")


def _read_csv(path: str | Path, **kwargs: object) -> pd.DataFrame:
    file = Path(path)
    if not file.is_file():
        raise InputError("file", str(file), "no such file")
    try:
        frame: pd.DataFrame = pd.read_csv(file, **kwargs)
        return frame
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError("file", str(file), f"not a readable CSV: {exc}") from None


def validate_ohlcv(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """Check an OHLC(V) frame: sorted unique times, finite positive prices, low <= high.

    Rows where every price is missing are dropped (an asset not yet listed); a row with only
    some prices missing is an error naming the first such row.
    """
    present = [c for c in OHLC if c in frame.columns]
    if "close" not in present:
        raise InputError(name, list(frame.columns), "needs at least a 'close' column")
    frame = frame.dropna(how="all", subset=present)
    if frame.empty:
        raise InputError(name, "empty", "no rows with prices")
    values = frame[present].apply(pd.to_numeric, errors="coerce")
    bad = values.isna().any(axis=1) | ~np.isfinite(values).all(axis=1) | (values <= 0).any(axis=1)
    if bad.any():
        when = frame.index[bad.to_numpy()][0]
        row = frame.loc[when, present]
        raise InputError(f"{name}[{when}]", row.to_dict(), "prices must be finite numbers > 0")
    if "high" in present and "low" in present:
        inverted = values["high"] < values["low"]
        if inverted.any():
            when = frame.index[inverted.to_numpy()][0]
            raise InputError(f"{name}[{when}].high", values.loc[when, "high"], "below low")
    if frame.index.has_duplicates:
        when = frame.index[frame.index.duplicated()][0]
        raise InputError(f"{name}.index", str(when), "duplicate timestamp")
    frame = frame.copy()
    frame[present] = values
    return frame.sort_index()


def load_bitstamp_daily(path: str | Path) -> dict[str, pd.DataFrame]:
    """The shared Bitstamp daily file: one ``ASSET:field`` column group per asset.

    Returns ``{asset: OHLCV frame}``; rows before an asset's first price are dropped.
    """
    raw = _read_csv(path, index_col=0)
    try:
        raw.index = pd.to_datetime(raw.index, utc=True)
    except (ValueError, TypeError) as exc:
        raise InputError("file", str(path), f"first column must be dates: {exc}") from None
    groups: dict[str, pd.DataFrame] = {}
    for column in raw.columns:
        asset, sep, field = str(column).partition(":")
        if not sep:
            raise InputError("column", column, "expected ASSET:field (e.g. BTC:close)")
        groups.setdefault(asset, pd.DataFrame(index=raw.index))[field] = raw[column]
    return {asset: validate_ohlcv(frame, asset) for asset, frame in groups.items()}


#: quote currencies stripped from a pair symbol without a separator (``BTCUSD`` -> ``BTC``)
QUOTES = ("USDT", "USDC", "BUSD", "USD", "EUR", "GBP", "JPY", "BTC", "ETH")


def _volume_columns(columns: list[str]) -> tuple[str | None, str | None, str | None]:
    """``(base-unit column, its unit, quote/USD column)`` among CryptoDataDownload's volume
    columns: ``Volume BTC`` / ``Volume USD`` or ``volume_btc`` / ``volume`` (the latter in USD).
    """
    base = unit = quote = None
    for column in columns:
        key = column.strip().lower().replace(" ", "_")
        if not key.startswith("volume"):
            continue
        currency = key.removeprefix("volume").strip("_").upper()
        if currency in ("", "USD", "USDT", "USDC") or currency.startswith("USD"):
            quote = column
        elif base is None:
            base, unit = column, currency
    return base, unit, quote


def asset_of_pair(symbol: str, base_unit: str | None = None) -> str:
    """The base asset of a pair symbol: ``BTC/USD``, ``BTC-USD``, ``BTC_USD`` -> ``BTC``;
    ``BTCUSD`` -> ``BTC`` (the base-volume column's unit when it prefixes the symbol, else a
    known quote currency stripped)."""
    text = symbol.strip().upper()
    for sep in ("/", "-", "_", ":"):
        if sep in text:
            return text.split(sep, 1)[0]
    if base_unit and text.startswith(base_unit.upper()) and len(text) > len(base_unit):
        return base_unit.upper()
    for quote in QUOTES:
        if text.endswith(quote) and len(text) > len(quote):
            return text[: -len(quote)]
    return text


def load_cryptodatadownload(path: str | Path) -> tuple[str | None, pd.DataFrame]:
    """The CryptoDataDownload layout: a banner line, then newest-first rows with ``date``
    (``2019-10-17 09-AM`` or ISO), optionally ``unix`` and ``symbol``, OHLC and two volume
    columns, one in the base asset (``Volume BTC`` / ``volume_btc``) and one in USD.

    Returns ``(asset, frame)`` oldest first: the asset named by the ``symbol`` column
    (``BTC/USD`` -> ``BTC``; None without one) and ``volume`` in base-asset units (the
    liquidity models' unit), the USD volume kept as ``volume_usd``.
    """
    raw = _read_csv(path, skiprows=1)
    raw.columns = [str(c).strip() for c in raw.columns]
    lower = {c.lower(): c for c in raw.columns}
    if "date" not in lower:
        raise InputError("file", str(path), "expected a 'date' column after the banner line")
    dates = raw[lower["date"]]
    try:
        index = pd.to_datetime(dates, format="%Y-%m-%d %I-%p", utc=True)
    except (ValueError, TypeError):
        try:
            index = pd.to_datetime(dates, format="ISO8601", utc=True)
        except (ValueError, TypeError) as exc:
            raise InputError("date", str(dates.iloc[0]), f"unreadable date: {exc}") from None
    base, unit, quote = _volume_columns(list(raw.columns))
    asset = None
    if "symbol" in lower:
        symbols = raw[lower["symbol"]].dropna().astype(str).unique()
        if len(symbols) > 1:
            raise InputError("symbol", list(symbols[:3]), "one pair per file expected")
        if len(symbols) == 1:
            asset = asset_of_pair(symbols[0], unit)
    frame = raw.drop(columns=[lower[c] for c in ("date", "symbol", "unix") if c in lower])
    renamed = {c: c.lower() for c in frame.columns if c.lower() in OHLC}
    if quote is not None:
        renamed[quote] = "volume_usd"
    if base is not None:
        renamed[base] = "volume"  # units of the asset: what the liquidity models read
    frame = frame.rename(columns=renamed).set_index(index)
    frame.index.name = "time"
    return asset, validate_ohlcv(frame, Path(path).name)


def load_cryptodatadownload_hourly(path: str | Path) -> pd.DataFrame:
    """The shared Coinbase hourly file (:func:`load_cryptodatadownload`'s frame)."""
    return load_cryptodatadownload(path)[1]


def load_binance_liquidations(path: str | Path) -> pd.DataFrame:
    """The shared ETHUSDT minute file: bid/ask and forced-liquidation volume (ETH).

    Columns: ``bid``, ``ask``, ``mid``, ``liq_long_qty``, ``liq_short_qty``; timestamps are
    microseconds since the epoch.
    """
    raw = _read_csv(path)
    expected = {
        "timestamp_x",
        "ask_price",
        "bid_price",
        "binance-futures_ethusdt_liquidation_long",
        "binance-futures_ethusdt_liquidation_short",
    }
    missing = expected - set(raw.columns)
    if missing:
        raise InputError("file", str(path), f"missing columns {sorted(missing)}")
    index = pd.to_datetime(raw["timestamp_x"].astype("float64"), unit="us", utc=True)
    frame = pd.DataFrame(
        {
            "bid": raw["bid_price"].to_numpy(dtype=float),
            "ask": raw["ask_price"].to_numpy(dtype=float),
            "liq_long_qty": raw["binance-futures_ethusdt_liquidation_long"].to_numpy(float),
            "liq_short_qty": raw["binance-futures_ethusdt_liquidation_short"].to_numpy(float),
        },
        index=index,
    )
    frame.index.name = "time"
    frame["close"] = 0.5 * (frame["bid"] + frame["ask"])
    frame = validate_ohlcv(frame, Path(path).name)
    if (frame["ask"] < frame["bid"]).any():
        when = frame.index[(frame["ask"] < frame["bid"]).to_numpy()][0]
        raise InputError(f"ask[{when}]", float(frame.loc[when, "ask"]), "ask below bid")
    return frame.rename(columns={"close": "mid"})


def load_ohlcv_csv(
    path: str | Path, time_column: str = "time", time_unit: str | None = None
) -> pd.DataFrame:
    """A generic OHLCV CSV: a time column (ISO dates, or epoch numbers with ``time_unit``
    such as ``"s"``, ``"ms"``, ``"us"``) and lower-case ``open/high/low/close[/volume]``."""
    raw = _read_csv(path)
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    key = time_column.lower()
    if key not in raw.columns:
        raise InputError("time_column", time_column, f"not among the columns {list(raw.columns)}")
    try:
        if time_unit is None:
            index = pd.to_datetime(raw[key], utc=True)
        else:
            index = pd.to_datetime(raw[key].astype("float64"), unit=time_unit, utc=True)
    except (ValueError, TypeError) as exc:
        raise InputError(key, str(raw[key].iloc[0]), f"unreadable time: {exc}") from None
    frame = raw.drop(columns=[key]).set_index(index)
    frame.index.name = "time"
    return validate_ohlcv(frame, Path(path).name)


def log_returns(close: pd.Series) -> pd.Series:
    """Log returns ``ln(P_t / P_{t-1})`` of a validated close series."""
    returns = np.log(close.astype(float)).diff().dropna()
    if returns.empty:
        raise InputError("close", len(close), "need at least two prices for a return")
    return returns


def load_history(path: str | Path, asset: str | None = None) -> dict[str, pd.DataFrame]:
    """Read any supported price file into ``{asset: frame}``, detecting the layout.

    Bitstamp-style ``ASSET:field`` column groups give one frame per asset; the
    CryptoDataDownload banner layout gives one frame named ``asset``, else after its ``symbol``
    column (``BTC/USD`` -> ``BTC``), else the file name's stem; the Binance minute file and a
    generic OHLCV CSV give one frame named ``asset`` (default: the file name's stem).
    """
    file = Path(path)
    if not file.is_file():
        raise InputError("file", str(file), "no such file")
    with file.open(encoding="utf-8", errors="replace") as handle:
        first = handle.readline()
    name = asset or file.stem
    if first.lower().startswith("timestamps are utc") or "cryptodatadownload" in first.lower():
        pair, frame = load_cryptodatadownload(file)
        return {asset or pair or file.stem: frame}
    cells = first.strip().split(",")
    if len(cells) > 1 and cells[0] == "" and ":" in cells[1]:
        return load_bitstamp_daily(file)
    if first.startswith("timestamp_x,"):
        frame = load_binance_liquidations(file)
        return {name: frame.rename(columns={"mid": "close"})}
    header = [c.strip().lower() for c in first.split(",")]
    for time_column in ("time", "date", "timestamp", "datetime"):
        if time_column in header:
            return {name: load_ohlcv_csv(file, time_column=time_column)}
    raise InputError("file", str(file), "unknown layout: expected a time/date column")


def periods_per_year(index: pd.DatetimeIndex) -> float:
    """Bars per year of a 24/7 series, from the median spacing of its timestamps."""
    if len(index) < 2:
        raise InputError("index", len(index), "need at least two timestamps")
    spacing_s = float(np.median((index[1:] - index[:-1]).total_seconds()))
    if spacing_s <= 0:
        raise InputError("index", spacing_s, "timestamps must increase")
    return 365.0 * 86400.0 / spacing_s


#: seconds in a day; intraday data is aggregated to UTC calendar days
DAY_SECONDS = 86_400.0
#: a median spacing within this of 24 h is daily data (timestamps of daily closes drift)
DAILY_TOLERANCE_SECONDS = 3_600.0
#: intraday data is regular when at least this share of its spacings are whole multiples of
#: the median spacing (a gap of several bars is still on the grid)
MIN_REGULAR_FRACTION = 0.9


@dataclass(frozen=True)
class SamplingInterval:
    """The sampling interval of a time series: the median spacing of its timestamps.

    ``regular_fraction`` is the share of spacings that are whole multiples of the median
    (within one second): gaps (missing bars) keep a series regular, jittered timestamps do not.
    """

    seconds: float
    regular_fraction: float

    @property
    def kind(self) -> str:
        """``daily`` (median 24 h +- 1 h), ``intraday`` (shorter) or ``coarse`` (longer)."""
        if abs(self.seconds - DAY_SECONDS) <= DAILY_TOLERANCE_SECONDS:
            return "daily"
        return "intraday" if self.seconds < DAY_SECONDS else "coarse"

    @property
    def label(self) -> str:
        return interval_label(self.seconds)

    @property
    def regular(self) -> bool:
        return self.regular_fraction >= MIN_REGULAR_FRACTION

    @property
    def divides_day(self) -> bool:
        """Whole bars per UTC day (1 min, 5 min, 1 h, 4 h, ... but not 5 h or 7 min 30.5 s)."""
        bars = DAY_SECONDS / self.seconds
        return self.seconds >= 1.0 and abs(bars - round(bars)) * self.seconds < 1.0

    @property
    def bars_per_day(self) -> int:
        return round(DAY_SECONDS / self.seconds)


def interval_label(seconds: float) -> str:
    """``3600`` -> ``'1h'``, ``86400`` -> ``'1d'``, ``604800`` -> ``'7d'``, ``90`` -> ``'90s'``."""
    for unit, size in (("d", DAY_SECONDS), ("h", 3_600.0), ("min", 60.0), ("s", 1.0)):
        if seconds >= size and abs(seconds / size - round(seconds / size)) < 1e-9:
            return f"{round(seconds / size)}{unit}"
    for unit, size in (("d", DAY_SECONDS), ("h", 3_600.0), ("min", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.3g}{unit}"
    return f"{seconds:.3g}s"


def sampling_interval(index: pd.DatetimeIndex) -> SamplingInterval:
    """The median spacing of sorted, unique timestamps and how regular the series is."""
    if len(index) < 2:
        raise InputError("index", len(index), "need at least two timestamps")
    spacing = np.asarray((index[1:] - index[:-1]).total_seconds(), dtype=np.float64)
    median = float(np.median(spacing))
    if not median > 0:
        raise InputError("index", median, "timestamps must increase")
    multiples = np.round(spacing / median)
    on_grid = (multiples >= 1) & (np.abs(spacing - multiples * median) <= 1.0)
    return SamplingInterval(median, float(on_grid.mean()))
