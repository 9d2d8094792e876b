"""Crash test of the live engine: ``kill -9`` at random moments during a stream of trades, price
ticks and liquidations; after every restart nothing acknowledged is lost, nothing is applied
twice, the state equals the replay of the ledger and value is conserved.

``crossmargin serve`` runs as a separate OS process (the CLI's own entry point, 127.0.0.1, a
free port, ``--feed none``) on a SQLite WAL database, started from the demo book (the first
start writes the genesis). The server processes are forked from one process that has imported
the CLI, so the ~4 s of imports are paid once, not at every restart (see ``FORK_SERVER``).
This process is the client: owner keys deposit, withdraw and trade on four accounts, each
movement with a unique ``Idempotency-Key``; the oracle key pushes two agreeing sources per asset
along a price path with an ETH/SOL crash of ~28 % over eight pushes, a recovery and noise
(repeated every 24 pushes), so accounts are liquidated, and the levered accounts buy risk back
until refused. At a seeded random request 5-40 into each stream, a timer sends SIGKILL 0.2-1.3
average request latencies after that request starts: usually in the middle of a request (a
re-margin, a liquidation batch, a commit). The request cut off has an *unknown* outcome.

After each kill, before the restart: every acknowledged (2xx) movement is in ``events`` under
its key, once, with the acknowledged seq and result; no refused (422) one is. After each
restart: the server's accounts (balances, positions) and system figures equal the database
rows; the prices are pushed again (the oracle starts halted); each unknown request is retried
with the same key and body: if the database holds its key the answer must be that event,
marked ``Idempotent-Replayed: true``, else a fresh apply (or a 422) - never a second event; a
sample of earlier acknowledged requests must replay their original answer.

At the end (after a last stream without a kill): the live server equals the database; every
acknowledged request replays its original answer (status, JSON) with ``Idempotent-Replayed:
true``; ``/v1/events`` equals the table; the server is killed and, on the database alone: each
acknowledged key is exactly one event with the acknowledged seq and result, refused keys none;
``replay_changes(all events) == read_state`` for every ledger table, floats bit for bit; each
movement's change is exactly one application of its body on the replayed state before it (new
balance = old +/- qty, new position = old + qty); and value is conserved, event by event:

* trade (fills at the mark): equity after == before;
* deposit / withdrawal: equity after - before == +/- qty x the asset's price (the price this
  client pushed: two equal sources, the median is exact; before/after are at the same prices);
* liquidation batch (the ``liquidation`` events and the ``liquidation_flows`` event of one
  transaction, consecutive seqs): sum of (equity_after_usd - equity_before_usd) +
  liquidator_usd + (fund after - fund before) + makers_usd - socialized_external_usd == 0, and
  fund before + insurance_fees_usd - insurance_paid_usd == fund after. This is the identity of
  :mod:`crossmargin.liquidation.engine` ("account equity + liquidator + insurance fund + makers'
  slippage gains - socialized losses is unchanged") for a batch that holds only some accounts:
  the haircut of depositors *inside* the batch is in their equity, so the loss to subtract is
  the part nobody in the batch absorbed, ``socialized_external_usd`` (the service's bad debt).
  The fund before is the genesis value (``ServiceConfig``: 250,000 USD) or the previous batch's
  ``insurance_fund_usd``.

Tolerance: 1e-9 relative to the equity involved (batch: the sum of |equity before| plus the
fund); the worst residual measured over all of them is ~5e-16 (default run), up to ~2e-15
(slow run).

Counts of the default run (seed 20261130, 3 kills; the timing of the kills moves them),
measured on a 2-core machine under a load of ~6-9: 4 server starts, 70-103 requests, 65-96
acknowledged (39-66 movements, the rest price pushes), 4-7 refused, 3 unknown outcomes retried
(mostly applied fresh on the retry, sometimes replayed or refused), 65-92 events after the last
restart (7-11 liquidation batches, 11-15 liquidations, 2-4 margin calls); 35-45 s (imports and
warm-up 15-20 s, each start 2-5 s). The ``slow`` variant kills 20 times (480-570 requests, 20
unknowns of which 2-4 replayed, 350-415 events, 14-19 liquidation batches; 100-150 s).
``CROSSMARGIN_CRASH_SEED`` overrides the seed; the counts are printed (``-s``) and appended to
any assertion message.

``test_a_retry_racing_its_original_is_applied_once`` (in-process, no server) found that a retry
arriving while its original was still in flight was answered as a replay but applied a second
time in memory; the key is now looked up under the writer lock.
"""

