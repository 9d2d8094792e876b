"""Price-feed adapters: the demo model, CSV/Parquet replay, pacing, the ccxt adapter, --feed.

Everything runs offline: the ccxt adapter replays hand-written payloads in ccxt's unified ticker
structure (tests/service/data/ccxt_binance_tickers.json); the real ETHUSDT minute file is read
from ../shared/data and those tests skip when it is absent.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import logging
import math
import statistics
import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from crossmargin.errors import InputError, NotSupportedError
from crossmargin.service.feeds import (
    CRASH_STEPS,
    DEMO_SPEED,
    RECOVERY_FRAC,
    RECOVERY_STEPS,
    SOURCE_CONFIDENCE,
    CcxtFeed,
    Feed,
    ccxt_feed,
    csv_replay,
    demo_beta,
    demo_feed,
    paced,
    parse_feed_spec,
    ticker_to_tick,
)
from crossmargin.service.ticks import Tick

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
ETH_FILE = SHARED / "binance_ethusdt_1min_liquidations_2021-01.csv"
DATA = Path(__file__).parent / "data"
TICKERS = json.loads((DATA / "ccxt_binance_tickers.json").read_text())

#: the demo book's assets and prices (src/crossmargin/examples/demo_book.yaml)
BOOK: dict[str, float] = {
    "USDC": 1.0,
    "USDT": 0.9995,
    "BTC": 91250.0,
    "ETH": 3040.0,
    "wstETH": 3690.0,
    "SOL": 142.5,
    "AAVE": 186.0,
}


def eth_file() -> Path:
    if not ETH_FILE.is_file():
        pytest.skip(f"{ETH_FILE} is absent (a fresh clone has no ../shared/data)")
    return ETH_FILE


def mid(batch: list[Tick], asset: str) -> float:
    """The median of the sources' prices: what the oracle aggregates to."""
    return statistics.median(t.price_usd for t in batch if t.asset == asset)


