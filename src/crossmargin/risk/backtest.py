r"""VaR backtests: Kupiec's proportion of failures and Christoffersen's independence test.

For ``n`` days with ``x`` exceptions (loss > VaR) at coverage :math:`p = 1 - \alpha`:

* Kupiec (1995) POF, :math:`\chi^2_1` under :math:`H_0: P(\text{exception}) = p`:

  .. math:: LR_{POF} = -2\ln\frac{(1-p)^{n-x}p^x}{(1-\hat\pi)^{n-x}\hat\pi^x},
            \quad \hat\pi = x/n

* Christoffersen (1998) independence, :math:`\chi^2_1` under "exceptions do not cluster",
  with :math:`n_{ij}` the number of days in state ``j`` after a day in state ``i``:

  .. math:: LR_{ind} = -2\ln\frac{(1-\hat\pi)^{n_{00}+n_{10}}\hat\pi^{n_{01}+n_{11}}}
            {(1-\hat\pi_0)^{n_{00}}\hat\pi_0^{n_{01}}(1-\hat\pi_1)^{n_{10}}\hat\pi_1^{n_{11}}}

  :math:`\hat\pi_i = n_{i1}/(n_{i0}+n_{i1})`, :math:`\hat\pi` the pooled rate; and the
  conditional coverage :math:`LR_{CC} = LR_{POF} + LR_{ind} \sim \chi^2_2`.

:math:`0 \ln 0 = 0` throughout (``scipy.special.xlogy``).

:func:`backtest_account` runs them on rolling windows: each day's VaR is forecast from the
``window`` days before it and compared with the day's *hypothetical* PnL of the account as it
stands today (Basel's hypothetical backtesting: today's holdings, that day's returns, full
revaluation through the kernel).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view
from scipy import stats
from scipy.special import xlogy

from crossmargin.errors import InputError
from crossmargin.market.volatility import RISKMETRICS_LAMBDA
from crossmargin.risk.revalue import ScenarioRevaluer
from crossmargin.risk.var import (
    cornish_fisher_var_es,
    delta_gamma_moments,
    ewma_standardize,
    normal_var_es,
    sensitivities,
    var_es,
)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

BACKTEST_METHODS = ("historical", "filtered", "delta-normal", "cornish-fisher")
DEFAULT_WINDOW = 250


@dataclass(frozen=True)
class LikelihoodRatioTest:
    """A likelihood-ratio statistic, its chi-square degrees of freedom and p-value."""

    statistic: float
    df: int
    p_value: float

    def to_dict(self) -> dict[str, float]:
        return {"statistic": self.statistic, "df": self.df, "p_value": self.p_value}


def _chi2(statistic: float, df: int) -> LikelihoodRatioTest:
    stat = max(float(statistic), 0.0)  # rounding can leave -1e-16
    return LikelihoodRatioTest(stat, df, float(stats.chi2.sf(stat, df)))


def kupiec_pof(exceptions: int, n: int, coverage: float) -> LikelihoodRatioTest:
    """Kupiec (1995) proportion-of-failures LR test (see the module docstring)."""
    if not (isinstance(n, int | np.integer) and n > 0):
        raise InputError("n", n, "need at least one day")
    if not (0 <= exceptions <= n):
        raise InputError("exceptions", exceptions, f"must be in [0, {n}]")
    if not 0.0 < coverage < 1.0:
        raise InputError("coverage", coverage, "must be in (0, 1)")
    x, p = float(exceptions), float(coverage)
    pi = x / n
    log_null = xlogy(n - x, 1.0 - p) + xlogy(x, p)
    log_alt = xlogy(n - x, 1.0 - pi) + xlogy(x, pi)
    return _chi2(-2.0 * (log_null - log_alt), 1)


def transition_counts(hits: BoolArray) -> tuple[int, int, int, int]:
    """``(n00, n01, n10, n11)``: day-to-day transitions of the exception indicator."""
    h = np.asarray(hits, dtype=bool)
    if h.ndim != 1 or h.size < 2:
        raise InputError("hits", h.shape, "need a 1-d sequence of at least two days")
    prev, cur = h[:-1], h[1:]
    return (
        int(np.sum(~prev & ~cur)),
        int(np.sum(~prev & cur)),
        int(np.sum(prev & ~cur)),
        int(np.sum(prev & cur)),
    )


def christoffersen_independence(hits: BoolArray) -> LikelihoodRatioTest:
    """Christoffersen (1998) first-order Markov independence LR test."""
    n00, n01, n10, n11 = transition_counts(hits)
    pi0 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi1 = n11 / (n10 + n11) if n10 + n11 else 0.0
    pi = (n01 + n11) / (n00 + n01 + n10 + n11)
    log_null = xlogy(n00 + n10, 1.0 - pi) + xlogy(n01 + n11, pi)
    log_alt = xlogy(n00, 1.0 - pi0) + xlogy(n01, pi0) + xlogy(n10, 1.0 - pi1) + xlogy(n11, pi1)
    return _chi2(-2.0 * (log_null - log_alt), 1)


def conditional_coverage(hits: BoolArray, coverage: float) -> LikelihoodRatioTest:
    """Christoffersen (1998) conditional coverage: ``LR_POF + LR_ind``, chi-square with 2 df.

    Both terms on the same sample: the POF term counts exceptions after the first day, as the
    transition counts do.
    """
    h = np.asarray(hits, dtype=bool)
    pof = kupiec_pof(int(h[1:].sum()), int(h.size - 1), coverage)
    ind = christoffersen_independence(h)
    return _chi2(pof.statistic + ind.statistic, 2)


@dataclass(frozen=True)
class BacktestResult:
    """One method's rolling backtest at one confidence level."""

    method: str
    confidence: float
    window: int
    days: int
    exceptions: int
    kupiec: LikelihoodRatioTest
    independence: LikelihoodRatioTest
    conditional: LikelihoodRatioTest

    @property
    def expected(self) -> float:
        return self.days * (1.0 - self.confidence)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "confidence": self.confidence,
            "window": self.window,
            "days": self.days,
            "exceptions": self.exceptions,
            "expected": self.expected,
            "kupiec": self.kupiec.to_dict(),
            "independence": self.independence.to_dict(),
            "conditional_coverage": self.conditional.to_dict(),
        }


