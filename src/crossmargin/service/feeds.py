"""Price-feed adapters of the live margin engine (``crossmargin serve --feed ...``).

An adapter is an iterable of *batches*: ``list[Tick]``, the quotes that arrive at one moment.
Adapters stamp their ticks with *feed time* (epoch seconds of the data; the demo model starts at
0 s) and never sleep; pacing is the caller's: :func:`paced` yields the batches in real time
scaled by a speed and rebases the timestamps to the wall clock, so that the oracle's staleness
guard (quotes older than 60 s are stale) sees fresh quotes during a replay. The live ccxt
adapter is real time already: its timestamps are the exchange's, it waits between its polls
itself, and it is never rebased (:meth:`Feed.realtime` knows which is which).

* :func:`demo_feed` - a seeded market model with a crash, needing nothing outside the package;
* :func:`csv_replay` - replays a CSV or Parquet file: the Binance bid/ask minute layout
  (``timestamp_x, ask_price, bid_price, ...``) or a generic
  ``timestamp, asset, price[, source][, confidence]`` layout;
* :func:`ccxt_feed` - polls an exchange's tickers through ccxt (``crossmargin[download]``);
* :func:`parse_feed_spec` - the ``--feed`` value (``demo``, ``csv:PATH``, ``ccxt:...``,
  ``none``) to a :class:`Feed`.

Prices and confidences are USD per unit of the asset (a quote currency such as USDT is taken as
USD); times are seconds. pandas is imported inside the functions that read files, and ccxt only
by the live adapter, so that importing this module (and starting the CLI) stays fast.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol, cast

import numpy as np
import numpy.typing as npt

from crossmargin.errors import InputError, NotSupportedError
from crossmargin.margin.arrays import SECONDS_PER_YEAR
from crossmargin.service.ticks import Tick

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

Batch = list[Tick]
FloatArray = npt.NDArray[np.float64]

# --- demo model ------------------------------------------------------------------------------

#: loading of an asset's log return on the market factor (BTC = 1); higher beta falls more
DEMO_BETAS: Mapping[str, float] = {
    "BTC": 1.0,
    "WBTC": 1.0,
    "ETH": 1.25,
    "WETH": 1.25,
    "STETH": 1.25,
    "WSTETH": 1.25,
    "SOL": 1.6,
    "AAVE": 1.8,
}
#: beta of a risky asset the table does not name
DEMO_DEFAULT_BETA = 1.5
#: annualized volatility of the market factor (a BTC-like 80 %/yr) and of each asset's own part
DEMO_MARKET_VOL = 0.8
DEMO_IDIO_VOL = 0.3
#: a price within this fraction of 1.0 is a stablecoin: it stays near its price, no crash
STABLE_BAND = 0.02
#: standard deviation of a stablecoin's log price around its start (0.5 bp, i.i.d. per step)
STABLE_NOISE = 5e-5
#: per-source independent price noise (2 bp) and quoted confidence (5 bp), fractions of price
SOURCE_NOISE = 2e-4
SOURCE_CONFIDENCE = 5e-4
#: the crash falls over this many steps, then recovers this fraction of its log move over the
#: next RECOVERY_STEPS steps
CRASH_STEPS = 20
RECOVERY_FRAC = 0.4
RECOVERY_STEPS = 120
_CHUNK_STEPS = 1024

#: default replay speeds (feed seconds per wall second) of ``--feed demo`` and ``--feed csv:``:
#: the demo crash (step 120 of 1 s) starts 20 s after the start, a minute file runs a minute of
#: data per second
DEMO_SPEED = 6.0
CSV_SPEED = 60.0


def demo_beta(asset: str, price_usd: float) -> float:
    """The demo's market beta of ``asset``: 0 for a stablecoin (price within 2 % of 1.0)."""
    if abs(price_usd - 1.0) <= STABLE_BAND:
        return 0.0
    return DEMO_BETAS.get(asset.upper(), DEMO_DEFAULT_BETA)


def crash_shape(steps: npt.ArrayLike, crash_at_step: int) -> FloatArray:
    """Fraction (0..1) of the crash's log move applied at step(s) ``steps``.

    0 before ``crash_at_step``; a linear fall reaching 1 at ``crash_at_step + CRASH_STEPS - 1``;
    then a linear recovery to ``1 - RECOVERY_FRAC`` over ``RECOVERY_STEPS`` steps, kept after.
    """
    k = np.asarray(steps, dtype=float) - crash_at_step
    fall = np.clip((k + 1.0) / CRASH_STEPS, 0.0, 1.0)
    back = np.clip((k - (CRASH_STEPS - 1)) / RECOVERY_STEPS, 0.0, 1.0)
    shape: FloatArray = fall - RECOVERY_FRAC * back
    return shape