from __future__ import annotations

import json
import math
import os
import random
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from crossmargin.book import load_demo_book
from crossmargin.book.io import demo_book_text
from crossmargin.service import db
from crossmargin.service.auth import create_key
from crossmargin.service.core import MarginCore
from crossmargin.service.ledger import Ledger, read_state, replay_changes
from crossmargin.service.ticks import Tick

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="fork, /proc and prctl: Linux only"
)
SEED = int(os.environ.get("CROSSMARGIN_CRASH_SEED", "20261130"))
IMPORT_TIMEOUT_S = 300.0  # the CLI's imports: ~4 s of CPU, a minute on an overloaded machine
HEALTH_TIMEOUT_S = 60.0  # from the arguments to /v1/health (numba cache, a loaded machine)
REQUEST_TIMEOUT_S = 60.0
KILL_WINDOW = (0.2, 1.3)  # the kill lands this many average latencies after a request starts
OWNED = ("eth-levered", "basis-trader", "sol-degen", "market-maker")
ROUTES = {"deposit": "deposits", "withdrawal": "withdrawals", "trade": "trades"}
FINAL_OPS = 15  # movements and pushes after the last restart, without a kill
REL_TOL = 1e-9  # value conservation, relative to the equity (and fund) involved

# The server processes are forked from one process that imported the CLI and everything
# `serve` imports lazily and warmed the JIT-compiled kernels up (like a pre-loading web server):
# each server is a fresh child that runs `crossmargin serve` through the CLI's own entry point,
# opens the database itself and rebuilds its state from it, and is killed by its pid. The
# imports and the warm-up (~6 s of CPU, a minute on an overloaded machine) are paid once, not at
# every restart. The children are reaped by the kernel (SIGCHLD ignored) and die with the fork
# server, which exits when this process closes its stdin or dies: no server outlives the test.
IMPORTED = "crash test: imported"
FORK_SERVER = f"""
import json, os, signal, sys
from crossmargin import cli
import crossmargin.book.io, crossmargin.service.api, crossmargin.service.config
import crossmargin.service.core, crossmargin.service.db, crossmargin.service.feeds
import crossmargin.liquidation, uvicorn
import time
# warm-up on a throw-away in-memory database (best effort, an optimization only): Alembic's
# scripts, the kernels and the liquidation engine are loaded (numba) once, not in every server
try:
    from crossmargin.book import load_demo_book
    from crossmargin.service import db
    from crossmargin.service.core import MarginCore
    from crossmargin.service.ticks import Tick
    engine = db.connect("sqlite://")
    db.upgrade(engine)
    MarginCore.initialize(engine, load_demo_book())
    core = MarginCore(engine)
    for move in (1.0, 0.8):
        prices = {{a: x.price * move for a, x in load_demo_book().assets.items()}}
        now = time.time()
        core.ingest([Tick(a, str(k), v, v * 1e-4, now) for a, v in prices.items() for k in (1, 2)])
    del core
    engine.dispose()
except Exception as exc:
    print("warm-up failed:", repr(exc), flush=True, file=sys.stderr)
import ctypes
prctl = ctypes.CDLL(None, use_errno=True).prctl
forks = os.getpid()
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
print({IMPORTED!r}, flush=True)
# until stdin closes - the test is done or gone: this process exits, and its server with it
for line in sys.stdin:
    args, log = json.loads(line)
    pid = os.fork()
    if pid == 0:
        prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: SIGKILL when the fork server exits
        if os.getppid() != forks:
            os._exit(1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        sys.argv = ["crossmargin", *args]
        code = 1
        try:
            cli.main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    print(pid, flush=True)
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Server:
    """``crossmargin serve`` in its own process, killed with SIGKILL and restarted on one DB."""

    def __init__(self, workdir: Path, book: Path, url: str) -> None:
        self.workdir, self.book, self.url = workdir, book, url
        self.forks_log = workdir / "fork-server.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with self.forks_log.open("wb") as err:
            self.forks = subprocess.Popen(
                [sys.executable, "-c", FORK_SERVER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                cwd=workdir,
                env=env,
            )
        self.buffer = b""
        self.imported = False
        self.pid: int | None = None
        self.log: Path | None = None
        self.starts = 0
        self.kills = 0
        self.killed = threading.Event()
        self.import_s = 0.0
        self.start_s: list[float] = []  # from the arguments to /v1/health

    def _line(self, timeout_s: float, what: str) -> str:
        """One line from the fork server (its own buffer: select() sees only the pipe)."""
        assert self.forks.stdout is not None
        fd = self.forks.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            ready = select.select([fd], [], [], max(left, 0.0))[0] if left > 0 else []
            if not ready:
                raise AssertionError(f"{what}: nothing after {timeout_s} s\n{tail(self.forks_log)}")
            chunk = os.read(fd, 4096)
            if not chunk:
                raise AssertionError(f"{what}: the fork server exited\n{tail(self.forks_log)}")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode()

    def ours(self, pid: int) -> bool:
        """``pid`` is alive (not a zombie) and a child of the fork server."""
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        fields = stat.rsplit(")", 1)[1].split()
        return fields[0] != "Z" and int(fields[1]) == self.forks.pid

    def start(self) -> str:
        """Start ``serve`` on the database; returns the base URL once /v1/health answers."""
        if not self.imported:
            started = time.monotonic()
            assert self._line(IMPORT_TIMEOUT_S, "imports") == IMPORTED
            self.imported, self.import_s = True, time.monotonic() - started
        for attempt in range(3):
            base = self._start_on(free_port())
            if base is not None:
                return base
            assert self.log is not None  # the port was taken between free_port and bind
            assert attempt < 2, f"no free port:\n{tail(self.log)}"
        raise AssertionError("unreachable")

    def _start_on(self, port: int) -> str | None:
        started = time.monotonic()
        args = [
            "serve",
            str(self.book),
            "--db",
            self.url,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--feed",
            "none",
            "--quiet",
        ]
        self.log = self.workdir / f"server-{self.starts}.log"
        assert self.forks.stdin is not None
        self.forks.stdin.write((json.dumps([args, str(self.log)]) + "\n").encode())
        self.forks.stdin.flush()
        self.pid = int(self._line(30.0, "fork"))
        self.killed.clear()
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        while True:
            if not self.ours(self.pid):
                if "address already in use" in tail(self.log).lower():
                    return None
                raise AssertionError(f"the server exited:\n{tail(self.log)}")
            try:
                if httpx.get(f"{base}/v1/health", timeout=2.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"no /v1/health after {HEALTH_TIMEOUT_S} s:\n{tail(self.log)}")
            time.sleep(0.05)
        self.starts += 1
        self.start_s.append(time.monotonic() - started)
        return base

    def kill(self) -> None:
        """SIGKILL (from the timer thread: the flag is set before the signal is sent)."""
        self.killed.set()
        if self.pid is not None and self.ours(self.pid):
            os.kill(self.pid, signal.SIGKILL)
            self.kills += 1

    def reap(self) -> None:
        """Wait until the killed server is gone (the kernel reaps it)."""
        deadline = time.monotonic() + 30.0
        while self.pid is not None and self.ours(self.pid):
            assert time.monotonic() < deadline, f"server {self.pid} still alive after SIGKILL"
            time.sleep(0.01)
        self.pid = None

    def close(self) -> None:
        """Kill the server and the fork server (only the processes this object started)."""
        if self.pid is not None and self.ours(self.pid):
            os.kill(self.pid, signal.SIGKILL)
        self.reap()
        if self.forks.poll() is None:
            self.forks.send_signal(signal.SIGKILL)
        self.forks.wait(timeout=30)
        for pipe in (self.forks.stdin, self.forks.stdout):
            if pipe is not None:
                pipe.close()


@dataclass
class Request:
    """One request of the stream and what became of it."""

    n: int
    kind: str  # deposit, withdrawal, trade or prices
    path: str
    body: dict[str, Any]
    key_name: str
    idem: str | None
    prices: dict[str, float]  # the prices this client had pushed when it sent the request
    outcome: str = ""  # acked, refused, unknown
    status: int | None = None
    response: dict[str, Any] | None = None
    replayed: bool = False
    retried_as: str = ""  # for an unknown: replayed, applied or refused on the retry
    error: str = ""  # for an unknown: the transport error (ConnectError: never delivered)

    @property
    def event_key(self) -> str:
        return f"{self.key_name}:{self.idem}"


@dataclass
class Stream:
    """Movements on the owned accounts and price pushes along a crash-and-recovery path."""

    rng: random.Random
    prices: dict[str, float] = field(
        default_factory=lambda: {s: a.price for s, a in load_demo_book().assets.items()}
    )
    pushes: int = 0
    count: int = 0

    def quotes(self) -> dict[str, Any]:
        return {
            "quotes": [
                {
                    "asset": asset,
                    "source": f"src{k}",
                    "price_usd": price,
                    "confidence_usd": price * 1e-4,
                }
                for asset, price in self.prices.items()
                for k in range(2)
            ]
        }

    def push(self) -> Request:
        """The current prices again (after a restart: the oracle starts halted)."""
        self.count += 1
        return Request(self.count, "prices", "/v1/prices", self.quotes(), "oracle", None, {})

    def advance(self) -> None:
        rng, p = self.rng, self.prices
        step = self.pushes % 24
        self.pushes += 1
        if step < 8:  # the crash: ETH -28 %, SOL -31 % over eight pushes
            eth, sol = 0.96, 0.955
        elif step < 16:  # a recovery
            eth, sol = 1.025, 1.03
        else:
            eth, sol = 1 + rng.uniform(-0.01, 0.01), 1 + rng.uniform(-0.01, 0.01)
        p["ETH"] *= eth * (1 + rng.uniform(-0.002, 0.002))
        p["wstETH"] = p["ETH"] * 3690.0 / 3040.0
        p["SOL"] *= sol * (1 + rng.uniform(-0.002, 0.002))
        p["BTC"] *= 1 + rng.uniform(-0.005, 0.005)
        p["AAVE"] *= 1 + rng.uniform(-0.01, 0.01)

    def next(self) -> Request:
        rng = self.rng
        if rng.random() < 0.25:
            self.advance()
            return self.push()
        self.count += 1
        account = rng.choice(OWNED)
        roll = rng.random()
        if roll < 0.35:
            kind, body = "deposit", self._transfer(rng, 5000.0)
        elif roll < 0.6:
            kind, body = "withdrawal", self._transfer(rng, 2500.0)
        else:
            kind, body = "trade", self._trade(rng, account)
        path = f"/v1/accounts/{account}/{ROUTES[kind]}"
        idem = f"s{self.count}-{kind}-{rng.getrandbits(32):08x}"
        return Request(self.count, kind, path, body, f"owner-{account}", idem, dict(self.prices))

    @staticmethod
    def _transfer(rng: random.Random, usdc: float) -> dict[str, Any]:
        roll = rng.random()
        if roll < 0.7:
            return {"asset": "USDC", "qty": round(rng.uniform(50.0, usdc), 2)}
        if roll < 0.9:
            return {"asset": "ETH", "qty": round(rng.uniform(0.05, 2.0), 4)}
        return {"asset": "BTC", "qty": round(rng.uniform(0.001, 0.05), 5)}

    @staticmethod
    def _trade(rng: random.Random, account: str) -> dict[str, Any]:
        market, low, high, digits = {
            # the two levered longs buy back risk until refused (init health 0), so every
            # crash of the price cycle liquidates them again
            "eth-levered": ("ETH-PERP", -3.0, 15.0, 3),
            "basis-trader": ("BTC-PERP", -0.3, 0.3, 4),
            "sol-degen": ("SOL-PERP", -60.0, 300.0, 2),
            "market-maker": rng.choice(
                [
                    ("ETH-PERP", -5.0, 5.0, 3),
                    ("SOL-PERP", -50.0, 50.0, 2),
                    ("BTC-PERP", -0.2, 0.2, 4),
                ]
            ),
        }[account]
        qty = round(rng.uniform(low, high), digits)
        return {"market": market, "qty": qty if qty != 0.0 else 10.0**-digits}


class Client:
    """Sends the stream's requests to the current server and records their outcomes."""

    def __init__(self, keys: Mapping[str, str]) -> None:
        self.keys = keys
        self.http: httpx.Client | None = None
        self.latency_s = 0.02  # moving average of the answered requests' latency

    def connect(self, base: str) -> None:
        if self.http is not None:
            self.http.close()
        self.http = httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT_S)

    def close(self) -> None:
        if self.http is not None:
            self.http.close()
            self.http = None

    def headers(self, key_name: str, idem: str | None = None) -> dict[str, str]:
        out = {"X-API-Key": self.keys[key_name]}
        if idem is not None:
            out["Idempotency-Key"] = idem
        return out

    def get(self, path: str, key_name: str = "auditor", **params: Any) -> Any:
        assert self.http is not None
        answer = self.http.get(path, headers=self.headers(key_name), params=params)
        assert answer.status_code == 200, f"GET {path}: {answer.status_code} {answer.text}"
        return answer.json()

    def post(self, request: Request) -> httpx.Response:
        """The raw answer (a transport error propagates)."""
        assert self.http is not None
        return self.http.post(
            request.path, json=request.body, headers=self.headers(request.key_name, request.idem)
        )

    def send(self, request: Request) -> str:
        """Send once; record acked / refused / unknown (a transport error: killed mid-way)."""
        sent = time.monotonic()
        try:
            answer = self.post(request)
        except httpx.TransportError as exc:
            request.outcome, request.error = "unknown", type(exc).__name__
            return request.outcome
        self.latency_s += 0.3 * (time.monotonic() - sent - self.latency_s)
        request.status = answer.status_code
        if 200 <= answer.status_code < 300:
            request.outcome = "acked"
            request.response = answer.json()
            request.replayed = answer.headers.get("Idempotent-Replayed") == "true"
            if request.kind == "prices":
                assert request.response["rejected"] == [], request.response
            else:
                assert not request.replayed, f"a fresh key replayed: {request}"
        elif answer.status_code == 422 and request.kind != "prices":
            request.outcome = "refused"  # nothing written: checked at the end
        else:
            raise AssertionError(
                f"{request.kind} {request.path} {request.body}: "
                f"{answer.status_code} {answer.text[:500]}"
            )
        return request.outcome


