r"""Liquidation cascades: forced selling moves prices, which makes more accounts liquidatable.

One run over a batch of accounts (one :class:`~crossmargin.margin.arrays.PortfolioArrays`),
from a price shock, round by round:

1. revalue every margin group with the risk kernel at the round's prices;
2. liquidate the liquidatable ones with the liquidation engine (:mod:`crossmargin.liquidation`,
   oracle transfer: the liquidator takes the collateral and positions over at the price);
3. sum the forced flow per asset, in USD: collateral taken over is sold by the liquidator,
   repaid borrows are bought, positions taken over are unwound
   (:math:`f_a = \sum \Delta q_{\text{bal},a} P_a + \sum_{m: u(m) = a} \Delta q_m M_m`, negative =
   selling);
4. move each price by the square-root law of impact (Almgren et al. 2005; Tóth et al. 2011)
   against the day's volume, after letting the previous rounds' impact decay towards the
   shocked ("fundamental") price with a half-life of ``recovery_half_life_rounds``:

   .. math::

       \ln P_{a,r+1} = \ln F_a + 2^{-1/h} (\ln P_{a,r} - \ln F_a)
                       + \operatorname{sign}(f_a)\, k\, \sigma_a \sqrt{|f_a| / V_a}

   with :math:`\sigma_a` the daily volatility, :math:`V_a` the daily volume (USD) and
   :math:`k` the impact coefficient (Tóth et al. find :math:`Y \approx 1`);
5. repeat until no group is liquidatable or ``max_rounds``; an account the engine leaves
   bankrupt (wound down), in a spiral or at its step limit takes no further part.

With ``model="closeout"`` (fast, for Monte Carlo) a liquidatable account is instead closed out
whole at the round's prices, without fees: all its balances and positions go to the market,
and its negative equity is bad debt, paid by the insurance fund first.

Only the liquidatable accounts of a round go through the engine (a batch of their own): the
insurance fund carries over from round to round, and losses beyond it are socialized among the
accounts liquidated in the same round, or recorded as external; the simulator reports both as
bad debt. Stablecoins (:math:`\sigma = 0`) do not move.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from crossmargin.errors import InputError
from crossmargin.liquidation import LiquidationConfig
from crossmargin.liquidation.engine import BANKRUPT, SPIRAL, STOPPED, liquidate_arrays
from crossmargin.margin.arrays import MAINT, FloatArray, IntArray, MarketTables, PortfolioArrays
from crossmargin.margin.kernel import evaluate_groups, market_marks_usd
from crossmargin.simulation.rows import account_groups, put_back, take_accounts
from crossmargin.simulation.screen import HealthScreen, supported

#: daily volatility and daily volume (USD) of the demo market's assets; orders of magnitude of
#: 2024-2025 spot + perp markets, assumptions stated in docs/simulation.md
DEFAULT_SIGMA_DAILY = {"BTC": 0.03, "ETH": 0.04, "wstETH": 0.04, "SOL": 0.055, "AAVE": 0.06}
DEFAULT_VOLUME_USD = {
    "BTC": 30e9,
    "ETH": 15e9,
    "wstETH": 0.1e9,
    "SOL": 3e9,
    "AAVE": 0.3e9,
}
QUANTILES = (0.01, 0.05, 0.25, 0.5)
QUANTILE_NAMES = tuple(f"q{int(q * 100):02d}" for q in QUANTILES)
FINAL_STATUS_CODES = np.array([BANKRUPT, SPIRAL, STOPPED])
#: a screened round revalues at most this share of the groups (else all, and a new reference)
SCREEN_MAX_FRAC = 0.25

#: ``(round price_usd, kernel maint health per group, done per account) -> maint health per
#: group``: another margin rule deciding who is liquidatable (e.g. a scenario grid)
GroupHealth = Callable[[FloatArray, FloatArray, npt.NDArray[np.bool_]], FloatArray]


class CascadeConfig(BaseModel):
    """Parameters of a cascade run (module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    impact_k: float = Field(1.0, gt=0, allow_inf_nan=False, description="Square-root law's k.")
    sigma_daily: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_SIGMA_DAILY))
    daily_volume_usd: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_VOLUME_USD))
    recovery_half_life_rounds: float = Field(3.0, gt=0, allow_inf_nan=False)
    max_rounds: int = Field(50, ge=1, le=10_000)
    health_quantiles: bool = Field(
        True,
        description="Report maint-health quantiles per round (a partition of all groups per "
        "round; Monte Carlo, which does not report them, turns this off).",
    )
    liquidation: LiquidationConfig = Field(default_factory=LiquidationConfig)
    model: Literal["engine", "closeout"] = Field(
        "engine",
        description="engine: the liquidation engine (partial, fees, depth); closeout: a "
        "liquidatable account is closed out whole at the round's prices (fast; for Monte Carlo).",
    )


