"""Request bodies of the API: every number bounded and finite, every name in a fixed set.

Bounds keep every intermediate finite in float64 (a quantity of 1e12 units at a price of 1e12
USD is 1e24 USD; squared in a variance, 1e48 - far from overflow) and refuse fat fingers.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$")]
AccountId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")]
Qty = Annotated[float, Field(gt=0, le=1e12, allow_inf_nan=False, strict=True)]
SignedQty = Annotated[float, Field(ge=-1e12, le=1e12, allow_inf_nan=False, strict=True)]
Price = Annotated[float, Field(gt=0, le=1e12, allow_inf_nan=False, strict=True)]
Shock = Annotated[float, Field(gt=-1, le=100, allow_inf_nan=False, strict=True)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Transfer(_Body):
    """A deposit or a withdrawal of ``qty`` units of ``asset``."""

    asset: Name
    qty: Qty


class TradeIn(_Body):
    """Buy (qty > 0) or sell (qty < 0) ``qty`` units of ``market``'s underlying; fills at the
    mark, or at ``price`` (settle-asset units) within the deployment's band of the mark."""

    market: Name
    qty: SignedQty
    price: Annotated[float, Field(ge=0, le=1e12, allow_inf_nan=False, strict=True)] | None = None


class QuoteIn(_Body):
    """One source's price of one asset. ``timestamp_s`` defaults to the time of arrival."""

    asset: Name
    source: Name
    price_usd: Price
    confidence_usd: Annotated[float, Field(ge=0, le=1e12, allow_inf_nan=False, strict=True)] = 0.0
    timestamp_s: Annotated[float, Field(ge=0, le=1e11, allow_inf_nan=False, strict=True)] | None = (
        None
    )


class Quotes(_Body):
    quotes: Annotated[list[QuoteIn], Field(min_length=1, max_length=10_000)]


class WhatIfTrade(_Body):
    market: Name
    qty: SignedQty


class WhatIfIn(_Body):
    """A hypothetical change: trades, withdrawals (negative: deposits), other prices."""

    trades: Annotated[list[WhatIfTrade], Field(max_length=100)] = []
    withdrawals: dict[Name, SignedQty] = {}
    prices: dict[Name, Price] = {}


class StressIn(_Body):
    """Relative price moves, e.g. ``{"ETH": -0.2}`` for -20 %."""

    shocks: Annotated[dict[Name, Shock], Field(min_length=1, max_length=64)]


class OpenAccount(_Body):
    id: AccountId
    owner: AccountId
    mode: Literal["cross", "isolated", "portfolio"] = "cross"
    profile: Literal["generic", "derive-pm2", "deribit"] | None = None


class AssetPatch(_Body):
    """New risk parameters of an asset (weights in [0, 10], size factor, tiers)."""

    init_asset_weight: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] | None = None
    maint_asset_weight: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] | None = None
    init_liab_weight: Annotated[float, Field(ge=1, le=10, allow_inf_nan=False)] | None = None
    maint_liab_weight: Annotated[float, Field(ge=1, le=10, allow_inf_nan=False)] | None = None
    imf_factor: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] | None = None
