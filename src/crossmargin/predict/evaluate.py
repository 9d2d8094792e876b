r"""Scores of probability forecasts on held-out data, side by side.

For outcomes :math:`y_i \in \{0, 1\}` and forecasts :math:`p_i`:

* **ROC AUC** - the probability that a random positive is ranked above a random negative
  (0.5: no skill; undefined when the held-out set has one class: reported as NaN);
* **average precision** - the area under the precision-recall curve (step-wise,
  scikit-learn's ``average_precision_score``); a constant forecast scores the event rate;
* **Brier score** :math:`\frac1n\sum (p_i - y_i)^2` and its skill
  :math:`1 - B/B_{\text{base}}` against the constant forecast of the training period's event
  rate (scored on the same held-out rows);
* **log loss** :math:`-\frac1n\sum y_i\ln p_i + (1-y_i)\ln(1-p_i)` with :math:`p` clipped to
  :math:`[10^{-6}, 1 - 10^{-6}]` (an analytic probability of exactly 0 for an event that happens
  would otherwise be infinite);
* the **reliability diagram** - forecasts grouped into bins between their deciles (ties kept
  together), mean forecast against observed frequency per bin (Murphy & Winkler 1977).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
LOG_LOSS_CLIP = 1e-6


@dataclass(frozen=True)
class Scores:
    """One model's held-out scores."""

    model: str
    n: int
    positives: int
    roc_auc: float
    average_precision: float
    brier: float
    brier_skill: float  # 1 - brier / brier of the base-rate forecast
    log_loss: float
    mean_forecast: float

    def to_dict(self) -> dict[str, Any]:
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in self.__dict__.items()
        }


def roc_auc(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """scikit-learn's ``roc_auc_score``; NaN when the outcomes have a single class."""
    yy = np.asarray(y, dtype=np.float64)
    if yy.size == 0 or yy.min() == yy.max():
        return math.nan
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(yy, np.asarray(p, dtype=np.float64)))


def average_precision(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """scikit-learn's ``average_precision_score``; NaN without a positive."""
    yy = np.asarray(y, dtype=np.float64)
    if not yy.any():
        return math.nan
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(yy, np.asarray(p, dtype=np.float64)))


def brier(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    yy = np.asarray(y, dtype=np.float64)
    return float(np.mean((np.asarray(p, dtype=np.float64) - yy) ** 2))


def log_loss(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    yy = np.asarray(y, dtype=np.float64)
    pp = np.clip(np.asarray(p, dtype=np.float64), LOG_LOSS_CLIP, 1.0 - LOG_LOSS_CLIP)
    return float(-np.mean(yy * np.log(pp) + (1.0 - yy) * np.log1p(-pp)))


def score(model: str, y: npt.ArrayLike, p: npt.ArrayLike, base_rate: float) -> Scores:
    """All scores of forecast ``p``; ``base_rate`` is the training period's event rate."""
    yy = np.asarray(y, dtype=np.float64)
    pp = np.asarray(p, dtype=np.float64)
    base_brier = brier(yy, np.full(yy.shape, base_rate))
    b = brier(yy, pp)
    return Scores(
        model=model,
        n=int(yy.size),
        positives=int(yy.sum()),
        roc_auc=roc_auc(yy, pp),
        average_precision=average_precision(yy, pp),
        brier=b,
        brier_skill=1.0 - b / base_brier if base_brier > 0 else math.nan,
        log_loss=log_loss(yy, pp),
        mean_forecast=float(pp.mean()),
    )


@dataclass(frozen=True)
class Reliability:
    """Equal-count bins: mean forecast, observed frequency and count per bin."""

    model: str
    mean_forecast: list[float]
    observed: list[float]
    count: list[int]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def reliability(model: str, y: npt.ArrayLike, p: npt.ArrayLike, bins: int = 10) -> Reliability:
    """Bins between the forecast's quantiles (``bins`` of them; tied forecasts stay in one bin,
    so a step-shaped calibrated forecast gives fewer, larger bins and a constant one a single
    point): mean forecast, observed frequency and count per non-empty bin."""
    yy = np.asarray(y, dtype=np.float64)
    pp = np.asarray(p, dtype=np.float64)
    edges = np.unique(np.quantile(pp, np.linspace(0.0, 1.0, bins + 1))) if pp.size else pp
    if edges.size < 2:
        return Reliability(model, [float(pp.mean())], [float(yy.mean())], [int(pp.size)])
    which = np.clip(np.searchsorted(edges, pp, side="right") - 1, 0, edges.size - 2)
    count = np.bincount(which, minlength=edges.size - 1)
    forecast = np.bincount(which, weights=pp, minlength=edges.size - 1)
    observed = np.bincount(which, weights=yy, minlength=edges.size - 1)
    keep = count > 0
    return Reliability(
        model,
        [float(v) for v in forecast[keep] / count[keep]],
        [float(v) for v in observed[keep] / count[keep]],
        [int(c) for c in count[keep]],
    )


__all__ = [
    "Reliability",
    "Scores",
    "average_precision",
    "brier",
    "log_loss",
    "reliability",
    "roc_auc",
    "score",
]
