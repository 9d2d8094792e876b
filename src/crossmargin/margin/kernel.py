r"""The risk kernel: weighted assets, weighted liabilities and equity of every margin group.

One pass over the position rows, one over the balance rows, accumulating into per-group sums
(rows carry their group id). Everything else in crossmargin - account reports, isolated buckets,
what-if, liquidation prices, the capital-efficiency comparison, the benchmark - calls this
function; a single account is a batch of one.

For margin level :math:`L` (init or maint), group :math:`g`, prices :math:`P_a` (USD):

.. math::

    WA_g = \sum_{b: q_b > 0} T_a(q_b P_a) \, \hat w^A_{a,L}(q_b)
           + \sum_{p: u_p > 0} u_p \, \omega_{m,L}(u_p)

    WL_g = \sum_{b: q_b < 0} |q_b| P_a \, \hat w^L_{a,L}(|q_b|)
           + \sum_p R_{m,L}(|q_p| M_m, |q_p|) + \sum_{p: u_p < 0} |u_p|

with :math:`T_a` the progressive collateral tiers, :math:`\hat w` the size-adjusted weights
(Drift v2 imf), :math:`M_m` the mark in USD,
:math:`u_p = q_p (M_m - e_p S_m) - f_p S_m` the unrealized PnL in USD (:math:`S_m` the settle
asset's USD price, :math:`e_p` entry and :math:`f_p` unsettled funding in settle units) and
:math:`R_{m,L}` the bracketed, size-premium margin requirement. Health is :math:`WA - WL`.

An option's mark :math:`M_m` is its Black-76 premium on the underlying's price (forward = spot,
no discounting) with the market's mark vol, revalued at every price the kernel is given (a
shocked underlying moves the premium); its requirement is the standard option rule
(:func:`position_requirement_usd`): nothing for a long, a fraction of the underlying's price less
the out-of-the-money amount for a short.

With the ``settle_netted`` convention (Mango v4) the position terms instead add
:math:`c_p = u_p - R_{m,L}` (times the PnL weight when positive) to the group's settle-asset
balance, which is then weighted like any balance.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba
import numpy as np
import numpy.typing as npt

from crossmargin.haircuts.weights import SIZE_DISCOUNT_NUMERATOR, SIZE_PREMIUM_BASE_FRAC
from crossmargin.margin.arrays import (
    INIT,
    MAINT,
    PNL_SETTLE_NETTED,
    FloatArray,
    IntArray,
    MarketTables,
    PortfolioArrays,
)
from crossmargin.pricing._jit import kernel as pricing_kernel
from crossmargin.pricing.black76 import black76_price_row

NO_SHOCK = np.ones(0)  # also 'no output' for the optional row-contribution arrays
NO_GROUPS = np.zeros(0, dtype=np.int64)  # evaluate every group


@pricing_kernel  # numpy error model, as the pricer is written for (a jit caller would raise)
def option_mark_usd(
    underlying_usd: float, strike_usd: float, vol: float, t_yrs: float, is_call: bool
) -> float:
    """Black-76 premium of one option on the underlying's price (forward = spot, df = 1), USD."""
    return black76_price_row(underlying_usd, strike_usd, vol, t_yrs, 1.0, is_call)


@pricing_kernel
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


def market_marks_usd(tables: MarketTables, price_usd: FloatArray | None = None) -> FloatArray:
    """Mark of every market in USD per unit at ``price_usd`` (default: the book's prices)."""
    marks: FloatArray = mark_kernel(
        tables.price_usd if price_usd is None else price_usd,
        tables.market_underlying,
        tables.market_settle,
        tables.market_basis,
        tables.market_is_option,
        tables.option_strike,
        tables.option_vol,
        tables.option_t_yrs,
        tables.option_is_call,
    )
    return marks


