"""The service's database: tables, connection and migrations (SQLAlchemy 2 Core + Alembic).

State tables (assets, markets, accounts, balances, positions, system, prices) hold the current
state; ``events`` is the append-only ledger: every change of state is one event row written in
the same transaction as the rows it changes, with the new value of every row it touched, so
that replaying the events from an empty database rebuilds the state tables exactly.

The embedded default is a SQLite file in WAL mode with ``synchronous=NORMAL``: a committed
transaction survives the death of the process (it may be lost only on power loss, SQLite's
documented WAL trade-off); PostgreSQL by URL (``postgresql+psycopg://user@host/db``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from crossmargin.errors import InputError

NAME_LEN = 128  # ids, symbols, owners: enforced by the API's validators as well
KEY_LEN = 200  # idempotency keys (with the caller's scope prefix)

metadata = sa.MetaData()
Float = sa.Float(precision=53)  # float64 on every dialect (PostgreSQL: double precision)

assets = sa.Table(
    "assets",
    metadata,
    sa.Column("symbol", sa.String(NAME_LEN), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("params", sa.Text, nullable=False),  # JSON of crossmargin.book.Asset
)
markets = sa.Table(
    "markets",
    metadata,
    sa.Column("symbol", sa.String(NAME_LEN), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("params", sa.Text, nullable=False),  # JSON of a crossmargin.book market
)
accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", sa.String(NAME_LEN), primary_key=True),
    sa.Column("owner", sa.String(NAME_LEN), nullable=False, index=True),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("profile", sa.String(32), nullable=True),
)
balances = sa.Table(
    "balances",
    metadata,
    sa.Column("account_id", sa.String(NAME_LEN), primary_key=True),
    sa.Column("asset", sa.String(NAME_LEN), primary_key=True),
    sa.Column("qty", Float, nullable=False),
)
positions = sa.Table(
    "positions",
    metadata,
    sa.Column("account_id", sa.String(NAME_LEN), primary_key=True),
    sa.Column("market", sa.String(NAME_LEN), primary_key=True),
    sa.Column("qty", Float, nullable=False),
    sa.Column("entry_price", Float, nullable=False),
    sa.Column("funding", Float, nullable=False),
    sa.Column("isolated_collateral", sa.Text, nullable=False),  # JSON {asset: qty}
)
system = sa.Table(
    "system",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", Float, nullable=False),
)
settings = sa.Table(
    "settings",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
prices = sa.Table(
    "prices",
    metadata,
    sa.Column("asset", sa.String(NAME_LEN), primary_key=True),
    sa.Column("price_usd", Float, nullable=False),
    sa.Column("updated_s", Float, nullable=False),
)
events = sa.Table(
    "events",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("key", sa.String(KEY_LEN), nullable=False, unique=True),
    sa.Column("kind", sa.String(32), nullable=False, index=True),
    sa.Column("account_id", sa.String(NAME_LEN), nullable=True, index=True),
    sa.Column("body_hash", sa.String(64), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("changes", sa.Text, nullable=False),
    sa.Column("result", sa.Text, nullable=False),
    sa.Column("created_s", Float, nullable=False),
)
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_hash", sa.String(64), primary_key=True),  # sha256 hex of the key
    sa.Column("name", sa.String(NAME_LEN), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("owner", sa.String(NAME_LEN), nullable=True),
    sa.Column("created_s", Float, nullable=False),
)

#: the tables whose rows the event log rebuilds (api keys and prices are not ledger state)
LEDGER_TABLES = ("assets", "markets", "accounts", "balances", "positions", "system", "settings")


def default_url(path: str | Path = "crossmargin.db") -> str:
    return f"sqlite:///{Path(path)}"


def connect(url: str) -> Engine:
    """An engine for ``url`` (SQLite in WAL mode, or PostgreSQL); a bad URL is an InputError.

    The URL is checked before any work: an unknown dialect, a missing driver, a SQLite file in a
    directory that does not exist or an unreachable server each give a one-line error.
    """
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise InputError("--db", url, "not a database URL (e.g. sqlite:///x.db)") from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise InputError("--db", url, "only sqlite and postgresql are supported")
    kwargs: dict[str, Any] = {}
    if backend == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not Path(database).parent.exists():
            raise InputError("--db", url, f"directory {Path(database).parent} does not exist")
        # one engine is shared by the API threads; the service's single writer serializes writes
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30.0}
        if not database or database == ":memory:":
            kwargs["poolclass"] = sa.pool.StaticPool
    try:
        engine = sa.create_engine(url, **kwargs)
    except (ImportError, sa.exc.ArgumentError) as exc:
        raise InputError("--db", url, f"cannot use this database: {exc}") from None
    if backend == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        message = str(exc.orig).strip().splitlines()[0] if exc.orig else "unreachable"
        raise InputError("--db", url, f"cannot connect: {message}") from None
    return engine


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    config.attributes["connection_engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` with Alembic (idempotent; safe to run at every start).

    Concurrent upgraders are serialized: PostgreSQL by an advisory lock, SQLite by taking its
    write lock first, so two processes never race on ``CREATE TABLE``.
    """
    from alembic import command

    command.upgrade(_alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
