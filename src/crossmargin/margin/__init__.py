"""Margin models: the struct-of-arrays risk kernel, cross and isolated margin, what-if, compare."""

from crossmargin.margin.arrays import (
    INIT,
    MAINT,
    MarketTables,
    PortfolioArrays,
    compile_accounts,
    compile_book,
    compile_market,
)
from crossmargin.margin.engine import (
    MarginArrays,
    MarginEngine,
    account_margins,
    evaluate_arrays,
    explain_arrays,
    liquidation_price_arrays,
)
from crossmargin.margin.kernel import evaluate_groups, health_kernel
from crossmargin.margin.results import (
    AccountMargin,
    BucketMargin,
    CapitalComparison,
    Contribution,
    LevelFigures,
    LiquidationPrice,
    Trade,
    WhatIf,
)

__all__ = [
    "INIT",
    "MAINT",
    "AccountMargin",
    "BucketMargin",
    "CapitalComparison",
    "Contribution",
    "LevelFigures",
    "LiquidationPrice",
    "MarginArrays",
    "MarginEngine",
    "MarketTables",
    "PortfolioArrays",
    "Trade",
    "WhatIf",
    "account_margins",
    "compile_accounts",
    "compile_book",
    "compile_market",
    "evaluate_arrays",
    "evaluate_groups",
    "explain_arrays",
    "health_kernel",
    "liquidation_price_arrays",
]