def write(tmp_path: Path, text: str, name: str = "prices.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- demo --------------------------------------------------------------------------------------


def test_demo_is_deterministic_for_a_seed() -> None:
    first = list(demo_feed(BOOK, seed=3, n_steps=200))
    again = list(demo_feed(BOOK, seed=3, n_steps=200))
    other = list(demo_feed(BOOK, seed=4, n_steps=200))
    assert first == again
    assert first != other
    # a longer run extends the same path (the demo draws in fixed chunks of steps)
    longer = list(demo_feed(BOOK, seed=3, n_steps=1500))
    assert longer[:200] == first


def test_demo_batches_have_one_tick_per_asset_and_source() -> None:
    batches = list(demo_feed(BOOK, n_steps=5, step_s=2.0, sources=3, start_s=100.0))
    assert [b[0].timestamp_s for b in batches] == [100.0, 102.0, 104.0, 106.0, 108.0]
    for batch in batches:
        assert len(batch) == len(BOOK) * 3
        assert {(t.asset, t.source) for t in batch} == {
            (a, s) for a in BOOK for s in ("demo-a", "demo-b", "demo-c")
        }
        for tick in batch:
            assert tick.confidence_usd == pytest.approx(SOURCE_CONFIDENCE * tick.price_usd)
            # the sources disagree by a few bp (2 bp noise each): far inside the oracle's 2 %
            assert tick.price_usd == pytest.approx(mid(batch, tick.asset), rel=2e-3)
    # step 0 is the given price, up to the sources' noise
    for asset, price in BOOK.items():
        assert mid(batches[0], asset) == pytest.approx(price, rel=1e-3)


@pytest.mark.parametrize("crash_frac", [-0.25, -0.4])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_demo_crash_depth_is_as_configured(seed: int, crash_frac: float) -> None:
    """BTC (beta 1) falls by ``crash_frac`` over the 20 crash steps, others by
    ``(1 + crash_frac) ** beta - 1``, then recover 40 % of the log move.

    Tolerance 0.5 percentage points: outside the crash the log price is a random walk with
    80 %/yr market and 30 %/yr own volatility, i.e. sqrt(0.8² + 0.3²) / sqrt(31,536,000) = 1.5 bp
    per 1 s step for BTC (2.2 bp for SOL, beta 1.6); over the 20 crash steps that is 7-10 bp
    standard deviation, plus 2 bp of source noise: 0.5 pp is more than 5 standard deviations.
    The recovery is measured over 140 steps (18-26 bp), so it gets 1.5 pp.
    """
    at = 100
    batches = list(demo_feed(BOOK, seed=seed, n_steps=400, crash_at_step=at, crash_frac=crash_frac))
    bottom, recovered = at + CRASH_STEPS - 1, at + CRASH_STEPS - 1 + RECOVERY_STEPS
    for asset in ("BTC", "ETH", "SOL", "AAVE"):
        beta = demo_beta(asset, BOOK[asset])
        before = mid(batches[at - 1], asset)
        fall = mid(batches[bottom], asset) / before - 1.0
        assert fall == pytest.approx((1.0 + crash_frac) ** beta - 1.0, abs=0.005), asset
        back = mid(batches[recovered], asset) / before - 1.0
        expected = (1.0 + crash_frac) ** (beta * (1.0 - RECOVERY_FRAC)) - 1.0
        assert back == pytest.approx(expected, abs=0.015), asset
    assert demo_beta("BTC", 1.0e5) == 1.0
    falls = [mid(batches[bottom], a) / mid(batches[at - 1], a) for a in ("BTC", "ETH", "SOL")]
    assert falls[0] > falls[1] > falls[2]  # higher beta falls more


def test_stablecoins_stay_in_their_band_through_the_crash() -> None:
    """USDC (1.0) and USDT (0.9995) are within 2 % of 1: no crash, 0.5 bp noise + 2 bp per
    source; every tick of 600 steps stays within 0.2 % (about 10 standard deviations) of the
    start price, far inside the 2 % band."""
    batches = list(demo_feed(BOOK, crash_frac=-0.5))
    for asset in ("USDC", "USDT"):
        assert demo_beta(asset, BOOK[asset]) == 0.0
        prices = [t.price_usd for b in batches for t in b if t.asset == asset]
        assert len(prices) == 600 * 3
        assert max(abs(p / BOOK[asset] - 1.0) for p in prices) < 0.002
        assert max(abs(p - 1.0) for p in prices) < 0.02
    assert mid(batches[139], "BTC") < 0.55 * BOOK["BTC"]  # while BTC halved


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"assets": {}}, "assets"),
        ({"assets": {"BTC": 0.0}}, "assets.BTC"),
        ({"assets": {"BTC": math.nan}}, "assets.BTC"),
        ({"crash_frac": -1.0}, "crash_frac"),
        ({"crash_frac": math.inf}, "crash_frac"),
        ({"sources": 0}, "sources"),
        ({"sources": 27}, "sources"),
        ({"n_steps": 0}, "n_steps"),
        ({"step_s": -1.0}, "step_s"),
        ({"crash_at_step": -5}, "crash_at_step"),
    ],
)
def test_demo_refuses_bad_arguments(kwargs: dict[str, Any], field: str) -> None:
    arguments: dict[str, Any] = {"assets": {"BTC": 90_000.0}, **kwargs}
    with pytest.raises(InputError) as err:
        demo_feed(**arguments)  # checked at the call, before any batch
    assert err.value.field == field


# --- pacing ------------------------------------------------------------------------------------


class FakeTime:
    """A monotonic clock (from 50 s) that ``sleep`` advances, and a wall clock ``wall`` s ahead."""

    def __init__(self, wall: float = 1_700_000_000.0) -> None:
        self.t = 50.0
        self.wall = wall
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds

    def now(self) -> float:
        return self.wall + self.t


def batch_at(t: float, *sources: str) -> list[Tick]:
    return [Tick("ETH", s, 3000.0, 1.0, t) for s in sources or ("a",)]