def account_rows(client: Client, account_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The server's balances ``{asset: qty}`` and positions ``{market: (qty, entry, funding,
    isolated collateral)}`` of an account (read with the admin key)."""
    account = client.get(f"/v1/accounts/{account_id}", "admin")
    positions = {
        p["market"]: (p["qty"], p["entry_price"], p["unrealized_funding"], p["isolated_collateral"])
        for p in account["positions"]
    }
    return account["balances"], positions


def state_mismatches(client: Client, engine: sa.engine.Engine) -> list[str]:
    """The server's accounts (balances, positions) and system figures vs the database rows."""
    state = read_state(engine)
    found: list[str] = []
    for row in state["accounts"]:
        live_balances, live_positions = account_rows(client, row["id"])
        balances = {r["asset"]: r["qty"] for r in state["balances"] if r["account_id"] == row["id"]}
        positions = {
            r["market"]: (
                r["qty"],
                r["entry_price"],
                r["funding"],
                json.loads(r["isolated_collateral"]),
            )
            for r in state["positions"]
            if r["account_id"] == row["id"]
        }
        if live_balances != balances:
            found.append(f"{row['id']} balances: server {live_balances} db {balances}")
        if live_positions != positions:
            found.append(f"{row['id']} positions: server {live_positions} db {positions}")
    system = client.get("/v1/system")
    for r in state["system"]:
        if system[r["name"]] != r["value"]:
            found.append(f"system {r['name']}: server {system[r['name']]} db {r['value']}")
    return found


