"""The liquidation journal: one event per step, append-only, as JSONL or in SQLite/PostgreSQL.

Each event names the account, bucket, instrument, signed quantity, prices, slippage, fees,
insurance-fund flow, health before and after and the reason; it also carries the new values of
every balance and position row it changed (``changes``), so that :func:`replay` over the
starting book reproduces the final state exactly.

**Runs.** Events are journaled a run at a time. Every run gets a unique ``run_id`` (a random
UUID, hex) and an idempotency ``key``: the SHA-256 of a canonical JSON (sorted keys, no
whitespace, shortest float repr) of what determines the liquidation - the book's content
(parsed, so comments, layout and defaults spelled out make no difference; the file name does
not count), the policy configuration, shocks, price overrides, execution model and the accounts
chosen (:func:`liquidation_key`). A journal holds at most one committed run per key:
recording a run whose key is already there appends nothing and returns the existing run
(:attr:`Recorded.appended` is false) - re-running the same liquidation after a crash that
happened once the run was committed (say, while its output was printing) is a no-op.

**JSONL framing.** A run is a ``begin`` line, its events (one JSON object per line, the same
objects as before framing) and a ``commit`` line::

    {"record": "begin", "run": "<run_id>", "key": "<sha256>", "name": "book", "created": "...",
     "format": 2}
    {"seq": 0, "account": ..., ...}
    {"record": "commit", "run": "<run_id>", "key": "<sha256>", "count": <events>}

A run counts only once its commit line is complete and matches its begin (same run id and key,
the number of events between them). A reader ignores an uncommitted tail - the events a killed
writer left after its last commit - and reports it (:attr:`JournalContents.uncommitted`, and
an :class:`UncommittedRunWarning` from :func:`read_jsonl`). The next writer, holding an
exclusive ``flock`` on the file, truncates such a tail before appending (nobody ever counted
it). Lines outside any begin/commit frame are events of a journal written before framing
(legacy, read as committed).

**SQL.** Two tables (names prefixed by ``prefix``): ``journal_runs`` (``run_id`` primary key,
``key`` unique, ``name`` TEXT, ``created``, ``event_count``, ``committed``) and
``journal_events`` (one row per event, ``run_id`` referencing the run; text columns are TEXT so
any run name, account or reason fits, e.g. on PostgreSQL). A run is inserted in one transaction
(run row, events, then ``committed`` set), so a reader never sees part of one; the unique key
makes two concurrent writers of the same run end with one copy. Schema creation is race-free:
SQLite transactions start with ``BEGIN IMMEDIATE`` (the write lock is taken before the schema
is checked), PostgreSQL takes a transaction-level advisory lock, and creation is retried when
another process created a table first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import time
import uuid
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from crossmargin.errors import InputError

if TYPE_CHECKING:
    import sqlalchemy as sa

    from crossmargin.liquidation.config import LiquidationConfig

EventKind = Literal[
    "cancel",
    "settle",
    "reduce",
    "repay",
    "insurance",
    "socialize",
    "haircut",
    "adl",
    "spiral",
    "unfilled",
    "stopped",
]

#: version of the JSONL framing written in every ``begin`` record
JOURNAL_FORMAT = 2


@dataclass(frozen=True)
class RowChange:
    """New value of one row: a balance (``field='qty'``) or a position (qty, funding)."""

    account: str
    bucket: str  # 'cross', 'free' or the isolated bucket's market
    kind: Literal["balance", "position"]
    symbol: str  # asset (balance) or market (position)
    qty: float
    funding: float = 0.0


@dataclass(frozen=True)
class LiquidationEvent:
    """One step of a liquidation (all amounts USD unless the name says otherwise)."""

    seq: int
    account: str
    bucket: str
    kind: EventKind
    instrument: str  # market closed, liability repaid, or asset affected
    reason: str
    paid_with: str = ""  # collateral sold (repay), settle asset (reduce)
    qty: float = 0.0  # signed quantity executed (> 0 sold / repaid), units of the instrument
    qty_requested: float = 0.0
    price_usd: float = 0.0  # average execution price
    reference_usd: float = 0.0  # oracle / mark
    slippage_usd: float = 0.0
    liquidator_fee_usd: float = 0.0
    insurance_fee_usd: float = 0.0
    insurance_flow_usd: float = 0.0  # + into the fund, - paid out
    socialized_usd: float = 0.0
    maint_health_before_usd: float = 0.0
    maint_health_after_usd: float = 0.0
    target_health_before_usd: float = 0.0
    target_health_after_usd: float = 0.0
    changes: tuple[RowChange, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict (what ``dataclasses.asdict`` gives, many times faster)."""
        data = dict(self.__dict__)
        data["changes"] = tuple(dict(change.__dict__) for change in self.changes)
        return data

    @staticmethod
    def from_dict(data: dict[str, Any]) -> LiquidationEvent:
        changes = tuple(RowChange(**c) for c in data.get("changes", ()))
        return LiquidationEvent(**{**data, "changes": changes})


