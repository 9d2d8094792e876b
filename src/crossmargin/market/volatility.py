"""Volatility estimators, annualized for markets that trade 24 hours a day, 365 days a year.

* EWMA (J.P. Morgan/Reuters, *RiskMetrics - Technical Document*, 4th ed. 1996, sec. 5.2.1):
  ``s2_t = lam * s2_{t-1} + (1 - lam) * r_{t-1}^2`` with ``lam = 0.94`` for daily data.
* GARCH(1,1) (Bollerslev 1986) fitted by maximum likelihood with the ``arch`` package.
* Parkinson (1980): ``s2 = mean(ln(H/L)^2) / (4 ln 2)``.
* Garman-Klass (1980): ``s2 = mean(0.5 ln(H/L)^2 - (2 ln 2 - 1) ln(C/O)^2)``.

Every function returns a volatility per ``sqrt(year)``; ``periods_per_year`` is 365 for daily
bars, 8,760 for hourly, 525,600 for minute bars (no weekends or closes in crypto).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.signal import lfilter

from crossmargin.errors import InputError

DAILY, HOURLY, MINUTELY = 365.0, 365.0 * 24, 365.0 * 24 * 60
RISKMETRICS_LAMBDA = 0.94


def _returns(
    returns: npt.ArrayLike, minimum: int, name: str = "returns"
) -> npt.NDArray[np.float64]:
    values = np.asarray(returns, dtype=np.float64)
    if values.ndim != 1:
        raise InputError(name, values.shape, "must be one-dimensional")
    if values.size < minimum:
        raise InputError(name, values.size, f"need at least {minimum} observations")
    if not np.all(np.isfinite(values)):
        first = int(np.flatnonzero(~np.isfinite(values))[0])
        raise InputError(f"{name}[{first}]", float(values[first]), "must be finite")
    return values


def ewma_variance(
    returns: npt.ArrayLike, lam: float = RISKMETRICS_LAMBDA, seed_window: int = 20
) -> npt.NDArray[np.float64]:
    """Per-period EWMA variance path; element t uses returns up to t-1 (a forecast for t).

    Seeded with the mean square of the first ``seed_window`` returns; length ``len(returns)+1``
    (the last element forecasts the next, unseen period).
    """
    if not 0.0 < lam < 1.0:
        raise InputError("lam", lam, "must be in (0, 1)")
    r = _returns(returns, 2)
    seed = float(np.mean(r[: max(1, min(seed_window, r.size))] ** 2))
    # the recursion as a first-order IIR filter over squared returns
    filtered, _ = lfilter([1.0 - lam], [1.0, -lam], r * r, zi=[lam * seed])
    return np.concatenate([[seed], filtered])


def ewma_volatility(
    returns: npt.ArrayLike, periods_per_year: float = DAILY, lam: float = RISKMETRICS_LAMBDA
) -> float:
    """Annualized EWMA volatility forecast for the next period."""
    return math.sqrt(float(ewma_variance(returns, lam)[-1]) * periods_per_year)


@dataclass(frozen=True)
class GarchFit:
    """A fitted GARCH(1,1): per-period parameters and the annualized forecast."""

    omega: float
    alpha: float
    beta: float
    nu: float | None  # Student-t degrees of freedom, None for normal
    volatility_next: float  # annualized, next period
    long_run_volatility: float  # annualized sqrt(omega / (1 - alpha - beta)); inf if not stationary
    log_likelihood: float


def garch_volatility(
    returns: npt.ArrayLike, periods_per_year: float = DAILY, dist: Literal["normal", "t"] = "t"
) -> GarchFit:
    """Fit GARCH(1,1) with constant mean by maximum likelihood (``arch`` package).

    Returns are scaled by 100 for the optimizer (``arch``'s advice) and the fit scaled back.
    """
    from arch import arch_model

    r = _returns(returns, 100)
    if dist not in ("normal", "t"):
        raise InputError("dist", dist, "must be 'normal' or 't'")
    model = arch_model(r * 100.0, mean="Constant", vol="GARCH", p=1, q=1, dist=dist)
    result = model.fit(disp="off", show_warning=False)
    params = result.params
    omega = float(params["omega"]) / 1e4
    alpha, beta = float(params["alpha[1]"]), float(params["beta[1]"])
    forecast = result.forecast(horizon=1, reindex=False).variance.to_numpy()[-1, 0] / 1e4
    persistence = alpha + beta
    long_run = (
        math.sqrt(omega / (1.0 - persistence) * periods_per_year) if persistence < 1 else math.inf
    )
    return GarchFit(
        omega=omega,
        alpha=alpha,
        beta=beta,
        nu=float(params["nu"]) if "nu" in params else None,
        volatility_next=math.sqrt(float(forecast) * periods_per_year),
        long_run_volatility=long_run,
        log_likelihood=float(result.loglikelihood),
    )


def _ohlc(frame: pd.DataFrame, columns: tuple[str, ...]) -> list[npt.NDArray[np.float64]]:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError("columns", list(frame.columns), f"missing {missing}")
    arrays = [frame[c].to_numpy(dtype=np.float64) for c in columns]
    for name, values in zip(columns, arrays, strict=True):
        if values.size < 2 or not np.all(np.isfinite(values)) or np.any(values <= 0):
            raise InputError(name, values.size, "need >= 2 finite prices > 0")
    return arrays


def parkinson_volatility(frame: pd.DataFrame, periods_per_year: float = DAILY) -> float:
    """Parkinson (1980) high-low estimator over all bars of ``frame``, annualized."""
    high, low = _ohlc(frame, ("high", "low"))
    variance = float(np.mean(np.log(high / low) ** 2)) / (4.0 * math.log(2.0))
    return math.sqrt(variance * periods_per_year)


def garman_klass_volatility(frame: pd.DataFrame, periods_per_year: float = DAILY) -> float:
    """Garman-Klass (1980) open-high-low-close estimator over all bars, annualized."""
    open_, high, low, close = _ohlc(frame, ("open", "high", "low", "close"))
    hl = np.log(high / low)
    co = np.log(close / open_)
    variance = float(np.mean(0.5 * hl**2 - (2.0 * math.log(2.0) - 1.0) * co**2))
    return math.sqrt(max(variance, 0.0) * periods_per_year)


def close_to_close_volatility(returns: npt.ArrayLike, periods_per_year: float = DAILY) -> float:
    """Sample standard deviation of returns, annualized."""
    r = _returns(returns, 2)
    return float(np.std(r, ddof=1)) * math.sqrt(periods_per_year)
