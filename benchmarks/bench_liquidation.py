"""Benchmark: 100,000 liquidatable accounts liquidated in one batch.

Each account holds ETH and BTC collateral, a USDC borrow and a long ETH perp (the USDC row is
also the perp's settle row); an ETH crash makes every account liquidatable. The engine runs
once on the whole batch (journal on and off) and, as the peer, account by account (a batch of
one each, the way a per-account liquidator bot works) on a subset measured in the same run;
the final balances of the subset are checked to agree. Prints time, accounts/s and the ratio.

    python benchmarks/bench_liquidation.py [--accounts N] [--loop-accounts M] [--depth]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np

from crossmargin.book import load_demo_book
from crossmargin.liquidation import (
    DepthExecution,
    LiquidationConfig,
    RelativeBook,
    liquidate_arrays,
)
from crossmargin.margin.arrays import MAINT, MarketTables, PortfolioArrays, compile_market
from crossmargin.margin.kernel import evaluate_groups


def synthetic_batch(tables: MarketTables, n: int, seed: int = 0) -> PortfolioArrays:
    """``n`` cross accounts: ETH, BTC deposits, a USDC borrow, a long ETH-PERP."""
    rng = np.random.default_rng(seed)
    sym = tables.asset_symbols
    usdc, btc, eth = sym.index("USDC"), sym.index("BTC"), sym.index("ETH")
    perp = tables.market_symbols.index("ETH-PERP")
    px = tables.price_usd
    assets = np.array(sorted([usdc, btc, eth]))
    bal_asset = np.tile(assets, n)
    value = rng.lognormal(np.log(20_000), 0.8, (n, 3))
    qty = value / px[assets]
    qty[:, list(assets).index(usdc)] *= -1.2  # the borrow
    perp_px = tables.market_basis[perp] * px[tables.market_underlying[perp]]
    pos_qty = rng.lognormal(np.log(40_000), 0.8, n) / perp_px
    groups = np.arange(n, dtype=np.int64)
    return PortfolioArrays(
        account_ids=tuple(f"a{i}" for i in range(n)),
        account_mode=("cross",) * n,
        group_account=groups,
        group_position=np.full(n, -1, dtype=np.int64),
        account_group_start=np.arange(n + 1, dtype=np.int64),
        bal_group=np.repeat(groups, 3),
        bal_asset=bal_asset,
        bal_qty=qty.ravel(),
        pos_group=groups,
        pos_market=np.full(n, perp, dtype=np.int64),
        pos_qty=pos_qty,
        pos_entry=np.full(n, perp_px * 1.02),
        pos_funding=np.zeros(n),
        pos_settle_row=groups * 3 + list(assets).index(usdc),
    )


def make_liquidatable(tables: MarketTables, arrays: PortfolioArrays) -> PortfolioArrays:
    """Size each USDC borrow so that maint health after the crash is -1 % to -10 % of what the
    account had without it: every account liquidatable, most of them still solvent."""
    usdc = tables.asset_symbols.index("USDC")
    rows = arrays.pos_settle_row
    arrays.bal_qty[rows] = 0.0
    wa, wl, _ = evaluate_groups(tables, arrays, MAINT)
    rng = np.random.default_rng(1)
    stretch = rng.uniform(1.01, 1.1, arrays.n_groups)
    borrow_usd = (wa - wl) * stretch / tables.liab_weight[MAINT, usdc]
    arrays.bal_qty[rows] = -borrow_usd / tables.price_usd[usdc]
    return arrays


def subset(arrays: PortfolioArrays, i: int) -> PortfolioArrays:
    """Account ``i`` alone, as a batch of one."""
    b, p = slice(3 * i, 3 * i + 3), slice(i, i + 1)
    zero = np.zeros(1, dtype=np.int64)
    return PortfolioArrays(
        account_ids=(arrays.account_ids[i],),
        account_mode=("cross",),
        group_account=zero,
        group_position=np.full(1, -1, dtype=np.int64),
        account_group_start=np.array([0, 1]),
        bal_group=np.zeros(3, dtype=np.int64),
        bal_asset=arrays.bal_asset[b].copy(),
        bal_qty=arrays.bal_qty[b].copy(),
        pos_group=zero,
        pos_market=arrays.pos_market[p].copy(),
        pos_qty=arrays.pos_qty[p].copy(),
        pos_entry=arrays.pos_entry[p].copy(),
        pos_funding=arrays.pos_funding[p].copy(),
        pos_settle_row=np.array([arrays.pos_settle_row[i] - 3 * i]),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--loop-accounts", type=int, default=300)
    parser.add_argument("--depth", action="store_true", help="fill against order-book depth")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    tables = compile_market(load_demo_book())
    eth = tables.asset_symbols.index("ETH")
    prices = tables.price_usd.copy()
    prices[eth] *= 0.75  # the crash
    from dataclasses import replace

    tables = replace(tables, price_usd=prices)
    config = LiquidationConfig()
    execution = None
    if args.depth:
        levels = RelativeBook(
            np.array([0.001, 0.005, 0.02]),
            np.array([5.0, 20.0, 200.0]),
            np.array([0.001, 0.005, 0.02]),
            np.array([5.0, 20.0, 200.0]),
        )
        execution = DepthExecution(books={"ETH": levels, "ETH-PERP": levels, "BTC": levels})
    batch = make_liquidatable(tables, synthetic_batch(tables, args.accounts))
    liquidate_arrays(tables, subset(batch, 0), config, execution)  # compile numba

    timings = {}
    for journal in (False, True):
        start = time.perf_counter()
        result = liquidate_arrays(tables, batch, config, execution, journal=journal)
        timings[journal] = time.perf_counter() - start
    statuses: dict[str, int] = {}
    for outcome in result.outcomes:
        statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
    steps = sum(o.steps for o in result.outcomes)

    m = min(args.loop_accounts, args.accounts)
    start = time.perf_counter()
    worst = 0.0
    for i in range(m):
        one = liquidate_arrays(tables, subset(batch, i), config, execution, journal=False)
        got = one.final.bal_qty
        want = result.final.bal_qty[3 * i : 3 * i + 3]
        worst = max(worst, float(np.max(np.abs(got - want) / (1 + np.abs(want)))))
    per_account = (time.perf_counter() - start) / m

    n = args.accounts
    print(
        f"accounts: {n:,} liquidatable ({statuses}), {steps:,} steps, {len(result.events):,} events"
    )
    print(f"execution: {'order-book depth' if args.depth else 'oracle transfer'}")
    print(f"batch, journal off: {timings[False]:.2f} s  ({n / timings[False]:,.0f} accounts/s)")
    print(f"batch, journal on:  {timings[True]:.2f} s  ({n / timings[True]:,.0f} accounts/s)")
    print(
        f"peer: account by account (batch of one) {per_account * 1e3:.2f} ms/account on {m}, "
        f"{per_account * n:.1f} s extrapolated to {n:,}"
    )
    print(f"ratio batch (journal off) vs peer: {per_account * n / timings[False]:.0f}x")
    print(f"max relative difference batch vs one-by-one: {worst:.1e}")


if __name__ == "__main__":
    main()
