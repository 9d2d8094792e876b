"""A frozen copy of the risk kernel as it was before the branch-free rewrite (issue 14).

Kept ONLY as the oracle of tests/margin/test_kernel_oracle.py: plain Python (no numba), the
original row-by-row branches, helpers from crossmargin.haircuts.weights copied as they were.
Never import this from src/. Not to be edited: it defines "the same results as before".
"""

# ruff: noqa
# mypy: ignore-errors

from __future__ import annotations

import math

import numpy as np

from crossmargin.margin.arrays import INIT, MAINT, PNL_SETTLE_NETTED
from crossmargin.pricing.black76 import black76_price_row

SIZE_DISCOUNT_NUMERATOR = 1.1
SIZE_PREMIUM_BASE_FRAC = 0.8


def size_discounted_asset_weight(weight: float, imf_factor: float, size: float) -> float:
    """Asset weight discounted for size, Drift v2 ``calculate_size_discount_asset_weight``.

    ``min(weight, 1.1 / (1 + imf_factor * sqrt(|size|)))``; ``weight`` when ``imf_factor`` is 0.
    """
    if imf_factor <= 0.0:
        return weight
    discounted = SIZE_DISCOUNT_NUMERATOR / (1.0 + imf_factor * math.sqrt(abs(size)))
    return min(weight, discounted)


def size_premium_liab_weight(weight: float, imf_factor: float, size: float) -> float:
    """Liability weight (or margin fraction) raised for size, Drift v2 ``size_premium``.

    ``max(weight, 0.8 * weight + imf_factor * sqrt(|size|))``; ``weight`` when ``imf_factor`` is 0.
    """
    if imf_factor <= 0.0:
        return weight
    premium = SIZE_PREMIUM_BASE_FRAC * weight + imf_factor * math.sqrt(abs(size))
    return max(weight, premium)


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


def position_requirement_usd(
    level: int,
    market: int,
    notional_usd: float,
    abs_qty: float,
    margin_frac: FloatArray,
    market_imf: FloatArray,
    bracket_floor_usd: FloatArray,
    bracket_frac: FloatArray,
    bracket_cum_usd: FloatArray,
    bracket_count: IntArray,
) -> float:
    """Margin requirement of one position, USD: bracketed, then raised by the size premium."""
    n_brackets = bracket_count[market]
    if n_brackets > 1:
        requirement = bracket_requirement_row(
            notional_usd,
            bracket_floor_usd,
            bracket_frac,
            bracket_cum_usd,
            level,
            market,
            n_brackets,
        )
    else:
        requirement = notional_usd * margin_frac[level, market]
    imf = market_imf[market]
    if imf > 0.0:
        premium_frac = size_premium_liab_weight(margin_frac[level, market], imf, abs_qty)
        requirement = max(requirement, notional_usd * premium_frac)
    return requirement


def option_requirement_usd(
    level: int,
    qty: float,
    underlying_usd: float,
    strike_usd: float,
    mark_usd: float,
    is_call: bool,
    init_frac: float,
    init_min_frac: float,
    maint_frac: float,
) -> float:
    r"""Standard (per-position) margin of an option position beyond its mark, USD.

    Deribit's and bit.com's rule for a short of :math:`|q|` on underlying price :math:`S` with
    mark :math:`V` and out-of-the-money amount :math:`OTM = \max(K - S, 0)` (call) or
    :math:`\max(S - K, 0)` (put):

    .. math::

        R_{maint} = |q| \max(f_M S, f_M V), \qquad
        R_{init} = \max(|q| \max(f_I S - OTM, f_{I,min} S), R_{maint})

    (0.075, 0.15, 0.10 by default). The mark itself enters health through the position's PnL,
    so it is not added here. A long option needs no maintenance margin (its premium is its
    worst loss) and pays its premium in full at init, :math:`|q| V` (the one rule changed since
    the freeze: Cboe's "long options: pay in full", applied to the kernel on 2026-11-30).
    """
    if qty >= 0.0:
        return 0.0 if level == MAINT else qty * mark_usd
    abs_qty = -qty
    maint = abs_qty * max(maint_frac * underlying_usd, maint_frac * mark_usd)
    if level == MAINT:
        return maint
    otm = (
        max(strike_usd - underlying_usd, 0.0) if is_call else max(underlying_usd - strike_usd, 0.0)
    )
    initial = abs_qty * max(init_frac * underlying_usd - otm, init_min_frac * underlying_usd)
    return max(initial, maint)


