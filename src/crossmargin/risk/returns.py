r"""Daily log-return matrices for the risk analytics, mapped onto a book's assets.

A return on day :math:`t` is :math:`r_t = \ln(P_t / P_{t-1})` of the close. Series come from
any file :func:`crossmargin.market.loaders.load_history` reads (the shared Bitstamp daily file,
a generic OHLCV CSV, ...), one or many files, joined on their common dates.

Documented fallbacks and errors (never a NaN in a return matrix):

* **missing dates** - a return whose two closes are more than ``max_gap_days`` apart spans a
  gap in the calendar; it is *dropped* (``on_gap="drop"``, the default: treating a 13-day move
  as a 1-day return would fatten the tail) or raises :class:`~crossmargin.errors.InputError`
  naming the first gap (``on_gap="error"``). The count of dropped returns is kept in
  :attr:`ReturnData.gaps_dropped`.
* **sampling interval** - detected per series as the median spacing of its timestamps
  (:func:`crossmargin.market.loaders.sampling_interval`; gaps do not move the median):

  - *daily* (median 24 h +- 1 h): used as is;
  - *intraday* (median below 23 h, e.g. hourly): aggregated to daily log returns per UTC
    calendar day. The day's close is the close of its last bar (bars are labelled by their
    opening time, as ccxt and CryptoDataDownload do), and the day's return
    ``ln(C_D / C_{D-1})`` is exactly the sum of the bar log returns ending in it. A day counts
    only when it holds at least ``min_day_coverage`` (90 %) of its bars and its last bar opens
    in the final 10 % of the day (at least the final bar: hourly data needs >= 22 of 24 bars and
    a bar at 22:00 or 23:00); the first and last days of a file are usually partial. A return
    whose previous day is partial or missing spans a gap and follows ``on_gap``. Refused (one
    line naming the file and the interval): an interval that does not divide a day (5 h) and
    irregular data (fewer than 90 % of the spacings whole multiples of the median);
  - *coarser* (weekly, every 2 days, ...): refused - scaling a weekly return down to a day
    would assume i.i.d. normal returns, exactly what the tail figures must not assume.

  :attr:`ReturnData.sampling` records what was done per series.
* **too-short history** - fewer than ``min_obs`` joint returns raise ``InputError("returns",
  n, ...)``.
* **assets without returns** - a stablecoin (the stress library's list) gets a zero return; a
  wrapped or staked token takes its alias's series (``wstETH`` -> ``ETH``, the stress library's
  aliases); ``proxies`` map any other asset onto a series (``{"AAVE": "ETH"}``, beta 1); any
  other asset raises :class:`MissingReturnsError` naming it. A located symbol of a compiled
  book (``ETH@arbitrum``, ``ETH@arbitrum>home``: issue #17) maps as its base asset does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from crossmargin.errors import InputError
from crossmargin.locations.schema import base_asset
from crossmargin.market.loaders import (
    DAY_SECONDS,
    MIN_REGULAR_FRACTION,
    SamplingInterval,
    load_history,
    sampling_interval,
)

FloatArray = npt.NDArray[np.float64]

#: default minimum number of joint daily returns (a 99 % tail needs >= 1 observation per 100)
MIN_OBSERVATIONS = 100
#: intraday data: share of a UTC day's bars needed for the day to count (see the docstring)
MIN_DAY_COVERAGE = 0.9


class MissingReturnsError(InputError):
    """An asset an account is exposed to has no return series, alias, proxy or stable status."""


@dataclass(frozen=True, eq=False)
class ReturnData:
    """Joint daily log returns: ``values[t, k]`` of ``symbols[k]`` on ``dates[t]`` (UTC)."""

    dates: pd.DatetimeIndex
    symbols: tuple[str, ...]
    values: FloatArray  # [n_obs, n_series] log returns per day
    gaps_dropped: int = 0
    #: per series: its sampling interval and what was done ('1d', '1h -> 1d (836 UTC days, ...)')
    sampling: dict[str, str] = field(default_factory=dict)

    @property
    def n_obs(self) -> int:
        return int(self.values.shape[0])

    def column(self, symbol: str) -> FloatArray:
        return self.values[:, self.symbols.index(symbol)]


def daily_closes(
    close: pd.Series, interval: SamplingInterval, min_coverage: float = MIN_DAY_COVERAGE
) -> tuple[pd.Series, int]:
    """Close of every complete UTC day of intraday closes (indexed by the day's midnight) and
    the number of partial days left out (the rule is in the module docstring)."""
    if not 0.0 < min_coverage <= 1.0:
        raise InputError("min_day_coverage", min_coverage, "must be in (0, 1]")
    bars = interval.bars_per_day
    need = math.ceil(min_coverage * bars - 1e-9)
    tail = max(1, math.floor((1.0 - min_coverage) * bars + 1e-9))
    index = pd.DatetimeIndex(close.index)
    days = index.floor("D")
    offsets = np.asarray((index - days).total_seconds(), dtype=np.float64)
    frame = pd.DataFrame({"close": close.to_numpy(np.float64), "offset": offsets}, index=days)
    grouped = frame.groupby(level=0, sort=True)
    last_close = grouped["close"].last()
    count = grouped.size().to_numpy()
    last_offset = grouped["offset"].max().to_numpy()
    complete = (count >= need) & (last_offset >= DAY_SECONDS - tail * interval.seconds - 1e-6)
    return last_close[complete], int((~complete).sum())


def _source(symbol: str, sources: Mapping[str, str] | None) -> str:
    where = (sources or {}).get(symbol)
    return f"{where} ({symbol})" if where else f"returns.{symbol}"


def _to_daily(
    close: pd.Series,
    symbol: str,
    sources: Mapping[str, str] | None,
    min_day_coverage: float,
) -> tuple[pd.Series, str]:
    """Daily closes of a series of any supported interval, and what was done (or refuse)."""
    interval = sampling_interval(pd.DatetimeIndex(close.index))
    label = interval.label
    if interval.kind == "daily":
        return close, "1d"
    if interval.kind == "coarse":
        raise InputError(
            _source(symbol, sources),
            label,
            f"sampled every {label} (median spacing): the risk analytics need daily returns - "
            "give daily or intraday prices (intraday is aggregated to UTC days); coarser data "
            "is not scaled down to a day",
        )
    if not interval.regular:
        raise InputError(
            _source(symbol, sources),
            label,
            f"irregular sampling: only {interval.regular_fraction:.0%} of the spacings are "
            f"whole multiples of the median {label} (need {MIN_REGULAR_FRACTION:.0%}); "
            "cannot aggregate to UTC days",
        )
    if not interval.divides_day:
        raise InputError(
            _source(symbol, sources),
            label,
            f"sampled every {label}: the bars do not divide a UTC day, so they cannot be "
            "aggregated to daily returns",
        )
    daily, partial = daily_closes(close, interval, min_day_coverage)
    if len(daily) < 2:
        raise InputError(
            _source(symbol, sources),
            label,
            f"sampled every {label}: fewer than two complete UTC days (a day needs "
            f"{min_day_coverage:.0%} of its {interval.bars_per_day} bars)",
        )
    return daily, f"{label} -> 1d ({len(daily)} UTC days, {partial} partial left out)"


def returns_from_frames(
    frames: Mapping[str, pd.DataFrame | pd.Series],
    *,
    on_gap: str = "drop",
    max_gap_days: float = 1.0,
    min_obs: int = MIN_OBSERVATIONS,
    sources: Mapping[str, str] | None = None,
    min_day_coverage: float = MIN_DAY_COVERAGE,
) -> ReturnData:
    """Joint daily log returns of closes (a frame with ``close`` or a price series per symbol).

    Intraday series are aggregated to UTC days and coarser ones refused (module docstring);
    ``sources`` names each symbol's file in those messages.
    """
    if on_gap not in ("drop", "error"):
        raise InputError("on_gap", on_gap, "must be 'drop' or 'error'")
    if not frames:
        raise InputError("returns", 0, "no price series given")
    columns: dict[str, pd.Series] = {}
    sampling: dict[str, str] = {}
    dropped = 0
    for symbol, frame in frames.items():
        close = frame["close"] if isinstance(frame, pd.DataFrame) else frame
        close = close.astype(np.float64).dropna().sort_index()
        if close.index.has_duplicates:
            when = close.index[close.index.duplicated()][0]
            raise InputError(f"returns.{symbol}.index", str(when), "duplicate date")
        if (close <= 0).any() or not np.isfinite(close.to_numpy()).all():
            raise InputError(f"returns.{symbol}", "close", "prices must be finite numbers > 0")
        if len(close) < 2:
            raise InputError(f"returns.{symbol}", len(close), "need at least two closes")
        close, sampling[symbol] = _to_daily(close, symbol, sources, min_day_coverage)
        index = pd.DatetimeIndex(close.index)
        spacing_days = np.asarray((index[1:] - index[:-1]).total_seconds()) / 86_400.0
        gap = spacing_days > max_gap_days * (1.0 + 1e-9)
        if gap.any() and on_gap == "error":
            first = int(np.flatnonzero(gap)[0])
            raise InputError(
                f"returns.{symbol}.dates",
                f"{index[first].date()}..{index[first + 1].date()}",
                f"missing dates: closes {spacing_days[first]:g} days apart "
                "(on_gap='drop' drops returns that span a gap)",
            )
        log_ret = np.diff(np.log(close.to_numpy()))
        series = pd.Series(log_ret[~gap], index=index[1:][~gap])
        dropped += int(gap.sum())
        columns[symbol] = series
    joint = pd.concat(columns, axis=1, join="inner").sort_index()
    if len(joint) < min_obs:
        raise InputError(
            "returns",
            len(joint),
            f"too short: need at least {min_obs} joint daily returns of {sorted(columns)}",
        )
    values = joint.to_numpy(dtype=np.float64)
    return ReturnData(pd.DatetimeIndex(joint.index), tuple(columns), values, dropped, sampling)


def load_returns(
    paths: str | Path | Sequence[str | Path],
    *,
    on_gap: str = "drop",
    min_obs: int = MIN_OBSERVATIONS,
) -> ReturnData:
    """Read one or many price files (any layout ``load_history`` knows) into joint returns."""
    files = [paths] if isinstance(paths, str | Path) else list(paths)
    frames: dict[str, pd.DataFrame] = {}
    sources: dict[str, str] = {}
    for file in files:
        for symbol, frame in load_history(file).items():
            frames[symbol] = frame
            sources[symbol] = Path(file).name
    return returns_from_frames(frames, on_gap=on_gap, min_obs=min_obs, sources=sources)


@dataclass(frozen=True)
class ReturnMapping:
    """How each risk asset gets its returns: a column of :class:`ReturnData`, or zero."""

    assets: tuple[str, ...]
    column: tuple[int, ...]  # column of ReturnData.values; -1: a stablecoin (zero return)
    source: tuple[str, ...]  # human-readable: 'BTC', 'alias of ETH', 'proxy ETH', 'stable'


def map_assets(
    assets: Iterable[str],
    data: ReturnData,
    proxies: Mapping[str, str] | None = None,
    stablecoins: Iterable[str] | None = None,
    aliases: Mapping[str, str] | None = None,
) -> ReturnMapping:
    """Map assets onto return columns (see the module docstring for the fallbacks).

    ``stablecoins`` and ``aliases`` default to the shipped stress library's lists.
    """
    if stablecoins is None or aliases is None:
        from crossmargin.risk.stress import builtin_scenarios

        library = builtin_scenarios()
        stablecoins = library.stablecoins if stablecoins is None else stablecoins
        aliases = library.aliases if aliases is None else aliases
    stable = set(stablecoins)
    names, cols, sources = [], [], []
    for symbol in assets:
        names.append(symbol)
        proxy = (proxies or {}).get(symbol)
        if proxy is not None:
            if proxy not in data.symbols:
                raise MissingReturnsError(
                    f"proxies.{symbol}", proxy, f"no return series (have {list(data.symbols)})"
                )
            cols.append(data.symbols.index(proxy))
            sources.append(f"proxy {proxy}")
        elif symbol in data.symbols:
            cols.append(data.symbols.index(symbol))
            sources.append(symbol)
        elif base_asset(symbol) != symbol:  # ETH@arbitrum (#17): ETH's returns, as ETH maps
            base = map_assets([base_asset(symbol)], data, proxies, stable, aliases)
            cols.append(base.column[0])
            sources.append(f"{base.source[0]} ({symbol})")
        elif symbol in stable:
            cols.append(-1)
            sources.append("stable")
        elif aliases.get(symbol) in data.symbols:
            cols.append(data.symbols.index(aliases[symbol]))
            sources.append(f"alias of {aliases[symbol]}")
        else:
            raise MissingReturnsError(
                f"returns.{symbol}",
                symbol,
                f"no return series (have {list(data.symbols)}); give a proxy, "
                f"e.g. proxies={{'{symbol}': '{data.symbols[0]}'}} or --proxy {symbol}=...",
            )
    return ReturnMapping(tuple(names), tuple(cols), tuple(sources))


def mapped_returns(data: ReturnData, mapping: ReturnMapping) -> FloatArray:
    """``[n_obs, n_assets]`` returns of the mapped assets (zeros for stablecoins)."""
    out = np.zeros((data.n_obs, len(mapping.assets)))
    for k, col in enumerate(mapping.column):
        if col >= 0:
            out[:, k] = data.values[:, col]
    return out