@dataclass(frozen=True)
class RoundRecord:
    """One round: prices at its start, what was liquidated, and where the pool stands."""

    round: int
    price_usd: dict[str, float]
    liquidatable_groups: int
    liquidated_accounts: int
    liquidated_notional_usd: float  # sum of |forced flow| over assets
    forced_flow_usd: dict[str, float]  # net per asset, < 0 selling
    bad_debt_usd: float  # this round: insurance paid + socialized + external
    insurance_fund_usd: float  # after the round
    health_quantiles_usd: dict[str, float]  # of maint health over groups, before liquidation
    #: where the value of the round's liquidated accounts went, at the round's prices (USD):
    #: equity before + fund before = equity after + liquidator + makers + fund after - external
    #: (closeout: "equity after" is the positive equity the closed accounts keep as cash)
    equity_before_usd: float = 0.0
    equity_after_usd: float = 0.0
    liquidator_usd: float = 0.0  # fees and discounts kept by liquidators
    makers_usd: float = 0.0  # slippage gained by the book's counterparties (depth execution)
    external_usd: float = 0.0  # loss beyond the fund and the round's accounts

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class CascadeResult:
    rounds: list[RoundRecord]
    final: PortfolioArrays
    final_price_usd: FloatArray
    converged: bool  # no liquidatable group left (else max_rounds)
    liquidated_accounts: int = 0
    bad_debt_usd: float = 0.0
    liquidated_notional_usd: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "converged": self.converged,
            "rounds": [r.to_dict() for r in self.rounds],
            "liquidated_accounts": self.liquidated_accounts,
            "bad_debt_usd": self.bad_debt_usd,
            "liquidated_notional_usd": self.liquidated_notional_usd,
        }


def shocked_prices(tables: MarketTables, shocks: Mapping[str, float]) -> FloatArray:
    """The book's prices with relative moves (``{"ETH": -0.25}``); errors name ``shock.X``."""
    prices = tables.price_usd.copy()
    for symbol, move in shocks.items():
        a = tables.asset_id(symbol, f"shock.{symbol}")
        if not (np.isfinite(move) and move > -1.0):
            raise InputError(f"shock.{symbol}", move, "a price cannot fall 100 % or more")
        prices[a] *= 1.0 + move
    return prices


def impact_params(tables: MarketTables, config: CascadeConfig) -> tuple[FloatArray, FloatArray]:
    """Per asset: daily vol (0 for assets without one: they do not move) and daily volume."""
    sigma = np.array([config.sigma_daily.get(s, 0.0) for s in tables.asset_symbols])
    volume = np.array([config.daily_volume_usd.get(s, np.inf) for s in tables.asset_symbols])
    for name, values in (("sigma_daily", sigma), ("daily_volume_usd", volume)):
        bad = np.flatnonzero(~(values >= 0.0) | ((name == "daily_volume_usd") & (values == 0.0)))
        if bad.size:
            symbol = tables.asset_symbols[int(bad[0])]
            raise InputError(f"{name}.{symbol}", float(values[bad[0]]), "must be > 0")
    return sigma, volume


def forced_flow_usd(
    tables: MarketTables,
    before: PortfolioArrays,
    after: PortfolioArrays,
    price_usd: FloatArray,
) -> FloatArray:
    """Net USD flow per asset that a liquidation sends to the market (< 0: selling)."""
    flow = np.bincount(
        before.bal_asset,
        weights=(after.bal_qty - before.bal_qty) * price_usd[before.bal_asset],
        minlength=tables.n_assets,
    )
    if before.pos_qty.size:
        marks = market_marks_usd(tables, price_usd)
        delta = (after.pos_qty - before.pos_qty) * marks[before.pos_market]
        underlying = tables.market_underlying[before.pos_market]
        flow += np.bincount(underlying, weights=delta, minlength=tables.n_assets)
    # settle-asset cash moves (realized PnL, fees) are transfers, not trades of a risky asset
    return np.asarray(flow, dtype=np.float64)


