"""Benchmark: the live engine (``crossmargin serve``) under sustained load, end to end on loopback.

A book of ``--accounts`` accounts over 10 priced assets with perps is written to a fresh SQLite
database, ``crossmargin serve --feed none --quiet`` is started on it as a separate process on
127.0.0.1, and for ``--seconds`` three clients load it at once (one asyncio process, raw
HTTP/1.1 keep-alive connections: the client costs ~0.1 core):

* **oracle**: every 10 ms (at ``--ticks-per-s`` 1,000 quotes/s) new prices for one half of the
  10 ticked assets (alternating halves: each asset moves every 20 ms), a small random walk
  (``exp(1e-4 z)``, ``|z| >= 0.1``; no crash: steady state), quoted by 2 sources at the same
  price with ``confidence_usd = 0`` (healthy oracle state; the conservative adjustment at maint
  is exactly 1): a *tick* is those 10 quotes. Each half has one ordered publisher (its own
  connection): it POSTs ``/v1/prices`` with every tick drawn since its previous POST was
  answered (1 tick when the server keeps up, more when it lags; the quotes keep their draw
  time as ``timestamp_s``, so a source's timestamps only increase and no quote is refused as
  out of order - concurrent POSTs of one asset would be). The stablecoins are quoted at the
  start and every 10 s (unchanged prices);
* **trader**: ``--trades-per-s`` (open loop) ``POST /v1/accounts/{id}/trades`` of about 200 USD
  notional on random generated accounts and random perps, each with a unique
  ``Idempotency-Key``, with the owner's key (50 owners own the generated accounts round robin,
  one key each), on at most 64 connections; trades still waiting for a connection when the
  schedule ends are not sent (counted);
* **stream**: one WebSocket (``/v1/stream``, admin key) subscribed to ``system`` and to
  *probe* accounts: ``--probes`` accounts per ticked asset holding only a deposit of that asset
  (10,000 USD). A probe's maint weighted assets are linear in its one price, so each account
  message names the exact price it was margined at (``p0 * wa / wa0``), hence the tick.

**Tick-to-health latency** of a tick: from just before the POST carrying it was sent, to the
arrival of the first account message of *every* probe of its assets showing its price or a
later one of the same asset (a tick conflated into a later one is done when the later one
shows); also printed from the tick's draw (adds the wait behind the publisher's previous POST).
An acknowledged tick that some probe never shows is a **lost event**, as is an acknowledged
trade whose key is not in the ``events`` table exactly once with the answered seq (read from
the database after the run). **Errors**: transport failures, timeouts, non-2xx answers other
than 422 and quotes the oracle rejected; 422 refusals (a trade that would leave init health
< 0) are counted apart.

**Peer** (same run): the batch library path ``crossmargin.margin.MarginEngine(book)`` +
``.evaluate()`` of the whole book (compile + kernel, in this process before the server starts)
vs the service's incremental re-margin (``last_remargin_ms`` sampled on the ``system`` stream).
**Agreement**: after the load, the maint health of every traded account, every account with a
journaled event, the probes and ``--check-accounts`` random accounts as the API shows them (the
stream's snapshot on subscription) vs ``MarginEngine(...).evaluate()`` on a book rebuilt from
the database rows at the server's prices (``GET /v1/system``): 1e-9 relative
(``|a - b| / max(1, |b|)``). Exit status 1 on disagreement, errors or lost events; missed
latency or throughput targets (p99 <= 50 ms, 1,000 quotes/s) are printed, not an exit status.

The market: the demo market (``crossmargin.simulation.generate.default_market``: USDC, USDT,
BTC, ETH, wstETH, SOL, AAVE; BTC/ETH/SOL perps) without its dated future and with every perp
marked at its index (no ``mark_price``: the library on a rebuilt book and the service then
agree on marks after the prices moved), plus LINK, AVAX, DOGE, ARB and OP (weights like SOL,
no tiers, no size premium) and perps on wstETH, AAVE and the five new assets (SOL-PERP's
fractions, no size premium): 12 assets, 10 ticked (all but the stablecoins), 10 perps.
Accounts: ``generate_book`` (every account holds USDC, BTC, ETH, SOL, wstETH and AAVE and 1-3
of the BTC/ETH/SOL perps), then each SOL-PERP position is moved, same notional and side, to one
of the 8 perps SOL, wstETH, AAVE, LINK, AVAX, DOGE, ARB, OP (account index mod 8); plus the
probes. A tick of the first half (BTC, ETH, wstETH, SOL, AAVE) re-margins every account, one of
the second half (LINK, AVAX, DOGE, ARB, OP) about a quarter of them.

Genesis: ``--genesis core`` writes it with ``MarginCore.initialize`` (an UPDATE and an INSERT
per row through SQLAlchemy: about 1 ms per row here, 15 minutes or more at 100,000 accounts);
``--genesis bulk`` (default) writes the same rows and the same genesis event with one
executemany per table, after checking on a 200-account book that both paths give identical
state tables and event.

    python benchmarks/bench_service.py [--accounts 100000] [--seconds 20] [--ticks-per-s 1000]
        [--trades-per-s 200] [--probes 2] [--check-accounts 2000] [--genesis bulk|core]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import operator
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from crossmargin.book.io import book_from_data
from crossmargin.book.schema import Account, Book
from crossmargin.margin.arrays import MAINT
from crossmargin.margin.engine import MarginEngine
from crossmargin.service import db
from crossmargin.service.auth import create_key
from crossmargin.service.config import ServiceConfig
from crossmargin.service.core import SYSTEM_FIGURES, MarginCore, _account_changes, _dump
from crossmargin.service.ledger import body_hash, canonical_json, read_state
from crossmargin.simulation.generate import default_market, generate_book

HOST = "127.0.0.1"  # loopback only
NEW_ASSETS = {"LINK": 14.5, "AVAX": 36.0, "DOGE": 0.38, "ARB": 0.82, "OP": 1.85}
STABLES = ("USDC", "USDT")
SPREAD_PERPS = ("SOL", "wstETH", "AAVE", "LINK", "AVAX", "DOGE", "ARB", "OP")
N_OWNERS = 50
PROBE_USD = 10_000.0
TICK_SIGMA = 1e-4  # log move of one price update
TRADE_USD = 200.0
P99_TARGET_MS = 50.0
TOLERANCE = 1e-9
MATCH_TOL = 1e-11  # relative: a probe's implied price vs a pushed price
REQUEST_TIMEOUT_S = 30.0
TRADE_CONNECTIONS = 64
STABLE_REFRESH_S = 10.0  # the oracle's max_age_s is 60 s


# -- the book ----------------------------------------------------------------------------------
def bench_market() -> Book:
    """12 assets (10 ticked), 10 perps marked at their index (module docstring)."""
    data = default_market().model_dump(mode="json", exclude_none=True)
    data["markets"] = {s: m for s, m in data["markets"].items() if m.get("kind") == "perp"}
    sol, sol_perp = data["assets"]["SOL"], data["markets"]["SOL-PERP"]
    for symbol, price in NEW_ASSETS.items():
        data["assets"][symbol] = {**sol, "price": price, "imf_factor": 0.0, "collateral_tiers": []}
    for symbol in SPREAD_PERPS[1:]:
        data["markets"][f"{symbol}-PERP"] = {**sol_perp, "underlying": symbol, "imf_factor": 0.0}
    for market in data["markets"].values():
        market.pop("mark_price", None)
    data["accounts"] = []
    return book_from_data(data)


@dataclass(frozen=True)
class BenchBook:
    book: Book
    owners: dict[str, str]  # account id -> owner
    probes: dict[str, str]  # probe account id -> its asset
    traded: list[str]  # ids the trader may use (generated accounts)
    ticked: tuple[str, ...]


def build_book(n_accounts: int, seed: int, probes_per_asset: int) -> BenchBook:
    """``n_accounts`` accounts in all: generated ones plus the probes."""
    market = bench_market()
    ticked = tuple(s for s in market.assets if s not in STABLES)
    n_probes = probes_per_asset * len(ticked)
    if n_accounts <= n_probes:
        raise SystemExit(f"--accounts must exceed the {n_probes} probes")
    generated = generate_book(n_accounts - n_probes, seed, market=market)
    symbols = generated.tables.market_symbols
    qty = generated.position_qty
    sol = symbols.index("SOL-PERP")
    holders = np.flatnonzero(qty[:, sol])
    marks = generated.entry_settle  # settle USDC at 1: the mark in USD
    for k, underlying in enumerate(SPREAD_PERPS[1:], start=1):
        rows = holders[holders % len(SPREAD_PERPS) == k]
        m = symbols.index(f"{underlying}-PERP")
        qty[rows, m] = qty[rows, sol] * marks[sol] / marks[m]
        qty[rows, sol] = 0.0
    book = generated.to_book()
    owners = {a.id: f"o{i % N_OWNERS}" for i, a in enumerate(book.accounts)}
    traded = list(owners)
    probes, extra = {}, []
    for symbol in ticked:
        price = market.assets[symbol].price
        for k in range(probes_per_asset):
            account_id = f"probe-{symbol}-{k}"
            extra.append(Account(id=account_id, balances={symbol: PROBE_USD / price}))
            owners[account_id] = "probe"
            probes[account_id] = symbol
    book = book.model_copy(update={"accounts": [*book.accounts, *extra]})
    return BenchBook(book, owners, probes, traded, ticked)


# -- genesis -------------------------------------------------------------------------------------
def genesis_event(
    book: Book, config: ServiceConfig, owners: Mapping[str, str]
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """Body, changes and result of the genesis event, built as ``MarginCore.initialize`` does."""
    changes: list[dict[str, Any]] = [
        {"t": "settings", "name": "as_of", "value": book.as_of.isoformat() if book.as_of else ""},
        {"t": "settings", "name": "pnl_convention", "value": book.pnl_convention},
    ]
    for symbol, asset in book.assets.items():
        changes.append({"t": "assets", "symbol": symbol, "version": 1, "params": _dump(asset)})
    for symbol, market in book.markets.items():
        changes.append({"t": "markets", "symbol": symbol, "version": 1, "params": _dump(market)})
    for account in book.accounts:
        changes.extend(_account_changes(account, owners.get(account.id, account.id), None))
    for name in SYSTEM_FIGURES:
        value = config.insurance_fund_usd if name == "insurance_fund_usd" else 0.0
        changes.append({"t": "system", "name": name, "value": value})
    body = {"accounts": len(book.accounts), "assets": list(book.assets)}
    return body, changes, {"accounts": len(book.accounts)}


def bulk_genesis(
    engine: sa.engine.Engine, book: Book, config: ServiceConfig, owners: Mapping[str, str]
) -> None:
    """The genesis of ``MarginCore.initialize`` with one executemany per table and column set
    on the SQLite driver (a fresh database: every change is an insert)."""
    body, changes, result = genesis_event(book, config, owners)
    # one statement per change shape (its keys, in order): table, columns, getter, rows
    plans: dict[tuple[str, ...], tuple[str, tuple[str, ...], Any, list[Any]]] = {}
    for change in changes:
        plan = plans.get(shape := (change["t"], *change))
        if plan is None:
            table = db.metadata.tables[change["t"]]
            columns = tuple(c.name for c in table.columns if c.name in change)
            plan = plans[shape] = (change["t"], columns, operator.itemgetter(*columns), [])
        plan[3].append(plan[2](change))
    event = (
        "genesis",
        "genesis",
        None,
        body_hash(body),
        canonical_json(body),
        canonical_json(changes),
        canonical_json(result),
        time.time(),
    )
    with engine.begin() as connection:
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        for name, columns, _get, values in plans.values():
            if len(columns) == 1:
                values = [(v,) for v in values]
            marks = ", ".join("?" * len(columns))
            cursor.executemany(
                f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({marks})", values
            )
        cursor.execute(
            "INSERT INTO events (key, kind, account_id, body_hash, body, changes, result, "
            "created_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            event,
        )


def check_bulk_genesis(book: Book, owners: Mapping[str, str], directory: Path) -> None:
    """Both genesis paths on the first 200 accounts: identical state tables and event."""
    small = book.model_copy(update={"accounts": book.accounts[:200]})
    config = ServiceConfig()
    got = []
    for name, write in (("core", MarginCore.initialize), ("bulk", bulk_genesis)):
        engine = db.connect(db.default_url(directory / f"check-{name}.db"))
        db.upgrade(engine)
        write(engine, small, config, owners)
        with engine.connect() as connection:
            event = connection.execute(
                sa.select(
                    db.events.c.key,
                    db.events.c.kind,
                    db.events.c.account_id,
                    db.events.c.body_hash,
                    db.events.c.body,
                    db.events.c.changes,
                    db.events.c.result,
                )
            ).all()
        got.append((read_state(engine), [tuple(r) for r in event]))
        engine.dispose()
    if got[0] != got[1]:
        raise SystemExit("bulk genesis differs from MarginCore.initialize: use --genesis core")


def write_genesis(url: str, bench: BenchBook, how: str, directory: Path) -> dict[str, str]:
    """Migrate, write the genesis, create the keys; returns the keys by name."""
    engine = db.connect(url)
    db.upgrade(engine)
    config = ServiceConfig()
    if how == "core":
        MarginCore.initialize(engine, bench.book, config, bench.owners)
    else:
        check_bulk_genesis(bench.book, bench.owners, directory)
        bulk_genesis(engine, bench.book, config, bench.owners)
    keys = {name: create_key(engine, name, name) for name in ("admin", "oracle")}
    for k in range(N_OWNERS):
        keys[f"o{k}"] = create_key(engine, f"owner-o{k}", "owner", f"o{k}")
    engine.dispose()
    return keys


# -- the server ------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def start_server(url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    exe = shutil.which("crossmargin", path=str(Path(sys.executable).parent)) or "crossmargin"
    command = [exe, "serve", "--db", url, "--host", HOST, "--port", str(port)]
    command += ["--feed", "none", "--quiet"]
    with log.open("wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)


def wait_healthy(proc: subprocess.Popen[bytes], base: str, timeout_s: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        try:
            if httpx.get(f"{base}/v1/health", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server did not answer /v1/health within {timeout_s:g} s")


def cpu_seconds(pid: int) -> tuple[float, float]:
    """Seconds a process's threads ran on a CPU, and waited for one while runnable, summed over
    its threads (Linux schedstat; NaN elsewhere). The wait is CPU taken by other processes or
    by the process's own other threads."""
    ran = waited = 0.0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            fields = (task / "schedstat").read_text().split()
            ran, waited = ran + int(fields[0]) / 1e9, waited + int(fields[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return math.nan, math.nan
    return ran, waited


# -- the load --------------------------------------------------------------------------------------
class Http:
    """A minimal HTTP/1.1 keep-alive connection (one request at a time): a few tens of us per
    request, so that the client's own cost stays far below the server's on a 2-core machine."""

    resent = 0  # requests sent again on a fresh connection (all connections)

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: Any = None, headers: Mapping[str, str] | None = None
    ) -> tuple[int, bytes]:
        """Send and read the answer. A reused connection the server closed while idle
        (uvicorn's keep-alive timeout is 5 s) is reopened and the request sent again, as HTTP
        clients do: no byte of an answer was read (the trades carry an Idempotency-Key)."""
        payload = b"" if body is None else json.dumps(body).encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
        head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        message = head.encode() + b"\r\n" + payload
        reused = self.writer is not None and not self.writer.is_closing()
        try:
            return await self._exchange(message)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            partial = getattr(exc, "partial", b"")
            if not reused or partial:
                raise
        Http.resent += 1
        return await self._exchange(message)

    async def _exchange(self, message: bytes) -> tuple[int, bytes]:
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        assert self.reader is not None
        try:
            self.writer.write(message)
            raw = await self.reader.readuntil(b"\r\n\r\n")
            lines = raw.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            fields = {
                k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])
            }
            if "content-length" not in fields:
                raise RuntimeError(f"answer without Content-Length: {lines[0]}")
            data = await self.reader.readexactly(int(fields["content-length"]))
        except BaseException:
            self.close()
            raise
        if fields.get("connection", "").lower() == "close":
            self.close()
        return status, data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class Pool:
    """Keep-alive connections for concurrent requests (at most ``size`` in flight)."""

    def __init__(self, port: int, size: int) -> None:
        self.port = port
        self.free: list[Http] = []
        self.slots = asyncio.Semaphore(size)

    def take(self) -> Http:
        return self.free.pop() if self.free else Http(self.port)

    def close(self) -> None:
        for connection in self.free:
            connection.close()


