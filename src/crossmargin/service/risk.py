"""Pool-wide views of the live book: distance to liquidation, leverage, stress heatmaps, the
stress library over the whole pool, and cascade simulations run in the background.

All figures come from the one kernel over the working set's rows (or, for the cascade, from
:func:`crossmargin.simulation.cascade.run_cascade` on the live book).
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from crossmargin.errors import InputError
from crossmargin.margin.arrays import (
    MAINT,
    FloatArray,
    IntArray,
    MarketTables,
    PortfolioArrays,
    compile_accounts,
)
from crossmargin.margin.engine import evaluate_arrays
from crossmargin.margin.kernel import evaluate_groups, market_marks_usd

if TYPE_CHECKING:
    from crossmargin.service.core import MarginCore

BUMP_FRAC = 1e-4  # relative price bump of the finite-difference sensitivity
DEFAULT_DAILY_VOL = 0.04  # assets without a history or a default: ETH-like
STABLE_DAILY_VOL = 0.002  # a stablecoin without a history: 20 bp a day
MIN_DAILY_VOL = 0.001  # 10 bp a day: the floor of any asset's volatility (stablecoins)
STABLE_BAND = 0.02  # an asset priced within 2 % of 1 USD is a stablecoin
HEATMAP_MOVES = tuple(round(-0.3 + 0.05 * k, 2) for k in range(13))


@dataclass(frozen=True)
class Distances:
    """Per account: gross position notional / equity, and the smallest one-asset move (fraction)
    that brings maint health to 0 on the linear estimate ``H(x) = H0 + S x`` with
    ``S = dH / d ln P`` by central differences; NaN where no move of one asset does."""

    computed_s: float
    leverage: FloatArray
    distance_frac: FloatArray
    distance_asset: IntArray  # -1: none
    distance_vol_units: FloatArray
    #: the largest over assets of the first-passage probability of reaching the asset's
    #: liquidating move within a day: GBM at the asset's daily volatility, zero drift of the
    #: price (:func:`crossmargin.predict.hit_probability`)
    probability_1d: FloatArray


def daily_vols(core: MarginCore) -> FloatArray:
    """Per asset, the daily volatility of its sampled live prices (>= 30 samples), else the
    cascade model's default, else 4 %; never below :data:`MIN_DAILY_VOL` (a stablecoin's
    near-zero noise would put it millions of sigmas away)."""
    from crossmargin.simulation.cascade import DEFAULT_SIGMA_DAILY

    vols = np.full(core.work.n_assets, DEFAULT_DAILY_VOL)
    for a, symbol in enumerate(core.work.asset_symbols):
        stable = abs(float(core.price_usd[a]) - 1.0) <= STABLE_BAND
        vols[a] = DEFAULT_SIGMA_DAILY.get(symbol, STABLE_DAILY_VOL if stable else DEFAULT_DAILY_VOL)
        samples = core.history.get(symbol)
        if samples is not None and len(samples) >= 30:
            times = np.array([t for t, _ in samples])
            returns = np.diff(np.log([p for _, p in samples]))
            interval = float(np.mean(np.diff(times)))
            if interval > 0.0:
                vols[a] = float(np.sqrt(np.mean(returns**2) * 86_400.0 / interval))
    return np.asarray(np.maximum(vols, MIN_DAILY_VOL), dtype=np.float64)


@dataclass(frozen=True)
class Snapshot:
    """What :func:`compute_distances` reads, copied under the core's lock so the work runs
    outside it (ticks are not held up by a pool-wide computation)."""

    tables: MarketTables
    arrays: PortfolioArrays
    exposure: npt.NDArray[np.bool_]
    maint_health: FloatArray
    equity: FloatArray
    vols: FloatArray

    @staticmethod
    def of(core: MarginCore) -> Snapshot:
        work = core.work
        arrays = work.arrays.with_quantities(
            work.arrays.bal_qty.copy(), work.arrays.pos_qty.copy(), work.arrays.pos_funding.copy()
        )
        return Snapshot(
            core.tables,
            arrays,
            work.exposure.copy(),
            work.maint_health.copy(),
            work.equity.copy(),
            daily_vols(core),
        )


def compute_distances(snap: Snapshot) -> Distances:
    """Leverage and linear distance to liquidation of every account (2 kernel passes per
    asset over every group)."""
    tables, arrays = snap.tables, snap.arrays
    n_groups, n = arrays.n_groups, arrays.n_accounts
    health0 = snap.maint_health
    best = np.full(n, np.inf)
    probability = np.zeros(n)
    best_asset = np.full(n, -1, dtype=np.int64)
    out = (np.empty(n_groups), np.empty(n_groups), np.empty(n_groups))
    for a in range(tables.n_assets):
        if not snap.exposure[a].any():
            continue
        sides = []
        for sign in (1.0, -1.0):
            evaluate_groups(
                tables, arrays, MAINT, None, a, np.full(n_groups, 1.0 + sign * BUMP_FRAC), out=out
            )
            sides.append(_per_account(arrays, out[0] - out[1]))
        slope = (sides[0] - sides[1]) / (2.0 * BUMP_FRAC)  # dH / d(relative move)
        with np.errstate(divide="ignore", invalid="ignore"):
            root = np.where(slope != 0.0, -health0 / slope, np.nan)
        # a price cannot fall 100 %; an account already below zero is at distance 0
        feasible = np.isfinite(root) & (root > -1.0) & snap.exposure[a]
        distance = np.where(health0 < 0.0, 0.0, np.abs(root))
        closer = feasible & (distance < best)
        best = np.where(closer, distance, best)
        best_asset = np.where(closer, a, best_asset)
        # the likeliest of the one-asset moves, each at its own asset's volatility
        signed = np.where(feasible, np.where(health0 < 0.0, 0.0, root), np.nan)
        probability = np.maximum(probability, _probability_1d(signed, snap.vols[a]))
    marks = market_marks_usd(tables)
    notional = np.abs(arrays.pos_qty) * marks[arrays.pos_market]
    gross = np.bincount(arrays.group_account[arrays.pos_group], weights=notional, minlength=n)
    equity = snap.equity
    with np.errstate(divide="ignore", invalid="ignore"):
        leverage = np.where(equity > 0.0, gross / np.where(equity > 0.0, equity, 1.0), np.nan)
    best = np.where(np.isfinite(best), best, np.nan).astype(np.float64)
    vols = snap.vols[np.maximum(best_asset, 0)]
    vol_units = np.where(best_asset >= 0, best / vols, np.nan)
    return Distances(time.time(), leverage, best, best_asset, vol_units, probability)


def _probability_1d(signed_move: FloatArray, vols: FloatArray | float) -> FloatArray:
    """P(the price reaches ``1 + signed_move`` times today's within one day), first passage."""
    from crossmargin.predict.firstpassage import drift_toward_barrier, hit_probability

    known = np.isfinite(signed_move)
    moves = np.where(known, signed_move, 0.0)
    with np.errstate(divide="ignore"):
        log_distance = np.where(known, np.abs(np.log1p(moves)), np.inf)
    drift = drift_toward_barrier(np.where(moves < 0.0, -1.0, 1.0), vols)
    return np.asarray(hit_probability(log_distance, vols, 1.0, drift), dtype=np.float64)


def _per_account(arrays: PortfolioArrays, values: FloatArray) -> FloatArray:
    sums = np.bincount(arrays.group_account, weights=values, minlength=arrays.n_accounts)
    return np.asarray(sums, dtype=np.float64)


def heatmap(core: MarginCore, i: int) -> dict[str, Any]:
    """Maint health of account ``i`` over a grid of moves of its two largest exposures
    (gross USD value of balances and position notionals per asset; stablecoins last)."""
    account = core.work.account_model(i)
    tables = core.tables
    prices = tables.price_usd
    exposure = np.zeros(core.work.n_assets)
    for symbol, qty in account.balances.items():
        a = core.work.asset_id(symbol)
        exposure[a] += abs(qty) * prices[a]
    marks = market_marks_usd(tables)
    for position in account.positions:
        m = core.work.market_id(position.market)
        exposure[int(tables.market_underlying[m])] += abs(position.qty) * marks[m]
    stable = np.abs(prices - 1.0) <= STABLE_BAND
    order = sorted(
        np.flatnonzero(exposure > 0).tolist(), key=lambda a: (bool(stable[a]), -exposure[a])
    )
    chosen = order[:2]
    if not chosen:
        return {"assets": [], "moves_frac": list(HEATMAP_MOVES), "maint_health_usd": []}
    arrays = compile_accounts(tables, [account])
    grid: list[list[float]] = []
    moves_b = HEATMAP_MOVES if len(chosen) > 1 else (0.0,)
    for move_a in HEATMAP_MOVES:
        row = []
        for move_b in moves_b:
            shocked = prices.copy()
            shocked[chosen[0]] *= 1.0 + move_a
            if len(chosen) > 1:
                shocked[chosen[1]] *= 1.0 + move_b
            result = evaluate_arrays(tables, arrays, shocked)
            row.append(float(result.health[MAINT].sum()))
        grid.append(row)
    return {
        "assets": [core.work.asset_symbols[a] for a in chosen],
        "moves_frac": list(HEATMAP_MOVES),
        "maint_health_usd": grid,
    }


def pool_stress(core: MarginCore) -> list[dict[str, Any]]:
    """The built-in stress library applied to the whole pool at the live prices: accounts
    liquidatable and bankrupt, the maint-health deficit and the bad debt (sum of negative
    equity) under each scenario, all accounts in one kernel pass per scenario."""
    from crossmargin.risk.stress import load_scenarios

    library = load_scenarios()
    work, tables = core.work, core.tables
    n_groups = work.arrays.n_groups
    stable = frozenset(library.stablecoins)
    out = []
    for name, scenario in library.scenarios.items():
        prices = tables.price_usd.copy()
        for a, symbol in enumerate(work.asset_symbols):
            prices[a] *= 1.0 + scenario.shock_for(symbol, stable, library.aliases)
        wa, wl, eq = evaluate_groups(
            tables,
            work.arrays,
            MAINT,
            prices,
            out=(np.empty(n_groups), np.empty(n_groups), np.empty(n_groups)),
        )
        health = _per_account(work.arrays, wa - wl)
        equity = _per_account(work.arrays, eq)
        out.append(
            {
                "name": name,
                "description": getattr(scenario, "description", "") or "",
                "prices_usd": {s: float(prices[a]) for a, s in enumerate(work.asset_symbols)},
                "accounts_liquidatable": int((health < 0.0).sum()),
                "accounts_bankrupt": int((equity < 0.0).sum()),
                "maint_deficit_usd": float(np.maximum(-health, 0.0).sum()),
                "bad_debt_usd": float(np.maximum(-equity, 0.0).sum()),
                "pool_equity_usd": float(equity.sum()),
            }
        )
    return out


@dataclass
class CascadeJob:
    """A cascade simulation running in a background thread."""

    job_id: str
    shocks: dict[str, float]
    model: str
    state: str = "running"
    rounds: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    max_rounds: int = 50
    started_s: float = field(default_factory=time.time)

    def view(self) -> dict[str, Any]:
        done = self.state != "running"
        return {
            "job_id": self.job_id,
            "state": self.state,
            "shocks": self.shocks,
            "model": self.model,
            "progress_frac": 1.0 if done else min(len(self.rounds) / self.max_rounds, 0.99),
            "rounds": list(self.rounds),
            "summary": self.summary,
            "error": self.error,
            "elapsed_s": time.time() - self.started_s,
        }


class CascadeJobs:
    """Starts cascades on a copy of the live book and keeps the last few results."""

    def __init__(self, core: MarginCore, keep: int = 20) -> None:
        self.core = core
        self.keep = keep
        self.jobs: dict[str, CascadeJob] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def start(self, shocks: Mapping[str, float], model: str) -> CascadeJob:
        from crossmargin.simulation.cascade import CascadeConfig, shocked_prices

        core = self.core
        with core.lock:
            tables = core.tables
            prices = shocked_prices(tables, dict(shocks))  # validates names and moves
            accounts = list(core.work.accounts)
            fund = core.system.get("insurance_fund_usd", 0.0)
        if model not in ("engine", "closeout"):
            raise InputError("model", model, "must be 'engine' or 'closeout'")
        config = CascadeConfig.model_validate(
            {"model": model, "liquidation": core.config.liquidation(fund)}
        )
        with self._lock:
            job = CascadeJob(
                f"c{next(self._ids)}", dict(shocks), model, max_rounds=config.max_rounds
            )
            self.jobs[job.job_id] = job
            for old in list(self.jobs)[: -self.keep]:
                self.jobs.pop(old)
        thread = threading.Thread(
            target=self._run, args=(job, tables, accounts, prices, config), daemon=True
        )
        thread.start()
        return job

    @staticmethod
    def _run(
        job: CascadeJob, tables: Any, accounts: list[Any], prices: FloatArray, config: Any
    ) -> None:
        from crossmargin.simulation.cascade import run_cascade

        def on_round(record: Any) -> None:
            data = record.to_dict()
            job.rounds.append(
                {
                    k: data[k]
                    for k in (
                        "round",
                        "price_usd",
                        "liquidatable_groups",
                        "liquidated_accounts",
                        "liquidated_notional_usd",
                        "bad_debt_usd",
                        "insurance_fund_usd",
                    )
                }
            )

        try:
            arrays = compile_accounts(replace(tables, price_usd=prices), accounts, settle_rows=True)
            result = run_cascade(tables, arrays, prices, config, on_round=on_round)
            summary = result.to_dict()
            summary.pop("rounds")
            summary["final_price_usd"] = {
                s: float(p)
                for s, p in zip(tables.asset_symbols, result.final_price_usd, strict=True)
            }
            job.summary = summary
            job.state = "done"
        except Exception as exc:  # a job reports its failure instead of dying silently
            job.error = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            job.state = "failed"

    def get(self, job_id: str) -> CascadeJob | None:
        return self.jobs.get(job_id)


def finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None
