"""The journal: JSONL and SQL round trips, and replay reproducing the final book exactly."""

from __future__ import annotations

import json
import uuid
from importlib.resources import files
from pathlib import Path

import pytest

from crossmargin.book.io import load_book
from crossmargin.errors import InputError
from crossmargin.liquidation import (
    LiquidationConfig,
    LiquidationEngine,
    LiquidationResult,
    SqlJournal,
    read_jsonl,
    replay_journal,
    write_jsonl,
)

DEMO = files("crossmargin") / "examples" / "demo_book.yaml"


@pytest.fixture(scope="module")
def crash() -> tuple[object, LiquidationResult]:
    """The demo book after a 20 % crash of BTC, ETH and SOL: restores, bankruptcies, haircuts."""
    book = load_book(str(DEMO))
    shocks = {"BTC": -0.2, "ETH": -0.2, "SOL": -0.2}
    config = LiquidationConfig(insurance_fund_usd=1_000.0)
    return book, LiquidationEngine(book, config, shocks=shocks).liquidate()


def test_the_crash_exercises_every_path(crash: tuple[object, LiquidationResult]) -> None:
    _, result = crash
    kinds = {e.kind for e in result.events}
    assert {"reduce", "repay", "insurance", "socialize"} <= kinds
    statuses = {o.status for o in result.outcomes}
    assert {"healthy", "restored", "bankrupt"} <= statuses


def test_replay_reproduces_the_final_book_exactly(
    crash: tuple[object, LiquidationResult],
) -> None:
    book, result = crash
    replayed = replay_journal(book, result.events)  # type: ignore[arg-type]
    assert replayed.model_dump() == result.book_after.model_dump()  # type: ignore[union-attr]


def test_jsonl_round_trip(crash: tuple[object, LiquidationResult], tmp_path: Path) -> None:
    book, result = crash
    path = tmp_path / "journal.jsonl"
    assert write_jsonl(result.events, path) == len(result.events)
    events = read_jsonl(path)
    assert events == result.events
    replayed = replay_journal(book, events)  # type: ignore[arg-type]
    assert replayed.model_dump() == result.book_after.model_dump()  # type: ignore[union-attr]


def test_jsonl_malformed_line_names_it(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"seq": 1}\nnot json\n')
    with pytest.raises(InputError, match=r"bad.jsonl:1"):
        read_jsonl(path)


def test_sqlite_round_trip(crash: tuple[object, LiquidationResult], tmp_path: Path) -> None:
    _, result = crash
    journal = SqlJournal(f"sqlite:///{tmp_path / 'journal.db'}")
    journal.append(result.events, run="crash")
    journal.append(result.events[:1], run="other")
    assert journal.read("crash") == result.events
    assert len(journal.read("other")) == 1


def _postgres_url() -> str | None:
    try:
        import psycopg

        with psycopg.connect(
            "host=127.0.0.1 port=5432 dbname=test user=postgres", connect_timeout=2
        ):
            return "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    except Exception:
        return None


def test_postgresql_round_trip(crash: tuple[object, LiquidationResult]) -> None:
    url = _postgres_url()
    if url is None:
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432 (database 'test')")
    _, result = crash
    journal = SqlJournal(url, prefix=f"cmtest_{uuid.uuid4().hex[:8]}_")  # tables of its own
    try:
        run = f"test-{id(result)}"
        journal.append(result.events, run=run)
        assert journal.read(run) == result.events
    finally:
        journal.drop()
        journal.close()


def test_replay_rejects_a_row_the_book_does_not_have(
    crash: tuple[object, LiquidationResult],
) -> None:
    book, result = crash
    event = result.events[0]
    bad = json.loads(json.dumps(event.to_dict()))
    bad["changes"][0]["symbol"] = "NOPE"
    from crossmargin.liquidation import LiquidationEvent

    with pytest.raises(InputError, match="no such row"):
        replay_journal(book, [LiquidationEvent.from_dict(bad)])  # type: ignore[arg-type]
