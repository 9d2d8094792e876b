r"""Train, calibrate and evaluate on held-out time, for both targets; the models side by side.

Every run splits rows in time order (:func:`crossmargin.predict.model.time_split`): train (60 %),
calibration (20 %), test (20 %); the market target drops the last :math:`k` rows before each
later part (their targets overlap it). On the test part four forecasts are scored
(:mod:`crossmargin.predict.evaluate`):

* **learned** - the calibrated boosted trees;
* **analytic** - the first-passage baseline (accounts) or its market analogue (the probability
  of reaching the nearest liquidation cluster), as computed, without any fitting;
* **analytic, recalibrated** - the same, mapped through an isotonic fit on the calibration part
  (what the analytic number is worth once its scale is corrected: ranking unchanged);
* **base rate** - the event rate of the train and calibration parts, for every row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from crossmargin.errors import InputError
from crossmargin.predict.evaluate import Reliability, Scores, reliability, score
from crossmargin.predict.model import (
    HGB_PARAMS,
    LiquidationModel,
    TimeSplit,
    TreeScorer,
    fit_calibrated,
    permutation_importance,
    time_split,
    training_range,
    utc_now,
    versions,
)

FloatArray = npt.NDArray[np.float64]
MODELS = ("learned", "analytic", "analytic, recalibrated", "base rate")


@dataclass(frozen=True, eq=False)
class Evaluation:
    """Held-out scores of the four forecasts, their reliability, the learned importances."""

    kind: str
    scores: list[Scores]
    reliability: list[Reliability]
    importance: list[dict[str, Any]]
    split: TimeSplit
    calibration: str
    period: dict[str, Any] = field(default_factory=dict)  # e.g. test period in time
    forecasts: dict[str, FloatArray] = field(default_factory=dict, repr=False)
    outcomes: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))

    def by_model(self) -> dict[str, Scores]:
        return {s.model: s for s in self.scores}

    @property
    def learned_beats_baseline_brier(self) -> bool:
        table = self.by_model()
        return table["learned"].brier < table["analytic"].brier

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "calibration": self.calibration,
            "split": self.split.to_dict(),
            "period": self.period,
            "scores": [s.to_dict() for s in self.scores],
            "reliability": [r.to_dict() for r in self.reliability],
            "importance": self.importance,
            "learned_beats_analytic_brier": self.learned_beats_baseline_brier,
        }


def fit_and_evaluate(
    x: FloatArray,
    y: npt.NDArray[Any],
    analytic: FloatArray,
    names: Sequence[str],
    split: TimeSplit,
    kind: str,
    calibration: str = "auto",
    seed: int = 0,
    params: dict[str, Any] | None = None,
    importance_repeats: int = 3,
) -> tuple[TreeScorer, Any, Evaluation, FloatArray]:
    """Fit on ``split.train``, calibrate on ``split.calibration``, score on ``split.test``.
    Returns ``(scorer, estimator, evaluation, reference)``."""
    from sklearn.isotonic import IsotonicRegression

    x = np.ascontiguousarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    tr, ca, te = (slice(*split.train), slice(*split.calibration), slice(*split.test))
    estimator, method = fit_calibrated(
        x[tr], y[tr], x[ca], y[ca], calibration, seed=seed, params=params
    )
    scorer = TreeScorer.from_sklearn(estimator, x.shape[1])
    learned = scorer.proba(x[te])
    check = np.asarray(estimator.predict_proba(x[te][:2000])[:, 1], dtype=np.float64)
    if not np.allclose(check, learned[:2000], rtol=0, atol=1e-12):  # never expected
        raise RuntimeError("compiled scorer disagrees with scikit-learn")
    recal = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
    recal.fit(analytic[ca], y[ca])
    base_rate = float(np.concatenate([y[tr], y[ca]]).mean())
    forecasts = {
        "learned": learned,
        "analytic": np.asarray(analytic[te], dtype=np.float64),
        "analytic, recalibrated": np.asarray(recal.predict(analytic[te]), dtype=np.float64),
        "base rate": np.full(te.stop - te.start, base_rate),
    }
    outcomes = y[te]
    evaluation = Evaluation(
        kind=kind,
        scores=[score(name, outcomes, forecasts[name], base_rate) for name in MODELS],
        reliability=[reliability(name, outcomes, forecasts[name]) for name in MODELS],
        importance=permutation_importance(
            scorer, x[te], outcomes, names, repeats=importance_repeats, seed=seed
        ),
        split=split,
        calibration=method,
        forecasts=forecasts,
        outcomes=outcomes,
    )
    with np.errstate(all="ignore"):
        reference = np.nanmedian(np.where(np.isfinite(x[tr]), x[tr], np.nan), axis=0)
    return scorer, estimator, evaluation, np.asarray(reference, dtype=np.float64)


def train_market(
    data: Any,
    minutes: int = 15,
    quantile: float = 0.95,
    calibration: str = "auto",
    seed: int = 0,
    params: dict[str, Any] | None = None,
) -> tuple[LiquidationModel, Evaluation]:
    """The liquidation-wave model on a :class:`~crossmargin.predict.market.MinuteData`."""
    from crossmargin.predict.market import (
        MIN_TRAIN_ROWS,
        WARMUP,
        future_sum,
        market_features,
    )

    if not (0.5 <= quantile < 1.0):
        raise InputError("quantile", quantile, "must be in [0.5, 1)")
    features = market_features(data, minutes)
    n = data.n
    usable = n - minutes  # the last rows have no observed future
    if usable - WARMUP < MIN_TRAIN_ROWS:
        raise InputError(
            "data",
            n,
            f"too short: need at least {WARMUP + MIN_TRAIN_ROWS + minutes} minutes "
            f"({WARMUP} warm-up + {MIN_TRAIN_ROWS} rows + {minutes} ahead)",
        )
    split = time_split(usable, embargo=minutes, start=WARMUP)
    future = future_sum(data.liq_usd, minutes)
    threshold = float(np.quantile(future[slice(*split.train)], quantile))
    y = (future[:usable] > threshold).astype(np.int64)
    x = features.values[:usable]
    scorer, estimator, evaluation, reference = fit_and_evaluate(
        x,
        y,
        features.analytic[:usable],
        features.names,
        split,
        "market",
        calibration,
        seed,
        params,
    )
    times = data.time_ns
    evaluation = _with_period(evaluation, times, split)
    model = LiquidationModel(
        kind="market",
        feature_names=features.names,
        scorer=scorer,
        reference=reference,
        target={
            "definition": f"liquidated notional of the next {minutes} minutes > threshold",
            "threshold_usd": threshold,
            "quantile": quantile,
            "threshold_from": "training part only",
            "event_rate_train": float(y[slice(*split.train)].mean()),
        },
        horizon={"minutes": minutes},
        data={**data.source, "split": split.to_dict(), "period_split": evaluation.period},
        metrics=evaluation.to_dict(),
        importance=evaluation.importance,
        params={
            **HGB_PARAMS,
            **(params or {}),
            "seed": seed,
            "calibration": evaluation.calibration,
        },
        created=utc_now(),
        versions=versions(),
        estimator=estimator,
        feature_range=training_range(x[slice(*split.train)]),
    )
    return model, evaluation


def _with_period(
    evaluation: Evaluation, times: npt.NDArray[np.int64], split: TimeSplit
) -> Evaluation:
    import pandas as pd

    def iso(i: int) -> str:
        return str(pd.Timestamp(int(times[min(i, times.size - 1)]), tz="UTC").isoformat())

    period = {
        part: [iso(lo), iso(hi - 1)]
        for part, (lo, hi) in (
            ("train", split.train),
            ("calibration", split.calibration),
            ("test", split.test),
        )
    }
    return Evaluation(**{**evaluation.__dict__, "period": period})


def train_accounts(
    history: Any,
    calibration: str = "auto",
    seed: int = 0,
    params: dict[str, Any] | None = None,
) -> tuple[LiquidationModel, Evaluation]:
    """The account-liquidation model on an :class:`~crossmargin.predict.accounts.AccountHistory`
    (split by epoch: train, calibration and test are whole, consecutive epochs)."""
    epochs = int(history.epoch.max()) + 1
    per = history.values.shape[0] // epochs
    e1, e2 = int(epochs * 0.6), int(epochs * 0.8)
    if min(e1, e2 - e1, epochs - e2) < 1:
        raise InputError("epochs", epochs, "too short: train, calibration and test need epochs")
    split = TimeSplit((0, e1 * per), (e1 * per, e2 * per), (e2 * per, epochs * per), 0)
    scorer, estimator, evaluation, reference = fit_and_evaluate(
        history.values,
        history.target,
        history.analytic,
        history.names,
        split,
        "accounts",
        calibration,
        seed,
        params,
    )
    period = {
        "train": [0, e1 - 1],
        "calibration": [e1, e2 - 1],
        "test": [e2, epochs - 1],
        "unit": "epoch",
    }
    evaluation = Evaluation(**{**evaluation.__dict__, "period": period})
    model = LiquidationModel(
        kind="accounts",
        feature_names=tuple(history.names),
        scorer=scorer,
        reference=reference,
        target={
            "definition": "some margin group's maint health < 0 at a monitoring time within "
            "the horizon",
            "event_rate_train": float(history.target[slice(*split.train)].mean()),
        },
        horizon={"days": history.horizon_days, "monitor_days": history.monitor_days},
        data={**history.info, "split": split.to_dict(), "period_split": period},
        metrics=evaluation.to_dict(),
        importance=evaluation.importance,
        params={
            **HGB_PARAMS,
            **(params or {}),
            "seed": seed,
            "calibration": evaluation.calibration,
            "feature_method": "linear",
        },
        created=utc_now(),
        versions=versions(),
        estimator=estimator,
        feature_range=training_range(history.values[slice(*split.train)]),
    )
    return model, evaluation


def scores_table(evaluation: Evaluation) -> list[list[str]]:
    """Rows of the held-out table: model, AUC, AP, Brier, skill, log loss, mean forecast."""

    def f(x: float, digits: int = 4) -> str:
        return "n/a" if not math.isfinite(x) else f"{x:.{digits}f}"

    return [
        [
            s.model,
            f(s.roc_auc, 3),
            f(s.average_precision, 3),
            f(s.brier, 5),
            f(s.brier_skill, 3),
            f(s.log_loss, 4),
            f(s.mean_forecast, 4),
        ]
        for s in evaluation.scores
    ]


SCORE_HEADER = (
    "model",
    "ROC AUC",
    "avg precision",
    "Brier",
    "Brier skill",
    "log loss",
    "mean forecast",
)

__all__ = [
    "MODELS",
    "SCORE_HEADER",
    "Evaluation",
    "fit_and_evaluate",
    "scores_table",
    "train_accounts",
    "train_market",
]