def evaluate_forecasts(
    method: str, losses_usd: FloatArray, var_usd: FloatArray, confidence: float, window: int
) -> BacktestResult:
    """Exceptions ``loss > VaR`` and the three tests for aligned loss / forecast series."""
    losses = np.asarray(losses_usd, dtype=np.float64)
    var = np.asarray(var_usd, dtype=np.float64)
    if losses.shape != var.shape or losses.ndim != 1:
        raise InputError("var_usd", var.shape, f"must match the losses {losses.shape}")
    if not (np.all(np.isfinite(losses)) and np.all(np.isfinite(var))):
        raise InputError("var_usd", "non-finite", "losses and forecasts must be finite")
    hits = losses > var
    coverage = 1.0 - confidence
    return BacktestResult(
        method=method,
        confidence=confidence,
        window=window,
        days=int(hits.size),
        exceptions=int(hits.sum()),
        kupiec=kupiec_pof(int(hits.sum()), int(hits.size), coverage),
        independence=christoffersen_independence(hits),
        conditional=conditional_coverage(hits, coverage),
    )


def backtest_account(
    revaluer: ScenarioRevaluer,
    returns: FloatArray,
    *,
    window: int = DEFAULT_WINDOW,
    confidences: Sequence[float] = (0.99, 0.975),
    methods: Sequence[str] = BACKTEST_METHODS,
    lam: float = RISKMETRICS_LAMBDA,
    progress: Callable[[int], Any] | None = None,
) -> list[BacktestResult]:
    """Rolling 1-day equity-VaR backtests of the account's current holdings.

    Day ``t`` (from ``window`` on): the forecast uses returns ``t-window .. t-1`` only; the
    outcome is the full revaluation at day ``t``'s returns. Historical: the window's revalued
    PnL; filtered: the window's EWMA-standardized returns rescaled by day ``t``'s forecast vol,
    revalued; delta-normal / Cornish-Fisher: the window's Ledoit-Wolf covariance with the
    kernel's delta and gamma.
    """
    from crossmargin.risk.var import active_covariance

    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 2 or r.shape[1] != revaluer.n_assets:
        raise InputError("returns", r.shape, f"expected [days, {revaluer.n_assets}]")
    if window < 30:
        raise InputError("window", window, "need at least 30 days")
    if r.shape[0] < window + 30:
        raise InputError("returns", r.shape[0], f"too short: need window + 30 = {window + 30} days")
    for m in methods:
        if m not in BACKTEST_METHODS:
            raise InputError("method", m, f"unknown (known: {', '.join(BACKTEST_METHODS)})")
    e0 = revaluer.base_equity_usd
    loss = e0 - revaluer.revalue(r).equity_usd  # day-t hypothetical loss, all days
    days = np.arange(window, r.shape[0])
    outcome = loss[days]
    forecasts: dict[tuple[str, float], FloatArray] = {}
    for c in confidences:
        for m in methods:
            forecasts[(m, c)] = np.empty(days.size)
    if "historical" in methods:
        for k, t in enumerate(days):
            for c in confidences:
                forecasts[("historical", c)][k] = var_es(loss[t - window : t], c)[0]
    if "filtered" in methods:
        # every day's window of standardized returns rescaled by that day's vol, one batch
        z, sigma = ewma_standardize(r, lam)
        windows = sliding_window_view(z, window, axis=0)[: days.size]  # [days, n, window]
        scen = (windows * sigma[days][:, :, None]).transpose(0, 2, 1)
        scen = scen.reshape(days.size * window, r.shape[1])  # explicit: 0 assets is valid
        fl = (e0 - revaluer.revalue(scen, progress=progress).equity_usd).reshape(days.size, window)
        for c in confidences:
            forecasts[("filtered", c)][:] = [var_es(row, c)[0] for row in fl]
    param = [m for m in methods if m in ("delta-normal", "cornish-fisher")]
    if param:
        sens = sensitivities(revaluer)
        delta, gamma = sens.equity_delta, sens.equity_gamma
        for k, t in enumerate(days):
            cov = active_covariance(r[t - window : t])
            for c in confidences:
                if "delta-normal" in param:
                    sd = math.sqrt(max(float(delta @ cov @ delta), 0.0))
                    forecasts[("delta-normal", c)][k] = normal_var_es(sd, c)[0]
                if "cornish-fisher" in param:
                    mo = delta_gamma_moments(delta, gamma, cov)
                    forecasts[("cornish-fisher", c)][k] = cornish_fisher_var_es(
                        mo.mean_usd, mo.sd_usd, mo.skew, mo.excess_kurtosis, c
                    )[0]
    return [
        evaluate_forecasts(m, outcome, forecasts[(m, c)], c, window)
        for c in confidences
        for m in methods
    ]
