"""Benchmark: where a second thread pays - one thread against all cores, by problem size.

Four parallel paths, each timed on one thread and on every core in the same run (median of
``--repeats``; results checked equal between the two, else exit 1):

* the risk kernel (``evaluate_groups(parallel=True)``: numba ``prange`` over blocks of
  groups) against the serial kernel, on the bench_kernel book of 10k to 1M accounts;
* portfolio margin (``portfolio_margin``: numba ``prange`` over scenarios), on the
  bench_portfolio account of 1k to 100k options, one thread against all, and the engine's
  own choice (``crossmargin._threads.idle_threads``: idle cores, one below 1M revaluations);
* Monte Carlo VaR revaluation (``ScenarioRevaluer.revalue``: chunks of tiled scenarios on
  worker threads), bench_var's 50-position account, 1k to 100k paths, ``threads=1`` against 2;
* Monte Carlo cascades (``run_monte_carlo``, close-out model): a serial executor against
  the threads executor with 2 workers, on 20,000 generated accounts x 32 to 256 paths.

The machine's load average is printed at the start and the end: on a 2-core machine shared
with other work the second core is often busy, and then a second thread costs more than it
gains. The crossover is the size from which the all-core time is lower.

    python benchmarks/bench_threads.py [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numba
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_kernel import synthetic_book as kernel_book
from bench_portfolio import synthetic_portfolio
from bench_var import compile_one, synthetic_returns
from bench_var import synthetic_book as var_book

from crossmargin.book import load_demo_book
from crossmargin.margin.arrays import MAINT, compile_market
from crossmargin.margin.kernel import evaluate_groups
from crossmargin.portfolio import engine as pm_engine
from crossmargin.portfolio import get_profile, portfolio_margin
from crossmargin.risk.revalue import ScenarioRevaluer
from crossmargin.risk.var import fit_t_copula, simulate_t_copula
from crossmargin.simulation import CascadeConfig, generate_book
from crossmargin.simulation.cascade import impact_params
from crossmargin.simulation.executors import make_executor
from crossmargin.simulation.montecarlo import run_monte_carlo
from crossmargin.simulation.paths import gbm_jump_returns


def _median(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    fn()  # warm-up (numba cache, thread pool)
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def _row(name: str, size: str, one_s: float, all_s: float, same: bool, auto: str = "") -> None:
    winner = "all cores" if all_s < one_s else "one thread"
    print(
        f"{name:22s} {size:>12s}   1 thread {one_s * 1e3:9.2f} ms   all {all_s * 1e3:9.2f} ms   "
        f"speed-up {one_s / all_s:5.2f}x   faster: {winner:10s}   same result: {same}{auto}"
    )
    if not same:
        raise SystemExit(f"{name} {size}: one thread and all cores disagree")


def kernel_rows(sizes: list[int], repeats: int) -> None:
    tables = compile_market(load_demo_book())
    for n in sizes:
        arrays = kernel_book(tables, n)
        one_s, one = _median(lambda a=arrays: evaluate_groups(tables, a, MAINT), repeats)
        all_s, par = _median(
            lambda a=arrays: evaluate_groups(tables, a, MAINT, parallel=True), repeats
        )
        same = all(np.array_equal(x, y) for x, y in zip(one, par, strict=True))
        _row("risk kernel", f"{n:,} acc", one_s, all_s, same)


def portfolio_rows(sizes: list[int], repeats: int) -> None:
    profile = get_profile("derive-pm2")
    threads = numba.config.NUMBA_NUM_THREADS
    choose = pm_engine._threads_for
    for n in sizes:
        portfolio = synthetic_portfolio(n)
        columns = profile.grid("ETH").n + 3

        def run(p: Any = portfolio) -> Any:
            return portfolio_margin(p, profile)

        auto_s, _ = _median(run, repeats)  # the engine's own choice
        auto_threads = choose(n * columns)
        pm_engine._threads_for = lambda _work: 1  # type: ignore[assignment]
        one_s, one = _median(run, repeats)
        pm_engine._threads_for = lambda _work: threads  # type: ignore[assignment]
        all_s, par = _median(run, repeats)
        pm_engine._threads_for = choose
        auto = f"   default: {auto_threads} thread(s) {auto_s * 1e3:9.2f} ms"
        _row("portfolio margin", f"{n:,} opt", one_s, all_s, one.maint == par.maint, auto)


def var_rows(sizes: list[int], repeats: int) -> None:
    book = var_book()
    revaluer = ScenarioRevaluer.from_book(book, "desk")
    copula = fit_t_copula(synthetic_returns(revaluer))
    one_thread = ScenarioRevaluer(revaluer.full_tables, compile_one(book), threads=1)
    two = ScenarioRevaluer(revaluer.full_tables, compile_one(book), threads=2)
    for n in sizes:
        paths = simulate_t_copula(copula, n, seed=7)
        one_s, one = _median(lambda p=paths: one_thread.revalue(p), repeats)
        all_s, par = _median(lambda p=paths: two.revalue(p), repeats)
        same = np.array_equal(one.equity_usd, par.equity_usd) and np.array_equal(
            one.health_usd, par.health_usd
        )
        _row("MC VaR revaluation", f"{n:,} paths", one_s, all_s, same)


def cascade_rows(sizes: list[int], repeats: int, accounts: int) -> None:
    generated = generate_book(accounts, seed=2)
    arrays = generated.to_arrays()
    config = CascadeConfig(model="closeout")
    sigma, _ = impact_params(generated.tables, config)
    corr = np.where(np.eye(sigma.size) == 1.0, 1.0, 0.7)
    serial = make_executor("serial")
    threads = make_executor("threads", workers=2)
    for n in sizes:
        returns = gbm_jump_returns(sigma, corr, n, 1.0, jump_per_day=0.05, seed=3)

        def run(executor: Any, r: np.ndarray = returns) -> Any:
            return run_monte_carlo(generated.tables, arrays, r, config, executor, chunk_paths=8)

        one_s, one = _median(lambda: run(serial), max(1, repeats // 2))
        all_s, par = _median(lambda: run(threads), max(1, repeats // 2))
        same = np.array_equal(one.bad_debt_usd, par.bad_debt_usd)
        _row("MC cascades", f"{n:,} paths", one_s, all_s, same)
    threads.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"cores {cores}, numba threads {numba.config.NUMBA_NUM_THREADS}; load average at start "
        + " ".join(f"{x:.2f}" for x in os.getloadavg())
    )
    q = args.quick
    kernel_rows([10_000, 100_000] if q else [10_000, 100_000, 1_000_000], args.repeats)
    portfolio_rows([1_000, 10_000] if q else [1_000, 10_000, 100_000], args.repeats)
    var_rows([1_000, 10_000] if q else [1_000, 10_000, 100_000], args.repeats)
    cascade_rows([16, 32] if q else [32, 128, 256], args.repeats, 5_000 if q else 20_000)
    print("load average at end " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