# -- runs and idempotency keys ------------------------------------------------------------------


@dataclass(frozen=True)
class JournalRun:
    """A committed run: its id, idempotency key, name (the book's file stem), creation time
    (ISO 8601, UTC) and number of events."""

    run_id: str
    key: str
    name: str
    created: str
    count: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Recorded:
    """What :meth:`record` did: ``appended`` false means the key was already journaled as
    ``run`` and nothing was written."""

    run: JournalRun
    appended: bool

    def to_dict(self) -> dict[str, Any]:
        return {**self.run.to_dict(), "appended": self.appended}


def canonical_json(value: Any) -> str:
    """JSON with sorted keys, no whitespace and shortest float repr (the idempotency hash's
    input): dataclasses, pydantic models, mappings, sequences, numpy arrays and scalars."""
    return json.dumps(
        _plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InputError("journal.key", value, "a non-finite number cannot be journaled")
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "model_dump") and callable(value.model_dump):  # a pydantic model
        return _plain(value.model_dump(mode="json"))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"type": type(value).__name__, **fields}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_plain(v) for v in value]
        return sorted(items, key=canonical_json) if isinstance(value, set | frozenset) else items
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy arrays and scalars
        return _plain(value.tolist())
    raise InputError("journal.key", type(value).__name__, "cannot be part of a journal key")


def run_key(kind: str, **content: Any) -> str:
    """SHA-256 (hex) of ``canonical_json({"kind": kind, **content})``."""
    text = canonical_json({"kind": kind, **content})
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def liquidation_key(
    book: Any,
    config: LiquidationConfig,
    *,
    shocks: Mapping[str, float] | None = None,
    prices: Mapping[str, float] | None = None,
    execution: Any = None,
    accounts: Sequence[str] | None = None,
    oracle: Any = None,
) -> str:
    """The idempotency key of a liquidation: the book's content and every parameter of the
    run (policy configuration, shocks, price overrides, execution model, accounts, oracle).

    ``execution=None`` and an :class:`~crossmargin.liquidation.OracleTransfer` are the same
    (the engine's default); shocks are fractions, so ``--shock ETH=-25%`` and
    ``--shock ETH=-0.25`` give the same key.
    """
    if execution is None:
        from crossmargin.liquidation.execution import OracleTransfer

        execution = OracleTransfer()
    return run_key(
        "liquidation",
        book=book,
        config=config,
        shocks=dict(shocks or {}),
        prices=dict(prices or {}),
        execution=execution,
        accounts=None if accounts is None else list(accounts),
        oracle=oracle,
    )


def events_key(events: Sequence[LiquidationEvent], name: str) -> str:
    """The key of a run recorded without one: its name and the events themselves."""
    digest = hashlib.sha256(canonical_json({"kind": "events", "name": name}).encode("utf-8"))
    try:
        for event in events:
            line = json.dumps(
                event.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False
            )
            digest.update(b"\n" + line.encode("utf-8"))
    except ValueError:
        raise InputError("journal.key", name, "a non-finite number cannot be journaled") from None
    return digest.hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _one_line(text: object, limit: int = 240) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


# -- JSONL --------------------------------------------------------------------------------------


class UncommittedRunWarning(UserWarning):
    """A JSONL journal ends with (or contains) a run that was never committed; it is ignored."""


@dataclass(frozen=True)
class UncommittedRun:
    """Lines of a run that has no valid commit record (a writer killed mid-run)."""

    run_id: str | None  # None: a torn line that is not even a complete begin record
    first_line: int
    last_line: int
    events: int
    reason: str

    def describe(self, path: str | Path) -> str:
        run = f"run {self.run_id}" if self.run_id else "a torn line"
        return (
            f"{path}:{self.first_line}-{self.last_line}: {run} was never committed "
            f"({self.reason}); its {self.events} event(s) are ignored"
        )