def demo_feed(
    assets: Mapping[str, float],
    seed: int = 7,
    step_s: float = 1.0,
    n_steps: int = 600,
    crash_at_step: int = 120,
    crash_frac: float = -0.25,
    sources: int = 3,
    start_s: float = 0.0,
) -> Iterator[Batch]:
    """A seeded market with a crash: one batch per step of ``step_s`` seconds of feed time.

    ``assets`` maps each asset to its USD price at step 0. A risky asset's log price is a
    correlated geometric Brownian motion: ``beta * market + own`` with annualized volatilities
    :data:`DEMO_MARKET_VOL` (market) and :data:`DEMO_IDIO_VOL` (own), beta from
    :data:`DEMO_BETAS`. A stablecoin (price within 2 % of 1.0) stays at its price with 0.5 bp of
    noise. From ``crash_at_step`` the risky assets fall together over :data:`CRASH_STEPS` steps
    by ``beta * ln(1 + crash_frac)`` in log price - an asset of beta 1 (BTC) falls by
    ``crash_frac``, ETH (1.25) and SOL (1.6) more - then recover :data:`RECOVERY_FRAC` of the
    move (see :func:`crash_shape`). A positive ``crash_frac`` is a rally.

    Each step yields one :class:`Tick` per asset per source (``demo-a``, ``demo-b``, ...): the
    true price times ``1 + 2 bp`` independent noise, confidence 5 bp of that price, timestamp
    ``start_s + step * step_s``. The same arguments give the same ticks.
    """
    _check_prices("assets", assets)
    _check_int("seed", seed, 0)
    _check_positive("step_s", step_s)
    _check_int("n_steps", n_steps, 1)
    _check_int("crash_at_step", crash_at_step, 0)
    _check_int("sources", sources, 1, 26)
    if not (math.isfinite(crash_frac) and crash_frac > -1.0):
        raise InputError("crash_frac", crash_frac, "must be a finite fraction > -1 (e.g. -0.25)")
    if not math.isfinite(start_s):
        raise InputError("start_s", start_s, "must be a finite number of seconds")
    return _demo_batches(
        dict(assets), seed, step_s, n_steps, crash_at_step, crash_frac, sources, start_s
    )


def _demo_batches(
    assets: dict[str, float],
    seed: int,
    step_s: float,
    n_steps: int,
    crash_at_step: int,
    crash_frac: float,
    n_sources: int,
    start_s: float,
) -> Iterator[Batch]:
    names = list(assets)
    start = np.array([assets[a] for a in names], dtype=float)
    beta = np.array([demo_beta(a, assets[a]) for a in names])
    stable = beta == 0.0
    sources = [f"demo-{chr(ord('a') + j)}" for j in range(n_sources)]
    dt = step_s / SECONDS_PER_YEAR
    sd_market = beta * DEMO_MARKET_VOL * math.sqrt(dt)
    sd_own = np.where(stable, 0.0, DEMO_IDIO_VOL * math.sqrt(dt))
    drift = -0.5 * (sd_market**2 + sd_own**2)  # Ito: the price itself has no drift
    crash_log = beta * math.log1p(crash_frac)
    rng = np.random.default_rng(seed)
    walk = np.zeros(len(names))  # log-price random walk, 0 at step 0
    for first in range(0, n_steps, _CHUNK_STEPS):
        # whole chunks are drawn whatever n_steps is, so a longer run extends the same path
        steps = np.arange(first, min(first + _CHUNK_STEPS, n_steps))
        n = len(steps)
        z_market = rng.standard_normal((_CHUNK_STEPS, 1))[:n]
        z_own = rng.standard_normal((_CHUNK_STEPS, len(names)))[:n]
        z_source = rng.standard_normal((_CHUNK_STEPS, len(names), n_sources))[:n]
        increments = drift + sd_market * z_market + sd_own * z_own
        if first == 0:
            increments[0] = 0.0
        paths = walk + np.cumsum(increments, axis=0)
        walk = paths[-1]
        log_true = paths + crash_log * crash_shape(steps, crash_at_step)[:, None]
        log_true = np.where(stable, STABLE_NOISE * z_own, log_true)
        quoted = (start * np.exp(log_true))[:, :, None] * (1.0 + SOURCE_NOISE * z_source)
        for row, step in enumerate(steps.tolist()):
            at = start_s + step * step_s
            prices = quoted[row].tolist()
            yield [
                Tick(asset, source, p, SOURCE_CONFIDENCE * p, at)
                for asset, asset_prices in zip(names, prices, strict=True)
                for source, p in zip(sources, asset_prices, strict=True)
            ]


# --- pacing ----------------------------------------------------------------------------------


def paced(
    batches: Iterable[Batch],
    speed: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], float] = time.time,
) -> Iterator[Batch]:
    """Yield ``batches`` in real time scaled by ``speed``, with wall-clock timestamps.

    A batch's feed time is its latest tick's timestamp (s). With ``t0`` the first batch's feed
    time, ``c0 = clock()`` and ``w0 = now()`` read when the first batch is due, the batch of
    feed time ``t`` is yielded once ``clock() >= c0 + (t - t0) / speed`` (sleeping until then;
    a consumer that falls behind is caught up without sleeping) and each of its ticks is
    restamped ``w0 + (timestamp - t0) / speed`` epoch seconds. ``speed`` is feed seconds per
    wall second (60: a minute of data a second); ``math.inf`` yields as fast as possible and
    stamps every batch with ``now()`` at the time it is yielded, made strictly increasing (by at
    least 1 µs) so that each source's quotes stay in order. Empty batches pass through at once.
    """
    if not (speed > 0.0):  # also refuses NaN
        raise InputError("speed", speed, "must be > 0 (math.inf: as fast as possible)")
    return _paced(iter(batches), speed, clock, sleep, now)


def _paced(
    batches: Iterator[Batch],
    speed: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    now: Callable[[], float],
) -> Iterator[Batch]:
    t0 = c0 = w0 = math.nan
    last_stamp = -math.inf
    for batch in batches:
        if not batch:
            yield batch
            continue
        t = max(tick.timestamp_s for tick in batch)
        if math.isinf(speed):
            last_stamp = max(now(), last_stamp + 1e-6)
            yield [_restamp(tick, last_stamp) for tick in batch]
            continue
        if math.isnan(t0):
            t0, c0, w0 = t, clock(), now()
        delay = c0 + (t - t0) / speed - clock()
        if delay > 0.0:
            sleep(delay)
        yield [_restamp(tick, w0 + (tick.timestamp_s - t0) / speed) for tick in batch]


