"""Sampling interval of return series: intraday data aggregated to UTC days, coarser refused.

The risk analytics' horizon is one day. Hourly closes used as daily returns gave a "1-day" VaR
about sqrt(24) ~ 4.9 times too small; they are now summed into daily log returns per UTC day.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crossmargin.errors import InputError
from crossmargin.market.loaders import interval_label, load_history, sampling_interval
from crossmargin.risk.returns import load_returns, returns_from_frames

#: ../shared/data beside the repository (absent in a fresh clone: those tests skip)
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
HOURLY = SHARED / "coinbase_btc_usd_hourly.csv"
DAILY = SHARED / "bitstamp_btc_eth_ltc_usd_daily.csv"
needs_shared = pytest.mark.skipif(
    not (HOURLY.is_file() and DAILY.is_file()),
    reason=f"{SHARED} is absent (a fresh clone has no shared data folder)",
)


def _hourly(daily_returns: np.ndarray, start: str = "2024-01-01") -> pd.Series:
    """Hourly closes whose 24 bar log returns of day d are each daily_returns[d] / 24.

    The first bar (00:00 of the first day) is the starting price: day 0 has no return, so the
    aggregated day-d return (d >= 1) is exactly daily_returns[d].
    """
    bar = np.repeat(daily_returns / 24.0, 24)
    log_price = np.log(100.0) + np.cumsum(bar) - bar[0]
    index = pd.date_range(start, periods=bar.size, freq="h", tz="UTC")
    return pd.Series(np.exp(log_price), index=index)


def test_interval_detection_tolerates_gaps() -> None:
    index = pd.date_range("2024-01-01", periods=500, freq="h", tz="UTC")
    holed = index.delete(np.r_[100:172, 300:303])  # a 3-day hole and a 3-hour one
    interval = sampling_interval(holed)
    assert interval.seconds == 3600.0 and interval.label == "1h"
    assert interval.kind == "intraday" and interval.regular and interval.divides_day
    assert interval.bars_per_day == 24
    daily = sampling_interval(pd.date_range("2024-01-01", periods=50, freq="D"))
    assert daily.kind == "daily" and daily.label == "1d"
    weekly = sampling_interval(pd.date_range("2024-01-01", periods=50, freq="7D"))
    assert weekly.kind == "coarse" and weekly.label == "7d"
    assert interval_label(300) == "5min" and interval_label(90) == "90s"
    assert interval_label(5400) == "90min" and interval_label(1.5 * 86400) == "36h"


def test_hourly_aggregates_to_the_exact_daily_returns() -> None:
    """Synthetic: the daily log returns are known exactly, also with missing hours."""
    rng = np.random.default_rng(7)
    truth = rng.normal(0.0, 0.04, 150)
    close = _hourly(truth)
    data = returns_from_frames({"BTC": close})
    assert data.sampling["BTC"] == "1h -> 1d (150 UTC days, 0 partial left out)"
    assert data.n_obs == 149 and data.gaps_dropped == 0
    np.testing.assert_allclose(data.column("BTC"), truth[1:], rtol=0, atol=1e-12)
    assert data.dates[0] == pd.Timestamp("2024-01-02", tz="UTC")
    # two hours missing inside day 10 (22 of 24 bars left): the day still counts, exactly
    holed = close.drop(close.index[10 * 24 + 5 : 10 * 24 + 7])
    again = returns_from_frames({"BTC": holed})
    np.testing.assert_allclose(again.column("BTC"), truth[1:], rtol=0, atol=1e-12)


def test_a_partial_day_is_left_out_and_its_returns_span_a_gap() -> None:
    truth = np.full(150, 0.01)
    close = _hourly(truth)
    partial = close.drop(close.index[20 * 24 + 3 : 20 * 24 + 6])  # day 20: 21 of 24 bars
    data = returns_from_frames({"BTC": partial})
    assert data.sampling["BTC"] == "1h -> 1d (149 UTC days, 1 partial left out)"
    # day 20's return and day 21's return would span the missing close: one return of two days
    assert data.gaps_dropped == 1 and data.n_obs == 149 - 2
    assert pd.Timestamp("2024-01-21", tz="UTC") not in data.dates
    np.testing.assert_allclose(data.column("BTC"), 0.01, atol=1e-12)
    with pytest.raises(InputError, match="missing dates"):
        returns_from_frames({"BTC": partial}, on_gap="error")
    # a day without its final bars is partial too: its close would not be the day's close
    late = close.drop(close.index[30 * 24 + 21 : 30 * 24 + 24])  # 21:00..23:00 missing
    assert returns_from_frames({"BTC": late}).sampling["BTC"].endswith("1 partial left out)")


def test_intraday_joins_daily_data_on_the_utc_date() -> None:
    truth = np.linspace(-0.02, 0.02, 120)
    hourly = _hourly(truth)
    daily_index = pd.date_range("2024-01-01", periods=120, freq="D", tz="UTC")
    daily = pd.Series(100.0 * np.exp(np.cumsum(truth) - truth[0]), index=daily_index)
    data = returns_from_frames({"H": hourly, "D": daily})
    np.testing.assert_allclose(data.column("H"), data.column("D"), atol=1e-12)
    assert data.sampling == {"H": "1h -> 1d (120 UTC days, 0 partial left out)", "D": "1d"}


def test_coarse_irregular_and_odd_intervals_are_refused_naming_the_file(
    tmp_path: Path,
) -> None:
    weekly = tmp_path / "weekly.csv"
    index = pd.date_range("2020-01-01", periods=300, freq="7D", tz="UTC")
    pd.DataFrame({"time": index.strftime("%Y-%m-%d"), "close": np.linspace(100, 200, 300)}).to_csv(
        weekly, index=False
    )
    with pytest.raises(InputError, match=r"weekly\.csv \(weekly\): sampled every 7d") as info:
        load_returns(weekly)
    assert "\n" not in str(info.value)
    rng = np.random.default_rng(1)
    jitter = pd.to_datetime("2024-01-01", utc=True) + pd.to_timedelta(
        np.cumsum(rng.uniform(600, 6600, 3000)), unit="s"
    )
    with pytest.raises(InputError, match="irregular sampling"):
        returns_from_frames({"X": pd.Series(np.linspace(1, 2, 3000), index=jitter)})
    five_hours = pd.date_range("2024-01-01", periods=1000, freq="5h", tz="UTC")
    with pytest.raises(InputError, match="do not divide a UTC day"):
        returns_from_frames({"X": pd.Series(np.linspace(1, 2, 1000), index=five_hours)})
    one_day = pd.date_range("2024-01-01 11:00", periods=20, freq="h", tz="UTC")
    with pytest.raises(InputError, match="fewer than two complete UTC days"):
        returns_from_frames({"X": pd.Series(np.linspace(1, 2, 20), index=one_day)})


def test_minute_bars_need_ninety_percent_of_the_day() -> None:
    """4-hour and 1-minute bars: the thresholds of the documented rule."""
    four_hourly = pd.date_range("2024-01-01", periods=6 * 200, freq="4h", tz="UTC")
    close = pd.Series(np.exp(np.linspace(0, 1, four_hourly.size)), index=four_hourly)
    data = returns_from_frames({"X": close})
    assert data.n_obs == 199  # 6 of 6 bars needed: every day complete
    dropped_bar = close.drop(close.index[6 * 50 + 2])
    assert returns_from_frames({"X": dropped_bar}).n_obs == 197
    minutes = pd.date_range("2024-01-01", periods=1440 * 3, freq="min", tz="UTC")
    m = pd.Series(np.exp(np.linspace(0, 0.3, minutes.size)), index=minutes)
    ok = m.drop(m.index[1440 + 100 : 1440 + 244])  # 144 minutes missing: 90 % left
    short = m.drop(m.index[1440 + 100 : 1440 + 245])
    assert returns_from_frames({"X": ok}, min_obs=1).n_obs == 2
    assert returns_from_frames({"X": short}, min_obs=0).gaps_dropped == 1


@needs_shared
def test_real_hourly_btc_agrees_with_the_daily_file() -> None:
    """Coinbase hourly BTC, aggregated, against Bitstamp daily BTC over the common days.

    Tolerance 3 % on the volatility ratio: the two venues' closes differ slightly, so the
    paired daily returns correlate at ~0.98, not 1; a paired bootstrap of the ratio over the
    ~820 common days gives a standard deviation of ~0.8 %, so 3 % is ~3.7 standard deviations,
    while the bug this guards against (hourly returns taken as daily) is off by a factor ~4.9.
    A day's label shifted by one would drop the correlation to ~0.
    """
    hourly = load_returns(HOURLY)
    assert hourly.sampling["BTC"] == (  # named after its symbol column (BTCUSD)
        "1h -> 1d (837 UTC days, 2 partial left out)"
    )
    daily = returns_from_frames({"BTC": load_history(DAILY)["BTC"]})
    joint = pd.concat(
        {
            "hourly": pd.Series(hourly.values[:, 0], hourly.dates),
            "daily": pd.Series(daily.column("BTC"), daily.dates),
        },
        axis=1,
        join="inner",
    )
    assert len(joint) > 800
    ratio = joint["hourly"].std() / joint["daily"].std()
    assert ratio == pytest.approx(1.0, abs=0.03)
    assert joint.corr().iloc[0, 1] > 0.95
    raw_hourly_std = np.diff(np.log(pd.read_csv(HOURLY, skiprows=1)["close"][::-1])).std()
    assert joint["hourly"].std() / raw_hourly_std == pytest.approx(math.sqrt(24), rel=0.15)