def test_paced_yields_on_schedule_and_rebases_timestamps() -> None:
    fake = FakeTime()
    feed = [batch_at(1000.0, "a", "b"), batch_at(1001.0), [], batch_at(1004.0)]
    out: list[tuple[float, list[Tick]]] = []
    for batch in paced(feed, speed=2.0, clock=fake.clock, sleep=fake.sleep, now=fake.now):
        out.append((fake.t, batch))
    # feed seconds 0, 1, 4 at speed 2 are due 0, 0.5 and 2 s after the start (t = 50)
    assert [t for t, _ in out] == [50.0, 50.5, 50.5, 52.0]
    assert fake.sleeps == [0.5, 1.5]
    assert out[2][1] == []  # an empty batch passes through at once
    w0 = 1_700_000_050.0
    assert [t.timestamp_s for t in out[0][1]] == [w0, w0]
    assert out[1][1][0].timestamp_s == w0 + 0.5
    assert out[3][1][0].timestamp_s == w0 + 2.0
    assert out[3][1][0].price_usd == 3000.0 and out[3][1][0].source == "a"


def test_paced_catches_up_with_a_slow_consumer_without_sleeping() -> None:
    fake = FakeTime()
    feed = iter([batch_at(0.0), batch_at(1.0), batch_at(2.0), batch_at(10.0)])
    stamps = []
    for batch in paced(feed, speed=1.0, clock=fake.clock, sleep=fake.sleep, now=fake.now):
        stamps.append(batch[0].timestamp_s - 1_700_000_050.0)
        fake.t += 3.0  # the consumer takes 3 s per batch
    assert fake.sleeps == [1.0]  # only the last batch (due at +10 s, reached at +9 s) waits
    assert stamps == [0.0, 1.0, 2.0, 10.0]  # the feed's schedule, not the late arrival


def test_paced_at_infinite_speed_never_sleeps_and_keeps_order() -> None:
    fake = FakeTime()
    feed = [batch_at(float(t)) for t in range(5)]
    out = list(paced(feed, math.inf, clock=fake.clock, sleep=fake.sleep, now=fake.now))
    stamps = [b[0].timestamp_s for b in out]
    assert fake.sleeps == []
    assert stamps[0] == fake.now()
    assert all(b > a for a, b in itertools.pairwise(stamps))  # now() stood still


@pytest.mark.parametrize("speed", [0.0, -1.0, math.nan])
def test_paced_refuses_a_bad_speed(speed: float) -> None:
    with pytest.raises(InputError) as err:
        paced([], speed)
    assert err.value.field == "speed"


# --- CSV / Parquet replay ----------------------------------------------------------------------


def test_real_eth_minute_file_replays() -> None:
    path = eth_file()
    batches = list(csv_replay(path))
    # 43,174 lines (`wc -l`) = the header + 43,173 rows, one minute apart: one tick each
    assert len(batches) == 43_173
    assert all(len(b) == 1 for b in batches)
    first, last = batches[0][0], batches[-1][0]
    # line 2 of the file: 1609460068912307.2,730.8601369863013,730.7846771037182,51.95,4.234
    assert first.asset == "ETH" and first.source == "binance"
    assert first.price_usd == pytest.approx((730.8601369863013 + 730.7846771037182) / 2)
    assert first.price_usd == pytest.approx(730.82240704501, rel=1e-12)
    assert first.confidence_usd == pytest.approx((730.8601369863013 - 730.7846771037182) / 2)
    # 1609460068912307.2 µs = 2021-01-01 00:14:28.912307 UTC
    assert first.timestamp_s == pytest.approx(1609460068.9123072, abs=1e-6)
    assert (
        datetime.fromtimestamp(first.timestamp_s, UTC)
        .isoformat()
        .startswith("2021-01-01T00:14:28.9123")
    )
    # last line: 1612050688360908.2,1377.9711032863847,1377.8995539906102,0.0,10.0
    assert last.price_usd == pytest.approx((1377.9711032863847 + 1377.8995539906102) / 2)
    assert datetime.fromtimestamp(last.timestamp_s, UTC).date().isoformat() == "2021-01-30"


