r"""Portfolio margin of one account: scenario PnL, worst loss, contingencies, MM and IM.

For each underlying :math:`u` with spot :math:`S`, scenario :math:`s` (spot multiplier
:math:`m_s`, dampening :math:`d_s`) and expiry :math:`e` with mark value :math:`V_e` and
shocked value :math:`V_{e,s}` (:mod:`crossmargin.portfolio.kernel`):

.. math::

    \tilde V_{e,s} = V_{e,s} \cdot (\beta^+_e \text{ if } V_{e,s} \ge 0 \text{ else }
    \beta^-_e) \qquad \text{(static discount; } \beta = 1 \text{ without one)}

    \Pi^{opt}_{e,s} = d_s\,(\tilde V_{e,s} - V_e), \quad\text{and } -|\Pi^{opt}_{e,s}|
    \text{ in the skew scenarios (each expiry's skew taken in its worst direction)}

    \Pi_s = \sum_e \Pi^{opt}_{e,s} + d_s (m_s - 1)\Big(\sum_p q_p P_p
            + \sum_{c \text{ shocked with } u} C_c\Big)

(perps :math:`q_p` at mark :math:`P_p`; risk-cancelling collateral of value :math:`C_c`).
With ``settlement: coin`` every post-shock value is measured in the coin and converted back at
today's spot, i.e. divided by :math:`m_s`: :math:`\Pi^{opt} = d(\tilde V/m - V)` and a perp's
PnL is :math:`d\,q S (m-1)/m` - Deribit's :math:`Q\,m'/(1+m')` for a move :math:`m' = m - 1`;
coin collateral then has zero PnL.

The basis contingency (when the profile has one) is the loss of a small forward move with the
mark vols, scaled with time (Derive ``PMRMLib_2._addBasisContingency``):

.. math::

    B_u = \sum_e \min(V_e(m_{up}) - V_e,\; V_e(m_{down}) - V_e,\; 0)\,(a + b T_e)

Deribit's extended table (``tail_delta_one: clamped``): in a tail scenario, perps, futures and
shocked collateral take the move clamped to the regular range, undampened; only options see
the tail move (the pme/simulate example: BTC-PERPETUAL's extended entries equal its +-16 %
ones).

The worst PnL of the underlying is :math:`W_u = \min(B_u, \min_s \Pi_s)` (without a basis
contingency, :math:`\min(0, \min_s \Pi_s)`), its loss :math:`L_u = -W_u + R_u \ge 0` with
Deribit's roll shock :math:`R_u = \sum_p |q_p| S \max(a T_p, r_{min})` (``roll_annual_frac``
:math:`a`, ``roll_min_frac`` :math:`r_{min}`, :math:`T_p` a future's years to expiry, 0 for a
perp; 0 without them): :math:`L_u` is Deribit's ``risk_matrix_margin`` (worst case + roll
shock) and MM :math:`= 0.8 L_u`. Across
underlyings the losses add up (``aggregation: sum``, Derive's one-underlying accounts and
Deribit's segregated currencies), or combine as :math:`\sqrt{L^\top C L}` with a correlation
matrix :math:`C` (``aggregation: correlation``; missing pairs count as 1, so the default equals
the sum).

Margin (Derive ``PMRMLib_2.getMarginAndMarkToMarket``; docs "PM2": *Margin = MtM +
factor x maxLoss + contingencies*, losses negative):

.. math::

    \text{MtM} = \text{cash} + \sum_p v_p + \sum_e V_e + \sum_c C_c

    R_{MM} = f_{MM}\,L + K_{MM}, \qquad
    R_{IM} = \big(f_{IM} + \max(0, \theta - P_{cash})\,\gamma\big)\,L + K_{MM} + K_{IM}

    \text{margin}_{lvl} = \text{MtM} - R_{lvl} \quad (\ge 0: \text{healthy})

with the contingencies (all :math:`\ge 0`):

* perps: :math:`|q| S` times ``perp_mm_frac`` (:math:`K_{MM}`) / ``perp_im_frac`` (:math:`K_{IM}`);
* options: per expiry and strike the net short quantity
  :math:`\max(0, -\sum_{\text{calls and puts at } K} q)` times :math:`S` times
  ``option_mm_frac`` / ``option_im_frac`` (Derive ``_addOptionContingency``: a long call
  covers a short put at the same strike and vice versa);
* collateral: value times its MM haircut / extra IM haircut;
* oracle confidence (IM only): :math:`(1 - c)\,\kappa\,N` when the confidence :math:`c` is
  below the threshold, for the perp notional :math:`N = |q|S` (confidence of the underlying's
  feeds), each expiry's option notional :math:`\sum|q|\,S` (lowest confidence of the spot,
  forward, rate and vol feeds) and each collateral value (its feed's confidence);
* depeg: the IM loss factor rises by :math:`(\theta - P_{cash})\gamma` when the cash asset's
  price :math:`P_{cash}` is below :math:`\theta`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from crossmargin._threads import idle_threads
from crossmargin.errors import InputError
from crossmargin.portfolio.grid import (
    N_VOL_STATES,
    SKEW_ABS,
    SKEW_LINEAR,
    VOL_DOWN,
    VOL_NONE,
    VOL_UP,
    ScenarioGrid,
    skew_cap_and_kstar,
    skew_multiplier,
    static_discounts,
    vol_shock_multipliers,
)
from crossmargin.portfolio.kernel import VOL_FLOOR, expiry_values_kernel
from crossmargin.portfolio.positions import FloatArray, Portfolio
from crossmargin.portfolio.profiles import Profile

#: below this many option revaluations the scenario kernel runs on one thread: with the second
#: core idle, threads paid 1.45x from 1,000 options x 36 columns (benchmarks/README.md,
#: "Threads"); smaller accounts were not measured
PARALLEL_MIN_REVALUATIONS = 36_000


def _threads_for(revaluations: float) -> int:
    """numba threads for a kernel call: the idle cores (at most the current setting, which a
    caller may have lowered), one below the crossover."""
    return idle_threads(revaluations, PARALLEL_MIN_REVALUATIONS, numba.get_num_threads())


@dataclass(frozen=True)
class Contingencies:
    """Contingency add-ons of one margin level, USD (each >= 0)."""

    perp_usd: float
    option_usd: float
    collateral_usd: float
    confidence_usd: float

    @property
    def total_usd(self) -> float:
        return self.perp_usd + self.option_usd + self.collateral_usd + self.confidence_usd


@dataclass(frozen=True)
class LevelMargin:
    """One margin level: requirement and margin (``mtm - requirement``, >= 0 healthy)."""

    level: str  # "maint" or "initial"
    loss_factor: float
    scenario_requirement_usd: float  # loss_factor x aggregated loss
    contingencies: Contingencies
    requirement_usd: float
    margin_usd: float


@dataclass(frozen=True, eq=False)
class UnderlyingRisk:
    """Scenario results of one underlying: why its loss is what it is."""

    name: str
    grid: ScenarioGrid
    scenario_pnl_usd: FloatArray  # [n_s] dampened PnL that enters the minimum
    option_pnl_usd: FloatArray  # [n_s]
    perp_pnl_usd: FloatArray  # [n_s]
    collateral_pnl_usd: FloatArray  # [n_s]
    basis_contingency_usd: float  # a PnL, <= 0
    worst_pnl_usd: float  # <= 0
    worst_scenario: int | None  # None: the basis contingency (or no loss at all) is the worst
    loss_usd: float  # -worst_pnl_usd + roll_shock_usd
    expiry_names: tuple[str, ...]
    expiry_mtm_usd: FloatArray  # [n_e] mark value of each expiry's options
    vol_up_mult: FloatArray  # [n_e]
    vol_down_mult: FloatArray  # [n_e]
    static_discount_pos: FloatArray  # [n_e]
    static_discount_neg: FloatArray  # [n_e]
    roll_shock_usd: float = 0.0  # >= 0, Deribit's roll shock (part of the risk matrix margin)

    @property
    def worst_label(self) -> str:
        if self.worst_scenario is not None:
            return self.grid.label(self.worst_scenario)
        return "basis contingency" if self.basis_contingency_usd < 0.0 else "no loss"


@dataclass(frozen=True, eq=False)
class PortfolioMarginResult:
    """Portfolio margin of one account: every component, the worst scenarios, MM and IM."""

    profile: str
    cash_usd: float
    option_mtm_usd: float
    perp_mtm_usd: float
    collateral_mtm_usd: float
    underlyings: tuple[UnderlyingRisk, ...]
    aggregation: str
    loss_usd: float  # aggregated scenario loss, >= 0
    maint: LevelMargin
    initial: LevelMargin

    @property
    def mtm_usd(self) -> float:
        return self.cash_usd + self.option_mtm_usd + self.perp_mtm_usd + self.collateral_mtm_usd

    def to_dict(self, scenarios: bool = True) -> dict[str, Any]:
        """Plain data (JSON/YAML-able); ``scenarios=False`` drops the per-scenario lists."""
        return result_to_dict(self, scenarios)


def portfolio_margin(portfolio: Portfolio, profile: Profile) -> PortfolioMarginResult:
    """Maintenance and initial portfolio margin of ``portfolio`` (module docstring).

    Never returns a NaN: inputs are validated when the portfolio is built and the profile when
    it is loaded; a non positive semi-definite correlation matrix raises
    :class:`~crossmargin.errors.InputError`.
    """
    vol_table, up, down, beta_pos, beta_neg = _option_vols_and_factors(portfolio, profile)
    risks = tuple(
        _underlying_risk(portfolio, profile, u, vol_table, up, down, beta_pos, beta_neg)
        for u in range(portfolio.n_underlyings)
    )
    losses = np.array([r.loss_usd for r in risks])
    loss = _aggregate(losses, portfolio.underlying_names, profile)

    c = profile.contingency
    spot_of_expiry = portfolio.spot_usd[portfolio.expiry_underlying]
    perp_notional = np.abs(portfolio.perp_qty) * portfolio.spot_usd[portfolio.perp_underlying]
    naked_notional = naked_short_qty(portfolio) * spot_of_expiry
    n_e = portfolio.expiry_t_yrs.shape[0]
    gross_qty = np.bincount(
        portfolio.option_expiry, weights=np.abs(portfolio.option_qty), minlength=n_e
    )
    gross_notional = gross_qty * spot_of_expiry
    collateral = portfolio.collateral_value_usd
    mm = Contingencies(
        perp_usd=float(perp_notional.sum() * c.perp_mm_frac),
        option_usd=float(naked_notional.sum() * c.option_mm_frac),
        collateral_usd=float((collateral * portfolio.collateral_mm_haircut_frac).sum()),
        confidence_usd=0.0,
    )
    confidence = (
        _confidence_charge(
            portfolio.underlying_confidence[portfolio.perp_underlying], perp_notional, profile
        )
        + _confidence_charge(_expiry_confidence(portfolio), gross_notional, profile)
        + _confidence_charge(portfolio.collateral_confidence, collateral, profile)
    )
    im = Contingencies(
        perp_usd=mm.perp_usd + float(perp_notional.sum() * c.perp_im_frac),
        option_usd=mm.option_usd + float(naked_notional.sum() * c.option_im_frac),
        collateral_usd=mm.collateral_usd
        + float((collateral * portfolio.collateral_im_haircut_frac).sum()),
        confidence_usd=confidence,
    )
    im_factor = profile.im_loss_factor
    if portfolio.stable_price_usd < c.peg_loss_threshold:
        im_factor += (c.peg_loss_threshold - portfolio.stable_price_usd) * c.peg_loss_factor

    option_mtm = float(sum(r.expiry_mtm_usd.sum() for r in risks))
    perp_mtm = float(portfolio.perp_value_usd.sum())
    collateral_mtm = float(collateral.sum())
    mtm = portfolio.cash_usd + option_mtm + perp_mtm + collateral_mtm
    return PortfolioMarginResult(
        profile=profile.name,
        cash_usd=portfolio.cash_usd,
        option_mtm_usd=option_mtm,
        perp_mtm_usd=perp_mtm,
        collateral_mtm_usd=collateral_mtm,
        underlyings=risks,
        aggregation=profile.aggregation,
        loss_usd=loss,
        maint=_level("maint", profile.mm_loss_factor, loss, mm, mtm),
        initial=_level("initial", im_factor, loss, im, mtm),
    )


def _level(
    level: str, factor: float, loss: float, contingencies: Contingencies, mtm: float
) -> LevelMargin:
    scenario = factor * loss
    requirement = scenario + contingencies.total_usd
    return LevelMargin(level, factor, scenario, contingencies, requirement, mtm - requirement)


def naked_short_qty(portfolio: Portfolio) -> FloatArray:
    """Net short quantity per expiry: ``sum over strikes of max(0, -(calls + puts))``."""
    n_e = portfolio.expiry_t_yrs.shape[0]
    if portfolio.n_options == 0:
        return np.zeros(n_e)
    expiry, strike = portfolio.option_expiry, portfolio.option_strike_usd
    order = np.lexsort((strike, expiry))
    e_sorted, k_sorted = expiry[order], strike[order]
    first = np.ones(order.shape[0], dtype=bool)
    first[1:] = (e_sorted[1:] != e_sorted[:-1]) | (k_sorted[1:] != k_sorted[:-1])
    starts = np.flatnonzero(first)
    net = np.add.reduceat(portfolio.option_qty[order], starts)
    per_expiry: FloatArray = np.bincount(
        e_sorted[starts], weights=np.maximum(0.0, -net), minlength=n_e
    ).astype(np.float64)
    return per_expiry


def _expiry_confidence(portfolio: Portfolio) -> FloatArray:
    """Lowest confidence of an expiry's feeds: spot (and perp), forward, rate, its options' vols."""
    conf = np.minimum(
        portfolio.expiry_confidence, portfolio.underlying_confidence[portfolio.expiry_underlying]
    )
    if portfolio.n_options:
        np.minimum.at(conf, portfolio.option_expiry, portfolio.option_confidence)
    return conf


def _confidence_charge(confidence: FloatArray, notional: FloatArray, profile: Profile) -> float:
    c = profile.contingency
    low = confidence < c.confidence_threshold
    return float(((1.0 - confidence[low]) * c.confidence_margin_frac * notional[low]).sum())


def _option_vols_and_factors(
    portfolio: Portfolio, profile: Profile
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """The ``[5, n_options]`` vol table of the kernel, and the per-expiry shock factors."""
    t = portfolio.expiry_t_yrs
    v = profile.vol_shock
    up, down = vol_shock_multipliers(
        t,
        v.range_up_frac,
        v.range_down_frac,
        v.short_term_power,
        v.long_term_power,
        v.dte_floor_days,
        v.reference_days,
        v.power_switch_days,
    )
    n_e = t.shape[0]
    if profile.static_discount is None:
        beta_pos, beta_neg = np.ones(n_e), np.ones(n_e)
    else:
        sd = profile.static_discount
        beta_pos, beta_neg = static_discounts(
            t,
            portfolio.expiry_rate,
            portfolio.expiry_df,
            sd.long_base,
            sd.long_rate_mult,
            sd.long_rate_add,
            sd.short_base,
            sd.short_rate_mult,
            sd.short_rate_add,
        )
        # an expired option's value is settled, not discounted (Derive's reference model
        # reports [1, 1] at expiry: case test_66_misc_post_expiry)
        beta_pos = np.where(t > 0.0, beta_pos, 1.0)
        beta_neg = np.where(t > 0.0, beta_neg, 1.0)
    e = portfolio.option_expiry
    vol = portfolio.option_vol
    table = np.empty((N_VOL_STATES, vol.shape[0]))
    table[VOL_NONE] = vol
    table[VOL_UP] = np.maximum(v.min_vol_up, vol * up[e])
    table[VOL_DOWN] = vol * down[e]
    if profile.skew_shock is None:
        table[SKEW_LINEAR] = vol
        table[SKEW_ABS] = vol
    else:
        k = profile.skew_shock
        sqrt_t = np.sqrt(t)
        log_moneyness = np.log(portfolio.option_strike_usd / portfolio.expiry_fwd_usd[e])
        for state, cap_base, cap_slope, k_of in (
            (SKEW_LINEAR, k.linear_cap, k.linear_cap_per_sqrt_yr, log_moneyness),
            (SKEW_ABS, k.abs_cap, k.abs_cap_per_sqrt_yr, np.abs(log_moneyness)),
        ):
            cap, k_star = skew_cap_and_kstar(
                sqrt_t,
                cap_base,
                cap_slope,
                k.min_k_star,
                k.width_scale,
                k.vol_param_static,
                k.vol_param_per_sqrt_yr,
            )
            live = t > 0.0  # an expired option is priced at intrinsic value whatever its vol
            bad = np.flatnonzero(live & ~(k_star > 0.0))
            if bad.size:
                raise InputError(
                    "skew_shock.min_k_star",
                    k.min_k_star,
                    f"skew width k* is {float(k_star[bad[0]])!r} for the expiry at "
                    f"{float(t[bad[0]])!r} years: must be > 0",
                )
            k_star = np.where(live, k_star, 1.0)
            table[state] = vol * np.maximum(0.0, skew_multiplier(k_of, cap[e], k_star[e]))
    np.maximum(table, VOL_FLOOR, out=table)
    table[:, t[e] <= 0.0] = VOL_FLOOR  # expired: intrinsic value
    return table, up, down, beta_pos, beta_neg


def _underlying_risk(
    portfolio: Portfolio,
    profile: Profile,
    u: int,
    vol_table: FloatArray,
    up: FloatArray,
    down: FloatArray,
    beta_pos: FloatArray,
    beta_neg: FloatArray,
) -> UnderlyingRisk:
    name = portfolio.underlying_names[u]
    grid = profile.grid(name)
    e0, e1 = int(portfolio.expiry_start[u]), int(portfolio.expiry_start[u + 1])
    basis = profile.basis
    # kernel columns: mark values, the two basis moves, then the grid's scenarios
    extra_mult = [1.0] + ([basis.spot_up_mult, basis.spot_down_mult] if basis else [])
    n_extra = len(extra_mult)
    spot_mult = np.concatenate([np.array(extra_mult), grid.spot_mult])
    states = np.concatenate([np.full(n_extra, VOL_NONE, dtype=np.int64), grid.vol_state])
    values = np.zeros((e1 - e0, spot_mult.shape[0]))
    if e1 > e0:
        revaluations = (portfolio.option_start[e1] - portfolio.option_start[e0]) * values.shape[1]
        previous = numba.get_num_threads()
        numba.set_num_threads(_threads_for(revaluations))
        try:
            expiry_values_kernel(
                spot_mult,
                states,
                profile.skew_moves_forward,
                portfolio.expiry_fwd_usd[e0:e1],
                portfolio.expiry_fwd_fixed_usd[e0:e1],
                portfolio.expiry_t_yrs[e0:e1],
                portfolio.expiry_df[e0:e1],
                portfolio.option_start[e0 : e1 + 1],
                portfolio.option_strike_usd,
                portfolio.option_is_call,
                portfolio.option_qty,
                vol_table,
                values,
            )
        finally:
            numba.set_num_threads(previous)
    mtm = values[:, 0]
    t = portfolio.expiry_t_yrs[e0:e1]
    if basis is not None:
        worst_move = np.minimum(np.minimum(values[:, 1] - mtm, values[:, 2] - mtm), 0.0)
        basis_pnl = float((worst_move * (basis.add_factor + basis.mult_factor_per_yr * t)).sum())
    else:
        basis_pnl = 0.0

    shocked = values[:, n_extra:]
    pos, neg = beta_pos[e0:e1, None], beta_neg[e0:e1, None]
    shocked = shocked * np.where(shocked >= 0.0, pos, neg)
    mult = grid.spot_mult
    damp = grid.dampening
    coin = profile.settlement == "coin"
    # coin settlement: post-shock values in the coin, back to USD at today's spot
    after = shocked / mult if coin else shocked
    expiry_pnl = (after - mtm[:, None]) * damp
    skew = grid.vol_state >= SKEW_LINEAR
    expiry_pnl[:, skew] = -np.abs(expiry_pnl[:, skew])
    option_pnl = expiry_pnl.sum(axis=0)

    p0, p1 = int(portfolio.perp_start[u]), int(portfolio.perp_start[u + 1])
    move = mult - 1.0
    if profile.tail_delta_one == "clamped":
        # Deribit's extended table: delta-one PnL at the move clamped to the regular range
        regular = np.array([k == "regular" for k in grid.kind])
        tail = np.array([k == "tail" for k in grid.kind])
        if regular.any():
            lo, hi = float(move[regular].min()), float(move[regular].max())
            move = np.where(tail, np.clip(move, lo, hi), move)
            damp = np.where(tail, 1.0, damp)
        mult = 1.0 + move
    if coin:  # a perp: Q m'/(1+m') coin for a move m' = m - 1, in USD at today's spot
        perp_qty = float(portfolio.perp_qty[p0:p1].sum())
        perp_pnl = perp_qty * float(portfolio.spot_usd[u]) * move / mult * damp
        collateral_pnl = np.zeros_like(move)  # coin collateral keeps its value in coin
    else:
        perp_usd = float((portfolio.perp_qty[p0:p1] * portfolio.perp_mark_usd[p0:p1]).sum())
        perp_pnl = perp_usd * move * damp
        shocked_collateral = portfolio.collateral_value_usd[portfolio.collateral_underlying == u]
        collateral_pnl = float(shocked_collateral.sum()) * move * damp
    pnl = option_pnl + perp_pnl + collateral_pnl

    # roll shock (Deribit): |q| S max(annual x T, min) per perp / future, added to the loss
    c = profile.contingency
    roll = float(
        (
            np.abs(portfolio.perp_qty[p0:p1])
            * float(portfolio.spot_usd[u])
            * np.maximum(c.roll_annual_frac * portfolio.perp_t_yrs[p0:p1], c.roll_min_frac)
        ).sum()
    )

    floor = min(basis_pnl, 0.0)  # Derive starts the minimum at the basis contingency (<= 0)
    worst_index = int(np.argmin(pnl))
    if pnl[worst_index] < floor:
        worst_pnl, worst = float(pnl[worst_index]), worst_index
    else:
        worst_pnl, worst = floor, None
    return UnderlyingRisk(
        name=name,
        grid=grid,
        scenario_pnl_usd=pnl,
        option_pnl_usd=option_pnl,
        perp_pnl_usd=perp_pnl,
        collateral_pnl_usd=collateral_pnl,
        basis_contingency_usd=basis_pnl,
        worst_pnl_usd=worst_pnl,
        worst_scenario=worst,
        loss_usd=-worst_pnl + roll,
        expiry_names=portfolio.expiry_names[e0:e1],
        expiry_mtm_usd=mtm.copy(),
        vol_up_mult=up[e0:e1],
        vol_down_mult=down[e0:e1],
        static_discount_pos=beta_pos[e0:e1],
        static_discount_neg=beta_neg[e0:e1],
        roll_shock_usd=roll,
    )


def _aggregate(losses: FloatArray, names: tuple[str, ...], profile: Profile) -> float:
    if profile.aggregation == "sum" or losses.shape[0] <= 1:
        return float(losses.sum())
    n = len(names)
    corr = np.ones((n, n))
    for a, row in profile.correlation.items():
        for b, rho in row.items():
            if a in names and b in names:
                i, j = names.index(a), names.index(b)
                corr[i, j] = corr[j, i] = rho
    smallest = float(np.linalg.eigvalsh(corr).min())
    if smallest < -1e-12:
        raise InputError(
            "correlation",
            {a: dict(r) for a, r in profile.correlation.items()},
            f"not positive semi-definite on {list(names)} (smallest eigenvalue {smallest:.3g})",
        )
    return math.sqrt(max(0.0, float(losses @ corr @ losses)))


def result_to_dict(result: PortfolioMarginResult, scenarios: bool = True) -> dict[str, Any]:
    """Plain-data form of a result (see :meth:`PortfolioMarginResult.to_dict`)."""

    def level(m: LevelMargin) -> dict[str, Any]:
        c = m.contingencies
        return {
            "loss_factor": m.loss_factor,
            "scenario_requirement_usd": m.scenario_requirement_usd,
            "contingencies_usd": {
                "perp": c.perp_usd,
                "option": c.option_usd,
                "collateral": c.collateral_usd,
                "confidence": c.confidence_usd,
                "total": c.total_usd,
            },
            "requirement_usd": m.requirement_usd,
            "margin_usd": m.margin_usd,
        }

    underlyings = []
    for r in result.underlyings:
        entry: dict[str, Any] = {
            "name": r.name,
            "loss_usd": r.loss_usd,
            "worst_pnl_usd": r.worst_pnl_usd,
            "worst_scenario": r.worst_label,
            "basis_contingency_usd": r.basis_contingency_usd,
            "roll_shock_usd": r.roll_shock_usd,
            "expiries": [
                {
                    "name": name,
                    "mtm_usd": float(r.expiry_mtm_usd[i]),
                    "vol_up_mult": float(r.vol_up_mult[i]),
                    "vol_down_mult": float(r.vol_down_mult[i]),
                    "static_discount_pos": float(r.static_discount_pos[i]),
                    "static_discount_neg": float(r.static_discount_neg[i]),
                }
                for i, name in enumerate(r.expiry_names)
            ],
        }
        if scenarios:
            entry["scenarios"] = [
                {
                    "label": r.grid.label(i),
                    "kind": r.grid.kind[i],
                    "spot_mult": float(r.grid.spot_mult[i]),
                    "dampening": float(r.grid.dampening[i]),
                    "pnl_usd": float(r.scenario_pnl_usd[i]),
                    "option_pnl_usd": float(r.option_pnl_usd[i]),
                    "perp_pnl_usd": float(r.perp_pnl_usd[i]),
                    "collateral_pnl_usd": float(r.collateral_pnl_usd[i]),
                }
                for i in range(r.grid.n)
            ]
        underlyings.append(entry)
    return {
        "profile": result.profile,
        "mtm_usd": result.mtm_usd,
        "mtm_components_usd": {
            "cash": result.cash_usd,
            "options": result.option_mtm_usd,
            "perps": result.perp_mtm_usd,
            "collateral": result.collateral_mtm_usd,
        },
        "aggregation": result.aggregation,
        "loss_usd": result.loss_usd,
        "maint": level(result.maint),
        "initial": level(result.initial),
        "underlyings": underlyings,
    }