@dataclass
class JournalContents:
    """Everything a JSONL journal holds: committed runs (with their events), legacy events
    (unframed lines written before framing) and the uncommitted runs ignored."""

    runs: list[tuple[JournalRun, list[LiquidationEvent]]] = field(default_factory=list)
    legacy: list[LiquidationEvent] = field(default_factory=list)
    uncommitted: list[UncommittedRun] = field(default_factory=list)
    #: file order of committed events: ("legacy", index) or ("run", index)
    _order: list[tuple[str, int]] = field(default_factory=list)

    @property
    def events(self) -> list[LiquidationEvent]:
        """Every committed event in file order (legacy lines and committed runs)."""
        out: list[LiquidationEvent] = []
        for what, index in self._order:
            if what == "legacy":
                out.append(self.legacy[index])
            else:
                out.extend(self.runs[index][1])
        return out

    def find(self, key: str) -> JournalRun | None:
        for run, _ in self.runs:
            if run.key == key:
                return run
        return None


@dataclass
class _OpenRun:
    begin: dict[str, Any]
    offset: int
    first_line: int
    last_line: int
    events: list[LiquidationEvent]
    count: int = 0
    bad_line: int | None = None  # first line that is not a valid event
    bad_reason: str = ""


@dataclass
class _Scan:
    contents: JournalContents
    settled: int  # byte offset where the committed prefix ends (a writer truncates to it)
    size: int
    needs_newline: bool  # the committed prefix ends without a newline (a complete last line)


def _scan(handle: IO[bytes], path: str | Path, *, parse_events: bool) -> _Scan:
    contents = JournalContents()
    current: _OpenRun | None = None
    settled = 0
    needs_newline = False
    offset = 0

    def close_uncommitted(run: _OpenRun, reason: str) -> None:
        contents.uncommitted.append(
            UncommittedRun(
                str(run.begin.get("run")), run.first_line, run.last_line, run.count, reason
            )
        )

    for number, raw in enumerate(handle, start=1):
        start, offset = offset, offset + len(raw)
        complete = raw.endswith(b"\n")
        text = raw.strip()
        if current is not None:
            current.last_line = number
        if not text:
            if current is None:
                settled, needs_newline = offset, False
            continue
        if not parse_events and start > 0 and not text.startswith(b'{"record"'):
            # a writer's scan: event lines are counted, not parsed (only framing matters; the
            # first line is parsed, so that a file that is not a journal is refused)
            if current is not None:
                current.count += 1
            elif complete:
                settled, needs_newline = offset, False
            else:
                contents.uncommitted.append(
                    UncommittedRun(None, number, number, 0, "incomplete last line")
                )
            continue
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError):
            obj = None
        if not isinstance(obj, dict):
            if current is not None:  # a torn line inside an open run: the run is not committed
                current.count += 1  # (if a matching commit follows, the file is corrupt)
                if current.bad_line is None:
                    current.bad_line, current.bad_reason = number, "not a JSON object"
                continue
            if not complete:  # a torn last line outside any run (e.g. a torn begin record)
                contents.uncommitted.append(
                    UncommittedRun(None, number, number, 0, "incomplete last line")
                )
                continue
            shown = _one_line(text.decode(errors="replace"), 60)
            raise InputError(f"{path}:{number}", shown, "not a JSON object")
        record = obj.get("record")
        if record is None:  # an event
            event: LiquidationEvent | None = None
            if parse_events or current is None:
                try:
                    event = LiquidationEvent.from_dict(obj)
                except (TypeError, ValueError) as exc:
                    if current is None:
                        raise InputError(
                            f"{path}:{number}", _one_line(text.decode(), 60), _one_line(exc)
                        ) from None
                    if current.bad_line is None:
                        current.bad_line, current.bad_reason = number, _one_line(exc)
            if current is not None:
                current.count += 1
                if event is not None and parse_events:
                    current.events.append(event)
            else:
                assert event is not None
                contents._order.append(("legacy", len(contents.legacy)))
                contents.legacy.append(event)
                settled, needs_newline = offset, not complete
            continue
        if record == "begin":
            if not isinstance(obj.get("run"), str) or not isinstance(obj.get("key"), str):
                raise InputError(f"{path}:{number}", "begin", "a begin record needs run and key")
            if current is not None:
                close_uncommitted(current, "another run begins after it")
            current = _OpenRun(obj, start, number, number, [])
            continue
        if record == "commit":
            if current is None:
                if not complete:  # cannot be: a commit always follows its begin
                    contents.uncommitted.append(
                        UncommittedRun(None, number, number, 0, "incomplete last line")
                    )
                    continue
                raise InputError(f"{path}:{number}", obj.get("run"), "commit without a begin")
            begin = current.begin
            matches = (
                obj.get("run") == begin["run"]
                and obj.get("key") == begin["key"]
                and obj.get("count") == current.count
            )
            if not matches:
                close_uncommitted(current, "its commit record does not match its begin")
                current = None
                continue
            if current.bad_line is not None:  # committed, yet a line is unreadable: corruption
                raise InputError(f"{path}:{current.bad_line}", begin["run"], current.bad_reason)
            run = JournalRun(
                run_id=begin["run"],
                key=begin["key"],
                name=str(begin.get("name", "")),
                created=str(begin.get("created", "")),
                count=current.count,
            )
            contents._order.append(("run", len(contents.runs)))
            contents.runs.append((run, current.events))
            current = None
            settled, needs_newline = offset, not complete
            continue
        raise InputError(f"{path}:{number}", record, "unknown journal record")
    if current is not None:
        close_uncommitted(current, "no commit record: the writer stopped before committing")
    return _Scan(contents, settled, offset, needs_newline)