@dataclass
class Tick:
    """One 10-ms step of the oracle: new prices of half the ticked assets, two sources each."""

    t_gen: float  # wall clock when the prices were drawn (the quotes' timestamp_s)
    assets: tuple[str, ...]
    index: dict[str, int]  # asset -> index of this price in Run.pushes[asset]
    t_send: float = math.nan  # just before the POST that carried it was sent
    status: int | None = None
    error: str | None = None
    rejected: int = 0
    server_ms: float = math.nan  # the answer's latency_ms (ingest + re-margin, server side)
    remargined: int = 0
    rtt_s: float = math.nan
    batch: int = 0  # ticks carried by the same POST

    @property
    def acknowledged(self) -> bool:
        return self.status == 200 and self.rejected == 0


@dataclass
class TradeRequest:
    key: str  # the key as journaled: "<API key name>:<Idempotency-Key>"
    account: str
    t_send: float = math.nan  # nan: never sent
    status: int | None = None
    error: str | None = None
    seq: int | None = None
    rtt_s: float = math.nan


@dataclass
class Run:
    bench: BenchBook
    keys: dict[str, str]
    port: int
    seconds: float
    ticks_per_s: float
    trades_per_s: float
    seed: int
    prices: dict[str, float] = field(default_factory=dict)
    pushes: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    ticks: list[Tick] = field(default_factory=list)
    trades: list[TradeRequest] = field(default_factory=list)
    wa0: dict[str, float] = field(default_factory=dict)  # probe -> maint wa at book prices
    messages: list[tuple[float, str, float]] = field(default_factory=list)  # t, probe, maint wa
    remargin_ms: list[float] = field(default_factory=list)  # last_remargin_ms on the stream
    other_errors: list[str] = field(default_factory=list)
    lag_s: list[float] = field(default_factory=list)  # the tick generator's lateness
    schedule_over: bool = False
    rejected_quotes: int = 0
    load_start: float = 0.0
    load_end: float = 0.0
    oracle_end: float = 0.0  # the last tick answered
    trader_end: float = 0.0  # the last trade answered


