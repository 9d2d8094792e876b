"""Weight and margin-fraction functions: size premium, progressive collateral tiers, brackets.

These are the only implementations of these formulas: the risk kernel calls them per row, and
they can be called directly from Python with floats. Quantities are in units of the asset (or of
the underlying for a perp); values in USD.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from crossmargin._numba import jit, jit_no_refcount

#: Drift v2's size-discount numerator: asset weight = min(w, 1.1 / (1 + imf * sqrt(size))).
SIZE_DISCOUNT_NUMERATOR = 1.1
#: Drift v2's size premium keeps 80 % of the base weight: max(w, 0.8 w + imf * sqrt(size)).
SIZE_PREMIUM_BASE_FRAC = 0.8


@jit
def size_discounted_asset_weight(weight: float, imf_factor: float, size: float) -> float:
    """Asset weight discounted for size, Drift v2 ``calculate_size_discount_asset_weight``.

    ``min(weight, 1.1 / (1 + imf_factor * sqrt(|size|)))``; ``weight`` when ``imf_factor`` is 0.
    """
    if imf_factor <= 0.0:
        return weight
    discounted = SIZE_DISCOUNT_NUMERATOR / (1.0 + imf_factor * math.sqrt(abs(size)))
    return min(weight, discounted)


@jit
def size_premium_liab_weight(weight: float, imf_factor: float, size: float) -> float:
    """Liability weight (or margin fraction) raised for size, Drift v2 ``size_premium``.

    ``max(weight, 0.8 * weight + imf_factor * sqrt(|size|))``; ``weight`` when ``imf_factor`` is 0.
    """
    if imf_factor <= 0.0:
        return weight
    premium = SIZE_PREMIUM_BASE_FRAC * weight + imf_factor * math.sqrt(abs(size))
    return max(weight, premium)


@jit_no_refcount
def tiered_value_row(
    value_usd: float,
    tier_above_usd: npt.NDArray[np.float64],
    tier_factor: npt.NDArray[np.float64],
    row: int,
    n_tiers: int,
) -> float:
    """Collateral value after progressive tiers (Binance tiered collateral ratio).

    Value up to the first threshold counts fully; value between threshold k and k+1 counts at
    ``tier_factor[row, k]``: ``sum_k factor_k * (min(V, above_{k+1}) - above_k)^+``. The tables
    are 2-D (one row per asset) so the kernel indexes them without creating array views.
    """
    counted = 0.0
    edge = 0.0
    factor = 1.0
    for k in range(n_tiers):
        next_edge = tier_above_usd[row, k]
        if value_usd <= next_edge:
            break
        counted += (next_edge - edge) * factor
        edge = next_edge
        factor = tier_factor[row, k]
    return counted + (value_usd - edge) * factor


def tiered_value(
    value_usd: float, tier_above_usd: npt.ArrayLike, tier_factor: npt.ArrayLike, n_tiers: int
) -> float:
    """:func:`tiered_value_row` for one asset's 1-D tier arrays."""
    above = np.asarray(tier_above_usd, dtype=np.float64).reshape(1, -1)
    factor = np.asarray(tier_factor, dtype=np.float64).reshape(1, -1)
    return float(tiered_value_row(float(value_usd), above, factor, 0, int(n_tiers)))


@jit_no_refcount
def bracket_requirement_row(
    notional_usd: float,
    floor_usd: npt.NDArray[np.float64],
    frac: npt.NDArray[np.float64],
    cum_usd: npt.NDArray[np.float64],
    level: int,
    row: int,
    n_brackets: int,
) -> float:
    """Margin requirement with notional brackets: ``N * frac_k - cum_k`` for the bracket k of N.

    ``floor_usd[row, 0] == 0`` holds the base fraction; ``frac`` and ``cum_usd`` are indexed
    ``[level, row, k]`` (``cum`` from :func:`bracket_cums`). Whole tables plus indices, rather
    than per-row slices, keep the kernel free of array views (each costs reference counting).
    """
    k: int = 0
    for j in range(1, n_brackets):
        if notional_usd >= floor_usd[row, j]:
            k = j
        else:
            break
    return float(notional_usd * frac[level, row, k] - cum_usd[level, row, k])


def bracket_requirement(
    notional_usd: float,
    floor_usd: npt.ArrayLike,
    frac: npt.ArrayLike,
    cum_usd: npt.ArrayLike,
    n_brackets: int,
) -> float:
    """:func:`bracket_requirement_row` for one market's 1-D bracket arrays."""
    return float(
        bracket_requirement_row(
            float(notional_usd),
            np.asarray(floor_usd, dtype=np.float64).reshape(1, -1),
            np.asarray(frac, dtype=np.float64).reshape(1, 1, -1),
            np.asarray(cum_usd, dtype=np.float64).reshape(1, 1, -1),
            0,
            0,
            int(n_brackets),
        )
    )


def open_interest_scaled_frac(
    frac: float, open_interest_usd: float, lower_cap_usd: float, upper_cap_usd: float
) -> float:
    """Initial margin fraction raised linearly with open interest (dYdX v4 OIMF).

    ``f + (1 - f) * clip((OI - lower) / (upper - lower), 0, 1)``; ``f`` when ``upper == 0``.
    At ``OI >= upper`` the fraction is 1 (no leverage).
    """
    if upper_cap_usd <= 0.0 or open_interest_usd <= lower_cap_usd:
        return frac
    if open_interest_usd >= upper_cap_usd:
        return 1.0
    share = (open_interest_usd - lower_cap_usd) / (upper_cap_usd - lower_cap_usd)
    return frac + (1.0 - frac) * share


def bracket_cums(floor_usd: npt.ArrayLike, frac: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Maintenance amounts that make the bracketed requirement continuous at every edge.

    ``cum_0 = 0``, ``cum_k = floor_k * (frac_k - frac_{k-1}) + cum_{k-1}`` (Binance margin tiers).
    """
    floors = np.asarray(floor_usd, dtype=np.float64)
    fracs = np.asarray(frac, dtype=np.float64)
    steps = np.zeros_like(fracs)
    steps[1:] = floors[1:] * np.diff(fracs)
    return np.cumsum(steps)
