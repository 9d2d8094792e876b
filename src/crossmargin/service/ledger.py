"""The append-only ledger: one event per change of state, written with the state it changes.

An event carries its idempotency ``key``, the request ``body`` (and its hash), the ``changes``
it made - the *new value* of every state row it touched - and the ``result`` returned to the
caller. :meth:`Ledger.commit` writes the event and applies its changes in ONE transaction, so
the database never holds a state without its event or an event without its state. Replaying
the changes of every event in sequence order over an empty database gives the state tables
exactly (:func:`replay_changes`); a test checks it after every kind of event and after kills.

A key seen before with the same body returns the stored result (an idempotent retry); with a
different body it is refused (:class:`IdempotencyConflict`) - the client reused a key.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from crossmargin.errors import CrossmarginError
from crossmargin.service import db

#: a change: {"t": table, ...key columns..., ...new values...}; "delete": true removes the row
Change = dict[str, Any]

_KEYS: dict[str, tuple[str, ...]] = {
    "assets": ("symbol",),
    "markets": ("symbol",),
    "accounts": ("id",),
    "balances": ("account_id", "asset"),
    "positions": ("account_id", "market"),
    "system": ("name",),
    "settings": ("name",),
}


class IdempotencyConflict(CrossmarginError):
    """An idempotency key reused with a different request body."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(
            f"Idempotency-Key: already used for a different request (got {key[:80]!r})"
        )


@dataclass(frozen=True)
class Committed:
    """What :meth:`Ledger.commit` did: the event's number, its result, and whether it was a
    retry of an event already stored (then nothing was applied)."""

    seq: int
    result: dict[str, Any]
    replayed: bool


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no NaN: the form hashed and stored."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def body_hash(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