def _fail(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


async def publisher(run: Run, queue: asyncio.Queue[Tick | None], stables: bool) -> None:
    """One ordered stream of POST /v1/prices: everything drawn since the last send, in one
    request (quotes keep their draw time: per source, timestamps only increase); with
    ``stables``, the stablecoins' unchanged quotes every STABLE_REFRESH_S as well."""
    connection = Http(run.port)
    headers = {"X-API-Key": run.keys["oracle"]}
    stable_at = time.time()
    done = False
    while not done:
        first = await queue.get()
        if first is None:
            break
        batch = [first]
        while not queue.empty():
            more = queue.get_nowait()
            if more is None:
                done = True
                break
            batch.append(more)
        quotes = [
            {
                "asset": s,
                "source": source,
                "price_usd": run.pushes[s][tick.index[s]],
                "confidence_usd": 0.0,
                "timestamp_s": tick.t_gen,
            }
            for tick in batch
            for s in tick.assets
            for source in ("bench-a", "bench-b")
        ]
        t_send = time.time()
        if stables and t_send - stable_at >= STABLE_REFRESH_S:
            stable_at = t_send
            price = run.bench.book.assets
            quotes += [
                {"asset": s, "source": source, "price_usd": price[s].price, "timestamp_s": t_send}
                for s in STABLES
                for source in ("bench-a", "bench-b")
            ]
        for tick in batch:
            tick.t_send, tick.batch = t_send, len(batch)
        try:
            status, data = await asyncio.wait_for(
                connection.request("POST", "/v1/prices", {"quotes": quotes}, headers),
                REQUEST_TIMEOUT_S,
            )
            rtt = time.time() - t_send
            answer = json.loads(data) if status == 200 else {}
            run.rejected_quotes += len(answer.get("rejected", []))
            for r in answer.get("rejected", []):
                if r.get("asset") in STABLES:
                    run.other_errors.append(f"oracle rejected {r}")
            for tick in batch:
                tick.status, tick.rtt_s = status, rtt
                if status != 200:
                    tick.error = data[:200].decode(errors="replace")
                    continue
                tick.server_ms = float(answer["latency_ms"])
                tick.remargined = int(answer["remargined_accounts"])
                rejected = [r for r in answer["rejected"] if r.get("asset") in tick.assets]
                tick.rejected = len(rejected)
                if rejected:
                    tick.error = str(rejected[0])[:200]
        except Exception as exc:  # transport failure or timeout: an error, counted
            connection.close()
            for tick in batch:
                tick.error = _fail(exc)


async def oracle_loop(run: Run) -> None:
    """Every 10 quotes' worth of time (10 ms at 1,000 quotes/s), new prices for one half of the
    ticked assets, alternating; each half has its own ordered publisher."""
    rng = np.random.default_rng(run.seed + 1)
    ticked = run.bench.ticked
    halves = (ticked[: len(ticked) // 2], ticked[len(ticked) // 2 :])
    interval = 2 * len(halves[0]) / run.ticks_per_s
    queues: list[asyncio.Queue[Tick | None]] = [asyncio.Queue(), asyncio.Queue()]
    workers = [asyncio.create_task(publisher(run, q, k == 0)) for k, q in enumerate(queues)]
    loop = asyncio.get_running_loop()
    start = loop.time()
    k = 0
    while (scheduled := start + k * interval) < start + run.seconds:
        await asyncio.sleep(max(0.0, scheduled - loop.time()))
        run.lag_s.append(loop.time() - scheduled)
        assets = halves[k % 2]
        index = {}
        for symbol in assets:
            z = rng.standard_normal()
            z = math.copysign(max(abs(z), 0.1), z)  # never the same price twice in a row
            run.prices[symbol] *= math.exp(TICK_SIGMA * z)
            index[symbol] = len(run.pushes[symbol])
            run.pushes[symbol].append(run.prices[symbol])
        tick = Tick(time.time(), assets, index)
        run.ticks.append(tick)
        queues[k % 2].put_nowait(tick)
        k += 1
    for q in queues:
        q.put_nowait(None)
    await asyncio.gather(*workers)
    run.oracle_end = time.time()


async def send_trade(run: Run, pool: Pool, request: TradeRequest, owner: str, body: Any) -> None:
    headers = {"X-API-Key": run.keys[owner], "Idempotency-Key": request.key.split(":", 1)[1]}
    path = f"/v1/accounts/{request.account}/trades"
    waited = pool.slots.locked()
    async with pool.slots:
        if waited and run.schedule_over:
            return  # still waiting for a connection when the schedule ended: never sent
        request.t_send = time.time()
        connection = pool.take()
        try:
            status, data = await asyncio.wait_for(
                connection.request("POST", path, body, headers), REQUEST_TIMEOUT_S
            )
        except Exception as exc:
            connection.close()
            request.error = _fail(exc)
            return
        pool.free.append(connection)
    request.rtt_s = time.time() - request.t_send
    request.status = status
    if status == 201:
        request.seq = int(json.loads(data)["seq"])
    elif status != 422:
        request.error = data[:200].decode(errors="replace")


async def trader_loop(run: Run) -> None:
    """Open loop: a trade every 1/trades_per_s s whatever the answers' delay, on at most
    TRADE_CONNECTIONS connections; trades still waiting for one when the schedule ends are
    dropped (counted as not sent), those in flight are awaited."""
    rng = np.random.default_rng(run.seed + 2)
    pool = Pool(run.port, TRADE_CONNECTIONS)
    markets = [(f"{s}-PERP", s) for s in run.bench.ticked]
    interval = 1.0 / run.trades_per_s
    loop = asyncio.get_running_loop()
    start = loop.time()
    tasks = []
    tag = f"{run.seed}-{int(time.time())}"
    k = 0
    while (scheduled := start + k * interval) < start + run.seconds:
        await asyncio.sleep(max(0.0, scheduled - loop.time()))
        account = run.bench.traded[int(rng.integers(len(run.bench.traded)))]
        owner = run.bench.owners[account]
        market, underlying = markets[int(rng.integers(len(markets)))]
        qty = float(rng.choice((-1.0, 1.0)) * TRADE_USD / run.prices[underlying])
        request = TradeRequest(f"owner-{owner}:t{tag}-{k}", account)
        run.trades.append(request)
        body = {"market": market, "qty": qty}
        tasks.append(asyncio.create_task(send_trade(run, pool, request, owner, body)))
        k += 1
    run.schedule_over = True
    await asyncio.gather(*tasks)
    run.trader_end = time.time()
    pool.close()


async def idle() -> None:
    return None


async def stream_reader(ws: Any, run: Run) -> None:
    try:
        await read_stream(ws, run)
    except Exception as exc:  # the stream broke: counted (its ticks then show as lost)
        run.other_errors.append(f"stream: {_fail(exc)}")


async def read_stream(ws: Any, run: Run) -> None:
    async for text in ws:
        received = time.time()
        message = json.loads(text)
        channel = message.get("channel")
        data = message.get("data", {})
        if channel == "account" and message.get("account_id") in run.bench.probes:
            wa = float(data["maint_weighted_assets_usd"])
            if "remargined_s" not in data:  # the snapshot sent on subscription
                run.wa0.setdefault(message["account_id"], wa)
            else:
                run.messages.append((received, message["account_id"], wa))
        elif channel == "system":
            run.remargin_ms.append(float(data["last_remargin_ms"]))
        elif channel == "error":
            run.other_errors.append(f"stream: {data}")


async def drive(run: Run) -> None:
    from websockets.asyncio.client import connect

    # all 12 assets at the book's prices, two agreeing sources: healthy oracle states
    run.prices = {s: a.price for s, a in run.bench.book.assets.items()}
    now = time.time()
    quotes = [
        {"asset": s, "source": src, "price_usd": p, "confidence_usd": 0.0, "timestamp_s": now}
        for s, p in run.prices.items()
        for src in ("bench-a", "bench-b")
    ]
    warm = Http(run.port)
    status, data = await warm.request(
        "POST", "/v1/prices", {"quotes": quotes}, {"X-API-Key": run.keys["oracle"]}
    )
    warm.close()
    if status != 200 or json.loads(data)["rejected"]:
        raise RuntimeError(f"warm-up quotes: {status} {data[:300]!r}")
    uri = f"ws://{HOST}:{run.port}/v1/stream?key={run.keys['admin']}"
    async with connect(uri, max_size=2**24, ping_interval=None) as ws:
        names = [f"account:{p}" for p in run.bench.probes] + ["system"]
        await ws.send(json.dumps({"subscribe": names}))
        reader = asyncio.create_task(stream_reader(ws, run))
        for _ in range(200):  # the subscription's snapshots
            if len(run.wa0) == len(run.bench.probes):
                break
            await asyncio.sleep(0.05)
        if len(run.wa0) != len(run.bench.probes):
            raise RuntimeError("no snapshot of every probe on the stream")
        run.load_start = time.time()
        await asyncio.gather(oracle_loop(run), trader_loop(run) if run.trades_per_s else idle())
        run.load_end = time.time()
        await asyncio.sleep(1.5)  # the last re-margins reach the stream
        reader.cancel()


# -- analysis --------------------------------------------------------------------------------------
@dataclass
class TickStats:
    from_send_ms: list[float]  # POST sent -> every probe shows it
    from_draw_ms: list[float]  # price drawn -> every probe shows it (adds the publisher's wait)
    lost: int
    unmatched_messages: int
    out_of_order: int


def tick_latencies(run: Run) -> TickStats:
    """Tick-to-health latency of every acknowledged tick (module docstring)."""
    book_price = {s: a.price for s, a in run.bench.book.assets.items()}
    first: dict[str, np.ndarray] = {}  # probe -> first arrival showing each push (or a later)
    covered: dict[str, int] = {}
    unmatched = out_of_order = 0
    pushed = {s: np.array(v) for s, v in run.pushes.items()}
    for received, probe, wa in run.messages:
        symbol = run.bench.probes[probe]
        prices = pushed.get(symbol, np.zeros(0))
        arrivals = first.setdefault(probe, np.full(prices.size, np.nan))
        start = covered.get(probe, 0)
        implied = book_price[symbol] * wa / run.wa0[probe]
        close = np.abs(prices - implied) <= MATCH_TOL * implied
        later = np.flatnonzero(close[start:])
        if later.size:
            j = start + int(later[0])
        elif start > 0 and close[start - 1]:
            continue  # the price already shown, again (a sweep or another tick's re-margin)
        elif abs(implied - book_price[symbol]) <= MATCH_TOL * implied:
            continue  # still the warm-up price
        elif close.any():
            out_of_order += 1  # a price older than one already shown
            continue
        else:
            unmatched += 1
            continue
        arrivals[start : j + 1] = received
        covered[probe] = j + 1
    probes_of: dict[str, list[str]] = defaultdict(list)
    for probe, symbol in run.bench.probes.items():
        probes_of[symbol].append(probe)
    from_send, from_draw, lost = [], [], 0
    for tick in run.ticks:
        if not tick.acknowledged:
            continue
        shown = [
            first[p][tick.index[s]] if p in first else math.nan
            for s in tick.assets
            for p in probes_of[s]
        ]
        if any(math.isnan(t) for t in shown):
            lost += 1
            continue
        from_send.append((max(shown) - tick.t_send) * 1e3)
        from_draw.append((max(shown) - tick.t_gen) * 1e3)
    return TickStats(from_send, from_draw, lost, unmatched, out_of_order)


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else math.nan


def cpu_pressure() -> str:
    """Linux PSI: share of time some runnable task waited for a CPU (other work on the box)."""
    try:
        some = Path("/proc/pressure/cpu").read_text().splitlines()[0].split()
        return ", ".join(f"{f.split('=')[0]} {f.split('=')[1]} %" for f in some[1:3])
    except (OSError, IndexError):
        return "n/a"


def journal_check(
    url: str, trades: Sequence[TradeRequest]
) -> tuple[int, int, int, Counter[str], set[str]]:
    """Acknowledged trades missing from ``events`` or there more than once or with another
    seq; refused trades journaled anyway; the events by kind and the accounts they name."""
    engine = db.connect(url)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(db.events.c.key, db.events.c.seq).where(db.events.c.kind == "trade")
        ).all()
        kinds = Counter(
            dict(
                connection.execute(
                    sa.select(db.events.c.kind, sa.func.count()).group_by(db.events.c.kind)
                ).all()
            )
        )
        named = set(
            connection.execute(
                sa.select(db.events.c.account_id).where(db.events.c.account_id.is_not(None))
            ).scalars()
        )
    engine.dispose()
    count = Counter(key for key, _seq in rows)
    seq_of = {key: seq for key, seq in rows}
    lost = sum(
        1 for t in trades if t.status == 201 and (count[t.key] != 1 or seq_of.get(t.key) != t.seq)
    )
    duplicates = sum(1 for n in count.values() if n > 1)
    refused_journaled = sum(1 for t in trades if t.status == 422 and count[t.key] > 0)
    return lost, duplicates, refused_journaled, kinds, named


def read_book(url: str, ids: Sequence[str], prices: Mapping[str, float]) -> Book:
    """Accounts ``ids`` rebuilt from the database's state rows, at ``prices``."""
    engine = db.connect(url)
    balances: dict[str, dict[str, float]] = defaultdict(dict)
    positions: dict[str, list[dict[str, Any]]] = defaultdict(list)
    modes: dict[str, tuple[str, str | None]] = {}
    with engine.connect() as connection:
        assets = {
            r.symbol: {**json.loads(r.params), "price": prices[r.symbol]}
            for r in connection.execute(sa.select(db.assets))
        }
        markets = {
            r.symbol: json.loads(r.params) for r in connection.execute(sa.select(db.markets))
        }
        settings = {r.name: r.value for r in connection.execute(sa.select(db.settings))}
        for lo in range(0, len(ids), 500):
            chunk = list(ids[lo : lo + 500])
            for r in connection.execute(sa.select(db.accounts).where(db.accounts.c.id.in_(chunk))):
                modes[r.id] = (r.mode, r.profile)
            for r in connection.execute(
                sa.select(db.balances).where(db.balances.c.account_id.in_(chunk))
            ):
                balances[r.account_id][r.asset] = float(r.qty)
            for r in connection.execute(
                sa.select(db.positions).where(db.positions.c.account_id.in_(chunk))
            ):
                positions[r.account_id].append(
                    {
                        "market": r.market,
                        "qty": float(r.qty),
                        "entry_price": float(r.entry_price),
                        "unrealized_funding": float(r.funding),
                        "isolated_collateral": json.loads(r.isolated_collateral),
                    }
                )
    engine.dispose()
    accounts = [
        {
            "id": i,
            "mode": modes[i][0],
            "profile": modes[i][1],
            "balances": balances.get(i, {}),
            "positions": sorted(positions.get(i, []), key=lambda p: p["market"]),
        }
        for i in ids
    ]
    return book_from_data(
        {
            "as_of": settings.get("as_of") or None,
            "pnl_convention": settings.get("pnl_convention", "separate"),
            "assets": assets,
            "markets": markets,
            "accounts": accounts,
        }
    )


async def stream_snapshot(port: int, admin: str, ids: Sequence[str]) -> dict[str, Any]:
    """The live figures of ``ids``: the snapshot the stream sends on subscription (cheaper
    than ``GET /v1/accounts`` pages, which sort every account per page)."""
    from websockets.asyncio.client import connect

    out: dict[str, dict[str, Any]] = {}
    uri = f"ws://{HOST}:{port}/v1/stream?key={admin}"
    async with connect(uri, max_size=2**26, ping_interval=None) as ws:
        await ws.send(json.dumps({"subscribe": [f"account:{i}" for i in ids]}))
        async with asyncio.timeout(REQUEST_TIMEOUT_S):
            while len(out) < len(ids):
                message = json.loads(await ws.recv())
                if message.get("channel") == "subscribed" and message["data"]["errors"]:
                    raise RuntimeError(f"subscription: {message['data']['errors'][:3]}")
                if message.get("channel") == "account":
                    out.setdefault(message["account_id"], message["data"])
    return out


def agreement(
    run: Run, url: str, prices: Mapping[str, float], sample_size: int, event_accounts: set[str]
) -> tuple[int, float, str]:
    """Max relative maint-health difference, API (stream snapshot) vs the library on the book
    rebuilt from the database."""
    rng = np.random.default_rng(run.seed + 3)
    ids = [a.id for a in run.bench.book.accounts]
    sample = {t.account for t in run.trades if t.status == 201}
    sample |= set(run.bench.probes) | (event_accounts & set(ids))
    sample |= {ids[k] for k in rng.choice(len(ids), min(sample_size, len(ids)), replace=False)}
    chosen = sorted(sample)
    t = time.perf_counter()
    served = asyncio.run(stream_snapshot(run.port, run.keys["admin"], chosen))
    api_s = time.perf_counter() - t
    book = read_book(url, chosen, prices)
    read_s = time.perf_counter() - t - api_s
    result = MarginEngine(book).evaluate()
    library = result.per_account(result.health[MAINT])
    health = np.array([served[i]["maint_health_usd"] for i in chosen])
    diff = np.abs(health - library) / np.maximum(1.0, np.abs(library))
    timing = f"API {api_s:.1f} s, database read {read_s:.1f} s"
    return len(chosen), float(diff.max()), timing


# -- main ------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--ticks-per-s", type=float, default=1000.0, help="quotes per second")
    parser.add_argument("--trades-per-s", type=float, default=200.0, help="0: no trades")
    parser.add_argument("--probes", type=int, default=2, help="probe accounts per ticked asset")
    parser.add_argument("--check-accounts", type=int, default=2000, help="random accounts checked")
    parser.add_argument("--genesis", choices=("bulk", "core"), default="bulk")
    parser.add_argument("--startup-timeout", type=float, default=600.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not (args.seconds > 0 and args.ticks_per_s > 0 and args.trades_per_s >= 0):
        raise SystemExit("--seconds and --ticks-per-s must be > 0, --trades-per-s >= 0")
    started = time.perf_counter()
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    print(
        f"machine: {os.cpu_count()} cores, load average {load[0]:.2f}, CPU pressure "
        f"{cpu_pressure()} at start"
    )

    t = time.perf_counter()
    bench = build_book(args.accounts, args.seed, args.probes)
    build_s = time.perf_counter() - t
    n_pos = sum(len(a.positions) for a in bench.book.accounts)
    print(
        f"book: {len(bench.book.accounts):,} accounts ({len(bench.probes)} probes), "
        f"{len(bench.book.assets)} assets ({len(bench.ticked)} ticked), "
        f"{len(bench.book.markets)} perps, {n_pos:,} positions; built in {build_s:.1f} s"
    )
    t = time.perf_counter()
    engine = MarginEngine(bench.book)
    engine.evaluate()
    peer_s = time.perf_counter() - t
    del engine

    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp:
        directory = Path(tmp)
        url = db.default_url(directory / "service.db")
        t = time.perf_counter()
        keys = write_genesis(url, bench, args.genesis, directory)
        genesis_s = time.perf_counter() - t
        print(f"genesis ({args.genesis}): {genesis_s:.1f} s")
        port = free_port()
        base = f"http://{HOST}:{port}"
        log = directory / "server.log"
        t = time.perf_counter()
        proc = start_server(url, port, log)
        try:
            wait_healthy(proc, base, args.startup_timeout)
            startup_s = time.perf_counter() - t
            print(f"server: pid {proc.pid}, {base}, ready in {startup_s:.1f} s")
            run = Run(
                bench, keys, port, args.seconds, args.ticks_per_s, args.trades_per_s, args.seed
            )
            server0, client0 = cpu_seconds(proc.pid), cpu_seconds(os.getpid())
            asyncio.run(drive(run))
            window = max(run.load_end - run.load_start, 1e-9)
            server1, client1 = cpu_seconds(proc.pid), cpu_seconds(os.getpid())
            server_cores = (server1[0] - server0[0]) / window
            server_starved = (server1[1] - server0[1]) / window
            client_cores = (client1[0] - client0[0]) / window
            client_starved = (client1[1] - client0[1]) / window
            time.sleep(0.5)
            import httpx

            system = httpx.get(
                f"{base}/v1/system", headers={"X-API-Key": keys["admin"]}, timeout=60.0
            ).json()
            lost_trades, duplicates, refused_journaled, kinds, named = journal_check(
                url, run.trades
            )
            t = time.perf_counter()
            checked, max_diff, timing = agreement(
                run, url, system["prices_usd"], args.check_accounts, named
            )
            check_s = time.perf_counter() - t
        except BaseException:
            if log.exists():
                print("server log (tail):\n" + log.read_text(errors="replace")[-3000:])
            raise
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    stats = tick_latencies(run)
    acked = [t for t in run.ticks if t.acknowledged]
    tick_errors = [t for t in run.ticks if t.error is not None]
    rejected_quotes = run.rejected_quotes
    trade_errors = [r for r in run.trades if r.error is not None]
    refusals = sum(1 for r in run.trades if r.status == 422)
    accepted = sum(1 for r in run.trades if r.status == 201)
    unsent = sum(1 for r in run.trades if math.isnan(r.t_send))
    errors = len(tick_errors) + len(trade_errors) + len(run.other_errors)
    lost = stats.lost + lost_trades + duplicates
    quotes_per_tick = 2 * len(bench.ticked) // 2
    sent_ms, drawn_ms = stats.from_send_ms, stats.from_draw_ms
    p99 = percentile(sent_ms, 99)
    posts = list({t.t_send: t for t in acked}.values())  # one per POST
    quotes_per_s = len(acked) * quotes_per_tick / max(run.oracle_end - run.load_start, 1e-9)
    trade_window = max(run.trader_end - run.load_start, 1e-9)
    batches = [t.batch for t in posts]
    service_ms = statistics.median(run.remargin_ms) if run.remargin_ms else math.nan

    def ms(values: Sequence[float]) -> str:
        return (
            f"p50 {percentile(values, 50):.1f} ms, p99 {percentile(values, 99):.1f} ms, "
            f"max {max(values, default=math.nan):.1f} ms"
        )

    print(
        f"load: {window:.1f} s; oracle {len(run.ticks):,} ticks x {quotes_per_tick} quotes in "
        f"{len(posts):,} POSTs -> {quotes_per_s:,.0f} quotes/s "
        f"acknowledged (target {args.ticks_per_s:,.0f}); trades {accepted / trade_window:,.1f}/s "
        f"accepted + {refusals / trade_window:,.1f}/s refused (target {args.trades_per_s:,.0f}/s; "
        f"{len(run.trades):,} offered, {unsent:,} never sent: all {TRADE_CONNECTIONS} "
        f"connections still busy when the schedule ended)"
    )
    print(
        f"client: pacing lag p99 {percentile([x * 1e3 for x in run.lag_s], 99):.1f} ms, max "
        f"{max(run.lag_s, default=0.0) * 1e3:.1f} ms; CPU used (and runnable but waiting for "
        f"a CPU), in cores: server {server_cores:.2f} ({server_starved:.2f}), client "
        f"{client_cores:.2f} ({client_starved:.2f}); ticks per POST p50 "
        f"{percentile(batches, 50):.0f}, max {max(batches, default=0)}"
    )
    print(
        f"tick-to-health latency, {len(sent_ms):,} ticks (POST sent -> every probe of its "
        f"assets shows the price or a later one on the WebSocket): {ms(sent_ms)}"
    )
    print(f"  from the price's draw (adds the wait behind the previous POST): {ms(drawn_ms)}")
    print(
        f"  POST /v1/prices round trip {ms([t.rtt_s * 1e3 for t in posts])}; server "
        f"latency_ms {ms([t.server_ms for t in posts])}; re-margined accounts per POST p50 "
        f"{percentile([t.remargined for t in posts], 50):,.0f} (0: conflated into another)"
    )
    print(f"  trade round trip {ms([r.rtt_s * 1e3 for r in run.trades if r.status])}")
    print(
        f"errors: {errors} (ticks {len(tick_errors)}, with {rejected_quotes} quotes rejected by "
        f"the oracle; trades {len(trade_errors)}; other {len(run.other_errors)}); "
        f"refusals (422): {refusals}; requests sent again after an idle keep-alive close "
        f"{Http.resent}"
    )
    for sample in [t.error for t in tick_errors[:3]] + [r.error for r in trade_errors[:3]]:
        print(f"  e.g. {sample}")
    print(
        f"lost events: {lost} (ticks never shown on the stream {stats.lost}; acknowledged "
        f"trades not journaled exactly once {lost_trades}; duplicate keys {duplicates}); "
        f"refused trades journaled {refused_journaled}; stream messages unmatched "
        f"{stats.unmatched_messages}, out of order {stats.out_of_order}"
    )
    print(
        f"journal: {dict(sorted(kinds.items()))}; server ticks accepted "
        f"{system['ticks_accepted']:,}, rejected {system['ticks_rejected']:,}; status "
        f"{system['status_counts']}"
    )
    print(
        f"server re-margin (last_remargin_ms on the system stream, {len(run.remargin_ms)} "
        f"samples): median {service_ms:.1f} ms, max {max(run.remargin_ms, default=math.nan):.1f}"
        f" ms; at the end {system['last_remargin_ms']:.1f} ms"
    )
    ratio = peer_s * 1e3 / service_ms
    print(
        f"peer: MarginEngine(book).evaluate() of all {len(bench.book.accounts):,} accounts "
        f"(compile + kernel, this process) {peer_s * 1e3:,.0f} ms; ratio peer / service "
        f"incremental re-margin (median) {ratio:.1f}x"
    )
    print(
        f"agreement: maint health of {checked:,} accounts (API: the stream's snapshot) vs the "
        f"library on the book rebuilt from the database at the server's prices: max rel diff "
        f"{max_diff:.2e} (tolerance {TOLERANCE:g}); checked in {check_s:.1f} s ({timing})"
    )
    print(
        f"targets: p99 <= {P99_TARGET_MS:g} ms {'met' if p99 <= P99_TARGET_MS else 'NOT met'}; "
        f"{args.ticks_per_s:,.0f} quotes/s "
        f"{'met' if quotes_per_s >= 0.95 * args.ticks_per_s else 'NOT met'}"
        f"; zero errors {'met' if errors == 0 else 'NOT met'}; zero lost events "
        f"{'met' if lost == 0 else 'NOT met'}"
    )
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    print(
        f"total run time {time.perf_counter() - started:.1f} s; load average {load[0]:.2f}, "
        f"CPU pressure {cpu_pressure()} at the end"
    )
    if not max_diff <= TOLERANCE:
        raise SystemExit("the service and the library disagree")
    if errors or lost:
        raise SystemExit(f"{errors} errors, {lost} lost events")


if __name__ == "__main__":
    main()