def _restamp(tick: Tick, timestamp_s: float) -> Tick:
    return Tick(tick.asset, tick.source, tick.price_usd, tick.confidence_usd, timestamp_s)


# --- CSV / Parquet replay --------------------------------------------------------------------

#: the Binance bid/ask minute layout (the shared ETHUSDT January 2021 file): microsecond
#: timestamps; the liquidation-volume columns are recognized and not used
BINANCE_COLUMNS = ("timestamp_x", "ask_price", "bid_price")
BINANCE_IGNORED = (
    "binance-futures_ethusdt_liquidation_long",
    "binance-futures_ethusdt_liquidation_short",
)
#: accepted names of the time column of the generic layout, first found wins
TIME_COLUMNS = ("timestamp", "time", "date", "datetime")
#: epoch units by magnitude: below 1e11 seconds (until year 5138), then ms, µs, ns
_EPOCH_BANDS = ((1e11, 1.0, "s"), (1e14, 1e-3, "ms"), (1e17, 1e-6, "us"), (1e20, 1e-9, "ns"))


def csv_replay(
    path: str | Path,
    asset: str | None = None,
    column: str | None = None,
    sources: Sequence[str] | None = None,
    *,
    max_rows: int | None = None,
    known_assets: Collection[str] | None = None,
) -> Iterator[Batch]:
    """Replay a price file (CSV, or Parquet when the name ends in ``.parquet``) as batches.

    The file is read and checked when this function is called (errors come before any batch);
    rows with the same timestamp form one batch, in file order. Two layouts:

    * **Binance bid/ask** (columns ``timestamp_x, ask_price, bid_price``; the shared ETHUSDT
      minute file): price = mid ``(bid + ask) / 2``, confidence = half-spread
      ``(ask - bid) / 2``, asset ``asset`` (default ``"ETH"``); ``column`` does not apply.
    * **generic**: a time column (``timestamp``, or ``time``/``date``/``datetime``) holding
      ISO-8601 times (UTC when no offset is given) or epoch numbers whose unit - seconds,
      milliseconds, microseconds or nanoseconds - is told by their magnitude (below 1e11: s,
      1e14: ms, 1e17: µs, 1e20: ns; one unit per file); the price column ``column`` (default
      ``price``); ``asset`` (required unless the ``asset`` argument is given; with both, only
      that asset's rows are replayed); optional ``source`` and ``confidence`` (USD, default 0).
      Other columns are refused unless ``column`` names the price column explicitly (then they
      are ignored, e.g. ``open/high/low/volume`` beside ``column="close"``).

    Every row is replayed once per name in ``sources`` (default ``["binance"]`` for the Binance
    layout, the ``source`` column or ``["csv"]`` for the generic one; giving both ``sources`` and a
    ``source`` column is an error). ``max_rows`` reads only the first rows. ``known_assets``,
    when given, refuses assets outside it.

    Raises :class:`InputError` naming the file and the row (``FILE[row N].column``, N = 1 for the
    first data row) for a missing or unreadable file, unknown or missing columns, a missing or
    non-numeric value, a price that is not a finite number > 0, a negative confidence, an ask
    below the bid, a time earlier than the row before, or a repeated (time, asset, source);
    :class:`NotSupportedError` for Parquet without pyarrow.
    """
    file = Path(path)
    where = str(path)
    if max_rows is not None:
        _check_int("max_rows", max_rows, 1)
    frame = _read_table(file, max_rows)
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    if len(set(frame.columns)) != len(frame.columns):
        raise InputError(where, list(frame.columns), "repeated column names (case-insensitive)")
    if frame.empty:
        raise InputError(where, list(frame.columns), "no data rows")
    if set(BINANCE_COLUMNS) <= set(frame.columns):
        rows = _binance_rows(frame, where, asset, column)
        default_sources = ["binance"]
    else:
        rows = _generic_rows(frame, where, asset, column)
        default_sources = ["csv"]
    labels, times, names, row_sources = rows.labels, rows.times, rows.names, rows.sources
    if row_sources is not None and sources is not None:
        raise InputError("sources", list(sources), f"{where} has a 'source' column already")
    source_names = list(sources) if sources is not None else default_sources
    if not source_names or not all(isinstance(s, str) and s.strip() for s in source_names):
        raise InputError("sources", source_names, "must be one or more non-empty names")
    if len(set(source_names)) != len(source_names):
        raise InputError("sources", source_names, "names must be distinct")

    back = np.flatnonzero(np.diff(times) < 0.0)
    if back.size:
        i = int(back[0]) + 1
        raise InputError(
            _row_field(where, labels[i], rows.time_column),
            _iso(times[i]),
            f"earlier than the row before ({_iso(times[i - 1])}): rows must be sorted by time",
        )
    _check_repeats(where, rows)
    if known_assets is not None:
        unknown = sorted(set(names) - set(known_assets))
        if unknown:
            raise InputError(
                "asset", unknown[0], f"{unknown[0]} is not an asset of the book (in {where})"
            )
    return _replay_batches(rows, source_names)


