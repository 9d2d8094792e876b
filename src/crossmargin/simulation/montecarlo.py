r"""Monte Carlo of cascades: one full cascade per price path, and the tail of what they cost.

Each path (:mod:`crossmargin.simulation.paths`) moves the prices to :math:`P_0 e^{r}` at once,
then the cascade (:func:`~crossmargin.simulation.cascade.run_cascade`) runs to its fixed point.
Over the paths:

* **bad-debt VaR** at level :math:`\alpha`: the :math:`\alpha`-quantile of the bad debt
  :math:`B` (losses beyond the liquidated accounts' equity: insurance paid + socialized +
  external); **ES**: :math:`E[B \mid B \ge \text{VaR}_\alpha]` (Acerbi & Tasche 2002, on the
  sorted sample);
* **liquidations at risk**: the same quantile of the liquidated notional (USD);
* **insurance-fund depletion probability**: the share of paths that end with the fund below
  1 % of its starting balance (only with a fund > 0).

Paths are split into chunks run by an executor (serial, threads or Dask); each chunk's result
depends only on its paths, so every executor gives identical numbers for the same seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from crossmargin.margin.arrays import FloatArray, MarketTables, PortfolioArrays
from crossmargin.simulation.cascade import CascadeConfig, run_cascade
from crossmargin.simulation.executors import Executor, SerialExecutor

LEVELS = (0.95, 0.99)


@dataclass(frozen=True, eq=False)
class MonteCarloResult:
    """Per path (arrays of ``n_paths``) and the tail metrics."""

    bad_debt_usd: FloatArray
    liquidated_notional_usd: FloatArray
    liquidated_accounts: FloatArray
    insurance_fund_end_usd: FloatArray
    rounds: FloatArray
    insurance_fund_start_usd: float

    @property
    def n_paths(self) -> int:
        return int(self.bad_debt_usd.shape[0])

    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {"paths": float(self.n_paths)}
        for level in LEVELS:
            tag = f"{int(level * 100)}"
            var, es = var_es(self.bad_debt_usd, level)
            out[f"bad_debt_var{tag}_usd"], out[f"bad_debt_es{tag}_usd"] = var, es
            out[f"liquidations_at_risk{tag}_usd"] = var_es(self.liquidated_notional_usd, level)[0]
        out["bad_debt_mean_usd"] = float(self.bad_debt_usd.mean())
        out["prob_bad_debt"] = float((self.bad_debt_usd > 0.0).mean())
        start = self.insurance_fund_start_usd
        out["prob_insurance_fund_depleted"] = (
            float((self.insurance_fund_end_usd < 0.01 * start).mean()) if start > 0 else 0.0
        )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"metrics": self.metrics()}


def var_es(sample: FloatArray, level: float) -> tuple[float, float]:
    """Quantile at ``level`` (a loss, larger is worse) and the mean of the sample at or above it."""
    values = np.sort(np.asarray(sample, dtype=np.float64))
    if values.size == 0:
        return 0.0, 0.0
    var = float(np.quantile(values, level, method="higher"))
    tail = values[values >= var]
    return var, float(tail.mean())


def _chunk_task(
    tables: MarketTables, arrays: PortfolioArrays, config: CascadeConfig
) -> Callable[[FloatArray], FloatArray]:
    def run(returns: FloatArray) -> FloatArray:
        out = np.empty((returns.shape[0], 5))
        for i, r in enumerate(returns):
            result = run_cascade(tables, arrays, tables.price_usd * np.exp(r), config)
            last = result.rounds[-1].insurance_fund_usd if result.rounds else 0.0
            out[i] = (
                result.bad_debt_usd,
                result.liquidated_notional_usd,
                result.liquidated_accounts,
                last,
                len(result.rounds),
            )
        return out

    return run


def run_monte_carlo(
    tables: MarketTables,
    arrays: PortfolioArrays,
    log_returns: FloatArray,
    config: CascadeConfig | None = None,
    executor: Executor | None = None,
    chunk_paths: int = 16,
    progress: Callable[[int], None] | None = None,
) -> MonteCarloResult:
    """One cascade per row of ``log_returns`` (``[n_paths, n_assets]``, the tables' assets)."""
    # per-round health quantiles are not part of the Monte Carlo output: skip their partitions
    config = (config or CascadeConfig()).model_copy(update={"health_quantiles": False})
    executor = executor or SerialExecutor()
    returns = np.asarray(log_returns, dtype=np.float64)
    chunks = [returns[i : i + chunk_paths] for i in range(0, returns.shape[0], chunk_paths)]
    task = _chunk_task(tables, arrays, config)
    parts: list[FloatArray] = []
    # hand chunks over in batches so a progress bar can advance
    batch = max(1, 4 * getattr(executor, "workers", 1))
    for i in range(0, len(chunks), batch):
        parts.extend(executor.map(task, chunks[i : i + batch]))
        if progress is not None:
            progress(sum(c.shape[0] for c in chunks[i : i + batch]))
    table = np.concatenate(parts) if parts else np.zeros((0, 5))
    return MonteCarloResult(
        bad_debt_usd=table[:, 0],
        liquidated_notional_usd=table[:, 1],
        liquidated_accounts=table[:, 2],
        insurance_fund_end_usd=table[:, 3],
        rounds=table[:, 4],
        insurance_fund_start_usd=config.liquidation.insurance_fund_usd,
    )
