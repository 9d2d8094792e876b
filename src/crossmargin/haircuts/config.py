"""Configuration of dynamic haircuts (pydantic only: cheap to import from the book schema)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from crossmargin.errors import InputError

VolatilityMethod = Literal["ewma", "garch", "parkinson", "garman-klass"]


class DynamicHaircutConfig(BaseModel):
    """Parameters of the dynamic weights (a documented default, not any venue's numbers)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    maint_horizon_days: float = Field(1.0, gt=0, description="Time to liquidate, maint.")
    maint_confidence: float = Field(0.99, gt=0.5, lt=1)
    init_horizon_days: float = Field(3.0, gt=0, description="Time to liquidate, init.")
    init_confidence: float = Field(0.995, gt=0.5, lt=1)
    asset_weight_floor: float = Field(0.0, ge=0, le=1)
    asset_weight_cap: float = Field(0.95, ge=0, le=1)
    liab_weight_floor: float = Field(1.05, ge=1)
    liab_weight_cap: float = Field(5.0, ge=1)
    max_step_frac: float = Field(0.05, gt=0, description="Max relative change per update.")
    deposit_scale_start_usd: float | None = Field(
        None, gt=0, description="Mango/Drift: init asset weight scales down above this."
    )
    borrow_scale_start_usd: float | None = Field(
        None, gt=0, description="Mango: init liability weight scales up above this."
    )

    @model_validator(mode="after")
    def _check_bounds(self) -> DynamicHaircutConfig:
        if self.asset_weight_floor > self.asset_weight_cap:
            raise InputError("asset_weight_floor", self.asset_weight_floor, "exceeds the cap")
        if self.liab_weight_floor > self.liab_weight_cap:
            raise InputError("liab_weight_floor", self.liab_weight_floor, "exceeds the cap")
        if self.init_horizon_days < self.maint_horizon_days:
            raise InputError("init_horizon_days", self.init_horizon_days, "below maint horizon")
        if self.init_confidence < self.maint_confidence:
            raise InputError("init_confidence", self.init_confidence, "below maint confidence")
        return self
