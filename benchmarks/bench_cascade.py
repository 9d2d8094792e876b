"""Benchmark: a 1,000,000-account liquidation cascade to its fixed point, and Monte Carlo paths.

    python benchmarks/bench_cascade.py [--accounts 1000000] [--mc-accounts 100000]
                                       [--mc-paths 10000] [--peer-accounts 2000]

1. A generated book (crossmargin.simulation.generate) of ``--accounts`` accounts, ETH -25 %,
   cascade to the fixed point with the liquidation engine (partial liquidation, fees) and with
   the fast close-out model, on one pinned core. The engine model three ways: screened (only
   the groups a bound says can cross zero are revalued after the first round; health
   quantiles off, as this benchmark does not report them); revaluing every group every round
   (the previous path: rounds, final rows and prices must be identical, else exit 1); and
   with the per-round health quantiles on (every group revalued: quantiles need every
   health). Peer, same run: the engine run account by account (a batch of one per
   liquidatable account, as a per-account liquidator bot does) on ``--peer-accounts`` of the
   first round's liquidatable accounts, scaled to all.
2. Monte Carlo: ``--mc-paths`` GBM-with-jumps paths over ``--mc-accounts`` accounts, one
   close-out cascade per path, on two threads; prints the bad-debt VaR/ES and the time.
"""

from __future__ import annotations

import argparse
import inspect
import os
import time

import numpy as np

from crossmargin.liquidation.engine import liquidate_arrays
from crossmargin.margin.arrays import MAINT
from crossmargin.margin.kernel import evaluate_groups
from crossmargin.simulation import CascadeConfig, generate_book, run_cascade, shocked_prices
from crossmargin.simulation.cascade import impact_params
from crossmargin.simulation.executors import make_executor
from crossmargin.simulation.montecarlo import run_monte_carlo
from crossmargin.simulation.paths import gbm_jump_returns
from crossmargin.simulation.rows import take_accounts