def run_cascade(
    tables: MarketTables,
    arrays: PortfolioArrays,
    shocked_price_usd: FloatArray,
    config: CascadeConfig | None = None,
    maint_health: GroupHealth | None = None,
    on_round: Callable[[RoundRecord], None] | None = None,
    *,
    screen: bool = True,
) -> CascadeResult:
    """Run a cascade from ``shocked_price_usd`` (module docstring); ``arrays`` is not changed.

    ``on_round`` is called with each round's record as soon as it is done (progress).

    ``maint_health`` replaces the kernel's maint health in deciding who is liquidatable (a margin
    rule the liquidation engine does not know, such as portfolio margin's scenario grid); it
    requires ``model="closeout"``.

    ``screen`` (the default; engine model only) revalues, after a round that revalued every
    group, only the groups whose health can have crossed zero
    (:mod:`crossmargin.simulation.screen`: a bound on the move since that round; liquidated
    groups get a new reference). The result is the same as
    with ``screen=False`` (every group revalued every round: tests/simulation/test_screen.py).
    A round revalues every group (and resets the reference) when over ``SCREEN_MAX_FRAC`` of
    them would need revaluing, and when ``config.health_quantiles`` asks for the quantiles of
    every group's health (a bound cannot give them: turn them off where they are not
    reported)."""
    config = config or CascadeConfig()
    if maint_health is not None and config.model != "closeout":
        raise InputError("model", config.model, "a custom maint health needs model=closeout")
    sigma, volume = impact_params(tables, config)
    fundamental = np.log(shocked_price_usd)
    log_price = fundamental.copy()
    decay = 0.5 ** (1.0 / config.recovery_half_life_rounds)
    bal_qty, pos_qty = arrays.bal_qty.copy(), arrays.pos_qty.copy()
    pos_funding = arrays.pos_funding.copy()
    insurance = config.liquidation.insurance_fund_usd
    rounds: list[RoundRecord] = []
    liquidated = np.zeros(arrays.n_accounts, dtype=bool)
    # accounts the engine could not bring back (bankrupt and wound down, spiral, max steps):
    # nothing is left to liquidate, they stay out of later rounds
    done = np.zeros(arrays.n_accounts, dtype=bool)
    converged = False
    n_groups = arrays.n_groups
    out = (np.zeros(n_groups), np.zeros(n_groups), np.zeros(n_groups))
    # close-out rounds are few and cheap: the screen's slopes would cost more than they save
    screening = screen and config.model == "engine" and maint_health is None and supported(tables)
    health_screen: HealthScreen | None = None
    for r in range(config.max_rounds):
        price = np.exp(log_price)
        state = arrays.with_quantities(bal_qty, pos_qty, pos_funding)
        round_tables = replace(tables, price_usd=price)
        quantiles: dict[str, float] = {}
        bad_groups: IntArray | None = None
        if health_screen is not None and not config.health_quantiles:
            bad_groups = _screened_round(health_screen, round_tables, state, done, out)
        if bad_groups is None:
            wa, wl, _ = evaluate_groups(round_tables, state, MAINT, out=out)
            health = wa - wl
            if maint_health is not None:
                health = maint_health(price, health, done)
            bad_groups = np.flatnonzero((health < 0.0) & ~done[arrays.group_account])
            quantiles = (
                dict(zip(QUANTILE_NAMES, map(float, np.quantile(health, QUANTILES)), strict=True))
                if health.size and config.health_quantiles
                else {}
            )
            if (
                screening and not config.health_quantiles
            ):  # a new reference: revalue only what can change from here
                health_screen = HealthScreen(tables, state, price, health)
        _eq = out[2]
        if bad_groups.size == 0:
            converged = True
            rounds.append(
                _record(
                    r, tables, price, 0, 0, np.zeros(tables.n_assets), 0.0, insurance, quantiles
                )
            )
            break
        accounts = np.unique(arrays.group_account[bad_groups])
        liquidated[accounts] = True
        hit_groups = account_groups(arrays, accounts)
        if health_screen is not None:  # their other groups may not have been revalued
            evaluate_groups(round_tables, state, MAINT, out=out, groups=hit_groups)
        if config.model == "closeout":
            flow, bad_debt, insurance, value = _close_out(
                round_tables, state, accounts, _eq, insurance, bal_qty, pos_qty, pos_funding
            )
            done[accounts] = True
        else:
            subset = take_accounts(state, accounts)
            liq_config = config.liquidation.model_copy(update={"insurance_fund_usd": insurance})
            result = liquidate_arrays(round_tables, subset.arrays, liq_config, journal=False)
            flow = forced_flow_usd(round_tables, subset.arrays, result.final, price)
            put_back(bal_qty, pos_qty, pos_funding, subset, result.final)
            f = result.flows
            bad_debt = f.insurance_paid_usd + f.socialized_usd + f.adl_usd
            insurance = f.insurance_fund_usd
            finished = np.isin(result.account_status, FINAL_STATUS_CODES)
            done[accounts[finished]] = True
            columns = result.account_columns  # equity before, after (per account)
            value = (
                float(columns[0].sum()),
                float(columns[1].sum()),
                f.liquidator_usd,
                f.makers_usd,
                f.socialized_external_usd,
            )
        if health_screen is not None:  # their rows changed: a new reference for them
            health_screen.refresh(tables, state, hit_groups)
        rounds.append(
            _record(
                r,
                tables,
                price,
                bad_groups.size,
                accounts.size,
                flow,
                bad_debt,
                insurance,
                quantiles,
                value,
            )
        )
        if on_round is not None:
            on_round(rounds[-1])
        impact = np.sign(flow) * config.impact_k * sigma * np.sqrt(np.abs(flow) / volume)
        log_price = fundamental + decay * (log_price - fundamental) + impact
    final = arrays.with_quantities(bal_qty, pos_qty, pos_funding)
    return CascadeResult(
        rounds=rounds,
        final=final,
        final_price_usd=np.exp(log_price),
        converged=converged,
        liquidated_accounts=int(liquidated.sum()),
        bad_debt_usd=float(sum(rd.bad_debt_usd for rd in rounds)),
        liquidated_notional_usd=float(sum(rd.liquidated_notional_usd for rd in rounds)),
    )


