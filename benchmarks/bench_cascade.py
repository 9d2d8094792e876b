"""Benchmark: a 1,000,000-account liquidation cascade to its fixed point, and Monte Carlo paths.

    python benchmarks/bench_cascade.py [--accounts 1000000] [--mc-accounts 100000]
                                       [--mc-paths 10000] [--peer-accounts 2000]

1. A generated book (crossmargin.simulation.generate) of ``--accounts`` accounts, ETH -25 %,
   cascade to the fixed point with the liquidation engine (partial liquidation, fees) and with
   the fast close-out model. Peer, same run: the engine run account by account (a batch of one
   per liquidatable account, as a per-account liquidator bot does) on ``--peer-accounts`` of the
   first round's liquidatable accounts, scaled to all of them.
2. Monte Carlo: ``--mc-paths`` GBM-with-jumps paths over ``--mc-accounts`` accounts, one
   close-out cascade per path, on two threads; prints the bad-debt VaR/ES and the time.
"""

from __future__ import annotations

import argparse
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
    for model in ("engine", "closeout"):
        config = CascadeConfig(model=model)  # type: ignore[arg-type]
        t = time.perf_counter()
        result = run_cascade(generated.tables, arrays, prices, config)
        dt = time.perf_counter() - t
        print(
            f"cascade ({model:8s}): {dt:6.2f} s, {len(result.rounds)} rounds, "
            f"{result.liquidated_accounts:,} accounts liquidated, forced flow "
            f"{result.liquidated_notional_usd / 1e9:,.2f} bn USD, bad debt "
            f"{result.bad_debt_usd / 1e6:,.1f} m USD  (target <= 5 s: "
            f"{'met' if dt <= 5.0 else 'NOT met'})"
        )
        if model == "engine":
            engine_time, engine_liquidated = dt, result.liquidated_accounts
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
    cascade_benchmark(args.accounts, args.peer_accounts)
    if args.mc_paths:
        monte_carlo_benchmark(args.mc_accounts, args.mc_paths)


if __name__ == "__main__":
    main()
