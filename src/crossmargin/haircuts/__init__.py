"""Haircuts: asset and liability weights scaled by size (imf), collateral tiers, margin brackets."""

from crossmargin.haircuts.weights import (
    bracket_cums,
    bracket_requirement,
    open_interest_scaled_frac,
    size_discounted_asset_weight,
    size_premium_liab_weight,
    tiered_value,
)

__all__ = [
    "bracket_cums",
    "bracket_requirement",
    "open_interest_scaled_frac",
    "size_discounted_asset_weight",
    "size_premium_liab_weight",
    "tiered_value",
]