def test_real_eth_file_first_rows_with_two_sources() -> None:
    batches = list(
        csv_replay(eth_file(), asset="ETHUSD", sources=["binance", "mirror"], max_rows=50)
    )
    assert len(batches) == 50
    assert [(t.asset, t.source) for t in batches[0]] == [
        ("ETHUSD", "binance"),
        ("ETHUSD", "mirror"),
    ]
    assert batches[0][0].price_usd == batches[0][1].price_usd
    # rows are about a minute apart (35 s .. 202 s in the whole file)
    gaps = [b[0].timestamp_s - a[0].timestamp_s for a, b in itertools.pairwise(batches)]
    assert all(30.0 < g < 210.0 for g in gaps)


def test_epoch_units_are_told_by_magnitude(tmp_path: Path) -> None:
    """2021-01-01T00:00:00.5Z as seconds, ms, µs, ns and ISO-8601 gives the same epoch second."""
    stamps = {
        "s": "1609459200.5",
        "ms": "1609459200500",
        "us": "1609459200500000",
        "ns": "1609459200500000000",
        "iso": "2021-01-01T00:00:00.500Z",
        "iso-offset": "2021-01-01T01:00:00.5+01:00",
        "iso-naive": "2021-01-01 00:00:00.5",
    }
    for unit, stamp in stamps.items():
        path = write(tmp_path, f"timestamp,asset,price\n{stamp},BTC,29000\n", f"{unit}.csv")
        (batch,) = list(csv_replay(path))
        assert batch[0].timestamp_s == pytest.approx(1609459200.5, abs=1e-6), unit


def test_generic_layout_groups_rows_by_time(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "timestamp,asset,source,price,confidence\n"
        "1700000000000,BTC,kraken,37000.5,2.5\n"
        "1700000000000,BTC,coinbase,37001.0,1.0\n"
        "1700000000000,ETH,kraken,2050.25,0.25\n"
        "1700000060000,BTC,kraken,37010.0,2.0\n",
    )
    batches = list(csv_replay(path))
    assert [len(b) for b in batches] == [3, 1]
    assert batches[0][1] == Tick("BTC", "coinbase", 37001.0, 1.0, 1_700_000_000.0)
    assert batches[1][0] == Tick("BTC", "kraken", 37010.0, 2.0, 1_700_000_060.0)
    eth = list(csv_replay(path, asset="ETH"))
    assert eth == [[Tick("ETH", "kraken", 2050.25, 0.25, 1_700_000_000.0)]]


def test_generic_layout_with_a_chosen_price_column(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "time,open,high,low,close,volume\n"
        "2024-03-01T00:00:00Z,61000,61500,60800,61400,12\n"
        "2024-03-01T01:00:00Z,61400,61600,61100,61150,9\n",
    )
    batches = list(csv_replay(path, asset="BTC", column="close", sources=["a", "b"]))
    assert [[(t.source, t.price_usd, t.confidence_usd) for t in b] for b in batches] == [
        [("a", 61400.0, 0.0), ("b", 61400.0, 0.0)],
        [("a", 61150.0, 0.0), ("b", 61150.0, 0.0)],
    ]
    assert batches[1][0].timestamp_s - batches[0][0].timestamp_s == 3600.0


