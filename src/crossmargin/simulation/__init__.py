"""Liquidation cascades over many accounts, mode comparison, Monte Carlo of paths, calibration.

Formulas, sources and assumptions: ``docs/simulation.md``.
"""

from __future__ import annotations

from crossmargin.simulation.cascade import (
    CascadeConfig,
    CascadeResult,
    RoundRecord,
    run_cascade,
    shocked_prices,
)
from crossmargin.simulation.generate import GeneratedBook, default_market, generate_book

__all__ = [
    "CascadeConfig",
    "CascadeResult",
    "GeneratedBook",
    "RoundRecord",
    "default_market",
    "generate_book",
    "run_cascade",
    "shocked_prices",
]
