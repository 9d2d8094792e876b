"""Benchmark: maintenance health of 1,000,000 accounts x 8 rows after one price tick.

Prints the kernel's time per tick (median and best of ``--ticks``) and the ratio against a plain
per-account Python loop computing the same maintenance health (same formulas: tiers, size
premium, brackets, PnL weights) on a ``--loop-accounts`` subset measured in the same run. The two
are checked to agree to 1e-9 relative. Targets (issue: foundation): <= 50 ms per tick on one
core, >= 200x the loop.

    python benchmarks/bench_kernel.py [--accounts N] [--ticks K] [--loop-accounts M]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np

from crossmargin.book import load_demo_book
from crossmargin.margin.arrays import MAINT, MarketTables, PortfolioArrays, compile_market
from crossmargin.margin.kernel import evaluate_groups

BALANCES_PER_ACCOUNT = 4  # three deposits and one borrow
POSITIONS_PER_ACCOUNT = 4  # perps and a dated future, long and short


def synthetic_book(tables: MarketTables, n: int, seed: int = 0) -> PortfolioArrays:
    """``n`` cross accounts of 8 rows, built directly as arrays (no pydantic for 1M accounts)."""
    rng = np.random.default_rng(seed)
    sym = tables.asset_symbols
    deposits = np.array([sym.index(s) for s in ("USDC", "BTC", "ETH", "SOL", "AAVE", "wstETH")])
    borrows = np.array([sym.index(s) for s in ("USDC", "USDT")])
    bal_asset = np.empty((n, BALANCES_PER_ACCOUNT), dtype=np.int64)
    for j in range(3):  # three distinct deposit assets per account
        bal_asset[:, j] = rng.permuted(np.tile(deposits, (n, 1)), axis=1)[:, j]
    bal_asset[:, 3] = rng.choice(borrows, n)
    bal_asset.sort(axis=1)  # keep (group, asset) order; duplicates impossible by construction
    prices = tables.price_usd[bal_asset]
    value_usd = rng.lognormal(np.log(20_000), 1.0, (n, BALANCES_PER_ACCOUNT))
    is_borrow = np.isin(bal_asset, borrows) & (rng.random((n, BALANCES_PER_ACCOUNT)) < 0.6)
    bal_qty = np.where(is_borrow, -0.5, 1.0) * value_usd / prices
    markets = rng.permuted(np.tile(np.arange(tables.n_markets), (n, 1)), axis=1)
    pos_market = markets[:, :POSITIONS_PER_ACCOUNT]
    underlying_px = (
        tables.market_basis[pos_market] * tables.price_usd[tables.market_underlying[pos_market]]
    )
    notional = rng.lognormal(np.log(30_000), 1.0, (n, POSITIONS_PER_ACCOUNT))
    pos_qty = rng.choice([-1.0, 1.0], (n, POSITIONS_PER_ACCOUNT)) * notional / underlying_px
    pos_entry = underlying_px * (1 + rng.normal(0, 0.05, (n, POSITIONS_PER_ACCOUNT)))
    groups = np.arange(n, dtype=np.int64)
    return PortfolioArrays(
        account_ids=tuple(),
        account_mode=tuple(),
        group_account=groups,
        group_position=np.full(n, -1, dtype=np.int64),
        account_group_start=np.arange(n + 1, dtype=np.int64),
        bal_group=np.repeat(groups, BALANCES_PER_ACCOUNT),
        bal_asset=bal_asset.ravel(),
        bal_qty=bal_qty.ravel(),
        pos_group=np.repeat(groups, POSITIONS_PER_ACCOUNT),
        pos_market=pos_market.ravel().astype(np.int64),
        pos_qty=pos_qty.ravel(),
        pos_entry=pos_entry.ravel(),
        pos_funding=rng.normal(0, 5.0, n * POSITIONS_PER_ACCOUNT),
        pos_settle_row=np.full(n * POSITIONS_PER_ACCOUNT, -1, dtype=np.int64),
    )


def python_loop_health(
    tables: MarketTables, arrays: PortfolioArrays, prices: np.ndarray, m: int
) -> list[float]:
    """The peer: maint health of the first ``m`` accounts, one account and one row at a time,
    over plain Python lists (the naive implementation a kernel replaces)."""
    L = MAINT
    price = prices.tolist()
    aw, lw, imf = (
        tables.asset_weight[L].tolist(),
        tables.liab_weight[L].tolist(),
        tables.asset_imf.tolist(),
    )
    tiers = [
        list(
            zip(
                tables.tier_above_usd[a, : tables.tier_count[a]].tolist(),
                tables.tier_factor[a, : tables.tier_count[a]].tolist(),
                strict=True,
            )
        )
        for a in range(tables.n_assets)
    ]
    und, settle = tables.market_underlying.tolist(), tables.market_settle.tolist()
    basis, frac, mimf = (
        tables.market_basis.tolist(),
        tables.margin_frac[L].tolist(),
        tables.market_imf.tolist(),
    )
    brackets = [
        list(
            zip(
                tables.bracket_floor_usd[k, : tables.bracket_count[k]].tolist(),
                tables.bracket_frac[L, k, : tables.bracket_count[k]].tolist(),
                tables.bracket_cum_usd[L, k, : tables.bracket_count[k]].tolist(),
                strict=True,
            )
        )
        for k in range(tables.n_markets)
    ]
    pw, pimf = tables.pnl_weight[L].tolist(), tables.pnl_imf.tolist()
    accounts = []
    for i in range(m):
        bal = [
            (int(arrays.bal_asset[r]), float(arrays.bal_qty[r]))
            for r in range(arrays.bal_start[i], arrays.bal_start[i + 1])
        ]
        pos = [
            (
                int(arrays.pos_market[r]),
                float(arrays.pos_qty[r]),
                float(arrays.pos_entry[r]),
                float(arrays.pos_funding[r]),
            )
            for r in range(arrays.pos_start[i], arrays.pos_start[i + 1])
        ]
        accounts.append((bal, pos))
    out = []
    for bal, pos in accounts:
        health = 0.0
        for k, qty, entry, funding in pos:
            mark = basis[k] * price[und[k]]
            s = price[settle[k]]
            pnl = qty * (mark - entry * s) - funding * s
            notional = abs(qty) * mark
            req = notional * frac[k]
            for floor, f, cum in brackets[k]:
                if notional >= floor:
                    req = notional * f - cum
            if mimf[k] > 0:
                req = max(
                    req, notional * max(frac[k], 0.8 * frac[k] + mimf[k] * math.sqrt(abs(qty)))
                )
            if pnl > 0:
                w = pw[k] if pimf[k] <= 0 else min(pw[k], 1.1 / (1 + pimf[k] * math.sqrt(pnl)))
                health += pnl * w
            else:
                health += pnl
            health -= req
        for a, qty in bal:
            if qty > 0:
                value = qty * price[a]
                if tiers[a]:
                    counted, edge, factor = 0.0, 0.0, 1.0
                    for above, f in tiers[a]:
                        if value <= above:
                            break
                        counted += (above - edge) * factor
                        edge, factor = above, f
                    value = counted + (value - edge) * factor
                w = aw[a] if imf[a] <= 0 else min(aw[a], 1.1 / (1 + imf[a] * math.sqrt(qty)))
                health += value * w
            elif qty < 0:
                w = lw[a] if imf[a] <= 0 else max(lw[a], 0.8 * lw[a] + imf[a] * math.sqrt(-qty))
                health += qty * price[a] * w
        out.append(health)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--ticks", type=int, default=20)
    parser.add_argument("--loop-accounts", type=int, default=10_000)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    tables = compile_market(load_demo_book())
    t0 = time.perf_counter()
    arrays = synthetic_book(tables, args.accounts)
    build_s = time.perf_counter() - t0
    rows = arrays.bal_qty.size + arrays.pos_qty.size
    out = (np.empty(arrays.n_groups), np.empty(arrays.n_groups), np.empty(arrays.n_groups))
    rng = np.random.default_rng(1)
    evaluate_groups(tables, arrays, MAINT, out=out)  # compile (or load the numba cache)
    times = []
    prices = tables.price_usd
    for _ in range(args.ticks):
        prices = tables.price_usd * np.exp(rng.normal(0, 0.01, tables.n_assets))
        start = time.perf_counter()
        evaluate_groups(tables, arrays, MAINT, prices, out=out)
        times.append(time.perf_counter() - start)
    health = out[0] - out[1]
    m = min(args.loop_accounts, args.accounts)
    start = time.perf_counter()
    loop = python_loop_health(tables, arrays, prices, m)
    loop_s = time.perf_counter() - start
    diff = np.abs(np.array(loop) - health[:m]) / np.maximum(1.0, np.abs(health[:m]))
    median_ms, best_ms = statistics.median(times) * 1e3, min(times) * 1e3
    loop_per_account_us = loop_s / m * 1e6
    ratio = loop_per_account_us * args.accounts / 1e3 / median_ms
    print(f"accounts {args.accounts:,}  rows {rows:,}  (built in {build_s:.2f} s, one core)")
    print(
        f"kernel maint tick: median {median_ms:.1f} ms, best {best_ms:.1f} ms "
        f"({rows / (median_ms / 1e3) / 1e6:.0f} M rows/s)"
    )
    print(
        f"python loop: {loop_per_account_us:.2f} us/account on {m:,} accounts "
        f"-> {loop_per_account_us * args.accounts / 1e6:.1f} s for all"
    )
    print(f"ratio (loop / kernel, median): {ratio:.0f}x   max rel diff {diff.max():.2e}")
    print(
        f"targets: <= 50 ms {'met' if median_ms <= 50 else 'NOT met'}; "
        f">= 200x {'met' if ratio >= 200 else 'NOT met'}"
    )
    if diff.max() > 1e-9:
        raise SystemExit("kernel and Python loop disagree")


if __name__ == "__main__":
    main()
