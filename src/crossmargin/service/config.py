"""Deployment settings of the live engine (validated; every field names its unit)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from crossmargin.liquidation.config import LiquidationConfig
from crossmargin.market.oracle import OracleConfig

PositiveS = Annotated[float, Field(gt=0, le=86_400, allow_inf_nan=False)]


class ServiceConfig(BaseModel):
    """How the live engine margins, calls and liquidates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    policy: Literal["generic", "mango", "drift", "aave", "dydx"] = Field(
        "generic", description="Liquidation policy preset of the deployment."
    )
    insurance_fund_usd: Annotated[float, Field(ge=0, le=1e15, allow_inf_nan=False)] = Field(
        250_000.0, description="Insurance fund at genesis, USD (later it lives in the ledger)."
    )
    margin_call_ratio: Annotated[float, Field(ge=1, le=10, allow_inf_nan=False)] = Field(
        1.1,
        description="Margin call when maint weighted assets / weighted liabilities falls below "
        "this (or init health < 0).",
    )
    margin_call_repeat_s: PositiveS = Field(
        300.0, description="An account is margin-called again only after this long (hysteresis)."
    )
    auto_liquidate: bool = Field(True, description="Liquidate accounts with maint health < 0.")
    liquidation_retry_s: PositiveS = Field(
        5.0, description="An account the engine could not restore is retried after this long."
    )
    trade_price_band_frac: Annotated[float, Field(gt=0, le=0.5, allow_inf_nan=False)] = Field(
        0.05, description="A trade's price must lie within this fraction of the mark."
    )
    haircut_interval_s: PositiveS = Field(
        60.0, description="Dynamic haircuts are recomputed from recent ticks this often."
    )
    haircut_sample_s: PositiveS = Field(
        1.0, description="Aggregated prices are sampled this often for the haircut volatility."
    )
    haircut_min_change: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = Field(
        0.005, description="A recomputed weight is applied only if it moves at least this much."
    )
    dynamic_haircuts: bool = Field(
        False, description="Recompute weights from the ticks' volatility and apply them."
    )
    oracle: OracleConfig = Field(default_factory=OracleConfig)

    def liquidation(self, insurance_fund_usd: float) -> LiquidationConfig:
        return LiquidationConfig.preset(self.policy, insurance_fund_usd=insurance_fund_usd)