def last_seq(engine: sa.engine.Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.max(db.events.c.seq))).scalar() or 0)


def assert_server_equals_db(client: Client, engine: sa.engine.Engine, when: str) -> None:
    """Compare while no event is written (the sweep timer may liquidate between reads)."""
    found: list[str] = []
    for _ in range(5):
        seq = last_seq(engine)
        found = state_mismatches(client, engine)
        if last_seq(engine) == seq:
            break
    assert not found, f"{when}: server state != database:\n" + "\n".join(found)


def stored_events(engine: sa.engine.Engine, keys: list[str]) -> dict[str, list[tuple[int, Any]]]:
    out: dict[str, list[tuple[int, Any]]] = {k: [] for k in keys}
    with engine.connect() as connection:
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            rows = connection.execute(
                sa.select(db.events.c.key, db.events.c.seq, db.events.c.result).where(
                    db.events.c.key.in_(chunk)
                )
            )
            for key, seq, result in rows:
                out[key].append((int(seq), json.loads(result)))
    return out


def assert_acknowledged_stored(engine: sa.engine.Engine, requests: list[Request]) -> None:
    """Every acknowledged movement is ONE event with its seq and result; no refused one is."""
    acked = [r for r in requests if r.kind != "prices" and r.outcome == "acked"]
    refused = [r for r in requests if r.kind != "prices" and r.outcome == "refused"]
    stored = stored_events(engine, [r.event_key for r in acked + refused])
    for r in acked:
        assert r.response is not None
        found = stored[r.event_key]
        assert len(found) == 1, f"acknowledged {r.event_key} stored {len(found)} times"
        seq, result = found[0]
        assert seq == r.response["seq"], f"{r.event_key}: acked seq {r.response['seq']}, db {seq}"
        assert result == {k: v for k, v in r.response.items() if k != "seq"}, r.event_key
    for r in refused:
        assert not stored[r.event_key], f"refused {r.event_key} was written: {stored[r.event_key]}"