def option_mark_usd(
    underlying_usd: float, strike_usd: float, vol: float, t_yrs: float, is_call: bool
) -> float:
    """Black-76 premium of one option on the underlying's price (forward = spot, df = 1), USD."""
    return black76_price_row(underlying_usd, strike_usd, vol, t_yrs, 1.0, is_call)


def mark_kernel(
    price_usd: FloatArray,
    market_underlying: IntArray,
    market_settle: IntArray,
    market_basis: FloatArray,
    market_is_option: npt.NDArray[np.bool_],
    option_strike: FloatArray,
    option_vol: FloatArray,
    option_t_yrs: FloatArray,
    option_is_call: npt.NDArray[np.bool_],
) -> FloatArray:
    """Mark of every market in USD per unit: basis x underlying, or an option's premium."""
    marks = market_basis * price_usd[market_underlying]
    for m in range(marks.shape[0]):
        # only valued options (finite vol, unexpired): the compile step refuses holding others
        if market_is_option[m] and option_vol[m] > 0.0 and option_t_yrs[m] > 0.0:
            marks[m] = option_mark_usd(
                price_usd[market_underlying[m]],
                option_strike[m] * price_usd[market_settle[m]],
                option_vol[m],
                option_t_yrs[m],
                option_is_call[m],
            )
    return marks