class _Rows(NamedTuple):
    """A price file's checked rows: 0-based row labels, epoch s, asset, source, USD figures."""

    labels: list[int]
    time_column: str
    times: FloatArray
    names: list[str]
    sources: list[str] | None
    prices: FloatArray
    confidences: FloatArray


def _read_table(file: Path, max_rows: int | None) -> pd.DataFrame:
    """The file as a frame with a 0-based row index (CSV cells as text, unparsed)."""
    import pandas as pd

    if not file.is_file():
        raise InputError("file", str(file), "no such file")
    if file.suffix.lower() == ".parquet":
        if importlib.util.find_spec("pyarrow") is None:
            raise NotSupportedError(
                f"reading {file} needs pyarrow: pip install pyarrow (or convert it to CSV)"
            )
        try:
            table: pd.DataFrame = pd.read_parquet(file)
        except (OSError, ValueError) as exc:
            raise InputError("file", str(file), f"not a readable Parquet file: {exc}") from None
        table = table.reset_index(drop=True)
        return table if max_rows is None else table.iloc[:max_rows]
    try:
        text: pd.DataFrame = pd.read_csv(
            file, dtype=str, keep_default_na=False, nrows=max_rows, skipinitialspace=True
        )
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError("file", str(file), f"not a readable CSV: {exc}") from None
    return text


def _binance_rows(frame: pd.DataFrame, where: str, asset: str | None, column: str | None) -> _Rows:
    unknown = sorted(set(frame.columns) - set(BINANCE_COLUMNS) - set(BINANCE_IGNORED))
    if unknown:
        raise InputError(where, unknown, "unknown columns for the Binance bid/ask layout")
    if column is not None:
        raise InputError("column", column, "the Binance bid/ask layout is priced at the mid")
    if asset is not None and not asset.strip():
        raise InputError("asset", asset, "must be a non-empty name")
    times = _epoch_seconds(frame["timestamp_x"], where, "timestamp_x")
    bid = _numbers(frame, "bid_price", where, positive=True)
    ask = _numbers(frame, "ask_price", where, positive=True)
    crossed = np.flatnonzero(ask < bid)
    if crossed.size:
        i = int(crossed[0])
        raise InputError(
            _row_field(where, frame.index[i], "ask_price"), float(ask[i]), f"below the bid {bid[i]}"
        )
    labels = [int(label) for label in frame.index]
    names = [asset or "ETH"] * len(frame)
    half_spread = 0.5 * (ask - bid)
    return _Rows(labels, "timestamp_x", times, names, None, 0.5 * (bid + ask), half_spread)


def _generic_rows(frame: pd.DataFrame, where: str, asset: str | None, column: str | None) -> _Rows:
    columns = list(frame.columns)
    time_column = next((c for c in TIME_COLUMNS if c in columns), None)
    if time_column is None:
        raise InputError(
            where,
            columns,
            "unknown layout: expected a 'timestamp' column (generic layout) or "
            "'timestamp_x, ask_price, bid_price' (Binance bid/ask layout)",
        )
    price_column = "price" if column is None else column.strip().lower()
    if price_column not in columns:
        raise InputError("column", price_column, f"not among the columns {columns} of {where}")
    if column is None:
        known = {time_column, price_column, "asset", "source", "confidence"}
        unknown = [c for c in columns if c not in known]
        if unknown:
            raise InputError(
                where,
                unknown,
                "unknown columns: expected timestamp, asset, price, source, confidence "
                "(pass column= to pick the price column of a wider file)",
            )
    if "asset" in columns:
        names = _names(frame, "asset", where)
        if asset is not None:
            keep = [n == asset for n in names]
            if not any(keep):
                raise InputError("asset", asset, f"no rows of this asset in {where}")
            frame = frame[keep]
            names = [n for n, k in zip(names, keep, strict=True) if k]
    elif asset is None or not asset.strip():
        raise InputError(where, columns, "needs an 'asset' column or the asset argument")
    else:
        names = [asset] * len(frame)
    times = _epoch_seconds(frame[time_column], where, time_column)
    prices = _numbers(frame, price_column, where, positive=True)
    if "confidence" in frame.columns:
        confidences = _numbers(frame, "confidence", where, positive=False)
    else:
        confidences = np.zeros(len(frame))
    row_sources = _names(frame, "source", where) if "source" in frame.columns else None
    labels = [int(label) for label in frame.index]
    return _Rows(labels, time_column, times, names, row_sources, prices, confidences)


def _row_field(where: str, label: Any, column: str) -> str:
    return f"{where}[row {int(label) + 1}].{column}"


def _cell(column: pd.Series, i: int) -> Any:
    """The i-th cell as a plain Python value (for error messages)."""
    value = column.iloc[i]
    return value.item() if isinstance(value, np.generic) else value


def _names(frame: pd.DataFrame, column: str, where: str) -> list[str]:
    values = ["" if v is None else str(v).strip() for v in frame[column].tolist()]
    empty = [i for i, v in enumerate(values) if not v or v.lower() == "nan"]
    if empty:
        i = empty[0]
        raise InputError(_row_field(where, frame.index[i], column), values[i], "missing name")
    return values


