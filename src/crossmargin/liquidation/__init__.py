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
    LiquidationEvent,
    RowChange,
    SqlJournal,
    read_jsonl,
    write_jsonl,
)

__all__ = [
    "AccountOutcome",
    "DepthExecution",
    "ExecutionModel",
    "FeeSchedule",
    "Flows",
    "LiquidationConfig",
    "LiquidationEngine",
    "LiquidationEvent",
    "LiquidationResult",
    "OracleTransfer",
    "RelativeBook",
    "RowChange",
    "SqlJournal",
    "liquidate_arrays",
    "read_jsonl",
    "replay_journal",
    "write_jsonl",
]
