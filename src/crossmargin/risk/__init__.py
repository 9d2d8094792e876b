"""Risk analytics: stress scenarios (named historical shocks) over whole books."""

from crossmargin.risk.stress import (
    Scenario,
    ScenarioLibrary,
    StressResult,
    builtin_scenarios,
    load_scenarios,
    run_stress,
)

__all__ = [
    "Scenario",
    "ScenarioLibrary",
    "StressResult",
    "builtin_scenarios",
    "load_scenarios",
    "run_stress",
]