def _numbers(frame: pd.DataFrame, column: str, where: str, positive: bool) -> FloatArray:
    """A column as floats; the first non-numeric, non-finite or out-of-range cell is an error."""
    import pandas as pd

    raw = frame[column]
    values: FloatArray = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(values) | ((values <= 0.0) if positive else (values < 0.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        rule = "a finite number > 0" if positive else "a finite number >= 0"
        field_name = _row_field(where, frame.index[i], column)
        raise InputError(field_name, _cell(raw, i), f"must be {rule}")
    return values


def _epoch_seconds(raw: pd.Series, where: str, column: str) -> FloatArray:
    """Epoch seconds of a time column: datetimes, ISO-8601 text or epoch numbers in s/ms/µs/ns."""
    import pandas as pd

    epoch = pd.Timestamp(0, tz="UTC")
    if pd.api.types.is_datetime64_any_dtype(raw):
        stamps = raw if raw.dt.tz is not None else raw.dt.tz_localize("UTC")
        missing = np.flatnonzero(stamps.isna().to_numpy())
        if missing.size:
            i = int(missing[0])
            raise InputError(_row_field(where, raw.index[i], column), None, "missing time")
        from_datetimes: FloatArray = (stamps - epoch).dt.total_seconds().to_numpy(dtype=float)
        return from_datetimes
    numbers: FloatArray = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    if math.isnan(numbers[0]):
        parsed = pd.to_datetime(raw, utc=True, format="ISO8601", errors="coerce")
        missing = np.flatnonzero(parsed.isna().to_numpy())
        if missing.size:
            i = int(missing[0])
            raise InputError(
                _row_field(where, raw.index[i], column),
                _cell(raw, i),
                "not an ISO-8601 time (like the first row) or epoch number",
            )
        from_text: FloatArray = (parsed - epoch).dt.total_seconds().to_numpy(dtype=float)
        return from_text
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(numbers) | (numbers < 0.0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(
            _row_field(where, raw.index[i], column),
            _cell(raw, i),
            "must be an epoch number >= 0 (like the first row), or every time ISO-8601",
        )
    band = np.searchsorted([b[0] for b in _EPOCH_BANDS], numbers, side="right")
    if band[0] == len(_EPOCH_BANDS):
        raise InputError(
            _row_field(where, raw.index[0], column), _cell(raw, 0), "too large for an epoch time"
        )
    _, scale, unit = _EPOCH_BANDS[int(band[0])]
    changed = np.flatnonzero(band != band[0])
    if changed.size:
        i = int(changed[0])
        raise InputError(
            _row_field(where, raw.index[i], column),
            _cell(raw, i),
            f"epoch unit (told by magnitude) differs from the first row's ({unit})",
        )
    seconds: FloatArray = numbers * scale
    return seconds


def _check_repeats(where: str, rows: _Rows) -> None:
    """Refuse a repeated (time, asset, source): the oracle would drop the second quote."""
    if not (np.diff(rows.times) == 0.0).any():
        return  # sorted with distinct times: nothing can repeat
    seen: set[tuple[float, str, str]] = set()
    sources = rows.sources if rows.sources is not None else [""] * len(rows.names)
    for i, key in enumerate(zip(rows.times.tolist(), rows.names, sources, strict=True)):
        if key in seen:
            raise InputError(
                _row_field(where, rows.labels[i], rows.time_column),
                _iso(key[0]),
                f"repeats the time of an earlier row of asset {key[1]!r}"
                + (f" and source {key[2]!r}" if key[2] else ""),
            )
        seen.add(key)


def _replay_batches(rows: _Rows, source_names: list[str]) -> Iterator[Batch]:
    times = rows.times
    starts = np.flatnonzero(np.r_[True, times[1:] != times[:-1]]).tolist()
    ends = [*starts[1:], len(times)]
    t, p, c = times.tolist(), rows.prices.tolist(), rows.confidences.tolist()
    names, row_sources = rows.names, rows.sources
    for first, stop in zip(starts, ends, strict=True):
        yield [
            Tick(names[i], source, p[i], c[i], t[i])
            for i in range(first, stop)
            for source in ([row_sources[i]] if row_sources is not None else source_names)
        ]


def _iso(epoch_s: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch_s, UTC).isoformat()


# --- ccxt live adapter -----------------------------------------------------------------------

#: ``fetch(symbols) -> {symbol: ticker}``: tickers in ccxt's unified structure
TickerFetch = Callable[[list[str]], Mapping[str, Any]]


class TickerClient(Protocol):
    """The part of a ccxt exchange the live adapter uses."""

    has: Mapping[str, Any]

    def fetch_tickers(self, symbols: list[str] | None = None) -> dict[str, Any]: ...

    def fetch_ticker(self, symbol: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Rejection:
    """A ticker the live adapter did not turn into a tick, and why.

    ``timestamp_s`` is the wall clock (epoch s) when it was seen; ``asset`` is ``"*"`` for a
    failed poll.
    """

    timestamp_s: float
    asset: str
    source: str
    reason: str


def ticker_to_tick(asset: str, source: str, ticker: Any, received_s: float) -> Tick | str:
    """A ccxt unified ticker as a :class:`Tick`, or the reason it is unusable.

    Price = mid ``(bid + ask) / 2`` with confidence the half-spread when both sides are
    present, else ``last`` (falling back to ``close``) with confidence 0 (USD per unit).
    Timestamp = the ticker's ``timestamp`` (epoch ms) / 1000, or ``received_s`` when the
    exchange gives none. A field that is present but not a finite number > 0 (``"NaN"``, 0,
    a negative number, a string that is not a number), a crossed quote (ask < bid) or no usable
    price at all make the ticker unusable. (ccxt reports a missing side as ``None``, and turns a
    zero bid or ask into ``None`` itself.)
    """
    if not isinstance(ticker, Mapping):
        return f"ticker is not a mapping (got {type(ticker).__name__})"
    values: dict[str, float | None] = {}
    for key in ("bid", "ask", "last", "close"):
        raw = ticker.get(key)
        number = _as_number(raw)
        if raw is not None and (number is None or not (math.isfinite(number) and number > 0)):
            return f"{key} must be a finite number > 0 (got {raw!r})"
        values[key] = number
    bid, ask = values["bid"], values["ask"]
    last = values["last"] if values["last"] is not None else values["close"]
    if bid is not None and ask is not None:
        if ask < bid:
            return f"crossed quote: ask {ask:g} below bid {bid:g}"
        price, confidence = 0.5 * (bid + ask), 0.5 * (ask - bid)
    elif last is not None:
        price, confidence = last, 0.0
    else:
        return "no usable price: needs bid and ask, or last"
    raw_time = ticker.get("timestamp")
    if raw_time is None:
        stamp = received_s
    else:
        millis = _as_number(raw_time)
        if millis is None or not (math.isfinite(millis) and millis > 0):
            return f"timestamp must be epoch milliseconds > 0 (got {raw_time!r})"
        stamp = millis / 1000.0
    return Tick(asset, source, price, confidence, stamp)


def _as_number(value: Any) -> float | None:
    """A JSON/ccxt number (or numeric string) as a float; None when absent or not a number."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


class CcxtFeed:
    """Live tickers of one exchange through ccxt, polled every ``poll_s`` seconds.

    Iterating polls ``fetch(list of symbols)`` and yields one batch per poll (possibly empty: a
    heartbeat), then waits until ``poll_s`` seconds after the poll started. Each asset's ticker
    becomes a :class:`Tick` (see :func:`ticker_to_tick`) from source ``exchange_id``; a ticker
    whose timestamp equals the last one yielded for that asset is skipped silently (nothing
    new), an older one is rejected. Unusable tickers and failed polls (``ConnectionError``,
    ``TimeoutError``; ccxt's network errors are raised as ``ConnectionError``) are logged as
    warnings and appended to :attr:`rejected` (the newest ``max_rejected``), and polling goes on.
    ``max_polls`` ends the iteration after that many polls (None: never).
    """

    def __init__(
        self,
        exchange_id: str,
        symbols: Mapping[str, str],
        fetch: TickerFetch,
        poll_s: float = 1.0,
        *,
        max_polls: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], float] = time.time,
        max_rejected: int = 1000,
    ) -> None:
        self.exchange_id = exchange_id
        self.symbols = dict(symbols)
        self.fetch = fetch
        self.poll_s = poll_s
        self.max_polls = max_polls
        self.clock, self.sleep, self.now = clock, sleep, now
        self.rejected: deque[Rejection] = deque(maxlen=max_rejected)
        self._last_s: dict[str, float] = {}

    def __iter__(self) -> Iterator[Batch]:
        polls = 0
        while self.max_polls is None or polls < self.max_polls:
            started = self.clock()
            yield self.poll()
            polls += 1
            if self.max_polls is not None and polls >= self.max_polls:
                return
            wait = self.poll_s - (self.clock() - started)
            if wait > 0.0:
                self.sleep(wait)

    def poll(self) -> Batch:
        """One fetch: the new ticks; rejections go to :attr:`rejected`."""
        received = self.now()
        try:
            tickers = self.fetch(sorted(set(self.symbols.values())))
        except (ConnectionError, TimeoutError) as exc:
            self._reject(received, "*", f"fetch failed: {exc}")
            return []
        batch: Batch = []
        for asset, symbol in self.symbols.items():
            ticker = tickers.get(symbol)
            if ticker is None:
                self._reject(received, asset, f"no ticker for {symbol}")
                continue
            if isinstance(ticker, Mapping) and ticker.get("symbol") not in (None, symbol):
                self._reject(received, asset, f"asked {symbol}, got {ticker.get('symbol')!r}")
                continue
            tick = ticker_to_tick(asset, self.exchange_id, ticker, received)
            if isinstance(tick, str):
                self._reject(received, asset, f"{symbol}: {tick}")
                continue
            last = self._last_s.get(asset)
            if last is not None and tick.timestamp_s <= last:
                if tick.timestamp_s < last:
                    self._reject(received, asset, f"{symbol}: older than the last ticker")
                continue
            self._last_s[asset] = tick.timestamp_s
            batch.append(tick)
        return batch

    def _reject(self, received: float, asset: str, reason: str) -> None:
        logger.warning("%s feed: %s rejected: %s", self.exchange_id, asset, reason)
        self.rejected.append(Rejection(received, asset, self.exchange_id, reason))


def ccxt_feed(
    exchange_id: str,
    symbols: Mapping[str, str],
    fetch: TickerFetch | None = None,
    poll_s: float = 1.0,
    *,
    max_polls: int | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], float] = time.time,
    max_rejected: int = 1000,
) -> CcxtFeed:
    """A :class:`CcxtFeed` polling ``exchange_id`` (a ccxt id, e.g. ``"binance"``) every
    ``poll_s`` seconds.

    ``symbols`` maps each asset to the exchange's unified symbol (``{"ETH": "ETH/USDT"}``); the
    quote currency is taken as USD. Without ``fetch``, a rate-limited ccxt client is built now
    (ccxt is needed: ``pip install "crossmargin[download]"``; no network until the first poll)
    and polled with ``fetch_tickers`` when the exchange has it, else ``fetch_ticker`` per
    symbol. ``max_polls``, ``clock``, ``sleep``, ``now`` and ``max_rejected`` are those of
    :class:`CcxtFeed`.
    """
    if not isinstance(exchange_id, str) or not exchange_id.strip():
        raise InputError("exchange", exchange_id, "must be a ccxt exchange id such as 'binance'")
    if not symbols:
        raise InputError("symbols", dict(symbols), "map at least one asset to a symbol")
    for asset, symbol in symbols.items():
        if not asset or not isinstance(symbol, str) or not symbol.strip():
            raise InputError(f"symbols.{asset}", symbol, "expected ASSET=SYMBOL like ETH=ETH/USDT")
    _check_positive("poll_s", poll_s)
    if max_polls is not None:
        _check_int("max_polls", max_polls, 1)
    _check_int("max_rejected", max_rejected, 1)
    return CcxtFeed(
        exchange_id,
        symbols,
        fetch or _ccxt_fetch(exchange_id),
        poll_s,
        max_polls=max_polls,
        clock=clock,
        sleep=sleep,
        now=now,
        max_rejected=max_rejected,
    )


def _ccxt_fetch(exchange_id: str) -> TickerFetch:
    """``fetch_tickers`` (or ``fetch_ticker`` per symbol) of a ccxt client, with ccxt's network
    errors raised as ``ConnectionError`` and an unknown symbol as :class:`InputError`."""
    from crossmargin.market.download import ccxt_exchange

    client = cast(TickerClient, ccxt_exchange(exchange_id))
    import ccxt  # type: ignore[import-not-found, unused-ignore]  # present: ccxt_exchange needs it

    def fetch(symbols: list[str]) -> Mapping[str, Any]:
        try:
            if client.has.get("fetchTickers"):
                return client.fetch_tickers(symbols)
            return {symbol: client.fetch_ticker(symbol) for symbol in symbols}
        except ccxt.NetworkError as exc:
            raise ConnectionError(f"{exchange_id}: {exc}") from exc
        except ccxt.BadSymbol as exc:
            raise InputError("symbols", symbols, f"{exchange_id}: {exc}") from None

    return fetch


# --- the --feed value ------------------------------------------------------------------------


@dataclass
class Feed:
    """What ``--feed`` asked for: batches plus how to play them (see :meth:`realtime`).

    ``batches`` are in feed time (single use: a generator); ``speed`` is the replay speed in
    feed seconds per wall second; ``live`` feeds (ccxt) are real time already and are neither
    paced nor rebased; ``rejected`` is the live adapter's list of skipped tickers (empty for
    the others, whose bad input is an error at parse time). ``kind == "none"``: no batches,
    prices arrive only by HTTP push.
    """

    kind: Literal["demo", "csv", "ccxt", "none"]
    spec: str
    batches: Iterable[Batch] = ()
    speed: float = 1.0
    live: bool = False
    rejected: Sequence[Rejection] = field(default_factory=list)

    def realtime(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], float] = time.time,
    ) -> Iterator[Batch]:
        """The batches as the service should ingest them: :func:`paced` at :attr:`speed`
        (wall-clock timestamps), or as they come for a live feed."""
        if self.live:
            return iter(self.batches)
        return paced(self.batches, self.speed, clock, sleep, now)


_DEMO_KEYS = {
    "seed": "seed",
    "crash": "crash_frac",
    "crash_at": "crash_at_step",
    "steps": "n_steps",
    "step": "step_s",
    "sources": "sources",
}
_CSV_KEYS = ("speed", "asset", "column", "sources", "max_rows")
FEED_HELP = (
    "demo[:seed=N,crash=-0.25,crash_at=STEP,steps=N,step=SECONDS,sources=N,speed=X] | "
    "csv:PATH[,speed=60,asset=ETH,column=price,sources=a|b,max_rows=N] | "
    "ccxt:EXCHANGE:ASSET=SYMBOL,...[,poll=SECONDS] | none"
)


def parse_feed_spec(
    spec: str, assets: Mapping[str, float], *, fetch: TickerFetch | None = None
) -> Feed:
    """The ``--feed`` value as a :class:`Feed` over the book's ``assets`` (asset -> USD price).

    * ``none`` - no feed (prices only by HTTP push);
    * ``demo[:k=v,...]`` - :func:`demo_feed` over ``assets`` (keys ``seed``, ``crash`` (a
      fraction or a percentage, ``-0.3`` or ``-30%``), ``crash_at`` (step), ``steps``, ``step``
      (s), ``sources``, ``speed``; default speed :data:`DEMO_SPEED`);
    * ``csv:PATH[,k=v,...]`` - :func:`csv_replay` (keys ``speed`` (default :data:`CSV_SPEED`),
      ``asset``, ``column``, ``sources`` (names joined by ``|``), ``max_rows``); the file is read
      and checked now, and its assets must be among ``assets``;
    * ``ccxt:EXCHANGE:ASSET=SYMBOL,...[,poll=S]`` - :func:`ccxt_feed`, e.g.
      ``ccxt:binance:ETH=ETH/USDT,BTC=BTC/USDT``; each asset must be among ``assets``.

    ``fetch`` replaces the ccxt client of a ``ccxt:`` feed (recorded payloads in tests). Every
    :class:`InputError` - a malformed spec, or a bad argument or file found by the adapter - names
    the ``--feed`` field and the value (the adapter's message is kept as the reason).
    """
    kind, _, rest = spec.strip().partition(":")
    kind = kind.strip().lower()
    if kind == "none" and not rest:
        return Feed("none", spec)
    builders = {"demo": _demo_spec, "csv": _csv_spec, "ccxt": _ccxt_spec}
    if kind not in builders:
        raise InputError("--feed", spec, f"unknown feed; expected {FEED_HELP}")
    try:
        return builders[kind](spec, rest, assets, fetch)
    except InputError as exc:
        if exc.field == "--feed":
            raise
        raise InputError("--feed", spec, str(exc)) from None


def _demo_spec(
    spec: str, rest: str, assets: Mapping[str, float], fetch: TickerFetch | None
) -> Feed:
    options = _options(spec, rest, (*_DEMO_KEYS, "speed"))
    kwargs: dict[str, Any] = {}
    for key, value in options.items():
        if key in ("seed", "crash_at", "steps", "sources"):
            kwargs[_DEMO_KEYS[key]] = _spec_int(spec, key, value)
        elif key != "speed":
            kwargs[_DEMO_KEYS[key]] = _spec_float(spec, key, value, percent=key == "crash")
    speed = _spec_speed(spec, options.get("speed"), DEMO_SPEED)
    return Feed("demo", spec, demo_feed(assets, **kwargs), speed)


def _csv_spec(spec: str, rest: str, assets: Mapping[str, float], fetch: TickerFetch | None) -> Feed:
    path, _, tail = rest.partition(",")
    if not path.strip():
        raise InputError("--feed", spec, f"expected csv:PATH[,speed=60,...] ({FEED_HELP})")
    options = _options(spec, tail, _CSV_KEYS)
    speed = _spec_speed(spec, options.get("speed"), CSV_SPEED)
    sources, rows = options.get("sources"), options.get("max_rows")
    batches = csv_replay(
        path.strip(),
        asset=options.get("asset"),
        column=options.get("column"),
        sources=None if sources is None else sources.split("|"),
        max_rows=None if rows is None else _spec_int(spec, "max_rows", rows),
        known_assets=set(assets),
    )
    return Feed("csv", spec, batches, speed)


def _ccxt_spec(
    spec: str, rest: str, assets: Mapping[str, float], fetch: TickerFetch | None
) -> Feed:
    exchange, _, pairs = rest.partition(":")
    if not exchange.strip() or not pairs.strip():
        raise InputError(
            "--feed",
            spec,
            "expected ccxt:EXCHANGE:ASSET=SYMBOL,... like ccxt:binance:ETH=ETH/USDT,BTC=BTC/USDT",
        )
    symbols: dict[str, str] = {}
    poll_s = 1.0
    for pair in pairs.split(","):
        name, sep, symbol = (part.strip() for part in pair.partition("="))
        if not sep or not name or not symbol:
            raise InputError("--feed", spec, f"expected ASSET=SYMBOL, got {pair.strip()!r}")
        if name == "poll" and name not in assets:
            poll_s = _spec_float(spec, "poll", symbol)
        elif name not in assets:
            raise InputError("--feed", spec, f"{name} is not an asset of {sorted(assets)}")
        elif name in symbols:
            raise InputError("--feed", spec, f"{name} is mapped twice")
        else:
            symbols[name] = symbol
    if not symbols:
        raise InputError("--feed", spec, "map at least one asset, e.g. ETH=ETH/USDT")
    feed = ccxt_feed(exchange.strip().lower(), symbols, fetch, poll_s)
    return Feed("ccxt", spec, feed, 1.0, live=True, rejected=feed.rejected)


def _options(spec: str, text: str, keys: Iterable[str]) -> dict[str, str]:
    allowed = tuple(keys)
    options: dict[str, str] = {}
    for part in text.split(",") if text.strip() else []:
        key, sep, value = (s.strip() for s in part.partition("="))
        if not sep or not key or not value:
            raise InputError("--feed", spec, f"expected KEY=VALUE, got {part.strip()!r}")
        if key not in allowed:
            raise InputError("--feed", spec, f"unknown option {key!r}; expected one of {allowed}")
        if key in options:
            raise InputError("--feed", spec, f"option {key!r} given twice")
        options[key] = value
    return options


def _spec_int(spec: str, key: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise InputError("--feed", spec, f"{key} must be an integer (got {value!r})") from None


def _spec_float(spec: str, key: str, value: str, percent: bool = False) -> float:
    scale = 1.0
    if percent and value.endswith("%"):
        value, scale = value[:-1], 0.01
    try:
        number = float(value) * scale
    except ValueError:
        raise InputError("--feed", spec, f"{key} must be a number (got {value!r})") from None
    if not math.isfinite(number):
        raise InputError("--feed", spec, f"{key} must be finite (got {value!r})")
    return number


def _spec_speed(spec: str, value: str | None, default: float) -> float:
    if value is None:
        return default
    speed = math.inf if value.lower() in ("inf", "max") else _spec_float(spec, "speed", value)
    if not speed > 0.0:
        raise InputError("--feed", spec, f"speed must be > 0 or 'inf' (got {value!r})")
    return speed


# --- argument checks -------------------------------------------------------------------------


def _check_prices(name: str, prices: Mapping[str, float]) -> None:
    if not prices:
        raise InputError(name, dict(prices), "needs at least one asset with its USD price")
    for asset, price in prices.items():
        if not isinstance(price, int | float) or not (math.isfinite(price) and price > 0):
            raise InputError(f"{name}.{asset}", price, "price must be a finite number > 0")


def _check_positive(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise InputError(name, value, "must be a finite number > 0")


def _check_int(name: str, value: int, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InputError(name, value, f"must be an integer >= {low}")
    if high is not None and value > high:
        raise InputError(name, value, f"must be an integer <= {high}")