#: per-market values of one call (:func:`market_table`), one row of ``MK_COLS`` per market
MK_MARK, MK_SETTLE, MK_UNDERLYING, MK_STRIKE, MK_FRAC, MK_IMF, MK_PNL_W, MK_PNL_IMF = range(8)
MK_IS_OPTION, MK_IS_CALL, MK_INIT_FRAC, MK_MAINT_FRAC, MK_MIN_FRAC, MK_N_BRACKETS = range(8, 14)
#: sizes from which the size premium / the PnL size discount may bind (:func:`premium_from`)
MK_PREMIUM_FROM, MK_PNL_DISCOUNT_FROM = 14, 15
MK_COLS = 16  # padded to two cache lines
#: per-asset values of one call (:func:`asset_table`)
AS_PRICE, AS_WEIGHT, AS_LIAB_WEIGHT, AS_IMF, AS_N_TIERS, AS_DISCOUNT_FROM, AS_PREMIUM_FROM = range(
    7
)
AS_COLS = 8
#: groups per task of the parallel variant (large enough that scheduling costs nothing)
PARALLEL_BLOCK_GROUPS = 4096

_ROW_OPTIONS: dict[str, Any] = {"cache": True, "nogil": True, "error_model": "numpy"}
F = TypeVar("F", bound=Callable[..., Any])


def _row_jit(func: F) -> F:
    """nopython, cached, numpy error model (a division needs no zero-check branch; every
    divisor here is >= 1 or tested), no fast-math: results stay bit-identical to a plain
    evaluation order."""
    return cast(F, numba.njit(**_ROW_OPTIONS)(func))


def _row_helper_jit(func: F) -> F:
    """:func:`_row_jit`, inlined into the caller in numba's IR, for helpers called once per row:
    a call would pass a dozen arguments and count references to every array (atomic
    operations that cost more than the row; measured 82 ms per 1M-account tick called, 56 ms
    inlined). After editing one, delete the ``*.nbi``/``*.nbc`` caches of its callers."""
    return cast(F, numba.njit(inline="always", **_ROW_OPTIONS)(func))


def _parallel_jit(func: F) -> F:
    return cast(F, numba.njit(parallel=True, **_ROW_OPTIONS)(func))