def replay_request(client: Client, r: Request) -> None:
    """An acknowledged request sent again: the stored answer, marked as replayed."""
    answer = client.post(r)
    assert answer.status_code == r.status, f"{r.event_key}: {answer.status_code} {answer.text}"
    assert answer.headers.get("Idempotent-Replayed") == "true", r.event_key
    assert answer.json() == r.response, f"{r.event_key}: replay differs from the original"


def check_ledger(
    events: list[dict[str, Any]], by_key: Mapping[str, Request]
) -> tuple[int, int, float]:
    """Walk the ledger in order: each movement is one application of its body on the state
    before it, and value is conserved per event / per liquidation batch. Returns the number of
    liquidation batches and liquidation events, and the largest relative residual."""
    balances: dict[tuple[str, str], float] = {}
    positions: dict[tuple[str, str], float] = {}
    system: dict[str, float] = {}
    pending: list[dict[str, Any]] = []
    batches = liquidations = 0
    worst = 0.0
    close = math.isclose
    for ev in events:
        kind, result, body, account = ev["kind"], ev["result"], ev["body"], ev["account_id"]
        where = f"event {ev['seq']} {kind} {ev['key']}"
        if kind in ("deposit", "withdrawal", "trade"):
            assert ev["key"] in by_key, f"{where}: a movement nobody sent"
            before, after = result["before"]["equity_usd"], result["after"]["equity_usd"]
            scale = max(abs(before), abs(after), 1.0)
            if kind == "trade":
                new = [
                    c
                    for c in ev["changes"]
                    if c["t"] == "positions" and c["market"] == body["market"]
                ]
                old = positions.get((account, body["market"]), 0.0)
                assert len(new) == 1 and new[0]["qty"] == old + body["qty"], (where, old, new)
                expected = 0.0  # filled at the mark: no value moves
            else:
                sign = 1.0 if kind == "deposit" else -1.0
                new = [
                    c for c in ev["changes"] if c["t"] == "balances" and c["asset"] == body["asset"]
                ]
                old = balances.get((account, body["asset"]), 0.0)
                assert len(new) == 1, (where, new)
                assert close(
                    new[0]["qty"], old + sign * body["qty"], rel_tol=1e-12, abs_tol=1e-9
                ), (
                    where,
                    old,
                    new,
                )
                price = by_key[ev["key"]].prices[body["asset"]]
                expected = sign * body["qty"] * price
                scale = max(scale, abs(expected))
            residual = abs(after - before - expected) / scale
            worst = max(worst, residual)
            assert residual <= REL_TOL, (
                f"{where}: equity {before} -> {after}, expected {expected:+}"
            )
        elif kind == "liquidation":
            pending.append(ev)
            liquidations += 1
        elif kind == "liquidation_flows":
            accounts = [e["account_id"] for e in pending]
            assert accounts == result["accounts"], (where, accounts, result["accounts"])
            assert [e["seq"] for e in pending] == list(range(ev["seq"] - len(pending), ev["seq"]))
            fund_before, fund_after = system["insurance_fund_usd"], result["insurance_fund_usd"]
            d_equity = sum(
                e["result"]["equity_after_usd"] - e["result"]["equity_before_usd"] for e in pending
            )
            residual = (
                d_equity
                + result["liquidator_usd"]
                + (fund_after - fund_before)
                + result["makers_usd"]
                - result["socialized_external_usd"]
            )
            scale = sum(abs(e["result"]["equity_before_usd"]) for e in pending) + fund_before
            worst = max(worst, abs(residual) / scale)
            assert abs(residual) <= REL_TOL * scale, (
                f"{where}: value not conserved by {residual:+.6g} USD "
                f"(equity {d_equity:+.6g}, flows {result})"
            )
            fund_flow = fund_before + result["insurance_fees_usd"] - result["insurance_paid_usd"]
            assert close(fund_flow, fund_after, rel_tol=1e-12, abs_tol=1e-6), (where, result)
            changed = {c["name"]: c["value"] for c in ev["changes"] if c["t"] == "system"}
            assert changed.get("insurance_fund_usd", fund_before) == fund_after, where
            pending = []
            batches += 1
        elif kind == "margin_call":
            assert ev["changes"] == [], where
        else:
            assert kind == "genesis" and ev["seq"] == 1, f"{where}: unexpected kind"
        if kind != "liquidation":
            assert not pending, f"{where}: liquidation events without their flows event"
        for c in ev["changes"]:
            if c["t"] == "system":
                system[c["name"]] = c["value"]
            elif c["t"] in ("balances", "positions"):
                rows = balances if c["t"] == "balances" else positions
                row = (c["account_id"], c["asset"] if c["t"] == "balances" else c["market"])
                if c.get("delete"):
                    rows.pop(row, None)
                else:
                    rows[row] = c["qty"]
    assert not pending, "liquidation events without their flows event at the end"
    return batches, liquidations, worst