BAD_CSVS = [
    ("timestamp,asset,price\n1,BTC,100\n2,BTC,nan\n", "[row 2].price", "finite number > 0"),
    ("timestamp,asset,price\n1,BTC,100\n2,BTC,0\n", "[row 2].price", "finite number > 0"),
    ("timestamp,asset,price\n1,BTC,100\n2,BTC,-3\n", "[row 2].price", "finite number > 0"),
    ("timestamp,asset,price\n1,BTC,\n", "[row 1].price", "finite number > 0"),
    ("timestamp,asset,price\n1,BTC,abc\n", "[row 1].price", "finite number > 0"),
    ("timestamp,asset,price\n5,BTC,100\n6,BTC,101\n4,BTC,99\n", "[row 3].timestamp", "sorted"),
    ("timestamp,asset,price\n5,BTC,100\n5,BTC,101\n", "[row 2].timestamp", "repeats"),
    ("timestamp,asset,price,confidence\n5,BTC,100,-1\n", "[row 1].confidence", ">= 0"),
    ("timestamp,asset,price\n1609459200,BTC,1\n1609459260000,BTC,1\n", "[row 2].timestamp", "unit"),
    ("timestamp,asset,price\n2021-01-01,BTC,1\nyesterday,BTC,1\n", "[row 2].timestamp", "ISO"),
    ("timestamp,asset,price\n1,BTC,1\n2,,1\n", "[row 2].asset", "missing name"),
    ("timestamp,asset,price,volume\n1,BTC,1,5\n", "", "unknown columns"),
    ("time,px\n1,1\n", "", "not among the columns"),
    ("when,asset,price\n1,BTC,1\n", "", "unknown layout"),
    ("timestamp,price\n1,1\n", "", "needs an 'asset' column"),
    ("timestamp,asset,price\n", "", "no data rows"),
    ("timestamp_x,ask_price,bid_price\n1609460068912307,730.7,730.8\n", "[row 1].ask_price", "bid"),
    ("timestamp_x,ask_price,bid_price\n1609460068912307,730.7,inf\n", "[row 1].bid_price", "> 0"),
]


@pytest.mark.parametrize(("text", "where", "reason"), BAD_CSVS)
def test_bad_csv_raises_input_error_naming_file_and_row(
    tmp_path: Path, text: str, where: str, reason: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError) as err:
        csv_replay(path)  # read and checked at the call, before any batch
    message = str(err.value)
    assert reason in message
    if where:
        assert err.value.field == f"{path}{where}"
    else:
        assert str(path) in message


def test_bad_replay_arguments(tmp_path: Path) -> None:
    path = write(tmp_path, "timestamp,asset,source,price\n1,BTC,x,1\n")
    with pytest.raises(InputError, match="source' column already"):
        csv_replay(path, sources=["a"])
    with pytest.raises(InputError, match="no rows of this asset"):
        csv_replay(path, asset="ETH")
    with pytest.raises(InputError, match="is not an asset of the book"):
        csv_replay(path, known_assets={"ETH"})
    with pytest.raises(InputError, match="no such file"):
        csv_replay(tmp_path / "absent.csv")
    with pytest.raises(InputError) as err:
        csv_replay(path, max_rows=0)
    assert err.value.field == "max_rows"


def test_parquet_replays_or_says_what_is_missing(tmp_path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(["2024-01-01T00:00:00Z", "2024-01-01T00:01:00Z"]),
            "asset": ["ETH", "ETH"],
            "price": [2300.0, 2301.5],
        }
    )
    path = tmp_path / "eth.parquet"
    if importlib.util.find_spec("pyarrow") is None:
        path.write_bytes(b"PAR1")  # never read: pyarrow's absence is reported first
        with pytest.raises(NotSupportedError, match="pip install pyarrow"):
            csv_replay(path)
        return
    frame.to_parquet(path)
    batches = list(csv_replay(path, sources=["p"]))
    start = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
    assert batches == [
        [Tick("ETH", "p", 2300.0, 0.0, start)],
        [Tick("ETH", "p", 2301.5, 0.0, start + 60.0)],
    ]


# --- ccxt --------------------------------------------------------------------------------------


class ReplayFetch:
    """Answers each poll with the next recorded ``fetch_tickers`` response."""

    def __init__(self, polls: list[dict[str, Any]]) -> None:
        self.polls = iter(polls)
        self.asked: list[list[str]] = []

    def __call__(self, symbols: list[str]) -> Mapping[str, Any]:
        self.asked.append(symbols)
        response: dict[str, Any] = next(self.polls)
        return response


T0 = 1_764_460_800.0  # 2025-11-30T00:00:00Z, the fixture's first ticker time (ms / 1000)


