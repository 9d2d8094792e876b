"""Risk analytics: stress scenarios, VaR / ES by five methods, backtests, wrong-way risk,
hedge suggestions and the HTML risk report (formulas and sources: ``docs/risk-analytics.md``)."""

from crossmargin.risk.backtest import (
    BacktestResult,
    LikelihoodRatioTest,
    backtest_account,
    christoffersen_independence,
    conditional_coverage,
    kupiec_pof,
)
from crossmargin.risk.hedge import HedgePlan, HedgeState, hedge_scenarios, suggest_hedges
from crossmargin.risk.pool import PoolFigure, PoolRisk, pool_risk
from crossmargin.risk.report import AccountReport, analyze_account, render_html
from crossmargin.risk.returns import (
    MissingReturnsError,
    ReturnData,
    load_returns,
    map_assets,
    returns_from_frames,
)
from crossmargin.risk.revalue import Revaluation, ScenarioRevaluer
from crossmargin.risk.stress import (
    Scenario,
    ScenarioLibrary,
    StressResult,
    builtin_scenarios,
    load_scenarios,
    run_stress,
)
from crossmargin.risk.var import (
    METHODS,
    AccountRisk,
    RiskFigure,
    account_risk,
    cornish_fisher_var_es,
    delta_gamma_moments,
    fit_t_copula,
    normal_var_es,
    risk_of_returns,
    simulate_t_copula,
    var_es,
)
from crossmargin.risk.wrongway import WrongWayRisk, wrong_way_risk

__all__ = [
    "METHODS",
    "AccountReport",
    "AccountRisk",
    "BacktestResult",
    "HedgePlan",
    "HedgeState",
    "LikelihoodRatioTest",
    "MissingReturnsError",
    "PoolFigure",
    "PoolRisk",
    "ReturnData",
    "Revaluation",
    "RiskFigure",
    "Scenario",
    "ScenarioLibrary",
    "ScenarioRevaluer",
    "StressResult",
    "WrongWayRisk",
    "account_risk",
    "analyze_account",
    "backtest_account",
    "builtin_scenarios",
    "christoffersen_independence",
    "conditional_coverage",
    "cornish_fisher_var_es",
    "delta_gamma_moments",
    "fit_t_copula",
    "hedge_scenarios",
    "kupiec_pof",
    "load_returns",
    "load_scenarios",
    "map_assets",
    "normal_var_es",
    "pool_risk",
    "render_html",
    "returns_from_frames",
    "risk_of_returns",
    "run_stress",
    "simulate_t_copula",
    "suggest_hedges",
    "var_es",
    "wrong_way_risk",
]