def retry_unknown(client: Client, engine: sa.engine.Engine, r: Request) -> str:
    """Retry a request whose outcome is unknown with the same key and body, after a restart:
    the stored event if the killed server had committed it, a fresh apply (or a refusal) if it
    had not - never a second event."""
    if r.kind == "prices":
        return "prices"  # not idempotent: the restart's push already sent the current prices
    before = stored_events(engine, [r.event_key])[r.event_key]
    answer = client.post(r)
    replayed = answer.headers.get("Idempotent-Replayed") == "true"
    if answer.status_code == 422:
        assert not before, f"{r.event_key}: stored {before}, yet refused on the retry"
        r.outcome, r.status = "refused", 422  # and checked to stay unwritten at the end
        return "refused"
    assert 200 <= answer.status_code < 300, (r.body, answer.status_code, answer.text)
    body = answer.json()
    if before:
        (seq, result), *_ = before
        assert replayed, f"{r.event_key}: stored as event {seq} but applied again"
        assert body == {"seq": seq, **result}, f"{r.event_key}: replay differs from the event"
    else:
        assert not replayed, f"{r.event_key}: replayed but not in the database before"
    # from now on an acknowledged request like any other (its replays are checked at the end)
    r.outcome, r.status, r.response, r.replayed = "acked", answer.status_code, body, False
    return "replayed" if replayed else "applied"