def _lock(handle: IO[bytes], exclusive: bool) -> None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks, one writer at a time
        return
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)


def _line(data: Mapping[str, Any]) -> bytes:
    return (json.dumps(data, allow_nan=False, ensure_ascii=False) + "\n").encode("utf-8")


class JsonlJournal:
    """A JSONL journal file (see the module docstring for the framing).

    The constructor checks the destination - its directory exists, the file is a regular
    file we can write, an existing file reads as a journal - and raises a one-line
    :class:`InputError` otherwise, so a command can check it before doing any work.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.destination = str(path)
        parent = self.path.parent
        if self.path.is_dir():
            raise InputError("--journal", self.destination, "is a directory, not a file")
        if not parent.is_dir():
            raise InputError("--journal", self.destination, f"directory {parent} does not exist")
        if self.path.exists():
            if not self.path.is_file():
                raise InputError("--journal", self.destination, "is not a regular file")
            if not os.access(self.path, os.R_OK | os.W_OK):
                raise InputError("--journal", self.destination, "cannot read and write the file")
            self._contents(parse_events=False)  # an existing file must be framed as a journal
        elif not os.access(parent, os.W_OK | os.X_OK):
            raise InputError("--journal", self.destination, f"cannot create a file in {parent}")

    def close(self) -> None:
        """Nothing to close: every operation opens and closes the file."""

    def _contents(self, parse_events: bool) -> JournalContents:
        try:
            with self.path.open("rb") as handle:
                _lock(handle, exclusive=False)
                return _scan(handle, self.path, parse_events=parse_events).contents
        except FileNotFoundError:
            return JournalContents()
        except OSError as exc:
            raise InputError("--journal", self.destination, _one_line(exc)) from None

    def contents(self) -> JournalContents:
        """The committed runs, legacy events and ignored uncommitted runs."""
        return self._contents(parse_events=True)

    def find(self, key: str) -> JournalRun | None:
        return self._contents(parse_events=False).find(key)

    def runs(self) -> list[JournalRun]:
        return [run for run, _ in self._contents(parse_events=False).runs]

    def read(self, run: str | None = None) -> list[LiquidationEvent]:
        """Committed events: all (legacy lines included), or of the runs with this id or name.

        Uncommitted runs are ignored and reported (:class:`UncommittedRunWarning`)."""
        contents = self.contents()
        _warn_uncommitted(contents, self.path)
        if run is None:
            return contents.events
        return [e for r, events in contents.runs if run in (r.run_id, r.name) for e in events]

    def record(
        self, events: Iterable[LiquidationEvent], *, name: str = "default", key: str | None = None
    ) -> Recorded:
        """Append one framed run, or nothing if ``key`` is already committed here."""
        chosen = list(events)
        key = key or events_key(chosen, name)
        try:
            with self.path.open("a+b") as handle:
                _lock(handle, exclusive=True)
                handle.seek(0)
                scan = _scan(handle, self.path, parse_events=False)
                existing = scan.contents.find(key)
                if existing is not None:
                    return Recorded(existing, appended=False)
                run = JournalRun(uuid.uuid4().hex, key, name, _now(), len(chosen))
                payload = [b"\n"] if scan.needs_newline else []
                payload.append(
                    _line(
                        {
                            "record": "begin",
                            "run": run.run_id,
                            "key": key,
                            "name": name,
                            "created": run.created,
                            "format": JOURNAL_FORMAT,
                        }
                    )
                )
                payload += [_line(event.to_dict()) for event in chosen]
                payload.append(
                    _line({"record": "commit", "run": run.run_id, "key": key, "count": run.count})
                )
                if scan.settled < scan.size:  # an uncommitted tail: never counted, drop it
                    handle.truncate(scan.settled)
                try:
                    handle.write(b"".join(payload))
                    handle.flush()
                    os.fsync(handle.fileno())
                except OSError:
                    with contextlib.suppress(OSError):
                        handle.truncate(scan.settled)
                    raise
                return Recorded(run, appended=True)
        except OSError as exc:
            raise InputError("--journal", self.destination, _one_line(exc)) from None


def write_jsonl(
    events: Iterable[LiquidationEvent],
    path: str | Path,
    *,
    name: str = "default",
    key: str | None = None,
) -> int:
    """Append events to a JSONL journal as one framed run; returns how many were appended
    (0 when the run's key - by default derived from the name and the events - is already
    journaled there)."""
    recorded = JsonlJournal(path).record(events, name=name, key=key)
    return recorded.run.count if recorded.appended else 0


def read_jsonl(path: str | Path) -> list[LiquidationEvent]:
    """Every committed event of a JSONL journal, in file order (unframed legacy lines too).

    An uncommitted run (a writer killed before its commit record) is ignored and reported by an
    :class:`UncommittedRunWarning`; a malformed line elsewhere is an error naming its number.
    """
    file = Path(path)
    try:
        with file.open("rb") as handle:
            _lock(handle, exclusive=False)
            contents = _scan(handle, file, parse_events=True).contents
    except OSError as exc:
        raise InputError("journal", str(path), _one_line(exc)) from None
    _warn_uncommitted(contents, path)
    return contents.events


def _warn_uncommitted(contents: JournalContents, path: str | Path) -> None:
    for tail in contents.uncommitted:
        warnings.warn(tail.describe(path), UncommittedRunWarning, stacklevel=3)


# -- SQL ----------------------------------------------------------------------------------------

#: the key of PostgreSQL's transaction-level advisory lock taken while creating the schema
_PG_SCHEMA_LOCK = 0x63_6D_6A_6F  # "cmjo"


class SqlJournal:
    """Append-only journal in a SQL database through SQLAlchemy (SQLite by default).

    ``url`` is any SQLAlchemy URL, e.g. ``sqlite:///journal.db`` or
    ``postgresql+psycopg://user@host/db``; ``prefix`` is prepended to the table names
    (``journal_runs``, ``journal_events``). The constructor connects and creates the schema,
    raising a one-line :class:`InputError` for a bad URL, an unknown dialect, a missing driver,
    a missing directory or an unreachable server - before any work is done.
    """

    def __init__(self, url: str = "sqlite://", *, prefix: str = "") -> None:
        import sqlalchemy as sa

        self._sa = sa
        try:
            parsed = sa.engine.make_url(url)
        except (sa.exc.ArgumentError, ValueError) as exc:
            raise InputError("--journal", url, f"not a SQLAlchemy URL: {_one_line(exc)}") from None
        self.destination = parsed.render_as_string(hide_password=True)
        self.dialect = parsed.get_backend_name()
        connect_args: dict[str, Any] = {}
        if self.dialect == "sqlite":
            database = parsed.database or ""
            if database and database != ":memory:" and not parsed.query.get("uri"):
                parent = Path(database).expanduser().parent
                if not parent.is_dir():
                    raise InputError(
                        "--journal", self.destination, f"directory {parent} does not exist"
                    )
            connect_args["timeout"] = 60.0
        elif self.dialect == "postgresql" and "connect_timeout" not in parsed.query:
            connect_args["connect_timeout"] = 10
        try:
            self.engine = sa.create_engine(parsed, connect_args=connect_args)
        except sa.exc.NoSuchModuleError:
            raise InputError(
                "--journal", self.destination, f"unknown database dialect {parsed.drivername!r}"
            ) from None
        except ImportError as exc:
            raise InputError(
                "--journal", self.destination, f"database driver not installed: {exc}"
            ) from None
        except (sa.exc.ArgumentError, TypeError, ValueError) as exc:
            raise InputError("--journal", self.destination, _one_line(exc)) from None
        if self.dialect == "sqlite":
            _sqlite_begin_immediate(self.engine)
        self.metadata = sa.MetaData()
        self.runs_table = sa.Table(
            f"{prefix}journal_runs",
            self.metadata,
            sa.Column("run_id", sa.String(32), primary_key=True),
            sa.Column("key", sa.String(64), nullable=False, unique=True),
            sa.Column("name", sa.Text, nullable=False),
            sa.Column("created", sa.Text, nullable=False),
            sa.Column("event_count", sa.Integer, nullable=False),
            sa.Column("committed", sa.Boolean, nullable=False),
        )
        columns: list[sa.Column[Any]] = [
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column(
                "run_id",
                sa.String(32),
                sa.ForeignKey(f"{prefix}journal_runs.run_id"),
                nullable=False,
                index=True,
            ),
            sa.Column("seq", sa.Integer, nullable=False),
            sa.Column("account", sa.Text, nullable=False, index=True),
            sa.Column("bucket", sa.Text, nullable=False),
            sa.Column("kind", sa.Text, nullable=False),
            sa.Column("instrument", sa.Text, nullable=False),
            sa.Column("paid_with", sa.Text, nullable=False),
            sa.Column("reason", sa.Text, nullable=False),
            sa.Column("changes", sa.Text, nullable=False),
        ]
        columns += [sa.Column(name, sa.Float(precision=53), nullable=False) for name in _FLOATS]
        self.table = sa.Table(f"{prefix}journal_events", self.metadata, *columns)
        self._create_schema()

    def _fail(self, exc: Exception) -> InputError:
        orig = getattr(exc, "orig", None) or exc
        return InputError("--journal", self.destination, _one_line(orig))

    def _create_schema(self) -> None:
        sa = self._sa
        attempts = 6
        for attempt in range(attempts):
            try:
                with self.engine.begin() as connection:
                    if self.dialect == "postgresql":
                        connection.execute(
                            sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_SCHEMA_LOCK}
                        )
                    self.metadata.create_all(connection, checkfirst=True)
                return
            except sa.exc.DBAPIError as exc:
                text = str(exc.orig).lower()
                raced = "already exists" in text or "duplicate" in text or "locked" in text
                if raced and attempt < attempts - 1:
                    time.sleep(0.05 * (attempt + 1))
                    continue
                raise self._fail(exc) from None
            except (sa.exc.SQLAlchemyError, OSError) as exc:
                raise self._fail(exc) from None

    def close(self) -> None:
        """Close the pooled connections."""
        self.engine.dispose()

    def drop(self) -> None:
        """Drop both tables (tests clean up after themselves)."""
        with self.engine.begin() as connection:
            self.metadata.drop_all(connection)

    def _run(self, row: Any) -> JournalRun:
        return JournalRun(row.run_id, row.key, row.name, row.created, row.event_count)

    def find(self, key: str) -> JournalRun | None:
        sa = self._sa
        query = sa.select(self.runs_table).where(
            self.runs_table.c.key == key, self.runs_table.c.committed.is_(True)
        )
        try:
            with self.engine.begin() as connection:
                row = connection.execute(query).first()
        except sa.exc.SQLAlchemyError as exc:
            raise self._fail(exc) from None
        return None if row is None else self._run(row)

    def runs(self) -> list[JournalRun]:
        sa = self._sa
        query = (
            sa.select(self.runs_table)
            .where(self.runs_table.c.committed.is_(True))
            .order_by(self.runs_table.c.created, self.runs_table.c.run_id)
        )
        try:
            with self.engine.begin() as connection:
                return [self._run(row) for row in connection.execute(query)]
        except sa.exc.SQLAlchemyError as exc:
            raise self._fail(exc) from None

    def record(
        self, events: Iterable[LiquidationEvent], *, name: str = "default", key: str | None = None
    ) -> Recorded:
        """Insert one run in one transaction, or nothing if ``key`` is already committed."""
        sa = self._sa
        chosen = list(events)
        key = key or events_key(chosen, name)
        run = JournalRun(uuid.uuid4().hex, key, name, _now(), len(chosen))
        rows = []
        for event in chosen:
            row = event.to_dict()
            row["changes"] = json.dumps(row["changes"], allow_nan=False)
            row["run_id"] = run.run_id
            rows.append(row)
        runs = self.runs_table
        try:
            with self.engine.begin() as connection:
                existing = connection.execute(
                    sa.select(runs).where(runs.c.key == key, runs.c.committed.is_(True))
                ).first()
                if existing is not None:
                    return Recorded(self._run(existing), appended=False)
                connection.execute(
                    runs.insert().values(
                        run_id=run.run_id,
                        key=key,
                        name=name,
                        created=run.created,
                        event_count=run.count,
                        committed=False,
                    )
                )
                if rows:
                    connection.execute(self.table.insert(), rows)
                connection.execute(
                    runs.update().where(runs.c.run_id == run.run_id).values(committed=True)
                )
        except sa.exc.IntegrityError as exc:  # a concurrent writer committed this key first
            found = self.find(key)
            if found is not None:
                return Recorded(found, appended=False)
            raise self._fail(exc) from None
        except sa.exc.SQLAlchemyError as exc:
            raise self._fail(exc) from None
        return Recorded(run, appended=True)

    def append(
        self, events: Sequence[LiquidationEvent], run: str = "default", key: str | None = None
    ) -> int:
        """Record ``events`` as a run named ``run``; how many were appended (0: already there)."""
        recorded = self.record(events, name=run, key=key)
        return recorded.run.count if recorded.appended else 0

    def read(self, run: str | None = None) -> list[LiquidationEvent]:
        """Committed events: all, or of the runs with this id or name, in insertion order."""
        sa = self._sa
        runs = self.runs_table
        query = (
            sa.select(self.table)
            .join(runs, runs.c.run_id == self.table.c.run_id)
            .where(runs.c.committed.is_(True))
            .order_by(self.table.c.id)
        )
        if run is not None:
            query = query.where(sa.or_(runs.c.run_id == run, runs.c.name == run))
        try:
            with self.engine.begin() as connection:
                rows = connection.execute(query).mappings().all()
        except sa.exc.SQLAlchemyError as exc:
            raise self._fail(exc) from None
        events = []
        for row in rows:
            data = {k: v for k, v in row.items() if k not in ("id", "run_id")}
            data["changes"] = json.loads(data["changes"])
            events.append(LiquidationEvent.from_dict(data))
        return events


def _sqlite_begin_immediate(engine: sa.Engine) -> None:
    """Every transaction takes SQLite's write lock first (``BEGIN IMMEDIATE``): checking the
    schema or a key and then writing cannot interleave with another process."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # pysqlite: we issue BEGIN ourselves

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


