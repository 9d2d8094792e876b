r"""One call per question, JSON-shaped answers: what the CLI prints and what a service would serve.

* :func:`predict_book` - per account of a book: the analytic first-passage probability (exact
  liquidation prices, continuous monitoring) with its dominant factor, optionally the bridged
  Monte Carlo of the whole portfolio and the learned probability with its drivers;
* :func:`predict_wave` - per minute of a minute file: the learned liquidation-wave probability,
  its drivers and the analytic analogue, for the last minutes (a market-level alert);
* :func:`parse_horizon` - ``"15min"``, ``"1h"``, ``"1d"`` ... to days.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crossmargin.book.schema import Book
from crossmargin.errors import InputError, NotSupportedError
from crossmargin.locations.view import located_view
from crossmargin.margin.arrays import compile_accounts, compile_market
from crossmargin.predict.baseline import (
    MarketModel,
    account_baseline,
    default_market_model,
    group_barriers,
    market_from_returns,
)
from crossmargin.predict.located import joint_barriers, tie_located

UNITS_DAYS = {
    "s": 1.0 / 86_400.0,
    "min": 1.0 / 1_440.0,
    "m": 1.0 / 1_440.0,
    "h": 1.0 / 24.0,
    "d": 1.0,
    "w": 7.0,
}
_HORIZON = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|min|m|h|d|w)\s*$")
#: longest horizon accepted (a first-passage forecast beyond a year is not this tool's job)
MAX_HORIZON_DAYS = 366.0


def parse_horizon(text: str, field: str = "--horizon") -> float:
    """``"1h"`` -> 1/24 day. Units: s, min (or m), h, d, w; the number must be > 0."""
    match = _HORIZON.match(str(text))
    if not match:
        raise InputError(field, text, "expected a number and a unit (s, min, h, d, w), e.g. 1h")
    days = float(match.group(1)) * UNITS_DAYS[match.group(2)]
    if not (0.0 < days <= MAX_HORIZON_DAYS):
        raise InputError(field, text, f"must be > 0 and at most {MAX_HORIZON_DAYS:g} days")
    return days


def horizon_label(days: float) -> str:
    from crossmargin.market.loaders import interval_label

    return interval_label(days * 86_400.0)


def market_model(
    tables: Any, returns: Sequence[str | Path] | None, proxies: Mapping[str, str] | None
) -> MarketModel:
    return (
        market_from_returns(tables, returns, proxies) if returns else default_market_model(tables)
    )


def predict_book(
    book: Book,
    horizon_days: float | None = None,
    returns: Sequence[str | Path] | None = None,
    proxies: Mapping[str, str] | None = None,
    model: Any = None,
    paths: int = 0,
    steps: int = 24,
    seed: int = 0,
    accounts: Sequence[str] | None = None,
    top: int = 3,
) -> dict[str, Any]:
    """Per account: baseline, optional Monte Carlo (``paths`` > 0) and learned probability
    (``model``: an ``accounts`` model; the horizon is the model's, and a different
    ``horizon_days`` is refused)."""
    if model is not None:
        if model.kind != "accounts":
            raise InputError("--model", model.kind, "predict BOOK needs an accounts model")
        trained = float(model.horizon["days"])
        if horizon_days is not None and not math.isclose(horizon_days, trained, rel_tol=1e-9):
            raise InputError(
                "--horizon",
                horizon_label(horizon_days),
                f"the model was trained for {horizon_label(trained)}: omit --horizon or give it",
            )
        horizon_days = trained
    horizon = 1.0 / 24.0 if horizon_days is None else horizon_days
    view = located_view(book)  # remote lots and transfers in flight as located rows (#17)
    book = view.book
    if view.base_of and model is not None:
        raise NotSupportedError(
            "--model: the learned model was trained on books without located collateral "
            "(remote lots or transfers in flight); use the baseline or --paths"
        )
    chosen = [book.account(a) for a in accounts] if accounts else list(book.accounts)
    if not chosen:
        raise InputError("accounts", 0, "the book has no accounts")
    tables = compile_market(book)
    arrays = compile_accounts(tables, chosen)
    market = tie_located(market_model(tables, returns, proxies), tables.asset_symbols)
    barriers = None
    if view.base_of:  # every lot of an asset moves together: one factor, joint barriers
        barriers = joint_barriers(view, tables, arrays, group_barriers(tables, arrays))
    base = account_baseline(tables, arrays, market, horizon, barriers=barriers)
    out_accounts: list[dict[str, Any]] = [
        {"account": arrays.account_ids[i], "baseline": base.row(i, tables.asset_symbols)}
        for i in range(arrays.n_accounts)
    ]
    notes = [
        "baseline: GBM first passage of the dominant factor to its exact liquidation price, "
        "continuous monitoring, zero drift",
    ]
    if paths:
        from crossmargin.predict.montecarlo import portfolio_first_passage

        mc = portfolio_first_passage(tables, arrays, market, horizon, steps, paths, seed)
        for i, row in enumerate(out_accounts):
            row["monte_carlo"] = {
                "probability": float(mc.probability[i]),
                "stderr": float(mc.stderr[i]),
                "probability_observed": float(mc.probability_observed[i]),
            }
        notes.append(
            f"Monte Carlo: {paths} correlated GBM+jump paths of {steps} steps through the kernel, "
            "Brownian-bridge correction between steps"
        )
    model_info = None
    if model is not None:
        from crossmargin.predict.accounts import account_features

        features = account_features(
            tables,
            arrays,
            market,
            horizon,
            float(model.horizon.get("monitor_days", 0.0)),
            method=str(model.params.get("feature_method", "linear")),
        )
        if tuple(model.feature_names) != features.names:
            raise InputError("model.features", list(model.feature_names)[:4], "unknown features")
        learned = model.predict_proba(features.values)
        drivers = model.drivers(features.values, top=top)
        # an account below maint health now is liquidatable now, whatever the trees say
        # (the training books hold no such account: they are outside what the model saw)
        now = base.maint_health_usd < 0.0
        now |= (base.probability == 1.0) & (base.distance_sd == 0.0)
        outside = model.outside_range(features.values)
        for i, row in enumerate(out_accounts):
            row["learned"] = {
                "probability": 1.0 if now[i] else float(learned[i]),
                "drivers": [] if now[i] else drivers[i],
                "outside_training_range": [] if now[i] else outside[i],
            }
        model_info = {
            "kind": model.kind,
            "created": model.created,
            "horizon": model.horizon,
            "content_sha256": model.content_sha256 or None,
        }
        notes.append(
            "learned: calibrated boosted trees (1 for an account liquidatable now); drivers are "
            "occlusion effects p(x) - p(x with the feature at its training median); '!' marks "
            "an account with features outside the training range (the trees extrapolate flat)"
        )
    return {
        "horizon": horizon_label(horizon),
        "horizon_days": horizon,
        "market": market.to_dict(tables.asset_symbols),
        "accounts": out_accounts,
        "model": model_info,
        "notes": notes,
    }


def predict_wave(data: Any, model: Any, last: int = 5, top: int = 3) -> dict[str, Any]:
    """The last ``last`` minutes of ``data``: learned wave probability with drivers and the
    analytic analogue (the model's ``minutes`` ahead)."""
    from crossmargin.predict.market import WARMUP, market_features

    if model.kind != "market":
        raise InputError("--model", model.kind, "--market needs a market (wave) model")
    if not (isinstance(last, int) and last >= 1):
        raise InputError("--last", last, "must be an integer >= 1")
    minutes = int(model.horizon["minutes"])
    if data.n < WARMUP + 1:
        raise InputError("data", data.n, f"too short: need at least {WARMUP + 1} minutes")
    features = market_features(data, minutes)
    rows = features.values[-last:]
    p = model.predict_proba(rows)
    drivers = model.drivers(rows, top=top)
    import pandas as pd

    times = [pd.Timestamp(int(t), tz="UTC").isoformat() for t in data.time_ns[-last:]]
    threshold = float(model.target["threshold_usd"])
    return {
        "minutes_ahead": minutes,
        "threshold_usd": threshold,
        "rows": [
            {
                "time": times[i],
                "probability": float(p[i]),
                "analytic": float(features.analytic[-last:][i]),
                "drivers": drivers[i],
            }
            for i in range(len(times))
        ],
        "base_rate_train": float(model.target.get("event_rate_train", np.nan)),
    }


__all__ = ["horizon_label", "parse_horizon", "predict_book", "predict_wave"]
