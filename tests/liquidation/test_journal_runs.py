"""Journal runs: idempotency keys, JSONL framing, race-free SQL schema, destination checks,
and (slow suite) kill -9 of a writer: all or nothing, and a rerun leaves exactly one copy."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import uuid
import warnings
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import crossmargin.liquidation.journal as journal_module
from crossmargin.book.io import demo_book_text, load_book
from crossmargin.cli import app
from crossmargin.errors import InputError
from crossmargin.liquidation import (
    JsonlJournal,
    LiquidationConfig,
    LiquidationEngine,
    LiquidationEvent,
    LiquidationResult,
    SqlJournal,
    UncommittedRunWarning,
    liquidation_key,
    open_journal,
    read_jsonl,
    write_jsonl,
)

DEMO = files("crossmargin") / "examples" / "demo_book.yaml"
SHOCKS = {"BTC": -0.2, "ETH": -0.2, "SOL": -0.2}
CRASH_ARGS = ["--shock", "BTC=-20%", "--shock", "ETH=-20%", "--shock", "SOL=-20%"]
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
runner = CliRunner()


@pytest.fixture(scope="module")
def crash() -> LiquidationResult:
    book = load_book(str(DEMO))
    return LiquidationEngine(book, LiquidationConfig(), shocks=SHOCKS).liquidate()


def _postgres_reachable() -> bool:
    try:
        import psycopg

        with psycopg.connect(
            "host=127.0.0.1 port=5432 dbname=test user=postgres", connect_timeout=2
        ):
            return True
    except Exception:
        return False


needs_postgres = pytest.mark.skipif(
    not _postgres_reachable(), reason="PostgreSQL is not reachable on 127.0.0.1:5432 (db 'test')"
)


@pytest.fixture
def pg_journal() -> Iterator[SqlJournal]:
    """A PostgreSQL journal under a table prefix of its own, dropped afterwards."""
    journal = SqlJournal(PG_URL, prefix=f"cmtest_{uuid.uuid4().hex[:8]}_")
    try:
        yield journal
    finally:
        journal.drop()
        journal.close()


def _read_quietly(path: Path) -> tuple[list[LiquidationEvent], list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UncommittedRunWarning)
        events = read_jsonl(path)
    return events, [str(w.message) for w in caught if w.category is UncommittedRunWarning]


# -- keys ---------------------------------------------------------------------------------------


def test_the_key_is_the_book_content_and_every_parameter(tmp_path: Path) -> None:
    book = load_book(str(DEMO))
    config = LiquidationConfig.preset("drift")
    key = liquidation_key(book, config, shocks=SHOCKS)
    assert len(key) == 64 and int(key, 16) >= 0
    # the same content under another name, with comments and different layout: the same key
    other = tmp_path / "renamed.yaml"
    other.write_text("# a comment\n" + demo_book_text().replace("{BTC: 40.0,", "{BTC: 40,"))
    assert liquidation_key(load_book(other), config, shocks=dict(SHOCKS)) == key
    assert liquidation_key(book, config, shocks={"SOL": -0.2, "ETH": -0.2, "BTC": -0.2}) == key
    different = [
        liquidation_key(book, LiquidationConfig.preset("generic"), shocks=SHOCKS),
        liquidation_key(book, LiquidationConfig.preset("drift", insurance_fund_usd=1.0)),
        liquidation_key(book, config, shocks={**SHOCKS, "BTC": -0.21}),
        liquidation_key(book, config, shocks=SHOCKS, prices={"ETH": 2500.0}),
        liquidation_key(book, config, shocks=SHOCKS, accounts=["eth-levered"]),
        liquidation_key(book.model_copy(update={"accounts": book.accounts[1:]}), config),
    ]
    assert len({key, *different}) == len(different) + 1


# -- JSONL --------------------------------------------------------------------------------------


def test_jsonl_rerun_is_a_no_op(crash: LiquidationResult, tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal = open_journal(str(path))
    assert isinstance(journal, JsonlJournal)
    first = journal.record(crash.events, name="demo", key="k1" * 32)
    again = journal.record(crash.events, name="demo", key="k1" * 32)
    assert first.appended and not again.appended and again.run == first.run
    other = journal.record(crash.events[:2], name="demo", key="k2" * 32)
    assert other.appended and other.run.run_id != first.run.run_id
    assert [r.run_id for r in journal.runs()] == [first.run.run_id, other.run.run_id]
    assert read_jsonl(path) == crash.events + crash.events[:2]
    assert journal.read(first.run.run_id) == crash.events
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["record"] == "begin" and lines[0]["key"] == "k1" * 32
    assert lines[len(crash.events) + 1] == {
        "record": "commit",
        "run": first.run.run_id,
        "key": "k1" * 32,
        "count": len(crash.events),
    }
    # without a key the run's key is its name and events: the library call is idempotent too
    assert write_jsonl(crash.events, tmp_path / "w.jsonl") == len(crash.events)
    assert write_jsonl(crash.events, tmp_path / "w.jsonl") == 0
    assert write_jsonl(crash.events, tmp_path / "w.jsonl", name="other") == len(crash.events)


def test_jsonl_every_truncation_reads_all_or_nothing(
    crash: LiquidationResult, tmp_path: Path
) -> None:
    """A kill can leave any byte prefix: the reader sees whole runs only, reports the tail,
    and the next writer drops the tail and leaves exactly one copy of each run."""
    path = tmp_path / "j.jsonl"
    a_events, b_events = crash.events[:3], crash.events
    write_jsonl(a_events, path, name="a")
    end_a = path.stat().st_size
    write_jsonl(b_events, path, name="b")
    full = path.read_bytes()
    cuts = sorted({*range(end_a, len(full), 101), *range(len(full) - 120, len(full) + 1)})
    for cut in cuts:
        path.write_bytes(full[:cut])
        events, reported = _read_quietly(path)
        committed = cut >= len(full) - 1  # the commit line is complete (newline or not)
        assert events == (a_events + b_events if committed else a_events), cut
        assert bool(reported) == (not committed and cut != end_a), cut
        assert write_jsonl(b_events, path, name="b") == (0 if committed else len(b_events))
        events, reported = _read_quietly(path)
        assert events == a_events + b_events and not reported, cut
        assert len(path.read_bytes().splitlines()) == len(full.splitlines()), cut


def test_jsonl_reads_legacy_unframed_lines(crash: LiquidationResult, tmp_path: Path) -> None:
    path = tmp_path / "old.jsonl"
    path.write_text("".join(json.dumps(e.to_dict()) + "\n" for e in crash.events))
    assert read_jsonl(path) == crash.events
    write_jsonl(crash.events[:1], path, name="new")
    assert read_jsonl(path) == crash.events + crash.events[:1]
    assert JsonlJournal(path).read("new") == crash.events[:1]


def test_jsonl_corruption_is_an_error_but_a_bad_commit_is_ignored(
    crash: LiquidationResult, tmp_path: Path
) -> None:
    path = tmp_path / "j.jsonl"
    write_jsonl(crash.events[:2], path, name="a")
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0] + "garbage\n" + "".join(lines[2:]))
    with pytest.raises(InputError, match=r"j\.jsonl:2"):
        read_jsonl(path)
    not_a_journal = tmp_path / "notes.txt"
    not_a_journal.write_text("hello\n")
    with pytest.raises(InputError, match=r"notes\.txt:1"):  # checked before any work
        open_journal(str(not_a_journal))
    commit = json.loads(lines[-1])
    path.write_text("".join(lines[:-1]) + json.dumps({**commit, "count": 5}) + "\n")
    events, reported = _read_quietly(path)
    assert events == [] and "does not match its begin" in reported[0]


# -- SQL ----------------------------------------------------------------------------------------


def _check_sql_journal(journal: SqlJournal, crash: LiquidationResult) -> None:
    name = "a-book-file-whose-stem-is-much-longer-than-sixty-four-characters-" * 4
    first = journal.record(crash.events, name=name, key="a" * 64)
    again = journal.record(crash.events, name=name, key="a" * 64)
    assert first.appended and not again.appended and again.run.run_id == first.run.run_id
    assert journal.append(crash.events[:1], run="other") == 1
    assert journal.append(crash.events[:1], run="other") == 0
    assert journal.read(name) == crash.events == journal.read(first.run.run_id)
    assert journal.read("other") == crash.events[:1]
    assert len(journal.read()) == len(crash.events) + 1
    runs = journal.runs()
    assert len(runs) == 2 and {r.count for r in runs} == {len(crash.events), 1}
    with journal.engine.connect() as connection:
        rows = connection.execute(journal.runs_table.select()).mappings().all()
    assert all(row["committed"] for row in rows) and len(rows) == 2


def test_sqlite_runs_table_and_idempotency(crash: LiquidationResult, tmp_path: Path) -> None:
    journal = SqlJournal(f"sqlite:///{tmp_path / 'j.db'}")
    _check_sql_journal(journal, crash)
    journal.close()


@needs_postgres
def test_postgresql_runs_table_long_names_and_idempotency(
    crash: LiquidationResult, pg_journal: SqlJournal
) -> None:
    _check_sql_journal(pg_journal, crash)


# -- concurrent writers (child processes) -------------------------------------------------------

#: loads journal.py (and errors.py) without the package __init__s, which import numba and
#: scipy: a child starts in a fraction of a second, so kills and races hit the writes
_CHILD = textwrap.dedent(
    """
    import sys, time, types
    for name, path in (("crossmargin", SRC), ("crossmargin.liquidation", SRC + "/liquidation")):
        module = types.ModuleType(name)
        module.__path__ = [path]
        sys.modules[name] = module
    from crossmargin.liquidation.journal import (
        LiquidationEvent, RowChange, SqlJournal, JsonlJournal
    )

    dest, name, count, wait = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    prefix = sys.argv[5] if len(sys.argv) > 5 else ""
    events = [
        LiquidationEvent(
            seq=i, account=f"acct-{i % 97}", bucket="cross", kind="reduce",
            instrument="ETH-PERP", reason="maint health < 0: reduce the largest position",
            paid_with="USDC", qty=0.5 + i, price_usd=2500.0 - i / 7, reference_usd=2501.0,
            changes=(
                RowChange(f"acct-{i % 97}", "cross", "position", "ETH-PERP", -i / 3.0),
                RowChange(f"acct-{i % 97}", "cross", "balance", "USDC", 1000.0 + i),
            ),
        )
        for i in range(count)
    ]
    journal = SqlJournal(dest, prefix=prefix) if "://" in dest else JsonlJournal(dest)
    print("ready", flush=True)
    if wait == "wait":
        sys.stdin.readline()
    started = time.perf_counter()
    recorded = journal.record(events, name=name)
    elapsed = time.perf_counter() - started
    print("committed" if recorded.appended else "exists", elapsed, flush=True)
    if wait == "wait":
        time.sleep(5.0)  # "printing the output": a kill now comes after the commit
    """
)


def _child(
    tmp_path: Path, dest: str, name: str, count: int, wait: bool, prefix: str = ""
) -> subprocess.Popen[str]:
    script = tmp_path / "writer.py"
    if not script.exists():
        src = str(Path(journal_module.__file__).resolve().parents[1])
        script.write_text(f"SRC = {src!r}\n" + _CHILD)
    args = [sys.executable, str(script), dest, name, str(count), "wait" if wait else "go"]
    return subprocess.Popen(
        [*args, *([prefix] if prefix else [])],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _reader(dest: str, prefix: str = "") -> Any:
    return SqlJournal(dest, prefix=prefix) if "://" in dest else JsonlJournal(dest)


def _race(tmp_path: Path, dest: str, names: list[str], prefix: str = "") -> list[str]:
    """Start one writer per name, release them together; their last output lines."""
    children = [_child(tmp_path, dest, name, 200, True, prefix) for name in names]
    for child in children:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    outcomes = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        outcomes.append(out.split()[0])
    return outcomes


@pytest.mark.parametrize("backend", ["jsonl", "sqlite", "postgresql"])
@pytest.mark.parametrize("rounds", [1, pytest.param(10, marks=pytest.mark.slow)])
def test_three_writers_creating_a_fresh_journal_lose_nothing(
    backend: str, rounds: int, tmp_path: Path
) -> None:
    """Three processes create a fresh journal at once, two of them writing the same run: both
    runs land, the duplicate once (one round by default, ten in the slow suite)."""
    if backend == "postgresql" and not _postgres_reachable():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432 (db 'test')")
    for attempt in range(rounds):
        prefix = f"cmtest_{uuid.uuid4().hex[:8]}_" if backend == "postgresql" else ""
        dest = {
            "jsonl": str(tmp_path / f"race{attempt}.jsonl"),
            "sqlite": f"sqlite:///{tmp_path / f'race{attempt}.db'}",
            "postgresql": PG_URL,
        }[backend]
        try:
            outcomes = _race(tmp_path, dest, ["other", "same", "same"], prefix)
            assert outcomes[0] == "committed"
            assert sorted(outcomes[1:]) == ["committed", "exists"]
            journal = _reader(dest, prefix)
            try:
                assert sorted(r.name for r in journal.runs()) == ["other", "same"]
                assert len(journal.read()) == 2 * 200
            finally:
                journal.close()
        finally:
            if backend == "postgresql":
                journal = SqlJournal(dest, prefix=prefix)
                journal.drop()
                journal.close()


def _wait_for_bytes(path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if path.stat().st_size > 0:
                return
        time.sleep(0.0002)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jsonl", "sqlite"])
def test_journal_survives_kill_9_at_random_moments(backend: str, tmp_path: Path) -> None:
    """A writer of a 10,000-event run is killed at a random moment of its write (or just
    after the commit, while it "prints"): the journal holds nothing or the whole run, never
    part of it; a rerun leaves exactly one copy; SQLite's integrity check passes.

    The rounds rotate three kill moments: uniform over 1.2 times the write's duration
    measured by a first, uninterrupted writer; as soon as the writer's bytes appear (the JSONL
    file grows, SQLite's rollback journal exists) plus, for SQLite, a uniform delay over half
    the write; after the commit, while the writer "prints" (the crash that made users rerun
    and store a second copy). The seed is printed (set JOURNAL_KILL_SEED to replay it)."""
    count, rounds = 10_000, 12
    seed = int(os.environ.get("JOURNAL_KILL_SEED", random.SystemRandom().randrange(10**6)))
    rng = random.Random(seed)

    def destination(stem: str) -> tuple[Path, str]:
        path = tmp_path / (f"{stem}.jsonl" if backend == "jsonl" else f"{stem}.db")
        return path, str(path) if backend == "jsonl" else f"sqlite:///{path}"

    _, dest = destination("calibration")
    out, err = _child(tmp_path, dest, "run", count, False).communicate(timeout=300)
    write_seconds = float(out.split()[-1])
    outcomes = {"nothing": 0, "torn (ignored)": 0, "whole": 0}
    for n in range(rounds):
        where = f"seed {seed} round {n}"
        path, dest = destination(f"kill{n}")
        child = _child(tmp_path, dest, "run", count, True)
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "ready", child.stderr
        child.stdin.write("go\n")
        child.stdin.flush()
        if n % 3 == 0:
            time.sleep(rng.uniform(0.0, 1.2 * write_seconds))
        elif n % 3 == 1:
            _wait_for_bytes(path if backend == "jsonl" else Path(f"{path}-journal"))
            if backend == "sqlite":
                time.sleep(rng.uniform(0.0, 0.5 * write_seconds))
        else:
            assert child.stdout.readline().startswith("committed"), where
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=60)
        assert child.returncode == -signal.SIGKILL, f"{where}: the writer ended first"
        hot = Path(f"{path}-journal")  # SQLite's rollback journal of an unfinished transaction
        torn = hot.exists() and hot.stat().st_size > 0
        journal = _reader(dest)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UncommittedRunWarning)
            events = journal.read()
        torn = torn or bool(caught)
        assert len(events) in (0, count), f"{where}: {len(events)} events"
        assert len(events) == count or n % 3 != 2, where
        outcomes["whole" if events else "torn (ignored)" if torn else "nothing"] += 1
        if backend == "sqlite":
            with journal.engine.connect() as connection:
                check = connection.exec_driver_sql("PRAGMA integrity_check").scalar()
            assert check == "ok", where
        journal.close()
        out, err = _child(tmp_path, dest, "run", count, False).communicate(timeout=300)
        assert out.split()[-2] == ("exists" if events else "committed"), err
        journal = _reader(dest)
        runs = journal.runs()
        assert len(runs) == 1 and runs[0].count == count, where
        if backend == "jsonl":
            contents = journal.contents()
            assert contents.uncommitted == [] and len(contents.events) == count, where
        else:
            assert len(journal.read()) == count, where
        journal.close()
    print(f"kill -9 ({backend}, seed {seed}, write {write_seconds:.2f} s): {outcomes}")


# -- the command line ---------------------------------------------------------------------------


def _liquidate(book: Path | str, journal: str, *extra: str) -> Any:
    return runner.invoke(app, ["liquidate", str(book), *CRASH_ARGS, "--journal", journal, *extra])


@pytest.mark.parametrize("backend", ["jsonl", "sqlite"])
def test_cli_rerun_is_already_journaled(backend: str, tmp_path: Path) -> None:
    dest = str(tmp_path / "j.jsonl") if backend == "jsonl" else f"sqlite:///{tmp_path / 'j.db'}"
    first = _liquidate(DEMO, dest, "--json")
    assert first.exit_code == 0, first.output
    recorded = json.loads(first.stdout)["journal"]
    assert recorded["appended"] is True and recorded["name"] == "demo_book"
    again = _liquidate(DEMO, dest)
    assert again.exit_code == 0, again.output
    assert f"already journaled as run {recorded['run_id']}" in again.stdout
    assert "Liquidation steps" in again.stdout  # the result is still shown
    as_json = _liquidate(DEMO, dest, "--json")
    assert as_json.exit_code == 0 and json.loads(as_json.stdout)["journal"]["appended"] is False
    assert "already journaled" in as_json.stderr
    other = _liquidate(DEMO, dest, "--policy", "drift")
    assert other.exit_code == 0 and "recorded" in other.stdout
    journal = _reader(dest)
    assert len(journal.runs()) == 2
    assert len(journal.read(recorded["run_id"])) == recorded["count"] > 0
    journal.close()


@pytest.mark.parametrize(
    ("destination", "message"),
    [
        ("/nonexistent/dir/j.jsonl", "directory /nonexistent/dir does not exist"),
        ("sqlite:////nonexistent/x.db", "directory /nonexistent does not exist"),
        ("nosuchdb://host/x", "unknown database dialect 'nosuchdb'"),
        ("postgresql+psycopg://postgres@127.0.0.1:1/test", "127.0.0.1"),
        ("not a url://", "not a SQLAlchemy URL"),
        ("", "empty destination"),
        ("sqlite://", "in-memory SQLite"),
    ],
)
def test_cli_destination_errors_come_before_the_work(
    destination: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_work(*args: object, **kwargs: object) -> None:
        raise AssertionError("the liquidation ran before the journal was checked")

    monkeypatch.setattr(LiquidationEngine, "liquidate", no_work)
    result = _liquidate(DEMO, destination)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert result.output.startswith("error: --journal") and result.output.count("\n") == 1


def test_cli_journal_directory_is_an_error(tmp_path: Path) -> None:
    result = _liquidate(DEMO, str(tmp_path))
    assert result.exit_code == 2 and "is a directory" in result.output


@needs_postgres
def test_cli_postgresql_long_file_stem(tmp_path: Path) -> None:
    """A book whose file-name stem is longer than 64 characters journals on PostgreSQL (it
    failed with `value too long for type character varying(64)`); a rerun is a no-op."""
    tag = uuid.uuid4().hex[:12]
    book = tmp_path / (f"a-very-long-portfolio-file-name-{tag}-" + "x" * 80 + ".yaml")
    book.write_text(demo_book_text() + f"\n  - id: probe-{tag}\n")  # unique content: own key
    first = _liquidate(book, PG_URL, "--json")
    assert first.exit_code == 0, first.output
    recorded = json.loads(first.stdout)["journal"]
    journal = SqlJournal(PG_URL)
    try:
        assert recorded["name"] == book.stem and len(book.stem) > 64
        again = _liquidate(book, PG_URL)
        assert again.exit_code == 0 and "already journaled" in again.stdout
        assert len(journal.read(recorded["run_id"])) == recorded["count"]
    finally:
        with journal.engine.begin() as connection:
            connection.execute(
                journal.table.delete().where(journal.table.c.run_id == recorded["run_id"])
            )
            connection.execute(
                journal.runs_table.delete().where(journal.runs_table.c.run_id == recorded["run_id"])
            )
        journal.close()
