"""The database layer: migrations, WAL, bad URLs, PostgreSQL (skipped cleanly without it)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
import sqlalchemy as sa

from crossmargin.book import load_demo_book
from crossmargin.errors import InputError
from crossmargin.service import db
from crossmargin.service.config import ServiceConfig
from crossmargin.service.core import MarginCore
from crossmargin.service.ledger import read_state, replay_changes
from tests.service.conftest import book_prices, fresh_postgres, postgres_available, ticks_at


def test_migration_matches_the_tables_the_code_uses(engine: sa.engine.Engine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), db.metadata)
    assert diff == []
    assert db.current_revision(engine) == "0001"
    db.upgrade(engine)  # idempotent
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def _upgrade(url: str) -> None:
    db.upgrade(db.connect(url))


def test_concurrent_first_upgrades_do_not_race(tmp_path: Path) -> None:
    """Three processes creating a fresh database at once: the write lock serializes them."""
    url = db.default_url(tmp_path / "race.db")
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_upgrade, args=(url,)) for _ in range(3)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert db.current_revision(db.connect(url)) == "0001"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("sqlite:////nonexistent/dir/x.db", "does not exist"),
        ("mysql://u@h/d", "only sqlite and postgresql"),
        ("not a url", "not a database URL"),
        ("postgresql+psycopg://nobody@127.0.0.1:1/none", "cannot connect"),
    ],
)
def test_bad_database_urls_are_one_line_errors(url: str, reason: str) -> None:
    with pytest.raises(InputError, match=reason) as error:
        db.connect(url)
    assert "\n" not in str(error.value)


def run_ledger_round_trip(engine: sa.engine.Engine) -> None:
    MarginCore.initialize(engine, load_demo_book(), ServiceConfig())
    core = MarginCore(engine)
    core.ingest(ticks_at(book_prices()))
    core.movement("deposit", "eth-levered", "a", {"asset": "USDC", "qty": 123.25})
    core.movement("trade", "basis-trader", "b", {"market": "BTC-PERP", "qty": -0.5})
    core.ingest(ticks_at({**book_prices(), "ETH": 3040 * 0.8, "SOL": 142.5 * 0.8}))
    events = core.ledger.events(limit=None)
    assert {"genesis", "deposit", "trade", "liquidation"} <= {e["kind"] for e in events}
    assert replay_changes(events) == read_state(engine)
    again = MarginCore(engine)
    for account_id, i in core.work.index.items():
        assert again.work.account_model(again.work.index[account_id]) == core.work.account_model(i)


def test_ledger_round_trip_on_sqlite(engine: sa.engine.Engine) -> None:
    run_ledger_round_trip(engine)


@pytest.mark.skipif(not postgres_available(), reason="PostgreSQL at 127.0.0.1:5432 not reachable")
def test_ledger_round_trip_on_postgresql() -> None:
    engine = fresh_postgres()
    db.upgrade(engine)
    assert db.current_revision(engine) == "0001"
    run_ledger_round_trip(engine)