def health_kernel(
    level: int,
    price_usd: FloatArray,
    shock_asset: int,
    shock_mult: FloatArray,
    asset_weight: FloatArray,
    liab_weight: FloatArray,
    asset_imf: FloatArray,
    tier_above_usd: FloatArray,
    tier_factor: FloatArray,
    tier_count: IntArray,
    market_underlying: IntArray,
    market_settle: IntArray,
    market_basis: FloatArray,
    margin_frac: FloatArray,
    market_imf: FloatArray,
    bracket_floor_usd: FloatArray,
    bracket_frac: FloatArray,
    bracket_cum_usd: FloatArray,
    bracket_count: IntArray,
    pnl_weight: FloatArray,
    pnl_imf: FloatArray,
    pnl_convention: int,
    market_is_option: npt.NDArray[np.bool_],
    option_strike: FloatArray,
    option_vol: FloatArray,
    option_t_yrs: FloatArray,
    option_is_call: npt.NDArray[np.bool_],
    option_min_frac: FloatArray,
    bal_start: IntArray,
    bal_asset: IntArray,
    bal_qty: FloatArray,
    pos_start: IntArray,
    pos_market: IntArray,
    pos_qty: FloatArray,
    pos_entry: FloatArray,
    pos_funding: FloatArray,
    pos_settle_row: IntArray,
    weighted_assets: FloatArray,
    weighted_liabs: FloatArray,
    equity: FloatArray,
    bal_contrib: FloatArray,
    pos_contrib: FloatArray,
    group_list: IntArray,
) -> None:
    """Weighted assets, weighted liabilities and equity (all USD) per group, at one level.

    Rows are sorted by group; ``bal_start`` / ``pos_start`` are the CSR offsets of each group's
    rows, so each group is summed in registers and written once to the three output arrays
    (length ``n_groups``; reusable across calls). Sign-dependent terms use ``max(x, 0)`` rather
    than branches: random signs would otherwise cost a branch misprediction per row.

    ``shock_asset >= 0`` multiplies that asset's price by ``shock_mult[group]`` for each group's
    rows (a different move per group: liquidation-price search); ``-1`` applies no shock.
    When ``bal_contrib`` / ``pos_contrib`` have one slot per row (else length 0), each row's
    health contribution is written there: a balance's weighted value (+ asset, - liability); a
    position's weighted PnL minus its requirement ('separate'), or its netted contribution that
    already sits in the settle-asset row ('settle_netted', informational).

    A non-empty ``group_list`` evaluates only those groups (the other output slots are left
    as they were): a solver that revalues a few groups of a large batch pays for those only.
    """
    explain_bal = bal_contrib.shape[0] > 0
    explain_pos = pos_contrib.shape[0] > 0
    netted = pnl_convention == PNL_SETTLE_NETTED
    effective_qty = bal_qty.copy() if netted else bal_qty
    shocked = shock_asset >= 0
    n_groups = weighted_assets.shape[0]
    # per-market prices once per call, not once per position row
    market_mark_usd = mark_kernel(
        price_usd,
        market_underlying,
        market_settle,
        market_basis,
        market_is_option,
        option_strike,
        option_vol,
        option_t_yrs,
        option_is_call,
    )
    market_settle_usd = price_usd[market_settle]

    use_list = group_list.shape[0] > 0
    n_loop = group_list.shape[0] if use_list else n_groups
    for i in range(n_loop):
        g = group_list[i] if use_list else i
        mult = shock_mult[g] if shocked else 1.0
        wa = 0.0
        wl = 0.0
        eq = 0.0
        for r in range(pos_start[g], pos_start[g + 1]):
            m = pos_market[r]
            qty = pos_qty[r]
            mark_usd = market_mark_usd[m]
            settle_px = market_settle_usd[m]
            is_option = market_is_option[m]
            underlying_usd = price_usd[market_underlying[m]]
            if shocked:
                if market_underlying[m] == shock_asset:
                    mark_usd *= mult
                    underlying_usd *= mult
                if market_settle[m] == shock_asset:
                    settle_px *= mult
                if is_option and (
                    market_underlying[m] == shock_asset or market_settle[m] == shock_asset
                ):
                    mark_usd = option_mark_usd(
                        underlying_usd,
                        option_strike[m] * settle_px,
                        option_vol[m],
                        option_t_yrs[m],
                        option_is_call[m],
                    )
            pnl_usd = qty * (mark_usd - pos_entry[r] * settle_px) - pos_funding[r] * settle_px
            abs_qty = abs(qty)
            if is_option:
                requirement = option_requirement_usd(
                    level,
                    qty,
                    underlying_usd,
                    option_strike[m] * settle_px,
                    mark_usd,
                    option_is_call[m],
                    margin_frac[INIT, m],
                    option_min_frac[m],
                    margin_frac[MAINT, m],
                )
            else:
                requirement = position_requirement_usd(
                    level,
                    m,
                    abs_qty * mark_usd,
                    abs_qty,
                    margin_frac,
                    market_imf,
                    bracket_floor_usd,
                    bracket_frac,
                    bracket_cum_usd,
                    bracket_count,
                )
            eq += pnl_usd
            if netted:
                contribution = pnl_usd - requirement
                if contribution > 0.0:
                    contribution *= size_discounted_asset_weight(
                        pnl_weight[level, m], pnl_imf[m], contribution
                    )
                if explain_pos:
                    pos_contrib[r] = contribution
                if settle_px > 0.0:
                    effective_qty[pos_settle_row[r]] += contribution / settle_px
                else:  # a worthless settle asset cannot carry PnL: count it directly
                    wl += max(-contribution, 0.0)
            else:
                gain = max(pnl_usd, 0.0)
                weight = pnl_weight[level, m]
                if pnl_imf[m] > 0.0:
                    weight = size_discounted_asset_weight(weight, pnl_imf[m], gain)
                wa += gain * weight
                wl += max(-pnl_usd, 0.0) + requirement
                if explain_pos:
                    pos_contrib[r] = gain * weight - max(-pnl_usd, 0.0) - requirement

        for r in range(bal_start[g], bal_start[g + 1]):
            a = bal_asset[r]
            px = price_usd[a]
            if shocked and a == shock_asset:
                px *= mult
            eq += bal_qty[r] * px
            qty = effective_qty[r]
            long_value = max(qty, 0.0) * px
            short_value = max(-qty, 0.0) * px
            if tier_count[a] > 0:
                long_value = tiered_value_row(
                    long_value, tier_above_usd, tier_factor, a, tier_count[a]
                )
            aw = asset_weight[level, a]
            lw = liab_weight[level, a]
            if asset_imf[a] > 0.0:
                aw = size_discounted_asset_weight(aw, asset_imf[a], qty)
                lw = size_premium_liab_weight(lw, asset_imf[a], qty)
            wa += long_value * aw
            wl += short_value * lw
            if explain_bal:
                bal_contrib[r] = long_value * aw - short_value * lw
        weighted_assets[g] = wa
        weighted_liabs[g] = wl
        equity[g] = eq
