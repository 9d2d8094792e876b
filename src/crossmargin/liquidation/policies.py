"""Closed-form liquidation formulas of the anchors, in real numbers (USD, units, fractions).

The engine uses :func:`aave_close_factor` for the ``close_factor`` target and
:func:`bankruptcy_price_usd` for auto-deleveraging; the others state a venue's rule so that a
user can check our engine's step against it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatLike = float | npt.NDArray[np.float64]


def aave_close_factor(
    health_factor: FloatLike,
    collateral_usd: FloatLike,
    debt_usd: FloatLike,
    *,
    close_factor: float = 0.5,
    full_close_health_factor: float = 0.95,
    min_usd: float = 2000.0,
) -> FloatLike:
    """Share of a debt one liquidation may repay (Aave v3.3 LiquidationLogic).

    100 % by default; ``close_factor`` (50 %) only while HF > 0.95 and both this reserve's
    collateral and debt are worth at least ``min_usd`` (MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD).
    """
    big = np.logical_and(np.asarray(collateral_usd) >= min_usd, np.asarray(debt_usd) >= min_usd)
    half = np.logical_and(np.asarray(health_factor) > full_close_health_factor, big)
    out = np.where(half, close_factor, 1.0)
    return float(out) if out.ndim == 0 else out


def bankruptcy_price_usd(
    qty: FloatLike, mark_usd: FloatLike, equity_usd: float, share: FloatLike = 1.0
) -> FloatLike:
    """Price at which closing ``qty`` moves ``share`` of the account's equity to zero.

    dYdX v4 (liquidations.go): ``BP = -DNNV - TNC * |DMMR| / TMMR`` per position; with the
    maintenance-margin share ``|DMMR| / TMMR`` written ``share``, the price per unit is
    ``mark - equity * share / qty``. Long 0.1 BTC at $50,000 with -$4,501 USDC: $45,010.
    """
    price: FloatLike = np.asarray(mark_usd) - equity_usd * np.asarray(share) / np.asarray(qty)
    return price


def dydx_fillable_price_usd(
    qty: float,
    mark_usd: float,
    equity_usd: float,
    total_maint_usd: float,
    position_maint_usd: float,
    *,
    bankruptcy_adjustment: float = 1.0,
    spread_to_maint_ratio: float = 0.1,
) -> float:
    """dYdX v4 fillable price: the limit of the liquidation order.

    ``ABR = clamp(BA * (1 - TNC / TMMR), 0, 1)``, ``FP = (PNNV - ABR * SMMR * PMMR) / PS``
    with ``PNNV = qty * mark``, ``PS = qty``.
    """
    abr = min(max(bankruptcy_adjustment * (1.0 - equity_usd / total_maint_usd), 0.0), 1.0)
    return (qty * mark_usd - abr * spread_to_maint_ratio * position_maint_usd) / qty


def dydx_insurance_fund_delta_usd(
    fill_quote_usd: float, bankruptcy_quote_usd: float, max_liquidation_fee_frac: float
) -> float:
    """Insurance-fund change for a liquidation fill (dYdX v4).

    ``d = fill_quote - BP``; the fund pays ``-d`` when ``d <= 0``, else it receives
    ``min(|fill_quote| * max_fee, d)`` (the fee, capped by the surplus).
    """
    surplus = fill_quote_usd - bankruptcy_quote_usd
    if surplus <= 0.0:
        return surplus
    return min(abs(fill_quote_usd) * max_liquidation_fee_frac, surplus)


def drift_base_to_cover_shortage(
    shortage_usd: float,
    price_usd: float,
    maint_margin_frac: float,
    liquidator_fee_frac: float,
    insurance_fee_frac: float,
    quote_price_usd: float = 1.0,
) -> float:
    """Drift v2: ``base = shortage / (P * Q * (mr - f_liq) - P * f_if)``; inf if ``mr <= f_liq``.

    ``P`` is the oracle price in quote units and ``Q`` the quote asset's USD price.
    """
    price_quote = price_usd / quote_price_usd
    denom = price_quote * quote_price_usd * (maint_margin_frac - liquidator_fee_frac) - (
        price_quote * insurance_fee_frac
    )
    if maint_margin_frac <= liquidator_fee_frac or denom <= 0:
        return float("inf")
    return shortage_usd / denom


def spiral_threshold(bonus_frac: float) -> float:
    """Liability/collateral ratio above which a bonus-paying liquidation lowers health.

    Selling collateral worth ``(1 + i)`` per unit of debt repaid only helps while
    ``debt * (1 + i) < collateral``, i.e. ``debt / collateral < 1 / (1 + i)`` (Aave CRV, 2022).
    """
    return 1.0 / (1.0 + bonus_frac)


def drift_perp_if_fee(
    shortage_usd: FloatLike,
    base_qty: FloatLike,
    price_usd: FloatLike,
    margin_ratio_frac: FloatLike,
    liquidator_fee_frac: FloatLike,
    max_if_fee_frac: FloatLike,
) -> FloatLike:
    """Drift v2 adaptive insurance-fund fee of a perp liquidation (``calculate_perp_if_fee``).

    ``min(max_if, 0.95 (mr - f_liq - shortage / (|base| P)))``, floored at 0, with ``mr`` the
    maintenance margin ratio *with* the liquidation buffer. The fee that would take the
    whole remaining margin of the position is never charged (the 0.95 keeps a margin of 5 %).
    Drift's test: shortage $20, 10 base at $100, mr 5 %, f_liq 1 %, cap 5 % -> 1.9 %.
    """
    base = np.abs(np.asarray(base_qty, dtype=np.float64))
    notional = base * np.asarray(price_usd, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_notional = np.where(notional > 0, np.asarray(shortage_usd) / notional, np.inf)
    implied = 0.95 * (np.asarray(margin_ratio_frac) - liquidator_fee_frac - per_notional)
    ok = (notional > 0) & (np.asarray(margin_ratio_frac) > liquidator_fee_frac)
    out = np.where(ok, np.clip(implied, 0.0, max_if_fee_frac), 0.0)
    return float(out) if out.ndim == 0 else out


def drift_spot_if_fee(
    shortage_usd: FloatLike,
    liability_qty: FloatLike,
    liability_price_usd: FloatLike,
    asset_weight: FloatLike,
    asset_multiplier: FloatLike,
    liability_weight: FloatLike,
    liability_multiplier: FloatLike,
    max_if_fee_frac: FloatLike,
) -> FloatLike:
    """Drift v2 adaptive insurance-fund fee of a borrow liquidation (``calculate_spot_if_fee``).

    ``min(max_if, (lw - aw am / lm - shortage / (tokens P)) / lw)``, floored at 0; ``lw`` is the
    maintenance liability weight *plus* the buffer, ``am = 1 + asset liquidator fee``,
    ``lm = 1 - liability liquidator fee``. Drift's test: shortage $5, 1 token at $100, aw 1,
    am 1.01, lw 1.1, cap 5 % -> 3.6363 %.
    """
    lw = np.asarray(liability_weight, dtype=np.float64)
    value = np.abs(np.asarray(liability_qty)) * np.asarray(liability_price_usd)
    aw_eff = np.asarray(asset_weight) * np.asarray(asset_multiplier) / liability_multiplier
    with np.errstate(divide="ignore", invalid="ignore"):
        per_value = np.where(value > 0, np.asarray(shortage_usd) / value, np.inf)
        implied = (lw - aw_eff - per_value) / lw
    ok = (value > 0) & (aw_eff < lw) & (lw > 0)
    out = np.where(ok, np.clip(implied, 0.0, max_if_fee_frac), 0.0)
    return float(out) if out.ndim == 0 else out