def _screened_round(
    health_screen: HealthScreen,
    tables: MarketTables,
    state: PortfolioArrays,
    done: npt.NDArray[np.bool_],
    out: tuple[FloatArray, FloatArray, FloatArray],
) -> IntArray | None:
    """Liquidatable groups of a round from the screen, exactly; ``None`` when too many groups
    would need revaluing (the caller revalues all)."""
    move = health_screen.max_move_usd(tables.price_usd)
    # accounts the engine finished with (wound down, spiral, step limit) take no further part:
    # they are most of the groups near zero health, and need no revaluation
    open_groups = ~done[state.group_account]
    candidates = np.flatnonzero((health_screen.health_usd - move < 0.0) & open_groups)
    if candidates.size > SCREEN_MAX_FRAC * state.n_groups:
        return None
    wa, wl, _ = evaluate_groups(tables, state, MAINT, out=out, groups=candidates)
    health = wa[candidates] - wl[candidates]
    return candidates[(health < 0.0) & ~done[state.group_account[candidates]]]


def _close_out(
    tables: MarketTables,
    state: PortfolioArrays,
    accounts: IntArray,
    group_equity: FloatArray,
    insurance: float,
    bal_qty: FloatArray,
    pos_qty: FloatArray,
    pos_funding: FloatArray,
) -> tuple[FloatArray, float, float, tuple[float, float, float, float, float]]:
    """Close ``accounts`` out whole at the tables' prices: every balance and position goes to
    the market; negative equity is bad debt, paid by the insurance fund first. Returns
    ``(flow per asset, bad debt, insurance fund after, value)``, value as in
    :class:`RoundRecord` (equity before, positive equity kept, 0, 0, loss beyond the fund); no
    fees (the engine model has them)."""
    hit = np.zeros(state.n_accounts, dtype=bool)
    hit[accounts] = True
    bal_rows = np.flatnonzero(hit[state.group_account[state.bal_group]])
    pos_rows = np.flatnonzero(hit[state.group_account[state.pos_group]])
    flow = np.bincount(
        state.bal_asset[bal_rows],
        weights=-state.bal_qty[bal_rows] * tables.price_usd[state.bal_asset[bal_rows]],
        minlength=tables.n_assets,
    )
    if pos_rows.size:
        markets = state.pos_market[pos_rows]
        marks = market_marks_usd(tables)
        flow += np.bincount(
            tables.market_underlying[markets],
            weights=-state.pos_qty[pos_rows] * marks[markets],
            minlength=tables.n_assets,
        )
    groups = np.flatnonzero(hit[state.group_account])
    shortfall = float(np.maximum(-group_equity[groups], 0.0).sum())
    paid = min(insurance, shortfall)
    value = (
        float(group_equity[groups].sum()),
        float(np.maximum(group_equity[groups], 0.0).sum()),
        0.0,
        0.0,
        shortfall - paid,
    )
    bal_qty[bal_rows] = 0.0
    pos_qty[pos_rows] = 0.0
    pos_funding[pos_rows] = 0.0
    return np.asarray(flow, dtype=np.float64), shortfall, insurance - paid, value


def _record(
    r: int,
    tables: MarketTables,
    price: FloatArray,
    n_groups: int,
    n_accounts: int,
    flow: FloatArray,
    bad_debt: float,
    insurance: float,
    quantiles: dict[str, float],
    value: tuple[float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, 0.0),
) -> RoundRecord:
    symbols = tables.asset_symbols
    return RoundRecord(
        round=r,
        price_usd={s: float(price[i]) for i, s in enumerate(symbols)},
        liquidatable_groups=int(n_groups),
        liquidated_accounts=int(n_accounts),
        liquidated_notional_usd=float(np.abs(flow).sum()),
        forced_flow_usd={s: float(flow[i]) for i, s in enumerate(symbols) if flow[i] != 0.0},
        bad_debt_usd=float(bad_debt),
        insurance_fund_usd=float(insurance),
        health_quantiles_usd=quantiles,
        equity_before_usd=value[0],
        equity_after_usd=value[1],
        liquidator_usd=value[2],
        makers_usd=value[3],
        external_usd=value[4],
    )
