"""Scenario-grid portfolio margin (Derive PM2, Deribit, generic profiles).

Formulas, sources and the known deviations from Derive: ``docs/portfolio-margin.md``.
"""

from __future__ import annotations

from crossmargin.portfolio.book import portfolio_from_book
from crossmargin.portfolio.derive import (
    compare_with_reference,
    derive_case_profile,
    derive_case_to_portfolio,
    import_derive,
    load_derive_case,
    run_derive_case,
)
from crossmargin.portfolio.engine import (
    Contingencies,
    LevelMargin,
    PortfolioMarginResult,
    UnderlyingRisk,
    portfolio_margin,
)
from crossmargin.portfolio.greeks import portfolio_greeks
from crossmargin.portfolio.grid import ScenarioGrid
from crossmargin.portfolio.positions import (
    CollateralSpec,
    ExpirySpec,
    OptionSpec,
    PerpSpec,
    Portfolio,
    PortfolioSpec,
    UnderlyingSpec,
    portfolio_from_arrays,
)
from crossmargin.portfolio.profiles import (
    PROFILES,
    Profile,
    ScenarioSpec,
    deribit_profile,
    derive_pm2_profile,
    generic_profile,
    get_profile,
)

__all__ = [
    "PROFILES",
    "CollateralSpec",
    "Contingencies",
    "ExpirySpec",
    "LevelMargin",
    "OptionSpec",
    "PerpSpec",
    "Portfolio",
    "PortfolioMarginResult",
    "PortfolioSpec",
    "Profile",
    "ScenarioGrid",
    "ScenarioSpec",
    "UnderlyingRisk",
    "UnderlyingSpec",
    "compare_with_reference",
    "deribit_profile",
    "derive_case_profile",
    "derive_case_to_portfolio",
    "derive_pm2_profile",
    "generic_profile",
    "get_profile",
    "import_derive",
    "load_derive_case",
    "portfolio_from_arrays",
    "portfolio_from_book",
    "portfolio_greeks",
    "portfolio_margin",
    "run_derive_case",
]