@_row_jit
def market_table(
    level: int,
    price_usd: FloatArray,
    market_underlying: IntArray,
    market_settle: IntArray,
    market_basis: FloatArray,
    margin_frac: FloatArray,
    market_imf: FloatArray,
    bracket_count: IntArray,
    pnl_weight: FloatArray,
    pnl_imf: FloatArray,
    market_is_option: npt.NDArray[np.bool_],
    option_strike: FloatArray,
    option_vol: FloatArray,
    option_t_yrs: FloatArray,
    option_is_call: npt.NDArray[np.bool_],
    option_min_frac: FloatArray,
) -> FloatArray:
    """Everything a position row needs from its market at one level and one price vector,
    ``[n_markets, MK_COLS]``: computed once per call, so the row loop reads one cache line per
    row instead of a dozen tables (and never prices an option)."""
    marks = mark_kernel(
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
    n = marks.shape[0]
    table = np.empty((n, MK_COLS))  # every column is written below
    for m in range(n):
        settle_usd = price_usd[market_settle[m]]
        table[m, MK_MARK] = marks[m]
        table[m, MK_SETTLE] = settle_usd
        table[m, MK_UNDERLYING] = price_usd[market_underlying[m]]
        table[m, MK_STRIKE] = option_strike[m] * settle_usd
        table[m, MK_FRAC] = margin_frac[level, m]
        table[m, MK_IMF] = market_imf[m]
        table[m, MK_PNL_W] = pnl_weight[level, m]
        table[m, MK_PNL_IMF] = pnl_imf[m]
        table[m, MK_IS_OPTION] = 1.0 if market_is_option[m] else 0.0
        table[m, MK_IS_CALL] = 1.0 if option_is_call[m] else 0.0
        table[m, MK_INIT_FRAC] = margin_frac[INIT, m]
        table[m, MK_MAINT_FRAC] = margin_frac[MAINT, m]
        table[m, MK_MIN_FRAC] = option_min_frac[m]
        table[m, MK_N_BRACKETS] = bracket_count[m]
        table[m, MK_PREMIUM_FROM] = premium_from(margin_frac[level, m], market_imf[m])
        table[m, MK_PNL_DISCOUNT_FROM] = discount_from(pnl_weight[level, m], pnl_imf[m])
    return table


@_row_jit
def asset_table(
    level: int,
    price_usd: FloatArray,
    asset_weight: FloatArray,
    liab_weight: FloatArray,
    asset_imf: FloatArray,
    tier_count: IntArray,
) -> FloatArray:
    """Price, weights, imf and tier count of every asset at one level, ``[n_assets, AS_COLS]``."""
    n = price_usd.shape[0]
    table = np.empty((n, AS_COLS))  # the padding column is never read
    for a in range(n):
        table[a, AS_PRICE] = price_usd[a]
        table[a, AS_WEIGHT] = asset_weight[level, a]
        table[a, AS_LIAB_WEIGHT] = liab_weight[level, a]
        table[a, AS_IMF] = asset_imf[a]
        table[a, AS_N_TIERS] = tier_count[a]
        table[a, AS_DISCOUNT_FROM] = discount_from(asset_weight[level, a], asset_imf[a])
        table[a, AS_PREMIUM_FROM] = premium_from(liab_weight[level, a], asset_imf[a])
    return table


@_row_jit
def tier_hinges(
    tier_above_usd: FloatArray, tier_factor: FloatArray, tier_count: IntArray
) -> FloatArray:
    r"""Progressive tiers (Binance tiered collateral ratio) as hinges: the tiered value of
    :math:`V` is :math:`V - \sum_k (f_{k-1} - f_k) (V - above_k)^+` (:math:`f_{-1} = 1`),
    ``[n_assets, max_tiers]`` of :math:`f_{k-1} - f_k` (0 past an asset's tier count), so
    every row runs the same arithmetic over the padded table."""
    n, max_tiers = tier_above_usd.shape
    hinge = np.zeros((n, max_tiers))
    for a in range(n):
        previous = 1.0
        for k in range(tier_count[a]):
            hinge[a, k] = previous - tier_factor[a, k]
            previous = tier_factor[a, k]
    return hinge


@_row_helper_jit
def position_requirement_usd(
    level: int,
    market: int,
    qty: float,
    mark_usd: float,
    underlying_usd: float,
    strike_usd: float,
    mk: FloatArray,
    bracket_floor_usd: FloatArray,
    bracket_frac: FloatArray,
    bracket_cum_usd: FloatArray,
) -> float:
    r"""Margin requirement of one position beyond its mark, USD, without a data-dependent branch.

    A perp or future: the bracketed requirement :math:`N f_k - c_k` for the bracket :math:`k` of
    the notional :math:`N = |q| M` (``N f_0`` with one bracket), raised by the size premium to
    at least :math:`N \max(f, 0.8 f + imf \sqrt{|q|})` (Drift v2) when the market's imf > 0.
    The bracket is found by running over every column of the padded table (floors padded with
    +inf), counting the leading floors the notional reaches: the same trip count for every row.

    An option: Deribit's and bit.com's standard margin for a short of :math:`|q|` on underlying
    price :math:`S` with mark :math:`V` and out-of-the-money amount
    :math:`OTM = \max(K - S, 0)` (call) or :math:`\max(S - K, 0)` (put):

    .. math::

        R_{maint} = |q| \max(f_M S, f_M V), \qquad
        R_{init} = \max(|q| \max(f_I S - OTM, f_{I,min} S), R_{maint})

    (0.075, 0.15, 0.10 by default). A long needs no maintenance margin (its premium is its worst
    loss) but pays its premium in full at init: :math:`R_{init} = |q| V` (Cboe Margin Manual,
    "long puts or calls: pay for the option in full"; Deribit and bit.com debit the premium
    from the available balance). The mark
    itself enters health through the position's PnL. Both rules are evaluated and the market's
    kind selects one (a select, not a branch: the row mix is random).
    """
    m = market
    abs_qty = abs(qty)
    notional_usd = abs_qty * mark_usd
    frac = mk[m, MK_FRAC]
    n_brackets = int(mk[m, MK_N_BRACKETS])
    k = 0
    reached = True
    for j in range(1, bracket_floor_usd.shape[1]):
        reached = reached & (j < n_brackets) & (notional_usd >= bracket_floor_usd[m, j])
        k += reached
    bracketed = notional_usd * bracket_frac[level, m, k] - bracket_cum_usd[level, m, k]
    linear = bracketed if n_brackets > 1 else notional_usd * frac
    imf = mk[m, MK_IMF]
    premium_frac = frac
    if abs_qty > mk[m, MK_PREMIUM_FROM]:  # rare: below it max(f, 0.8 f + imf sqrt|q|) is f
        premium_frac = max(frac, SIZE_PREMIUM_BASE_FRAC * frac + imf * math.sqrt(abs_qty))
    premium = max(linear, notional_usd * premium_frac)
    future_req = premium if imf > 0.0 else linear

    maint_frac = mk[m, MK_MAINT_FRAC]
    option_maint = abs_qty * max(maint_frac * underlying_usd, maint_frac * mark_usd)
    otm_call = max(strike_usd - underlying_usd, 0.0)
    otm_put = max(underlying_usd - strike_usd, 0.0)
    otm = otm_call if mk[m, MK_IS_CALL] != 0.0 else otm_put
    option_init = max(
        abs_qty
        * max(mk[m, MK_INIT_FRAC] * underlying_usd - otm, mk[m, MK_MIN_FRAC] * underlying_usd),
        option_maint,
    )
    short_req = option_maint if level == MAINT else option_init
    # a long pays its premium in full at init (Cboe margin manual; Deribit's premium paid up
    # front): the mark is counted through the PnL, so requiring |q| V leaves -|q| entry
    long_req = 0.0 if level == MAINT else abs_qty * mark_usd
    option_req = short_req if qty < 0.0 else long_req
    return option_req if mk[m, MK_IS_OPTION] != 0.0 else future_req


@_row_helper_jit
def discounted_weight(weight: float, imf: float, size: float, discount_from: float) -> float:
    """:func:`~crossmargin.haircuts.weights.size_discounted_asset_weight`, computed only from
    ``|size| > discount_from`` (:func:`discount_from`; below it the result is ``weight``)."""
    out = weight
    if abs(size) > discount_from:  # rare: a square root and a division saved on most rows
        out = min(weight, SIZE_DISCOUNT_NUMERATOR / (1.0 + imf * math.sqrt(abs(size))))
    return out


#: relative safety margin of the thresholds below: far above the rounding of the formulas
#: (1e-16), so a size under a threshold gives the base weight exactly
THRESHOLD_MARGIN = 1e-9
#: sizes above this always take the exact path (keeps the squared thresholds finite)
THRESHOLD_CAP = 1e300
#: a threshold's root below this would square into the subnormal range (found by hypothesis):
#: then every size takes the exact path
THRESHOLD_FLOOR = 1e-100


@_row_jit
def discount_from(weight: float, imf: float) -> float:
    r"""Size above which :math:`\min(w, 1.1 / (1 + imf \sqrt{s}))` can be below :math:`w`:
    :math:`((1.1 / w - 1) / imf)^2` less a margin; ``inf`` when imf is 0 (never discounted),
    0 (always compute) when :math:`w` is within 1e-4 of 1.1 or not a number."""
    if not imf > 0.0:
        return math.inf
    if weight <= 0.0:
        return math.inf  # min(w <= 0, a positive discount) is w
    gap = SIZE_DISCOUNT_NUMERATOR / weight - 1.0
    if not gap >= 1e-4:
        return 0.0
    ratio = gap / imf
    if ratio < THRESHOLD_FLOOR:  # its square would lose the margin to underflow
        return 0.0
    return min(ratio**2, THRESHOLD_CAP) * (1.0 - THRESHOLD_MARGIN)


@_row_jit
def premium_from(weight: float, imf: float) -> float:
    r"""Size above which :math:`\max(w, 0.8 w + imf \sqrt{s})` can exceed :math:`w`:
    :math:`(0.2 w / imf)^2` less a margin; ``inf`` when imf is 0, 0 when :math:`w` is not
    positive."""
    if not imf > 0.0:
        return math.inf
    if not weight > 0.0:
        return 0.0
    ratio = (1.0 - SIZE_PREMIUM_BASE_FRAC) * weight / imf
    if ratio < THRESHOLD_FLOOR:  # its square would lose the margin to underflow
        return 0.0
    return min(ratio**2, THRESHOLD_CAP) * (1.0 - THRESHOLD_MARGIN)


@_row_jit
def health_range(
    level: int,
    lo: int,
    hi: int,
    group_list: IntArray,
    shock_asset: int,
    shock_mult: FloatArray,
    netted: bool,
    mk: FloatArray,
    at: FloatArray,
    market_underlying: IntArray,
    market_settle: IntArray,
    option_strike: FloatArray,
    option_vol: FloatArray,
    option_t_yrs: FloatArray,
    option_is_call: npt.NDArray[np.bool_],
    bracket_floor_usd: FloatArray,
    bracket_frac: FloatArray,
    bracket_cum_usd: FloatArray,
    tier_above_usd: FloatArray,
    tier_hinge: FloatArray,
    bal_start: IntArray,
    bal_asset: IntArray,
    bal_qty: FloatArray,
    effective_qty: FloatArray,
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
) -> None:
    """The rows of groups ``lo .. hi - 1`` (of ``group_list`` when it is not empty): the one row
    function behind :func:`health_kernel` and :func:`health_kernel_parallel`.

    Per-market and per-asset values come from ``mk`` / ``at`` (:func:`market_table`,
    :func:`asset_table`); tiers (:func:`tier_hinges`) and brackets run a fixed number of
    times over padded tables;
    sign- and kind-dependent terms are selects. What remains branches only on per-call flags
    (shock, convention, explain), which the CPU predicts.
    """
    explain_bal = bal_contrib.shape[0] > 0
    explain_pos = pos_contrib.shape[0] > 0
    shocked = shock_asset >= 0
    use_list = group_list.shape[0] > 0
    max_tiers = tier_above_usd.shape[1]
    for i in range(lo, hi):
        g = group_list[i] if use_list else i
        mult = shock_mult[g] if shocked else 1.0
        wa = 0.0
        wl = 0.0
        eq = 0.0
        for r in range(pos_start[g], pos_start[g + 1]):
            m = pos_market[r]
            qty = pos_qty[r]
            mark_usd = mk[m, MK_MARK]
            settle_px = mk[m, MK_SETTLE]
            underlying_usd = mk[m, MK_UNDERLYING]
            strike_usd = mk[m, MK_STRIKE]
            if shocked:  # a per-call flag: a predictable branch
                hit_underlying = market_underlying[m] == shock_asset
                hit_settle = market_settle[m] == shock_asset
                if hit_underlying:
                    mark_usd *= mult
                    underlying_usd *= mult
                if hit_settle:
                    settle_px *= mult
                    strike_usd = option_strike[m] * settle_px
                if mk[m, MK_IS_OPTION] != 0.0 and (hit_underlying or hit_settle):
                    mark_usd = option_mark_usd(
                        underlying_usd,
                        option_strike[m] * settle_px,
                        option_vol[m],
                        option_t_yrs[m],
                        option_is_call[m],
                    )
            pnl_usd = qty * (mark_usd - pos_entry[r] * settle_px) - pos_funding[r] * settle_px
            requirement = position_requirement_usd(
                level,
                m,
                qty,
                mark_usd,
                underlying_usd,
                strike_usd,
                mk,
                bracket_floor_usd,
                bracket_frac,
                bracket_cum_usd,
            )
            eq += pnl_usd
            if netted:
                contribution = pnl_usd - requirement
                weighted = contribution * discounted_weight(
                    mk[m, MK_PNL_W], mk[m, MK_PNL_IMF], contribution, mk[m, MK_PNL_DISCOUNT_FROM]
                )
                contribution = weighted if contribution > 0.0 else contribution
                if explain_pos:
                    pos_contrib[r] = contribution
                if settle_px > 0.0:
                    effective_qty[pos_settle_row[r]] += contribution / settle_px
                else:  # a worthless settle asset cannot carry PnL: count it directly
                    wl += max(-contribution, 0.0)
            else:
                gain = max(pnl_usd, 0.0)
                weight = discounted_weight(
                    mk[m, MK_PNL_W], mk[m, MK_PNL_IMF], gain, mk[m, MK_PNL_DISCOUNT_FROM]
                )
                wa += gain * weight
                wl += max(-pnl_usd, 0.0) + requirement
                if explain_pos:
                    pos_contrib[r] = gain * weight - max(-pnl_usd, 0.0) - requirement

        for r in range(bal_start[g], bal_start[g + 1]):
            a = bal_asset[r]
            px = at[a, AS_PRICE]
            if shocked:
                px = px * mult if a == shock_asset else px
            eq += bal_qty[r] * px
            qty = effective_qty[r]
            long_value = max(qty, 0.0) * px
            short_value = max(-qty, 0.0) * px
            # progressive tiers (Binance): the padded table's columns, every row the same count
            # progressive tiers: every row runs every column of the padded hinge table
            tiered = long_value
            for k in range(max_tiers):
                tiered -= tier_hinge[a, k] * max(long_value - tier_above_usd[a, k], 0.0)
            long_value = tiered
            imf = at[a, AS_IMF]
            aw = discounted_weight(at[a, AS_WEIGHT], imf, qty, at[a, AS_DISCOUNT_FROM])
            lw = at[a, AS_LIAB_WEIGHT]
            if abs(qty) > at[a, AS_PREMIUM_FROM]:  # rare: below it the premium is lw
                lw = max(lw, SIZE_PREMIUM_BASE_FRAC * lw + imf * math.sqrt(abs(qty)))
            wa += long_value * aw
            wl += short_value * lw
            if explain_bal:
                bal_contrib[r] = long_value * aw - short_value * lw
        weighted_assets[g] = wa
        weighted_liabs[g] = wl
        equity[g] = eq


@_row_jit
def _prepare(
    level: int,
    price_usd: FloatArray,
    asset_weight: FloatArray,
    liab_weight: FloatArray,
    asset_imf: FloatArray,
    tier_count: IntArray,
    market_underlying: IntArray,
    market_settle: IntArray,
    market_basis: FloatArray,
    margin_frac: FloatArray,
    market_imf: FloatArray,
    bracket_count: IntArray,
    pnl_weight: FloatArray,
    pnl_imf: FloatArray,
    market_is_option: npt.NDArray[np.bool_],
    option_strike: FloatArray,
    option_vol: FloatArray,
    option_t_yrs: FloatArray,
    option_is_call: npt.NDArray[np.bool_],
    option_min_frac: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    mk = market_table(
        level,
        price_usd,
        market_underlying,
        market_settle,
        market_basis,
        margin_frac,
        market_imf,
        bracket_count,
        pnl_weight,
        pnl_imf,
        market_is_option,
        option_strike,
        option_vol,
        option_t_yrs,
        option_is_call,
        option_min_frac,
    )
    at = asset_table(level, price_usd, asset_weight, liab_weight, asset_imf, tier_count)
    return mk, at


@_row_jit
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
    (length ``n_groups``; reusable across calls). Per-market values (marks, option premia,
    fractions) are computed once per call (:func:`market_table`), and every row runs the same
    instructions (:func:`health_range`): a random mix of options, futures, bracket counts and
    signs costs no branch misprediction.

    ``shock_asset >= 0`` multiplies that asset's price by ``shock_mult[group]`` for each group's
    rows (a different move per group: liquidation-price search); ``-1`` applies no shock.
    When ``bal_contrib`` / ``pos_contrib`` have one slot per row (else length 0), each row's
    health contribution is written there: a balance's weighted value (+ asset, - liability); a
    position's weighted PnL minus its requirement ('separate'), or its netted contribution that
    already sits in the settle-asset row ('settle_netted', informational).

    A non-empty ``group_list`` evaluates only those groups (the other output slots are left
    as they were): a solver that revalues a few groups of a large batch pays for those only.
    """
    netted = pnl_convention == PNL_SETTLE_NETTED
    # netted PnL is added to the settle-asset rows: a copy (the input stays unchanged)
    effective_qty = bal_qty.copy() if netted else bal_qty
    hinge = tier_hinges(tier_above_usd, tier_factor, tier_count)
    mk, at = _prepare(
        level,
        price_usd,
        asset_weight,
        liab_weight,
        asset_imf,
        tier_count,
        market_underlying,
        market_settle,
        market_basis,
        margin_frac,
        market_imf,
        bracket_count,
        pnl_weight,
        pnl_imf,
        market_is_option,
        option_strike,
        option_vol,
        option_t_yrs,
        option_is_call,
        option_min_frac,
    )
    n_loop = group_list.shape[0] if group_list.shape[0] > 0 else weighted_assets.shape[0]
    health_range(
        level,
        0,
        n_loop,
        group_list,
        shock_asset,
        shock_mult,
        netted,
        mk,
        at,
        market_underlying,
        market_settle,
        option_strike,
        option_vol,
        option_t_yrs,
        option_is_call,
        bracket_floor_usd,
        bracket_frac,
        bracket_cum_usd,
        tier_above_usd,
        hinge,
        bal_start,
        bal_asset,
        bal_qty,
        effective_qty,
        pos_start,
        pos_market,
        pos_qty,
        pos_entry,
        pos_funding,
        pos_settle_row,
        weighted_assets,
        weighted_liabs,
        equity,
        bal_contrib,
        pos_contrib,
    )


@_parallel_jit
def health_kernel_parallel(
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
    """:func:`health_kernel` on all numba threads: blocks of ``PARALLEL_BLOCK_GROUPS`` groups,
    each run by the same :func:`health_range` (groups write only their own outputs and rows)."""
    netted = pnl_convention == PNL_SETTLE_NETTED
    # netted PnL is added to the settle-asset rows: a copy (the input stays unchanged)
    effective_qty = bal_qty.copy() if netted else bal_qty
    hinge = tier_hinges(tier_above_usd, tier_factor, tier_count)
    mk, at = _prepare(
        level,
        price_usd,
        asset_weight,
        liab_weight,
        asset_imf,
        tier_count,
        market_underlying,
        market_settle,
        market_basis,
        margin_frac,
        market_imf,
        bracket_count,
        pnl_weight,
        pnl_imf,
        market_is_option,
        option_strike,
        option_vol,
        option_t_yrs,
        option_is_call,
        option_min_frac,
    )
    n_loop = group_list.shape[0] if group_list.shape[0] > 0 else weighted_assets.shape[0]
    n_blocks = (n_loop + PARALLEL_BLOCK_GROUPS - 1) // PARALLEL_BLOCK_GROUPS
    for b in numba.prange(n_blocks):
        lo = b * PARALLEL_BLOCK_GROUPS
        health_range(
            level,
            lo,
            min(lo + PARALLEL_BLOCK_GROUPS, n_loop),
            group_list,
            shock_asset,
            shock_mult,
            netted,
            mk,
            at,
            market_underlying,
            market_settle,
            option_strike,
            option_vol,
            option_t_yrs,
            option_is_call,
            bracket_floor_usd,
            bracket_frac,
            bracket_cum_usd,
            tier_above_usd,
            hinge,
            bal_start,
            bal_asset,
            bal_qty,
            effective_qty,
            pos_start,
            pos_market,
            pos_qty,
            pos_entry,
            pos_funding,
            pos_settle_row,
            weighted_assets,
            weighted_liabs,
            equity,
            bal_contrib,
            pos_contrib,
        )


def evaluate_groups(
    tables: MarketTables,
    arrays: PortfolioArrays,
    level: int,
    price_usd: FloatArray | None = None,
    shock_asset: int = -1,
    shock_mult: npt.NDArray[np.float64] = NO_SHOCK,
    bal_contrib: FloatArray = NO_SHOCK,
    pos_contrib: FloatArray = NO_SHOCK,
    out: tuple[FloatArray, FloatArray, FloatArray] | None = None,
    groups: IntArray = NO_GROUPS,
    parallel: bool = False,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Run :func:`health_kernel`; returns ``(weighted_assets, weighted_liabs, equity)`` per group.

    Prices default to the book's. ``out`` may pass three float64 arrays of ``n_groups`` to be
    filled (no allocation: a tick loop reuses them). Pass ``bal_contrib`` / ``pos_contrib`` of
    one slot per row to receive row contributions. A non-empty ``groups`` evaluates only those
    groups; the other entries are 0 in arrays allocated here, and keep the caller's values in
    ``out`` (never touched: a solver reusing buffers pays only for its groups).
    ``parallel`` runs :func:`health_kernel_parallel` (same rows, same results, all numba
    threads): it pays only with an idle core (1.7x at 100,000 groups, 1.9x at 1M on 2 cores)
    and costs ~8 ms a call when the other core is busy (benchmarks/README.md, "Threads";
    :func:`crossmargin._threads.idle_threads` tells which).
    """
    prices = tables.price_usd if price_usd is None else price_usd
    if out is None:
        # every slot is written when all groups are evaluated; a subset leaves the rest as
        # allocated, so those must start defined (np.empty would hand back stale memory)
        alloc = np.zeros if groups.shape[0] > 0 else np.empty
        out = (alloc(arrays.n_groups), alloc(arrays.n_groups), alloc(arrays.n_groups))
    kernel = health_kernel_parallel if parallel else health_kernel
    kernel(
        level,
        prices,
        shock_asset,
        shock_mult,
        tables.asset_weight,
        tables.liab_weight,
        tables.asset_imf,
        tables.tier_above_usd,
        tables.tier_factor,
        tables.tier_count,
        tables.market_underlying,
        tables.market_settle,
        tables.market_basis,
        tables.margin_frac,
        tables.market_imf,
        tables.bracket_floor_usd,
        tables.bracket_frac,
        tables.bracket_cum_usd,
        tables.bracket_count,
        tables.pnl_weight,
        tables.pnl_imf,
        tables.pnl_convention,
        tables.market_is_option,
        tables.option_strike,
        tables.option_vol,
        tables.option_t_yrs,
        tables.option_is_call,
        tables.option_min_frac,
        arrays.bal_start,
        arrays.bal_asset,
        arrays.bal_qty,
        arrays.pos_start,
        arrays.pos_market,
        arrays.pos_qty,
        arrays.pos_entry,
        arrays.pos_funding,
        arrays.pos_settle_row,
        out[0],
        out[1],
        out[2],
        bal_contrib,
        pos_contrib,
        groups,
    )
    return out
