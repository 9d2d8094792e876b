"""Dynamic haircuts: asset and liability weights derived from volatility, liquidity and size.

For an asset with annualized volatility ``sigma``, a liquidation horizon of ``h`` days and a
one-sided confidence ``p`` (``z = Phi^-1(p)``), the price can fall by

    price_risk_down = 1 - exp(-z * sigma * sqrt(h / 365))       (collateral loses value)
    price_risk_up   = exp(+z * sigma * sqrt(h / 365)) - 1       (a borrow gains value)

before it is sold or bought back, and selling ``qty`` costs ``liquidity = slippage(qty)`` from the
square-root impact model. The weights are

    asset_weight = 1 - price_risk_down - liquidity,   liab_weight = 1 + price_risk_up + liquidity

at maint (horizon ``h``, confidence ``p``) and at init (longer horizon, higher confidence), then:

* init weights scaled by the venue's total deposits and borrows (Mango v4 ``bank.rs``
  ``scaled_init_asset_weight`` / ``scaled_init_liab_weight``; Drift v2
  ``scale_initial_asset_weight_start``): ``iaw * min(1, start / deposits_usd)``,
  ``ilw * max(1, borrows_usd / start)``;
* clipped to ``[floor, cap]``;
* moved at most ``max_step_frac`` (relative) from the previous weights, because risk parameters
  should change by a few percent at a time;
* kept ordered (init asset <= maint asset, init liab >= maint liab).

Each recommendation carries its components, so a user sees why a weight is what it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy.stats import norm

from crossmargin.display import rounded_repr
from crossmargin.errors import InputError
from crossmargin.haircuts.config import DynamicHaircutConfig, VolatilityMethod
from crossmargin.market.liquidity import SqrtImpact
from crossmargin.market.loaders import log_returns, periods_per_year
from crossmargin.market.volatility import (
    ewma_volatility,
    garch_volatility,
    garman_klass_volatility,
    parkinson_volatility,
)

__all__ = [
    "DynamicHaircutConfig",
    "HaircutRecommendation",
    "VolatilityMethod",
    "Weights",
    "daily_volume_qty",
    "estimate_volatility",
    "price_risk",
    "recommend_from_history",
    "recommend_weights",
    "scaled_init_asset_weight",
    "scaled_init_liab_weight",
]


@rounded_repr
@dataclass(frozen=True)
class Weights:
    init_asset_weight: float
    maint_asset_weight: float
    init_liab_weight: float
    maint_liab_weight: float

    def as_dict(self) -> dict[str, float]:
        return {
            "init_asset_weight": self.init_asset_weight,
            "maint_asset_weight": self.maint_asset_weight,
            "init_liab_weight": self.init_liab_weight,
            "maint_liab_weight": self.maint_liab_weight,
        }


@rounded_repr
@dataclass(frozen=True)
class HaircutRecommendation:
    """Recommended weights with the components behind them (fractions of price)."""

    asset: str
    volatility_annual: float
    maint_price_risk_down: float
    maint_price_risk_up: float
    init_price_risk_down: float
    init_price_risk_up: float
    liquidity_frac: float
    deposit_scale: float  # multiplies the init asset weight (<= 1)
    borrow_scale: float  # multiplies the init liability weight (>= 1)
    unconstrained: Weights  # before floors, caps and the step limit
    weights: Weights
    binding: tuple[str, ...]  # which constraints changed a weight

    def to_dict(self) -> dict[str, object]:
        return {
            "asset": self.asset,
            "volatility_annual": self.volatility_annual,
            "components": {
                "maint_price_risk_down": self.maint_price_risk_down,
                "maint_price_risk_up": self.maint_price_risk_up,
                "init_price_risk_down": self.init_price_risk_down,
                "init_price_risk_up": self.init_price_risk_up,
                "liquidity_frac": self.liquidity_frac,
                "deposit_scale": self.deposit_scale,
                "borrow_scale": self.borrow_scale,
            },
            "unconstrained": self.unconstrained.as_dict(),
            "weights": self.weights.as_dict(),
            "binding": list(self.binding),
        }


def price_risk(
    volatility_annual: float, horizon_days: float, confidence: float
) -> tuple[float, float]:
    """(down, up) relative price moves at ``confidence`` over ``horizon_days`` (lognormal)."""
    z = float(norm.ppf(confidence))
    move = z * volatility_annual * math.sqrt(horizon_days / 365.0)
    return 1.0 - math.exp(-move), math.exp(move) - 1.0


def scaled_init_asset_weight(weight: float, deposits_usd: float, start_usd: float | None) -> float:
    """Mango v4 / Drift v2: ``w * start / deposits`` once deposits exceed ``start``."""
    if start_usd is None or deposits_usd <= start_usd:
        return weight
    return weight * start_usd / deposits_usd


def scaled_init_liab_weight(weight: float, borrows_usd: float, start_usd: float | None) -> float:
    """Mango v4: ``w * borrows / start`` once borrows exceed ``start``."""
    if start_usd is None or borrows_usd <= start_usd:
        return weight
    return weight * borrows_usd / start_usd


def recommend_weights(
    asset: str,
    volatility_annual: float,
    config: DynamicHaircutConfig | None = None,
    *,
    position_qty: float = 0.0,
    impact: SqrtImpact | None = None,
    deposits_usd: float = 0.0,
    borrows_usd: float = 0.0,
    previous: Weights | None = None,
) -> HaircutRecommendation:
    """Weights for one asset from its volatility, the liquidity of ``position_qty`` and size."""
    cfg = config or DynamicHaircutConfig()
    if not (math.isfinite(volatility_annual) and volatility_annual >= 0):
        raise InputError(f"{asset}.volatility_annual", volatility_annual, "must be finite >= 0")
    maint_down, maint_up = price_risk(
        volatility_annual, cfg.maint_horizon_days, cfg.maint_confidence
    )
    init_down, init_up = price_risk(volatility_annual, cfg.init_horizon_days, cfg.init_confidence)
    liquidity = float(impact.slippage_frac(position_qty)) if impact is not None else 0.0
    deposit_scale = scaled_init_asset_weight(1.0, deposits_usd, cfg.deposit_scale_start_usd)
    borrow_scale = scaled_init_liab_weight(1.0, borrows_usd, cfg.borrow_scale_start_usd)
    raw = Weights(
        init_asset_weight=(1.0 - init_down - liquidity) * deposit_scale,
        maint_asset_weight=1.0 - maint_down - liquidity,
        init_liab_weight=(1.0 + init_up + liquidity) * borrow_scale,
        maint_liab_weight=1.0 + maint_up + liquidity,
    )
    binding: list[str] = []

    def clip(name: str, value: float, low: float, high: float) -> float:
        result = min(max(value, low), high)
        if result != value:
            binding.append(f"{name}: {'floor' if value < low else 'cap'}")
        return result

    values = {
        "init_asset_weight": clip(
            "init_asset_weight", raw.init_asset_weight, cfg.asset_weight_floor, cfg.asset_weight_cap
        ),
        "maint_asset_weight": clip(
            "maint_asset_weight",
            raw.maint_asset_weight,
            cfg.asset_weight_floor,
            cfg.asset_weight_cap,
        ),
        "init_liab_weight": clip(
            "init_liab_weight", raw.init_liab_weight, cfg.liab_weight_floor, cfg.liab_weight_cap
        ),
        "maint_liab_weight": clip(
            "maint_liab_weight", raw.maint_liab_weight, cfg.liab_weight_floor, cfg.liab_weight_cap
        ),
    }
    if previous is not None:
        for name, value in values.items():
            old = getattr(previous, name)
            low, high = old * (1.0 - cfg.max_step_frac), old * (1.0 + cfg.max_step_frac)
            stepped = min(max(value, low), high)
            if stepped != value:
                binding.append(f"{name}: step limit {cfg.max_step_frac:.0%}")
            values[name] = stepped
        # hard bounds win over the step limit: weights never leave [floor, cap]
        bounds = {
            "init_asset_weight": (cfg.asset_weight_floor, cfg.asset_weight_cap),
            "maint_asset_weight": (cfg.asset_weight_floor, cfg.asset_weight_cap),
            "init_liab_weight": (cfg.liab_weight_floor, cfg.liab_weight_cap),
            "maint_liab_weight": (cfg.liab_weight_floor, cfg.liab_weight_cap),
        }
        for name, (low, high) in bounds.items():
            values[name] = min(max(values[name], low), high)
    # init is never looser than maint, whatever the step limit did
    values["init_asset_weight"] = min(values["init_asset_weight"], values["maint_asset_weight"])
    values["init_liab_weight"] = max(values["init_liab_weight"], values["maint_liab_weight"])
    return HaircutRecommendation(
        asset=asset,
        volatility_annual=volatility_annual,
        maint_price_risk_down=maint_down,
        maint_price_risk_up=maint_up,
        init_price_risk_down=init_down,
        init_price_risk_up=init_up,
        liquidity_frac=liquidity,
        deposit_scale=deposit_scale,
        borrow_scale=borrow_scale,
        unconstrained=raw,
        weights=Weights(**values),
        binding=tuple(binding),
    )


def estimate_volatility(
    frame: pd.DataFrame, method: VolatilityMethod = "ewma", range_window_days: float = 90.0
) -> float:
    """Annualized volatility of a validated price frame by one of the estimators.

    EWMA and GARCH weight the whole history themselves; the range estimators use the last
    ``range_window_days`` so that all four describe the recent market.
    """
    bars = periods_per_year(frame.index)
    if method in ("parkinson", "garman-klass"):
        recent = frame.loc[frame.index > frame.index[-1] - pd.Timedelta(days=range_window_days)]
        if method == "parkinson":
            return parkinson_volatility(recent, bars)
        return garman_klass_volatility(recent, bars)
    returns = log_returns(frame["close"])
    if method == "ewma":
        return ewma_volatility(returns, bars)
    if method == "garch":
        return garch_volatility(returns.to_numpy(), bars).volatility_next
    raise InputError("method", method, "must be ewma, garch, parkinson or garman-klass")


def daily_volume_qty(frame: pd.DataFrame, days: float = 30.0) -> float | None:
    """Average daily traded quantity over the last ``days`` (``volume`` in asset units)."""
    column = next((c for c in ("volume", "volume_qty") if c in frame.columns), None)
    if column is None:
        return None
    start = frame.index[-1] - pd.Timedelta(days=days)
    recent = frame.loc[frame.index > start, column].astype(float)
    if recent.empty or not np.all(np.isfinite(recent)) or recent.sum() <= 0:
        return None
    return float(recent.mean()) * periods_per_year(frame.index) / 365.0


def recommend_from_history(
    asset: str,
    frame: pd.DataFrame,
    config: DynamicHaircutConfig | None = None,
    *,
    method: VolatilityMethod = "ewma",
    position_usd: float = 1_000_000.0,
    impact_k: float = 1.0,
    previous: Weights | None = None,
) -> HaircutRecommendation:
    """Weights for ``asset`` from its price history: volatility, and liquidity from volume.

    Without a volume column the liquidity component is 0 and the result says so in
    ``binding``.
    """
    volatility = estimate_volatility(frame, method)
    price = float(frame["close"].iloc[-1])
    volume = daily_volume_qty(frame)
    impact = None
    if volume is not None:
        impact = SqrtImpact(impact_k, volatility / math.sqrt(365.0), volume)
    rec = recommend_weights(
        asset,
        volatility,
        config,
        position_qty=position_usd / price,
        impact=impact,
        previous=previous,
    )
    if impact is None:
        return replace(rec, binding=(*rec.binding, "no volume column: liquidity not charged"))
    return rec
