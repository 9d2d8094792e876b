"""Validated configuration of the liquidation engine, with the anchors' policies as presets.

A policy answers four questions:

* **when** an account is liquidatable (always: maint health < 0) and **how far** to take it
  (``target``): maint health back above a buffer (Drift v2, 2 % of liabilities), init health
  >= 0 (Mango v4's "liquidation end" health), or a fixed close factor of the debt (Aave v3);
* **at what price**: the liquidator takes the position over at the oracle (Mango, Drift, Aave)
  or the engine sells into depth (dYdX, exchanges) - chosen by the execution model;
* **for what fee**: a liquidator bonus and an insurance-fund (platform) fee, both fractions of
  the value closed or repaid at the oracle, per asset and per market;
* **who pays a bankruptcy**: the insurance fund first, then socialized across the other
  depositors / open interest, or auto-deleveraging (ADL) against the most profitable, most
  leveraged opposite positions.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from crossmargin.errors import InputError

NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Frac = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]


class FeeSchedule(BaseModel):
    """Liquidation fees, fractions of the value closed (positions) or repaid (borrows)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    liquidator_frac: Frac = Field(0.0, description="Liquidator bonus.")
    insurance_frac: Frac = Field(0.0, description="Insurance-fund / platform fee.")


class LiquidationConfig(BaseModel):
    """How the engine liquidates. The defaults are our documented 'generic' policy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: Literal["maint_buffer", "init", "close_factor"] = Field(
        "maint_buffer",
        description=(
            "maint_buffer: maint health >= buffer_frac * maint weighted liabilities (Drift v2); "
            "init: init health >= 0 (Mango v4 liquidation end); close_factor: repay a fixed "
            "share of one debt per step (Aave v3)."
        ),
    )
    buffer_frac: Frac = Field(0.02, description="Drift's liquidation margin buffer (2 %).")
    buffer_on: Literal["requirement", "liability_value"] = Field(
        "requirement",
        description=(
            "requirement: the buffer is buffer_frac x the maint weighted liabilities; "
            "liability_value (Drift v2 MarginContext::liquidation): buffer_frac x (each perp's "
            "notional + each borrow's unweighted value + each negative PnL), i.e. added to the "
            "perp margin ratio and to the borrow liability weight."
        ),
    )
    insurance_fee_rule: Literal["fixed", "drift_adaptive"] = Field(
        "fixed",
        description=(
            "fixed: the fee schedule's insurance_frac; drift_adaptive (Drift v2 "
            "calculate_perp_if_fee / calculate_spot_if_fee): lowered, per step, so that the "
            "fee cannot push the account into bankruptcy; insurance_frac is the cap."
        ),
    )
    close_factor: Annotated[float, Field(gt=0, le=1)] = Field(
        0.5, description="Aave v3: share of a debt repaid per step when HF > the threshold."
    )
    full_close_health_factor: Annotated[float, Field(gt=0, le=1)] = Field(
        0.95, description="Aave v3: below this health factor the close factor is 100 %."
    )
    close_factor_min_usd: NonNegative = Field(
        2000.0,
        description="Aave v3.3: the 50 % cap applies only when collateral and debt are >= this.",
    )
    fees: FeeSchedule = Field(
        default_factory=lambda: FeeSchedule(liquidator_frac=0.01, insurance_frac=0.005),
        description="Default fees (generic: 1 % bonus, 0.5 % insurance fee).",
    )
    asset_fees: dict[str, FeeSchedule] = Field(
        default_factory=dict, description="Fees per collateral asset sold (overrides)."
    )
    market_fees: dict[str, FeeSchedule] = Field(
        default_factory=dict, description="Fees per market closed (overrides)."
    )
    insurance_fee_on: Literal["asset", "liability"] = Field(
        "asset",
        description=(
            "Borrow repayment: the insurance fee is extra collateral taken (Mango v4) or a "
            "share of the repayment kept (Drift v2, weighted like the liability)."
        ),
    )
    lot_qty: dict[str, Annotated[float, Field(gt=0, allow_inf_nan=False)]] = Field(
        default_factory=dict,
        description="Lot size per market or asset: amounts are rounded up to whole lots.",
    )
    max_steps: Annotated[int, Field(ge=1, le=10_000)] = Field(
        64, description="Most liquidation steps per account before the engine stops."
    )
    insurance_fund_usd: NonNegative = Field(0.0, description="Insurance fund at the start.")
    bankruptcy: Literal["socialize", "adl"] = Field(
        "socialize",
        description=(
            "After the insurance fund: socialize the loss pro rata over the other depositors "
            "of the asset / the market's open interest, or auto-deleverage unfilled positions "
            "against opposite positions ranked by profit ratio x leverage."
        ),
    )
    perp_loss_to: Literal["depositors", "open_interest"] = Field(
        "depositors",
        description=(
            "After the insurance fund, the part of a deficit that an insolvent account lost "
            "on a market: socialized over the depositors of the asset it sits in, or over "
            "that market's open interest, both sides pro rata to |qty| (Drift v2 "
            "resolve_perp_bankruptcy: a cumulative funding delta loss / (|long| + |short|))."
        ),
    )
    dust_usd: NonNegative = Field(
        1e-9, description="Amounts below this many USD are treated as zero (float tolerance)."
    )

    def fee_for_market(self, symbol: str) -> FeeSchedule:
        return self.market_fees.get(symbol, self.fees)

    def fee_for_asset(self, symbol: str) -> FeeSchedule:
        return self.asset_fees.get(symbol, self.fees)

    def lot(self, symbol: str) -> float:
        return self.lot_qty.get(symbol, 0.0)

    @staticmethod
    def preset(name: str, **overrides: object) -> LiquidationConfig:
        """A named policy: ``generic``, ``mango``, ``drift``, ``aave`` or ``dydx``."""
        presets: dict[str, dict[str, object]] = {
            "generic": {},
            # Mango v4: liquidate until init health ("liquidation end") >= 0, at the oracle
            # (fees are per bank in Mango; its unit tests use 0, set asset_fees for a venue's)
            "mango": {"target": "init", "insurance_fee_on": "asset", "fees": FeeSchedule()},
            # Drift v2: maint health back above a 2 % buffer on liability value; IF fee kept
            # from the repayment, adaptive below the market's cap (Drift's parameter is per
            # market; its tests use 1 %: set market_fees / asset_fees for a venue's)
            "drift": {
                "target": "maint_buffer",
                "buffer_frac": 0.02,
                "buffer_on": "liability_value",
                "insurance_fee_on": "liability",
                "insurance_fee_rule": "drift_adaptive",
                "fees": FeeSchedule(liquidator_frac=0.01, insurance_frac=0.01),
                "perp_loss_to": "open_interest",
            },
            # Aave v3: close factor 50 % (100 % below HF 0.95), bonus 5 %, protocol fee 10 %
            "aave": {
                "target": "close_factor",
                "fees": FeeSchedule(liquidator_frac=0.045, insurance_frac=0.005),
            },
            # dYdX v4: sell into the book; fee up to 1.5 % to the insurance fund; then ADL
            "dydx": {
                "target": "maint_buffer",
                "buffer_frac": 0.0,
                "fees": FeeSchedule(liquidator_frac=0.0, insurance_frac=0.015),
                "bankruptcy": "adl",
            },
        }
        if name not in presets:
            raise InputError("policy", name, f"unknown policy; choose from {sorted(presets)}")
        data = {**presets[name], **overrides}
        return LiquidationConfig.model_validate(data)
