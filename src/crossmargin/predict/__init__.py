"""Liquidation probability (issue #16): per account, the probability that maint health hits
zero before a horizon; per market, the probability of a liquidation wave in the next minutes.

* :mod:`~crossmargin.predict.firstpassage` - GBM barrier-hitting probabilities (closed form,
  Broadie-Glasserman-Kou correction, Brownian bridge), vectorized;
* :mod:`~crossmargin.predict.baseline` - the analytic baseline per account, from the kernel's
  liquidation prices (dominant risk factor);
* :mod:`~crossmargin.predict.montecarlo` - the whole portfolio through the kernel on simulated
  paths, bridged between steps;
* :mod:`~crossmargin.predict.market` and :mod:`~crossmargin.predict.accounts` - features and
  targets (real ETH minute data; simulated books and paths);
* :mod:`~crossmargin.predict.model`, :mod:`~crossmargin.predict.training`,
  :mod:`~crossmargin.predict.evaluate` - calibrated boosted trees, time-ordered evaluation
  against the baseline and the base rate, the model file;
* :mod:`~crossmargin.predict.api` - JSON-shaped answers for the CLI and a service.

scikit-learn, pandas and matplotlib are imported inside the functions that need them.
See ``docs/prediction.md``.
"""

from __future__ import annotations

from crossmargin.predict.api import parse_horizon, predict_book, predict_wave
from crossmargin.predict.baseline import account_baseline, default_market_model
from crossmargin.predict.firstpassage import (
    barrier_hit_probability,
    bridge_cross_probability,
    hit_probability,
)
from crossmargin.predict.model import load_model
from crossmargin.predict.montecarlo import portfolio_first_passage

__all__ = [
    "account_baseline",
    "barrier_hit_probability",
    "bridge_cross_probability",
    "default_market_model",
    "hit_probability",
    "load_model",
    "parse_horizon",
    "portfolio_first_passage",
    "predict_book",
    "predict_wave",
]
