"""Option pricing: Black-76 and Black-Scholes (price, Greeks), implied vol, SVI and grid vols.

Vectorized over numpy arrays (one row per option) with numba kernels; raw row and array kernels
(:func:`black76_price_row`, :func:`black76_price_array`, :func:`black76_row`,
:func:`black76_greeks_array`) are callable from other numba code. Formulas and sources:
``docs/pricing.md``.
"""

from __future__ import annotations

from crossmargin.pricing.black76 import (
    DAYS_PER_YEAR,
    T_FLOOR_YRS,
    VOL_POINT,
    OptionValues,
    black76,
    black76_first_invalid_row,
    black76_greeks_array,
    black76_price_array,
    black76_price_row,
    black76_row,
    black_scholes,
)
from crossmargin.pricing.errors import (
    CalendarArbitrageError,
    ExpiredOptionError,
    ImpliedVolUndefinedError,
    PricingInputError,
    SviArbitrageError,
    SviParameterError,
)
from crossmargin.pricing.implied_vol import implied_vol, implied_vol_array, implied_vol_row
from crossmargin.pricing.svi import SviSlice, SviSurface
from crossmargin.pricing.vol_grid import VolGrid

__all__ = [
    "DAYS_PER_YEAR",
    "T_FLOOR_YRS",
    "VOL_POINT",
    "CalendarArbitrageError",
    "ExpiredOptionError",
    "ImpliedVolUndefinedError",
    "OptionValues",
    "PricingInputError",
    "SviArbitrageError",
    "SviParameterError",
    "SviSlice",
    "SviSurface",
    "VolGrid",
    "black76",
    "black76_first_invalid_row",
    "black76_greeks_array",
    "black76_price_array",
    "black76_price_row",
    "black76_row",
    "black_scholes",
    "implied_vol",
    "implied_vol_array",
    "implied_vol_row",
]