def replay_feed(**options: Any) -> tuple[CcxtFeed, FakeTime, ReplayFetch]:
    fake = FakeTime(wall=T0)  # the polls are received 50 s after the fixture's first ticker
    fetch = ReplayFetch(TICKERS["polls"])
    feed = ccxt_feed(
        TICKERS["exchange"],
        TICKERS["symbols"],
        fetch,
        poll_s=1.0,
        max_polls=len(TICKERS["polls"]),
        clock=fake.clock,
        sleep=fake.sleep,
        now=fake.now,
        **options,
    )
    return feed, fake, fetch


def test_ccxt_feed_on_recorded_tickers(caplog: pytest.LogCaptureFixture) -> None:
    feed, fake, fetch = replay_feed()
    with caplog.at_level(logging.WARNING, logger="crossmargin.service.feeds"):
        polls = list(feed)
    assert fetch.asked[0] == ["AAVE/USDT", "BTC/USDT", "ETH/USDT", "SOL/USDT"]
    assert fake.sleeps == [1.0, 1.0]  # between the three polls, none after the last
    first, second, third = ({t.asset: t for t in batch} for batch in polls)
    # poll 1: mids with half-spread confidence; SOL has no bid/ask: last, confidence 0
    assert (first["BTC"].source, first["BTC"].price_usd, first["BTC"].timestamp_s) == (
        "binance",
        91250.0,
        T0,
    )
    assert first["BTC"].confidence_usd == pytest.approx(0.01)
    assert first["ETH"].price_usd == pytest.approx(3040.0)
    assert first["ETH"].confidence_usd == pytest.approx(0.15)
    assert first["SOL"] == Tick("SOL", "binance", 142.5, 0.0, T0)
    assert "AAVE" not in first  # null bid, "NaN" ask, zero last
    # poll 2: BTC's ticker is unchanged (same timestamp): nothing new, no rejection
    assert set(second) == {"ETH"} and second["ETH"].timestamp_s == T0 + 1.0
    # poll 3: SOL has no timestamp: stamped with the time it was received
    assert set(third) == {"SOL", "AAVE"}
    assert third["SOL"].timestamp_s == fake.now()
    assert third["SOL"].price_usd == pytest.approx(142.71)
    assert third["AAVE"].price_usd == pytest.approx(186.0)

    reasons = [(r.asset, r.reason) for r in feed.rejected]
    assert reasons == [
        ("AAVE", "AAVE/USDT: ask must be a finite number > 0 (got 'NaN')"),
        ("SOL", "SOL/USDT: bid must be a finite number > 0 (got 0)"),
        ("AAVE", "no ticker for AAVE/USDT"),
        ("BTC", "BTC/USDT: crossed quote: ask 91255 below bid 91260"),
        ("ETH", "ETH/USDT: older than the last ticker"),
    ]
    assert all(r.source == "binance" for r in feed.rejected)
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 5 and "'NaN'" in logged[0]


