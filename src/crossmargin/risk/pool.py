r"""Risk of the whole pool: every account of a book revalued under the same scenarios.

For scenario ``s`` and accounts ``i``: the pool's equity :math:`\sum_i E_{i,s}` and maint
health :math:`\sum_i H_{i,s}`, the **bad debt** :math:`D_s = \sum_i \max(-E_{i,s}, 0)` (the
losses the venue's insurance fund must cover if every account with negative equity is closed
at the scenario's prices) and the number of liquidatable accounts (some margin group with
maint health < 0). VaR and ES are those of :mod:`crossmargin.risk.var` (order statistics); for
the bad debt the "loss" is the rise :math:`D_s - D_0`. The scenarios are the simulation
methods' (historical, filtered historical, Monte Carlo t copula), drawn once for the union of
the accounts' assets, so one joint move hits every account.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from crossmargin.book.schema import Book
from crossmargin.display import rounded_repr
from crossmargin.errors import InputError
from crossmargin.risk.returns import MIN_OBSERVATIONS, ReturnData, map_assets, mapped_returns
from crossmargin.risk.revalue import ScenarioRevaluer
from crossmargin.risk.var import (
    CONFIDENCES,
    DEFAULT_PATHS,
    DEFAULT_SEED,
    HORIZONS_DAYS,
    fit_t_copula,
    scenario_returns,
    var_es,
)

FloatArray = npt.NDArray[np.float64]

POOL_METHODS = ("historical", "filtered", "monte-carlo")


@rounded_repr
@dataclass(frozen=True)
class PoolFigure:
    """Pool VaR / ES (USD) of one method, horizon and confidence."""

    method: str
    horizon_days: int
    confidence: float
    equity_var_usd: float
    equity_es_usd: float
    health_var_usd: float
    health_es_usd: float
    bad_debt_var_usd: float
    bad_debt_es_usd: float
    mean_liquidatable: float  # accounts, mean over scenarios
    prob_bad_debt: float  # share of scenarios with some new bad debt

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@rounded_repr
@dataclass(frozen=True)
class PoolRisk:
    """The pool's figures, its accounts and their base values."""

    accounts: tuple[str, ...]
    equity_usd: float
    health_usd: float
    bad_debt_usd: float
    figures: list[PoolFigure]

    def to_dict(self) -> dict[str, Any]:
        return {
            "accounts": list(self.accounts),
            "equity_usd": self.equity_usd,
            "maint_health_usd": self.health_usd,
            "bad_debt_usd": self.bad_debt_usd,
            "figures": [f.to_dict() for f in self.figures],
        }


def pool_risk(
    book: Book,
    data: ReturnData,
    *,
    accounts: Sequence[str] | None = None,
    proxies: dict[str, str] | None = None,
    methods: Sequence[str] = POOL_METHODS,
    confidences: Sequence[float] = CONFIDENCES,
    horizons_days: Sequence[int] = HORIZONS_DAYS,
    n_paths: int = DEFAULT_PATHS,
    seed: int = DEFAULT_SEED,
    min_obs: int = MIN_OBSERVATIONS,
    progress: Callable[[int], Any] | None = None,
) -> PoolRisk:
    """VaR / ES of the pool's equity, maint health and bad debt (see the module docstring)."""
    for m in methods:
        if m not in POOL_METHODS:
            raise InputError("method", m, f"pool methods: {', '.join(POOL_METHODS)}")
    chosen = book.accounts if accounts is None else [book.account(a) for a in accounts]
    if not chosen:
        raise InputError("accounts", 0, "the pool has no accounts")
    revaluer = ScenarioRevaluer.from_accounts(book, list(chosen))
    mapping = map_assets(revaluer.asset_symbols, data, proxies)
    returns = mapped_returns(data, mapping)
    if returns.shape[0] < min_obs:
        raise InputError("returns", returns.shape[0], f"too short: need at least {min_obs} days")
    base_eq = revaluer.base_account_equity_usd
    base_debt = float(np.maximum(-base_eq, 0.0).sum())
    copula = fit_t_copula(returns) if "monte-carlo" in methods else None
    figures = []
    for method in methods:
        one_day = scenario_returns(method, returns, n_paths, seed, copula)
        for h in horizons_days:
            out = revaluer.revalue(one_day * math.sqrt(h), progress=progress, per_account=True)
            assert out.account_equity_usd is not None and out.account_liquidatable is not None
            debt = np.maximum(-out.account_equity_usd, 0.0).sum(axis=1)
            eq_loss = revaluer.base_equity_usd - out.equity_usd
            h_loss = revaluer.base_health_usd - out.health_usd
            liq = float(out.account_liquidatable.sum(axis=1).mean())
            p_debt = float(np.mean(debt > base_debt))
            for c in confidences:
                ev, ee = var_es(eq_loss, c)
                hv, he = var_es(h_loss, c)
                dv, de = var_es(debt - base_debt, c)
                figures.append(PoolFigure(method, h, c, ev, ee, hv, he, dv, de, liq, p_debt))
    return PoolRisk(
        accounts=tuple(a.id for a in chosen),
        equity_usd=revaluer.base_equity_usd,
        health_usd=revaluer.base_health_usd,
        bad_debt_usd=base_debt,
        figures=figures,
    )