def run_crash_test(
    workdir: Path, seed: int, kills: int, say: Callable[[str], None]
) -> dict[str, Any]:
    """The stream with ``kills`` SIGKILLs and the checks (see the module docstring); returns
    and prints the counts."""
    rng = random.Random(seed)
    book = workdir / "book.yaml"
    book.write_text(demo_book_text(), encoding="utf-8")
    url = db.default_url(workdir / "crash.db")
    engine = db.connect(url)
    db.upgrade(engine)  # the keys exist before the first start; the server writes the genesis
    keys = {name: create_key(engine, name, name) for name in ("admin", "auditor", "oracle")}
    for account in OWNED:
        keys[f"owner-{account}"] = create_key(engine, f"owner-{account}", "owner", account)
    server = Server(workdir, book, url)
    client = Client(keys)
    stream = Stream(rng)
    requests: list[Request] = []
    retried = {"replayed": 0, "applied": 0, "refused": 0, "prices": 0}
    started = time.monotonic()
    counts: dict[str, Any] = {"seed": seed}

    def send(request: Request) -> str:
        requests.append(request)
        return client.send(request)

    def count() -> dict[str, Any]:
        movements = [r for r in requests if r.kind != "prices"]
        counts.update(
            kills=server.kills,
            server_starts=server.starts,
            requests=len(requests),
            acknowledged=sum(r.outcome == "acked" for r in requests),
            acknowledged_movements=sum(r.outcome == "acked" for r in movements),
            refused=sum(r.outcome == "refused" for r in movements),
            unknown_retried=sum(retried.values()),
            unknown_outcomes=dict(retried),
            unknown_errors=sorted(r.error for r in requests if r.error),
            import_s=round(server.import_s, 1),
            start_s=[round(x, 1) for x in server.start_s],
            seconds=round(time.monotonic() - started, 1),
        )
        return counts

    try:
        try:
            for phase in range(kills + 1):
                client.connect(server.start())
                assert_server_equals_db(client, engine, f"restart {phase}")
                assert send(stream.push()) == "acked"  # the oracle starts halted: prices first
                for r in requests:
                    if r.outcome == "unknown" and not r.retried_as:
                        r.retried_as = retry_unknown(client, engine, r)
                        retried[r.retried_as] += 1
                done = [r for r in requests if r.outcome == "acked" and r.kind != "prices"]
                for r in rng.sample(done, min(5, len(done))):
                    replay_request(client, r)
                if phase == kills:
                    break
                kill_at = rng.randint(5, 40)
                frac = rng.uniform(*KILL_WINDOW)
                timer: threading.Timer | None = None
                for n in range(10_000):
                    request = stream.next()
                    if n == kill_at:  # SIGKILL a fraction of a request's latency after it starts
                        timer = threading.Timer(frac * client.latency_s, server.kill)
                        timer.start()
                    if send(request) == "unknown":
                        assert server.killed.is_set(), (
                            f"the server died without being killed:\n{tail(server.log or Path())}"
                        )
                        break
                assert timer is not None
                timer.join()
                server.reap()
                assert_acknowledged_stored(engine, requests)  # before the restart: on disk
            # after the last restart: a stream without a kill, then the final checks
            for _ in range(FINAL_OPS):
                assert send(stream.next()) != "unknown"
            assert_server_equals_db(client, engine, "live, end of the stream")
            for r in requests:
                if r.outcome == "acked" and r.kind != "prices":
                    replay_request(client, r)
            api_events: list[dict[str, Any]] = []
            while True:
                after = api_events[-1]["seq"] if api_events else 0
                page = client.get("/v1/events", after_seq=after, limit=1000, with_changes=True)
                if not page["events"]:
                    break
                api_events.extend(page["events"])
        finally:
            client.close()
            server.close()
        # the server is gone: the database alone
        events = Ledger(engine).events()
        counts["events"] = len(events)
        # /v1/events is the table (the sweep may have journaled more before the final kill)
        assert api_events and api_events == events[: len(api_events)]
        assert_acknowledged_stored(engine, requests)
        assert all(r.outcome != "unknown" for r in requests if r.kind != "prices")
        assert len({e["key"] for e in events}) == len(events)
        state = read_state(engine)
        replayed = replay_changes(events)
        for table in db.LEDGER_TABLES:
            assert replayed[table] == state[table], f"{table}: replay of the ledger != the state"
        by_key = {r.event_key: r for r in requests if r.kind != "prices"}
        batches, liquidations, worst = check_ledger(events, by_key)
        counts.update(
            liquidation_batches=batches,
            liquidation_events=liquidations,
            margin_calls=sum(e["kind"] == "margin_call" for e in events),
            worst_relative_residual=worst,
        )
        assert server.kills == kills and server.starts == kills + 1
        assert batches > 0, "no liquidation happened"
    except AssertionError as exc:
        raise AssertionError(f"{exc}\ncrash test counts: {json.dumps(count())}") from exc
    say(f"crash test: {json.dumps(count())}")
    return counts