def test_ccxt_feed_keeps_polling_after_a_network_error() -> None:
    calls = 0

    def flaky(symbols: list[str]) -> Mapping[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("binance GET https://api.binance.com/... timed out")
        response: dict[str, Any] = TICKERS["polls"][0]
        return response

    fake = FakeTime()
    feed = ccxt_feed("binance", {"ETH": "ETH/USDT"}, flaky, max_polls=2, sleep=fake.sleep)
    assert next(iter(feed)) == []
    assert feed.rejected[0].asset == "*" and "fetch failed" in feed.rejected[0].reason
    assert len(feed.rejected) == 1


def test_ticker_to_tick_rules() -> None:
    ok = {"symbol": "X/USDT", "timestamp": 1_700_000_000_000, "bid": 9.0, "ask": 11.0}
    assert ticker_to_tick("X", "ex", ok, 0.0) == Tick("X", "ex", 10.0, 1.0, 1_700_000_000.0)
    assert ticker_to_tick("X", "ex", {**ok, "bid": "9", "ask": "11"}, 0.0) == ticker_to_tick(
        "X", "ex", ok, 0.0
    )
    only_last = {"timestamp": None, "bid": 9.0, "ask": None, "last": 10.5}
    assert ticker_to_tick("X", "ex", only_last, 5.0) == Tick("X", "ex", 10.5, 0.0, 5.0)
    assert "no usable price" in str(ticker_to_tick("X", "ex", {"bid": None}, 0.0))
    assert "timestamp" in str(ticker_to_tick("X", "ex", {**ok, "timestamp": "soon"}, 0.0))
    assert "last must be" in str(ticker_to_tick("X", "ex", {**ok, "last": -1.0}, 0.0))
    assert "not a mapping" in str(ticker_to_tick("X", "ex", [1, 2], 0.0))


def test_ccxt_rejected_list_is_bounded_and_a_wrong_symbol_is_refused() -> None:
    bad = {"ETH/USDT": {"symbol": "ETH/USDT", "bid": None, "ask": None, "last": None}}
    feed = ccxt_feed(
        "binance",
        {"ETH": "ETH/USDT"},
        lambda symbols: bad,
        max_polls=10,
        sleep=lambda s: None,
        max_rejected=3,
    )
    assert list(feed) == [[]] * 10
    assert len(feed.rejected) == 3
    assert feed.rejected[-1].reason == "ETH/USDT: no usable price: needs bid and ask, or last"
    swapped = {"ETH/USDT": {"symbol": "ETH/USDC", "timestamp": 1, "last": 3000.0}}
    feed = ccxt_feed("binance", {"ETH": "ETH/USDT"}, lambda symbols: swapped, max_polls=1)
    assert list(feed) == [[]]
    assert feed.rejected[0].reason == "asked ETH/USDT, got 'ETH/USDC'"


def test_ccxt_client_path_through_ccxt(monkeypatch: pytest.MonkeyPatch) -> None:
    """With ccxt installed: the real client's fetch_tickers is used (patched: no network) and
    its network errors become rejections. Without it: a NotSupportedError saying what to
    install."""
    if importlib.util.find_spec("ccxt") is None:
        with pytest.raises(NotSupportedError, match="crossmargin\\[download\\]"):
            ccxt_feed("binance", {"ETH": "ETH/USDT"})
        return
    import ccxt  # type: ignore[import-not-found, unused-ignore]

    answers: list[Any] = [TICKERS["polls"][0], ccxt.NetworkError("down")]

    def fetch_tickers(self: Any, symbols: list[str] | None = None) -> Any:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(ccxt.binance, "fetch_tickers", fetch_tickers)
    feed = ccxt_feed("binance", {"ETH": "ETH/USDT"}, max_polls=2, sleep=lambda s: None)
    polls = list(feed)
    assert polls[0][0].price_usd == pytest.approx(3040.0) and polls[1] == []
    assert "fetch failed" in feed.rejected[0].reason


# --- --feed ------------------------------------------------------------------------------------


def test_parse_feed_spec_demo() -> None:
    feed = parse_feed_spec("demo", BOOK)
    assert (feed.kind, feed.speed, feed.live) == ("demo", DEMO_SPEED, False)
    assert next(iter(feed.batches)) == next(demo_feed(BOOK))
    tuned = parse_feed_spec("demo:seed=3,crash=-30%,crash_at=10,steps=50,speed=inf", BOOK)
    assert tuned.speed == math.inf
    assert list(tuned.batches) == list(
        demo_feed(BOOK, seed=3, crash_frac=-0.3, crash_at_step=10, n_steps=50)
    )


def test_feed_realtime_paces_a_replay_and_passes_a_live_feed_through(tmp_path: Path) -> None:
    path = write(tmp_path, "timestamp,asset,price\n0,ETH,1\n60,ETH,2\n120,ETH,3\n")
    feed = parse_feed_spec(f"csv:{path},speed=60,sources=a|b", BOOK)
    assert feed.kind == "csv" and feed.speed == 60.0
    fake = FakeTime()
    batches = list(feed.realtime(clock=fake.clock, sleep=fake.sleep, now=fake.now))
    assert fake.sleeps == [1.0, 1.0]  # a minute of data per second
    assert [b[0].timestamp_s - 1_700_000_050.0 for b in batches] == [0.0, 1.0, 2.0]
    assert [t.source for t in batches[0]] == ["a", "b"]

    live = parse_feed_spec(
        "ccxt:binance:ETH=ETH/USDT,BTC=BTC/USDT,poll=2.5", BOOK, fetch=ReplayFetch(TICKERS["polls"])
    )
    assert isinstance(live.batches, CcxtFeed)
    assert live.live and live.batches.poll_s == 2.5
    assert live.batches.symbols == {"ETH": "ETH/USDT", "BTC": "BTC/USDT"}
    live.batches.max_polls, live.batches.sleep = 1, lambda s: None
    (batch,) = list(live.realtime(clock=fake.clock, sleep=fake.sleep, now=fake.now))
    assert {t.timestamp_s for t in batch} == {T0}  # the exchange's time, not rebased
    assert live.rejected is live.batches.rejected

    none = parse_feed_spec(" none ", BOOK)
    assert none == Feed("none", " none ") and list(none.realtime()) == []


def test_parse_feed_spec_csv_on_the_real_file() -> None:
    feed = parse_feed_spec(f"csv:{eth_file()},max_rows=10", BOOK)
    assert feed.speed == 60.0
    assert sum(len(b) for b in feed.batches) == 10


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("", "unknown feed"),
        ("pyth", "unknown feed"),
        ("none:x", "unknown feed"),
        ("demo:seed=x", "seed must be an integer"),
        ("demo:seed", "expected KEY=VALUE"),
        ("demo:bogus=1", "unknown option 'bogus'"),
        ("demo:seed=1,seed=2", "given twice"),
        ("demo:speed=0", "speed must be > 0"),
        ("demo:crash=-120%", "crash_frac: must be a finite fraction > -1"),
        ("demo:sources=40", "sources: must be an integer <= 26"),
        ("csv:", "expected csv:PATH"),
        ("csv:/nonexistent/prices.csv", "no such file"),
        ("csv:prices.csv,speed=fast", "speed must be a number"),
        ("ccxt:binance", "expected ccxt:EXCHANGE:ASSET=SYMBOL"),
        ("ccxt:binance:ETH", "expected ASSET=SYMBOL"),
        ("ccxt:binance:DOGE=DOGE/USDT", "DOGE is not an asset"),
        ("ccxt:binance:ETH=ETH/USDT,ETH=ETH/USDC", "mapped twice"),
        ("ccxt:binance:poll=2", "map at least one asset"),
        ("ccxt:binance:ETH=ETH/USDT,poll=0", "poll_s: must be a finite number > 0"),
    ],
)
def test_parse_feed_spec_refuses_bad_specs(spec: str, reason: str) -> None:
    with pytest.raises(InputError) as err:
        parse_feed_spec(spec, BOOK, fetch=ReplayFetch([]))
    assert err.value.field == "--feed"
    assert err.value.value == spec
    assert reason in str(err.value)


def test_parse_feed_spec_names_the_row_of_a_bad_file(tmp_path: Path) -> None:
    path = write(tmp_path, "timestamp,asset,price\n1,ETH,1\n2,DOGE,1\n")
    with pytest.raises(InputError) as err:
        parse_feed_spec(f"csv:{path}", BOOK)
    assert err.value.field == "--feed" and "DOGE" in str(err.value)
    path = write(tmp_path, "timestamp,asset,price\n1,ETH,1\n2,ETH,NaN\n")
    with pytest.raises(InputError, match=r"\[row 2\]\.price"):
        parse_feed_spec(f"csv:{path}", BOOK)


def test_importing_the_feeds_loads_neither_pandas_nor_ccxt() -> None:
    """The CLI imports this module at start-up: pandas and ccxt load only when a file is read
    or an exchange polled."""
    code = (
        "import sys, crossmargin; before = set(sys.modules)\n"
        "import crossmargin.service.feeds\n"
        "print(sorted({'pandas', 'ccxt'} & (set(sys.modules) - before)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
