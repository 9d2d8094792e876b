"""The liquidation journal: one event per step, append-only, as JSONL or in SQLite/PostgreSQL.

Each event names the account, bucket, instrument, signed quantity, prices, slippage, fees,
insurance-fund flow, health before and after and the reason; it also carries the new values of
every balance and position row it changed (``changes``), so that :func:`replay` over the
starting book reproduces the final state exactly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from crossmargin.errors import InputError

EventKind = Literal[
    "reduce", "repay", "insurance", "socialize", "haircut", "adl", "spiral", "unfilled", "stopped"
]


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
        return asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> LiquidationEvent:
        changes = tuple(RowChange(**c) for c in data.get("changes", ()))
        return LiquidationEvent(**{**data, "changes": changes})


def write_jsonl(events: Iterable[LiquidationEvent], path: str | Path) -> int:
    """Append events to a JSONL file (one JSON object per line); returns how many."""
    count = 0
    with Path(path).open("a", encoding="utf-8") as handle:
        for event in events:
            handle.write(json.dumps(event.to_dict(), allow_nan=False) + "\n")
            count += 1
    return count


def read_jsonl(path: str | Path) -> list[LiquidationEvent]:
    """Read a JSONL journal; a malformed line is an error naming the line number."""
    events = []
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                events.append(LiquidationEvent.from_dict(json.loads(line)))
            except (json.JSONDecodeError, TypeError) as exc:
                raise InputError(f"{path}:{number}", line.strip()[:60], str(exc)) from None
    return events


class SqlJournal:
    """Append-only journal in a SQL database through SQLAlchemy (SQLite by default).

    One table ``liquidation_events``: the scalar fields as columns and the row changes as JSON.
    ``url`` is any SQLAlchemy URL, e.g. ``sqlite:///journal.db`` or
    ``postgresql+psycopg://user@host/db``.
    """

    def __init__(self, url: str = "sqlite://") -> None:
        import sqlalchemy as sa

        self._sa = sa
        self.engine = sa.create_engine(url)
        metadata = sa.MetaData()
        columns: list[sa.Column[Any]] = [
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("run", sa.String(64), nullable=False, index=True),
            sa.Column("seq", sa.Integer, nullable=False),
            sa.Column("account", sa.String(200), nullable=False, index=True),
            sa.Column("bucket", sa.String(200), nullable=False),
            sa.Column("kind", sa.String(16), nullable=False),
            sa.Column("instrument", sa.String(200), nullable=False),
            sa.Column("paid_with", sa.String(200), nullable=False),
            sa.Column("reason", sa.Text, nullable=False),
            sa.Column("changes", sa.Text, nullable=False),
        ]
        columns += [sa.Column(name, sa.Float(precision=53), nullable=False) for name in _FLOATS]
        self.table = sa.Table("liquidation_events", metadata, *columns)
        metadata.create_all(self.engine)

    def append(self, events: Sequence[LiquidationEvent], run: str = "default") -> int:
        rows = []
        for event in events:
            row = event.to_dict()
            row["changes"] = json.dumps(row["changes"], allow_nan=False)
            row["run"] = run
            rows.append(row)
        if rows:
            with self.engine.begin() as connection:
                connection.execute(self.table.insert(), rows)
        return len(rows)

    def read(self, run: str = "default") -> list[LiquidationEvent]:
        sa = self._sa
        query = sa.select(self.table).where(self.table.c.run == run).order_by(self.table.c.id)
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        events = []
        for row in rows:
            data = {k: v for k, v in row.items() if k not in ("id", "run")}
            data["changes"] = json.loads(data["changes"])
            events.append(LiquidationEvent.from_dict(data))
        return events


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