def test_kill_9_during_a_stream_loses_nothing_and_applies_nothing_twice(tmp_path: Path) -> None:
    run_crash_test(tmp_path, SEED, kills=3, say=print)


@pytest.mark.slow
def test_twenty_kills(tmp_path: Path) -> None:
    run_crash_test(tmp_path, SEED + 1, kills=20, say=print)


def test_a_retry_racing_its_original_is_applied_once(tmp_path: Path) -> None:
    """A client that timed out retries while its original request still waits for the single
    writer (behind a re-margin or a liquidation). When the key was looked up before the lock,
    both passed (nothing committed yet); the second then computed the deposit again on the rows
    the first changed and was answered as a replay, but memory kept the second deposit (82,000
    USDC against 81,000 in the database). Now the second finds the first's event under the lock:
    one deposit, in memory and in the database."""
    engine = db.connect(db.default_url(tmp_path / "race.db"))
    db.upgrade(engine)
    MarginCore.initialize(engine, load_demo_book())
    core = MarginCore(engine)
    now = time.time()
    prices = {a: x.price for a, x in load_demo_book().assets.items()}
    core.ingest([Tick(a, f"src{k}", v, v * 1e-4, now) for a, v in prices.items() for k in (1, 2)])
    body = {"asset": "USDC", "qty": 1000.0}
    answers: list[Any] = []

    def deposit() -> None:
        answers.append(core.movement("deposit", "basis-trader", "owner-basis-trader:k1", body))

    threads = [threading.Thread(target=deposit) for _ in range(2)]
    with core.lock:  # the writer is busy: both requests arrive and queue behind it
        for thread in threads:
            thread.start()
        time.sleep(0.5)
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(a.replayed for a in answers) == [False, True]
    assert answers[0].seq == answers[1].seq
    i = core.work.index["basis-trader"]
    rows = {(r["account_id"], r["asset"]): r["qty"] for r in read_state(engine)["balances"]}
    assert rows["basis-trader", "USDC"] == 81_000.0  # one event, one deposit in the database
    assert core.work.account_model(i).balances["USDC"] == 81_000.0  # was 82,000 in memory