def cascade_benchmark(n: int, peer_n: int) -> None:
    t0 = time.perf_counter()
    generated = generate_book(n, seed=1)
    arrays = generated.to_arrays()
    print(
        f"book: {n:,} accounts, {arrays.bal_qty.size + arrays.pos_qty.size:,} rows "
        f"(generated in {time.perf_counter() - t0:.1f} s)"
    )
    prices = shocked_prices(generated.tables, {"ETH": -0.25})
    # warm-up on a small book: load every numba cache before anything is timed
    small = generate_book(2_000, seed=1)
    small_prices = shocked_prices(small.tables, {"ETH": -0.25})
    for model in ("engine", "closeout"):
        run_cascade(small.tables, small.to_arrays(), small_prices, CascadeConfig(model=model))
    can_screen = "screen" in inspect.signature(run_cascade).parameters  # not before issue 14
    results = {}
    runs = (
        ("engine", False, True, "engine, quantiles off (screened)"),
        ("engine", False, False, "engine, quantiles off, every group"),
        ("engine", True, True, "engine, quantiles on (every group)"),
        ("closeout", False, True, "close-out, quantiles off"),
        ("closeout", True, True, "close-out, quantiles on"),
    )
    for model, quantiles, screen, label in runs:
        config = CascadeConfig(model=model, health_quantiles=quantiles)  # type: ignore[arg-type]
        if not can_screen and (model, quantiles, screen) == ("engine", False, False):
            continue  # the same run as the screened one on code without a screen
        label = label if can_screen else label.replace(" (screened)", "")
        t = time.perf_counter()
        kwargs = {"screen": screen} if can_screen else {}
        result = run_cascade(generated.tables, arrays, prices, config, **kwargs)
        dt = time.perf_counter() - t
        results[(model, quantiles, screen)] = result
        print(
            f"cascade {label:38s}: {dt:6.2f} s, {len(result.rounds)} rounds, "
            f"{result.liquidated_accounts:,} accounts liquidated, forced flow "
            f"{result.liquidated_notional_usd / 1e9:,.2f} bn USD, bad debt "
            f"{result.bad_debt_usd / 1e6:,.1f} m USD  (target <= 5 s: "
            f"{'met' if dt <= 5.0 else 'NOT met'})"
        )
        if (model, quantiles, screen) == ("engine", False, True):
            engine_time, engine_liquidated = dt, result.liquidated_accounts
    for model in ("engine",) if can_screen else ():  # close-out is never screened
        a, b = results[(model, False, True)], results[(model, False, False)]
        same = (
            [r.to_dict() for r in a.rounds] == [r.to_dict() for r in b.rounds]
            and np.array_equal(a.final.bal_qty, b.final.bal_qty)
            and np.array_equal(a.final.pos_qty, b.final.pos_qty)
            and np.array_equal(a.final_price_usd, b.final_price_usd)
        )
        print(f"agreement {model}: screened == every group revalued, every round, exactly: {same}")
        if not same:
            raise SystemExit(f"{model}: the screened cascade differs from full revaluation")
    a, b = results[("engine", True, True)], results[("engine", False, True)]
    keys = [k for k in a.rounds[0].to_dict() if k != "health_quantiles_usd"]
    if [[r.to_dict()[k] for k in keys] for r in a.rounds] != [
        [r.to_dict()[k] for k in keys] for r in b.rounds
    ]:
        raise SystemExit("engine: quantiles on and off give different cascades")
    # peer: the same engine, one liquidatable account at a time
    tables = generated.tables.__class__(**{**generated.tables.__dict__, "price_usd": prices})
    wa, wl, _ = evaluate_groups(tables, arrays, MAINT)
    liquidatable = np.flatnonzero(wa - wl < 0.0)[:peer_n]
    t = time.perf_counter()
    for a in liquidatable:
        one = take_accounts(arrays, np.array([a]))
        liquidate_arrays(tables, one.arrays, CascadeConfig().liquidation, journal=False)
    per_account = (time.perf_counter() - t) / max(liquidatable.size, 1)
    peer = per_account * engine_liquidated
    print(
        f"peer: one account at a time: {per_account * 1e3:.2f} ms/account on {liquidatable.size:,} "
        f"-> {peer:,.0f} s for the {engine_liquidated:,} accounts; batch cascade "
        f"{peer / engine_time:,.0f}x faster"
    )


def monte_carlo_benchmark(n: int, paths: int) -> None:
    generated = generate_book(n, seed=2)
    arrays = generated.to_arrays()
    config = CascadeConfig(model="closeout")
    sigma, _ = impact_params(generated.tables, config)
    corr = np.where(np.eye(sigma.size) == 1.0, 1.0, 0.7)
    returns = gbm_jump_returns(sigma, corr, paths, 1.0, jump_per_day=0.05, seed=3)
    executor = make_executor("threads", workers=2)
    t = time.perf_counter()
    mc = run_monte_carlo(generated.tables, arrays, returns, config, executor, chunk_paths=32)
    dt = time.perf_counter() - t
    executor.close()
    m = mc.metrics()
    print(
        f"Monte Carlo: {paths:,} paths x {n:,} accounts in {dt:.1f} s "
        f"({dt / paths * 1e3:.1f} ms/path, 2 threads); bad debt VaR95 "
        f"{m['bad_debt_var95_usd'] / 1e6:,.2f} m, VaR99 {m['bad_debt_var99_usd'] / 1e6:,.2f} m, "
        f"ES99 {m['bad_debt_es99_usd'] / 1e6:,.2f} m USD; P(bad debt) {m['prob_bad_debt']:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--peer-accounts", type=int, default=2_000)
    parser.add_argument("--mc-accounts", type=int, default=100_000)
    parser.add_argument("--mc-paths", type=int, default=10_000)
    args = parser.parse_args()
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    if cores:
        os.sched_setaffinity(0, {min(cores)})  # the cascade on one core
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"one core pinned; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    cascade_benchmark(args.accounts, args.peer_accounts)
    if cores:
        os.sched_setaffinity(0, cores)
    if args.mc_paths:
        monte_carlo_benchmark(args.mc_accounts, args.mc_paths)


if __name__ == "__main__":
    main()
