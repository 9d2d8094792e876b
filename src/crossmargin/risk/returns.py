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
* **too-short history** - fewer than ``min_obs`` joint returns raise ``InputError("returns",
  n, ...)``.
* **assets without returns** - a stablecoin (the stress library's list) gets a zero return; a
  wrapped or staked token takes its alias's series (``wstETH`` -> ``ETH``, the stress library's
  aliases); ``proxies`` map any other asset onto a series (``{"AAVE": "ETH"}``, beta 1); any
  other asset raises :class:`MissingReturnsError` naming it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from crossmargin.errors import InputError
from crossmargin.market.loaders import load_history

FloatArray = npt.NDArray[np.float64]

#: default minimum number of joint daily returns (a 99 % tail needs >= 1 observation per 100)
MIN_OBSERVATIONS = 100


class MissingReturnsError(InputError):
    """An asset an account is exposed to has no return series, alias, proxy or stable status."""


@dataclass(frozen=True, eq=False)
class ReturnData:
    """Joint daily log returns: ``values[t, k]`` of ``symbols[k]`` on ``dates[t]`` (UTC)."""

    dates: pd.DatetimeIndex
    symbols: tuple[str, ...]
    values: FloatArray  # [n_obs, n_series] log returns per day
    gaps_dropped: int = 0

    @property
    def n_obs(self) -> int:
        return int(self.values.shape[0])

    def column(self, symbol: str) -> FloatArray:
        return self.values[:, self.symbols.index(symbol)]


def returns_from_frames(
    frames: Mapping[str, pd.DataFrame | pd.Series],
    *,
    on_gap: str = "drop",
    max_gap_days: float = 1.0,
    min_obs: int = MIN_OBSERVATIONS,
) -> ReturnData:
    """Joint log returns of closes (a frame with ``close`` or a price series per symbol)."""
    if on_gap not in ("drop", "error"):
        raise InputError("on_gap", on_gap, "must be 'drop' or 'error'")
    if not frames:
        raise InputError("returns", 0, "no price series given")
    columns: dict[str, pd.Series] = {}
    dropped = 0
    for symbol, frame in frames.items():
        close = frame["close"] if isinstance(frame, pd.DataFrame) else frame
        close = close.astype(np.float64).dropna().sort_index()
        if close.index.has_duplicates:
            when = close.index[close.index.duplicated()][0]
            raise InputError(f"returns.{symbol}.index", str(when), "duplicate date")
        if (close <= 0).any() or not np.isfinite(close.to_numpy()).all():
            raise InputError(f"returns.{symbol}", "close", "prices must be finite numbers > 0")
        index = pd.DatetimeIndex(close.index)
        if len(index) < 2:
            raise InputError(f"returns.{symbol}", len(index), "need at least two closes")
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
    return ReturnData(pd.DatetimeIndex(joint.index), tuple(columns), values, dropped)


def load_returns(
    paths: str | Path | Sequence[str | Path],
    *,
    on_gap: str = "drop",
    min_obs: int = MIN_OBSERVATIONS,
) -> ReturnData:
    """Read one or many price files (any layout ``load_history`` knows) into joint returns."""
    files = [paths] if isinstance(paths, str | Path) else list(paths)
    frames: dict[str, pd.DataFrame] = {}
    for file in files:
        for symbol, frame in load_history(file).items():
            frames[symbol] = frame
    return returns_from_frames(frames, on_gap=on_gap, min_obs=min_obs)


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
