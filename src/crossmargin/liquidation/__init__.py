"""Liquidation: minimal partial liquidation against depth, fees, insurance, bankruptcy, journal."""

from crossmargin.liquidation.config import FeeSchedule, LiquidationConfig
from crossmargin.liquidation.engine import (
    AccountOutcome,
    Flows,
    LiquidationEngine,
    LiquidationResult,
    liquidate_arrays,
    replay_journal,
)
from crossmargin.liquidation.execution import (
    DepthExecution,
    ExecutionModel,
    OracleTransfer,
    RelativeBook,
)
from crossmargin.liquidation.journal import (
    JournalContents,
    JournalRun,
    JsonlJournal,
    LiquidationEvent,
    Recorded,
    RowChange,
    SqlJournal,
    UncommittedRun,
    UncommittedRunWarning,
    liquidation_key,
    open_journal,
    read_jsonl,
    write_jsonl,
)

__all__ = [
    "AccountOutcome",
    "DepthExecution",
    "ExecutionModel",
    "FeeSchedule",
    "Flows",
    "JournalContents",
    "JournalRun",
    "JsonlJournal",
    "LiquidationConfig",
    "LiquidationEngine",
    "LiquidationEvent",
    "LiquidationResult",
    "OracleTransfer",
    "Recorded",
    "RelativeBook",
    "RowChange",
    "SqlJournal",
    "UncommittedRun",
    "UncommittedRunWarning",
    "liquidate_arrays",
    "liquidation_key",
    "open_journal",
    "read_jsonl",
    "replay_journal",
    "write_jsonl",
]
