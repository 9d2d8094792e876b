r"""Market-level liquidation waves: features from one-minute quotes and liquidations, the target,
and the analytic analogue of the baseline.

Input: the minute frame of :func:`crossmargin.market.loaders.load_binance_liquidations` (bid,
ask, mid, long and short forced-liquidation quantities in the base asset). Row :math:`t` is one
minute; liquidation notional is :math:`L_t = (\ell^{long}_t + \ell^{short}_t) M_t` USD with
:math:`M_t` the mid.

**Target.** A *wave* at :math:`t` is :math:`\sum_{j=1}^{k} L_{t+j} > \theta`: the liquidated
notional of the next :math:`k` minutes exceeds :math:`\theta`, the ``quantile`` (default 95 %)
of that :math:`k`-minute sum over the **training rows only** (no test data sets the bar). The
top 5 % of 15-minute windows is rare enough to be an event a desk acts on, frequent enough for
the training period to hold hundreds of them (a 99 % bar leaves a few dozen clusters to learn
from).

**Features at t** use rows :math:`\le t` only (tested by perturbing later rows):

* returns :math:`\ln(M_t/M_{t-\ell})` for :math:`\ell` = 1, 5, 15, 60 minutes;
* realized volatility :math:`\sqrt{\text{mean}\, r^2}` over 15 and 60 minutes; EWMA volatility
  :math:`v_t = \lambda v_{t-1} + (1-\lambda) r_t^2` (normalized by its weights from the first
  return: no seed) with half-lives 30 minutes (fast) and one day (slow), and their ratio;
* spread :math:`(A-B)/M` in bp and its z-score against the last 60 minutes;
* quote-imbalance proxy :math:`(\Delta B + \Delta A)/(|\Delta B| + |\Delta A|)` (both quotes
  moving up: +1), averaged over 5 and 15 minutes (the file has no sizes);
* signed-volume proxy by bulk volume classification (Easley, López de Prado & O'Hara 2012):
  :math:`2N(r_t/\sigma_{t-1}) - 1`, summed over 5, 15 and 60 minutes;
* recent liquidations: :math:`\ln(1 + \sum L)` over 1, 5, 15, 60 and 240 minutes, the long
  share over 60 minutes, minutes since the last liquidation (capped at 1,440);
* distance to clustered liquidation levels (below).

**Liquidation-level map.** Positions opened at the mid of each of the last :math:`W` = 1,440
minutes (equal weight: the file has no volume or open interest, an assumption) with leverage
:math:`\lambda \in \{10, 25, 50, 100\}` and maintenance margin :math:`m` = 0.5 % liquidate at
:math:`M_s(1 - 1/\lambda + m)` (longs) and :math:`M_s(1 + 1/\lambda - m)` (shorts). A level
the price has since crossed is gone (the position was liquidated). Surviving levels are binned
in 0.1 % log-price bins; a **cluster** is a bin holding at least 2 % of that side's surviving
levels. Features: the log distance from the mid to the nearest long cluster below and short
cluster above, in units of :math:`\sigma_k = v_t^{1/2}\sqrt{k}` (NaN if none within 20 %), and
the share of surviving levels within :math:`1\sigma_k`.

**Analytic analogue** (the baseline for this target): the probability that the mid, a driftless
GBM at the fast EWMA volatility monitored every minute (Broadie-Glasserman-Kou), reaches the
nearest long cluster below or the nearest short cluster above within :math:`k` minutes,
:math:`1 - (1 - p_{down})(1 - p_{up})` (sides taken as independent).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from crossmargin._numba import jit
from crossmargin.errors import InputError
from crossmargin.predict.firstpassage import drift_toward_barrier, hit_probability

if TYPE_CHECKING:
    import pandas as pd

FloatArray = npt.NDArray[np.float64]

MINUTES_PER_DAY = 1440.0
LAGS = (1, 5, 15, 60)
LIQ_WINDOWS = (1, 5, 15, 60, 240)
FAST_HALF_LIFE = 30.0  # minutes
SLOW_HALF_LIFE = 1440.0
LEVERAGES = (10.0, 25.0, 50.0, 100.0)
MAINT_MARGIN = 0.005
MAP_WINDOW = 1440  # minutes of entries in the liquidation-level map
BIN_WIDTH = 0.001  # log-price bin of the map
CLUSTER_SHARE = 0.02
MAX_SCAN = 200  # bins: 20 % of price
SINCE_CAP = 1440.0
#: rows whose features are computed but not used (EWMA seeds, windows filling)
WARMUP = 240
#: fewest rows after the warm-up for a training run
MIN_TRAIN_ROWS = 2_000

FEATURES = (
    *(f"ret_{lag}" for lag in LAGS),
    "rv_15",
    "rv_60",
    "ewma_vol",
    "vol_ratio",
    "spread_bp",
    "spread_z60",
    "qi_5",
    "qi_15",
    "ofi_5",
    "ofi_15",
    "ofi_60",
    *(f"liq_{w}" for w in LIQ_WINDOWS),
    "liq_long_share_60",
    "since_liq",
    "dist_long_sd",
    "dist_short_sd",
    "mass_long_1sd",
    "mass_short_1sd",
)


@dataclass(frozen=True, eq=False)
class MinuteData:
    """The columns the features need, as float arrays, with their timestamps (ns UTC)."""

    time_ns: npt.NDArray[np.int64]
    bid: FloatArray
    ask: FloatArray
    liq_long: FloatArray  # base-asset quantity
    liq_short: FloatArray
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.bid.shape[0])

    @property
    def mid(self) -> FloatArray:
        return np.asarray(0.5 * (self.bid + self.ask), dtype=np.float64)

    @property
    def liq_usd(self) -> FloatArray:
        return np.asarray((self.liq_long + self.liq_short) * self.mid, dtype=np.float64)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def minutes_from_frame(frame: pd.DataFrame, source: dict[str, Any] | None = None) -> MinuteData:
    """Check and convert a minute frame (columns bid, ask, liq_long_qty, liq_short_qty; sorted
    UTC index): a NaN or negative entry is an error naming its time and column."""
    need = ("bid", "ask", "liq_long_qty", "liq_short_qty")
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise InputError("data", list(frame.columns), f"missing columns {missing}")
    values = {c: frame[c].to_numpy(dtype=np.float64) for c in need}
    for column, array in values.items():
        low = 0.0 if column.startswith("liq") else 1e-300
        bad = ~np.isfinite(array) | (array < low)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(
                f"data[{frame.index[i]}].{column}", float(array[i]), "must be a finite number >= 0"
            )
    if np.any(values["ask"] < values["bid"]):
        i = int(np.flatnonzero(values["ask"] < values["bid"])[0])
        raise InputError(f"data[{frame.index[i]}].ask", float(values["ask"][i]), "ask below bid")
    index = frame.index
    time_ns = np.asarray(index.asi8 if hasattr(index, "asi8") else np.arange(len(frame)), np.int64)
    if time_ns.size > 1 and np.any(np.diff(time_ns) <= 0):
        raise InputError("data.index", "unsorted", "timestamps must increase")
    return MinuteData(
        time_ns=time_ns,
        bid=values["bid"],
        ask=values["ask"],
        liq_long=values["liq_long_qty"],
        liq_short=values["liq_short_qty"],
        source=dict(source or {}),
    )


def load_minutes(path: str | Path) -> MinuteData:
    """The Binance minute file (validated by the loader), with its hash and period."""
    from crossmargin.market.loaders import load_binance_liquidations

    frame = load_binance_liquidations(path)
    source = {
        "file": Path(path).name,
        "sha256": file_sha256(path),
        "rows": len(frame),
        "period": [frame.index[0].isoformat(), frame.index[-1].isoformat()],
    }
    return minutes_from_frame(frame, source)


# --- causal window helpers (value at t uses rows <= t) -----------------------------------


def _trailing_sum(x: FloatArray, window: int) -> FloatArray:
    c = np.concatenate([[0.0], np.cumsum(x)])
    idx = np.arange(1, x.size + 1)
    out: FloatArray = c[idx] - c[np.maximum(idx - window, 0)]
    return out


def _trailing_mean(x: FloatArray, window: int) -> FloatArray:
    count = np.minimum(np.arange(1, x.size + 1), window)
    return np.asarray(_trailing_sum(x, window) / count, dtype=np.float64)


@jit
def _ewma(x: FloatArray, lam: float) -> FloatArray:
    """EWMA of ``x[1:]`` normalized by its weights (no seed: causal from the first value);
    element 0 is 0."""
    out = np.zeros(x.shape[0])
    v = 0.0
    w = 0.0
    for i in range(1, x.shape[0]):
        v = lam * v + (1.0 - lam) * x[i]
        w = lam * w + (1.0 - lam)
        out[i] = v / w
    return out


@jit
def _since_positive(x: FloatArray, cap: float) -> FloatArray:
    out = np.empty(x.shape[0])
    last = -1
    for i in range(x.shape[0]):
        if x[i] > 0.0:
            last = i
        out[i] = cap if last < 0 else min(float(i - last), cap)
    return out


@jit
def _level_map(
    log_mid: FloatArray,
    long_offsets: FloatArray,
    short_offsets: FloatArray,
    window: int,
    width: float,
    share: float,
    max_scan: int,
    band: FloatArray,
    dist_long: FloatArray,
    dist_short: FloatArray,
    mass_long: FloatArray,
    mass_short: FloatArray,
) -> None:
    """The module docstring's liquidation-level map, one minute at a time (causal).

    Bins are absolute (``floor(level / width)``), so the map at ``t`` does not depend on later
    rows. Order at ``t``: entries of ``t - window`` expire, levels the price has crossed are
    wiped, the entries of ``t`` are added, the nearest clusters are found. An entry created at
    ``s`` is alive while its bin's last wipe time is <= ``s``."""
    n = log_mid.shape[0]
    lo = np.inf
    hi = -np.inf
    for i in range(n):
        lo = min(lo, log_mid[i])
        hi = max(hi, log_mid[i])
    off_lo = min(long_offsets.min(), short_offsets.min())
    off_hi = max(long_offsets.max(), short_offsets.max())
    base = int((lo + off_lo) // width) - max_scan - 2
    size = int((hi + off_hi) // width) - base + max_scan + 3
    count_l = np.zeros(size)
    count_s = np.zeros(size)
    wiped_l = np.full(size, -1, dtype=np.int64)
    wiped_s = np.full(size, -1, dtype=np.int64)
    total_l = 0.0
    total_s = 0.0
    top_l = -1  # highest bin that may hold long levels
    bottom_s = size  # lowest bin that may hold short levels
    n_lev = long_offsets.shape[0]
    for t in range(n):
        s = t - window
        if s >= 0:
            for k in range(n_lev):
                j = int((log_mid[s] + long_offsets[k]) // width) - base
                if wiped_l[j] <= s:
                    count_l[j] -= 1.0
                    total_l -= 1.0
                j = int((log_mid[s] + short_offsets[k]) // width) - base
                if wiped_s[j] <= s:
                    count_s[j] -= 1.0
                    total_s -= 1.0
        c0 = int(log_mid[t] // width) - base
        for j in range(c0, top_l + 1):  # long levels at or above the price: liquidated
            if count_l[j] != 0.0:
                total_l -= count_l[j]
                count_l[j] = 0.0
            wiped_l[j] = t
        top_l = min(top_l, c0 - 1)
        for j in range(max(bottom_s, 0), c0 + 1):  # short levels at or below: liquidated
            if count_s[j] != 0.0:
                total_s -= count_s[j]
                count_s[j] = 0.0
            wiped_s[j] = t
        bottom_s = max(bottom_s, c0 + 1)
        for k in range(n_lev):
            j = int((log_mid[t] + long_offsets[k]) // width) - base
            count_l[j] += 1.0
            total_l += 1.0
            top_l = max(top_l, j)
            j = int((log_mid[t] + short_offsets[k]) // width) - base
            count_s[j] += 1.0
            total_s += 1.0
            bottom_s = min(bottom_s, j)
        need_l = max(1.0, share * total_l)
        need_s = max(1.0, share * total_s)
        dist_long[t] = math.nan
        dist_short[t] = math.nan
        for j in range(c0 - 1, max(c0 - 1 - max_scan, -1), -1):
            if count_l[j] >= need_l:
                dist_long[t] = max(log_mid[t] - (j + base + 1) * width, 0.0)
                break
        for j in range(c0 + 1, min(c0 + 1 + max_scan, size)):
            if count_s[j] >= need_s:
                dist_short[t] = max((j + base) * width - log_mid[t], 0.0)
                break
        lo_bin = int((log_mid[t] - band[t]) // width) - base
        hi_bin = int((log_mid[t] + band[t]) // width) - base
        acc = 0.0
        for j in range(max(lo_bin, 0), c0):
            acc += count_l[j]
        mass_long[t] = acc / total_l if total_l > 0.0 else 0.0
        acc = 0.0
        for j in range(c0 + 1, min(hi_bin + 1, size)):
            acc += count_s[j]
        mass_short[t] = acc / total_s if total_s > 0.0 else 0.0


def _half_life_lambda(minutes: float) -> float:
    return float(0.5 ** (1.0 / minutes))


@dataclass(frozen=True, eq=False)
class MarketFeatures:
    """Feature matrix ``[n, len(FEATURES)]`` and the analytic analogue, per minute."""

    values: FloatArray
    names: tuple[str, ...]
    analytic: FloatArray  # P(reach the nearest cluster within k minutes)
    sigma_minute: FloatArray  # fast EWMA volatility per minute
    minutes: int


def market_features(data: MinuteData, minutes: int = 15) -> MarketFeatures:
    """Features of every minute (module docstring) for a ``minutes``-ahead target."""
    if not (isinstance(minutes, int) and 1 <= minutes <= 1440):
        raise InputError("minutes", minutes, "must be an integer from 1 to 1440")
    n = data.n
    if n < WARMUP + 1:
        raise InputError("data", n, f"too short: need at least {WARMUP + 1} minutes of history")
    mid = data.mid
    log_mid = np.log(mid)
    r = np.concatenate([[0.0], np.diff(log_mid)])
    cols: dict[str, FloatArray] = {}
    for lag in LAGS:
        cols[f"ret_{lag}"] = log_mid - log_mid[np.maximum(np.arange(n) - lag, 0)]
    r2 = r * r
    for w in (15, 60):
        cols[f"rv_{w}"] = np.sqrt(_trailing_mean(r2, w))
    fast = _ewma(r2, _half_life_lambda(FAST_HALF_LIFE))
    slow = _ewma(r2, _half_life_lambda(SLOW_HALF_LIFE))
    sigma = np.sqrt(fast)
    cols["ewma_vol"] = sigma
    cols["vol_ratio"] = np.sqrt(fast / np.maximum(slow, 1e-300))
    spread = (data.ask - data.bid) / mid * 1e4
    cols["spread_bp"] = spread
    mean60 = _trailing_mean(spread, 60)
    var60 = np.maximum(_trailing_mean(spread * spread, 60) - mean60 * mean60, 0.0)
    cols["spread_z60"] = (spread - mean60) / np.sqrt(var60 + 1e-12)
    d_bid = np.concatenate([[0.0], np.diff(data.bid)])
    d_ask = np.concatenate([[0.0], np.diff(data.ask)])
    denom = np.abs(d_bid) + np.abs(d_ask)
    qi = np.where(denom > 0.0, (d_bid + d_ask) / np.where(denom > 0.0, denom, 1.0), 0.0)
    cols["qi_5"], cols["qi_15"] = _trailing_mean(qi, 5), _trailing_mean(qi, 15)
    from scipy.special import ndtr

    prev_sigma = np.concatenate([[0.0], sigma[:-1]])
    bvc = 2.0 * ndtr(r / np.maximum(prev_sigma, 1e-12)) - 1.0
    for w in (5, 15, 60):
        cols[f"ofi_{w}"] = _trailing_sum(bvc, w)
    liq = data.liq_usd
    for w in LIQ_WINDOWS:
        cols[f"liq_{w}"] = np.log1p(_trailing_sum(liq, w))
    long60 = _trailing_sum(data.liq_long * mid, 60)
    all60 = _trailing_sum(liq, 60)
    cols["liq_long_share_60"] = np.where(all60 > 0.0, long60 / np.where(all60 > 0, all60, 1), 0.5)
    cols["since_liq"] = _since_positive(liq, SINCE_CAP)
    band = sigma * math.sqrt(minutes)
    dist_l, dist_s = np.empty(n), np.empty(n)
    mass_l, mass_s = np.empty(n), np.empty(n)
    lev = np.array(LEVERAGES)
    _level_map(
        log_mid,
        np.log(1.0 - 1.0 / lev + MAINT_MARGIN),
        np.log(1.0 + 1.0 / lev - MAINT_MARGIN),
        MAP_WINDOW,
        BIN_WIDTH,
        CLUSTER_SHARE,
        MAX_SCAN,
        band,
        dist_l,
        dist_s,
        mass_l,
        mass_s,
    )
    safe_band = np.maximum(band, 1e-12)
    cols["dist_long_sd"] = dist_l / safe_band
    cols["dist_short_sd"] = dist_s / safe_band
    cols["mass_long_1sd"], cols["mass_short_1sd"] = mass_l, mass_s
    values = np.column_stack([cols[name] for name in FEATURES]).astype(np.float64)
    # analytic analogue: minute vol -> per day; horizon and monitoring in days
    sigma_day = sigma * math.sqrt(MINUTES_PER_DAY)
    horizon = minutes / MINUTES_PER_DAY
    monitor = 1.0 / MINUTES_PER_DAY
    p_down = hit_probability(
        np.where(np.isnan(dist_l), np.inf, dist_l),
        sigma_day,
        horizon,
        drift_toward_barrier(-1.0, sigma_day),
        monitor,
    )
    p_up = hit_probability(
        np.where(np.isnan(dist_s), np.inf, dist_s),
        sigma_day,
        horizon,
        drift_toward_barrier(1.0, sigma_day),
        monitor,
    )
    analytic = 1.0 - (1.0 - p_down) * (1.0 - p_up)
    return MarketFeatures(values, FEATURES, analytic, sigma, minutes)


def future_sum(x: FloatArray, k: int) -> FloatArray:
    """:math:`\\sum_{j=1}^{k} x_{t+j}`; NaN for the last ``k`` rows (not observed)."""
    c = np.concatenate([[0.0], np.cumsum(x)])
    n = x.size
    out = np.full(n, np.nan)
    t = np.arange(n - k)
    out[: n - k] = c[t + k + 1] - c[t + 1]
    return out


__all__ = [
    "FEATURES",
    "MarketFeatures",
    "MinuteData",
    "future_sum",
    "load_minutes",
    "market_features",
    "minutes_from_frame",
]