Journal = JsonlJournal | SqlJournal


def open_journal(destination: str, *, prefix: str = "") -> Journal:
    """A journal at ``destination``: a SQLAlchemy URL (``scheme://...``) or a JSONL path.

    Checks the destination (see :class:`JsonlJournal`, :class:`SqlJournal`) and raises a
    one-line :class:`InputError` when it cannot be written.
    """
    if not destination.strip():
        raise InputError("--journal", destination, "empty destination")
    if "://" in destination:
        import sqlalchemy as sa

        try:
            url = sa.engine.make_url(destination)
        except (sa.exc.ArgumentError, ValueError):
            url = None  # SqlJournal names the problem
        in_memory = url is not None and url.get_backend_name() == "sqlite"
        if in_memory and url is not None and url.database in (None, "", ":memory:"):
            raise InputError("--journal", destination, "an in-memory SQLite database keeps nothing")
        return SqlJournal(destination, prefix=prefix)
    return JsonlJournal(destination)


_FLOATS = (
    "qty",
    "qty_requested",
    "price_usd",
    "reference_usd",
    "slippage_usd",
    "liquidator_fee_usd",
    "insurance_fee_usd",
    "insurance_flow_usd",
    "socialized_usd",
    "maint_health_before_usd",
    "maint_health_after_usd",
    "target_health_before_usd",
    "target_health_after_usd",
)