class Ledger:
    """Writes events and their state changes atomically; reads events back."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._tables = {name: db.metadata.tables[name] for name in _KEYS}

    def lookup(self, key: str, body: Mapping[str, Any]) -> Committed | None:
        """The stored event of ``key`` if any (its body must match), else ``None``."""
        with self.engine.connect() as connection:
            return self._lookup(connection, key, body_hash(body))

    def _lookup(self, connection: Connection, key: str, digest: str) -> Committed | None:
        row = connection.execute(
            sa.select(db.events.c.seq, db.events.c.body_hash, db.events.c.result).where(
                db.events.c.key == key
            )
        ).first()
        if row is None:
            return None
        if row.body_hash != digest:
            raise IdempotencyConflict(key)
        return Committed(int(row.seq), json.loads(row.result), True)

    def commit(
        self,
        kind: str,
        key: str,
        body: Mapping[str, Any],
        changes: Sequence[Change],
        result: Mapping[str, Any],
        account_id: str | None = None,
    ) -> Committed:
        """Append one event and apply its changes in one transaction (or return the stored
        event when ``key`` was already committed with the same body)."""
        return self.commit_many([(kind, key, body, changes, result, account_id)])[0]

    def commit_many(
        self,
        batch: Sequence[
            tuple[str, str, Mapping[str, Any], Sequence[Change], Mapping[str, Any], str | None]
        ],
    ) -> list[Committed]:
        """Several events ``(kind, key, body, changes, result, account_id)`` in ONE transaction
        (a liquidation batch: every account's fills and the fund move together)."""
        out: list[Committed] = []
        with self.engine.begin() as connection:
            for kind, key, body, changes, result, account_id in batch:
                digest = body_hash(body)
                stored = self._lookup(connection, key, digest)
                if stored is not None:
                    out.append(stored)
                    continue
                for change in changes:
                    self._apply(connection, change)
                seq = _insert_event(
                    connection, kind, key, account_id, digest, body, changes, result
                )
                out.append(Committed(seq, dict(result), False))
        return out

    def commit_inserts(
        self,
        kind: str,
        key: str,
        body: Mapping[str, Any],
        changes: Sequence[Change],
        result: Mapping[str, Any],
    ) -> Committed:
        """Like :meth:`commit` for an event that only creates rows (the genesis of an empty
        database): one multi-row INSERT per table instead of an UPDATE-then-INSERT per row
        (100,000 accounts: seconds, not a quarter of an hour). Same event, same rows."""
        digest = body_hash(body)
        grouped: dict[str, list[dict[str, Any]]] = {}
        for change in changes:
            table = self._tables[change["t"]]
            grouped.setdefault(change["t"], []).append(
                {c.name: change[c.name] for c in table.columns if c.name in change}
            )
        with self.engine.begin() as connection:
            stored = self._lookup(connection, key, digest)
            if stored is not None:
                return stored
            for name, rows in grouped.items():
                connection.execute(self._tables[name].insert(), rows)
            seq = _insert_event(connection, kind, key, None, digest, body, changes, result)
        return Committed(seq, dict(result), False)

    def _apply(self, connection: Connection, change: Change) -> None:
        apply_change(connection, self._tables, change)

    def events(
        self,
        after_seq: int = 0,
        limit: int | None = None,
        account_id: str | None = None,
        kinds: Iterable[str] | None = None,
        newest_first: bool = False,
        with_changes: bool = True,
    ) -> list[dict[str, Any]]:
        """Events as dicts (``seq, key, kind, account_id, body, result, created_s`` and, with
        ``with_changes``, ``changes``: the genesis of a big book is megabytes of them)."""
        columns = [c for c in db.events.columns if with_changes or c.name != "changes"]
        query = sa.select(*columns).where(db.events.c.seq > after_seq)
        if account_id is not None:
            query = query.where(db.events.c.account_id == account_id)
        if kinds is not None:
            query = query.where(db.events.c.kind.in_(list(kinds)))
        order = db.events.c.seq.desc() if newest_first else db.events.c.seq
        query = query.order_by(order)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [
            {
                "seq": int(r["seq"]),
                "key": r["key"],
                "kind": r["kind"],
                "account_id": r["account_id"],
                "body": json.loads(r["body"]),
                **({"changes": json.loads(r["changes"])} if with_changes else {}),
                "result": json.loads(r["result"]),
                "created_s": float(r["created_s"]),
            }
            for r in rows
        ]


def _insert_event(
    connection: Connection,
    kind: str,
    key: str,
    account_id: str | None,
    digest: str,
    body: Mapping[str, Any],
    changes: Sequence[Change],
    result: Mapping[str, Any],
) -> int:
    """Append one event row; returns its sequence number."""
    inserted = connection.execute(
        db.events.insert().values(
            key=key,
            kind=kind,
            account_id=account_id,
            body_hash=digest,
            body=canonical_json(body),
            changes=canonical_json(list(changes)),
            result=canonical_json(result),
            created_s=time.time(),
        )
    )
    primary_key = inserted.inserted_primary_key
    assert primary_key is not None  # an INSERT always returns its key
    return int(primary_key[0])


def apply_change(connection: Connection, tables: Mapping[str, sa.Table], change: Change) -> None:
    """Set one row to its new value (insert or update), or delete it."""
    name = change["t"]
    table = tables[name]
    keys = _KEYS[name]
    where = sa.and_(*(table.c[k] == change[k] for k in keys))
    if change.get("delete"):
        connection.execute(table.delete().where(where))
        return
    values = {c.name: change[c.name] for c in table.columns if c.name in change}
    updated = connection.execute(
        table.update().where(where).values({k: v for k, v in values.items() if k not in keys})
    )
    if updated.rowcount == 0:
        connection.execute(table.insert().values(values))


def read_state(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every ledger table's rows, sorted by key: the state to compare with a replay."""
    out: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as connection:
        for name, keys in _KEYS.items():
            table = db.metadata.tables[name]
            rows = [dict(r) for r in connection.execute(sa.select(table)).mappings()]
            # sorted here, not by ORDER BY: collations differ between SQLite and PostgreSQL
            out[name] = sorted(rows, key=_row_key(keys))
    return out


def _row_key(keys: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[str, ...]]:
    def key(row: dict[str, Any]) -> tuple[str, ...]:
        return tuple(str(row[k]) for k in keys)

    return key


def replay_changes(events: Iterable[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The state tables rebuilt from events alone (in memory, same form as :func:`read_state`)."""
    state: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {name: {} for name in _KEYS}
    for event in events:
        for change in event["changes"]:
            name = change["t"]
            key = tuple(change[k] for k in _KEYS[name])
            if change.get("delete"):
                state[name].pop(key, None)
                continue
            columns = db.metadata.tables[name].columns
            row = state[name].setdefault(key, {})
            row.update({c.name: change[c.name] for c in columns if c.name in change})
    return {
        name: [rows[k] for k in sorted(rows, key=lambda k: tuple(map(str, k)))]
        for name, rows in state.items()
    }
