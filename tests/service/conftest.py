"""Fixtures of the service tests: a migrated database, a core on the demo book, an API client
with one key per role, and prices pushed by two oracle sources (healthy state)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from crossmargin.book import load_demo_book
from crossmargin.service import db
from crossmargin.service.auth import create_key
from crossmargin.service.config import ServiceConfig
from crossmargin.service.core import MarginCore
from crossmargin.service.ticks import Tick

PG_URL = os.environ.get("CROSSMARGIN_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def postgres_available() -> bool:
    try:
        engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 2})
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


def fresh_postgres() -> sa.engine.Engine:
    """The test database emptied of the service's tables (it is a shared scratch database)."""
    engine = db.connect(PG_URL)
    with engine.begin() as connection:
        for table in (*db.metadata.sorted_tables, "alembic_version"):
            name = table if isinstance(table, str) else table.name
            connection.execute(sa.text(f'DROP TABLE IF EXISTS "{name}" CASCADE'))
    return engine


def book_prices() -> dict[str, float]:
    return {s: a.price for s, a in load_demo_book().assets.items()}


def ticks_at(prices: dict[str, float], now: float | None = None, sources: int = 2) -> list[Tick]:
    """Quotes from ``sources`` agreeing sources (enough for a healthy oracle state)."""
    stamp = time.time() if now is None else now
    return [
        Tick(asset, f"src{k}", price, price * 1e-4, stamp)
        for asset, price in prices.items()
        for k in range(sources)
    ]


@pytest.fixture
def engine(tmp_path: Path) -> sa.engine.Engine:
    engine = db.connect(db.default_url(tmp_path / "service.db"))
    db.upgrade(engine)
    return engine


@pytest.fixture
def core(engine: sa.engine.Engine) -> MarginCore:
    MarginCore.initialize(engine, load_demo_book(), ServiceConfig())
    core = MarginCore(engine, ServiceConfig())
    core.ingest(ticks_at(book_prices()))
    return core


@dataclass
class Keys:
    admin: str
    oracle: str
    auditor: str
    alice: str  # owns eth-levered and sol-degen
    bob: str  # owns basis-trader


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[object, Keys, MarginCore]]:
    from fastapi.testclient import TestClient

    from crossmargin.service.api import create_app

    engine = db.connect(db.default_url(tmp_path / "api.db"))
    db.upgrade(engine)
    owners = {"eth-levered": "alice", "sol-degen": "alice", "basis-trader": "bob"}
    MarginCore.initialize(engine, load_demo_book(), ServiceConfig(auto_liquidate=False), owners)
    core = MarginCore(engine, ServiceConfig(auto_liquidate=False))
    keys = Keys(
        admin=create_key(engine, "admin", "admin"),
        oracle=create_key(engine, "oracle", "oracle"),
        auditor=create_key(engine, "auditor", "auditor"),
        alice=create_key(engine, "alice", "owner", "alice"),
        bob=create_key(engine, "bob", "owner", "bob"),
    )
    core.ingest(ticks_at(book_prices()))
    app = create_app(core, sweep_s=3600, persist_s=3600)
    with TestClient(app) as client:
        yield client, keys, core
