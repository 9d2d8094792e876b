"""Benchmark: maintenance health of 1,000,000 accounts x 8 rows after one price tick.

The book (``synthetic_book``): each account holds three deposits and one balance that is a borrow
60 % of the time, drawn from the demo book's assets, and four positions drawn in random order
from all seven demo markets (three perps, a dated future and three ETH options), long or short,
so about 4 of 7 position rows of a random account are options or not in no predictable order.

Measured in the same run, on one pinned core:

* the kernel (``evaluate_groups``, maint level, preallocated outputs), ``--ticks`` ticks after
  a random price move; median and best;
* the numpy peer: the same health vectorized over blocks of ``--block`` accounts (per-row
  arrays, padded bracket and tier loops with ``np.where``, ``np.add.reduceat`` per account), its
  own Black-76 marks (``scipy.special.ndtr``) - the competent non-numba implementation;
* the Python peer: a per-account, per-row loop over Python lists with the same formulas
  (option marks by Black-76 with ``math.erf``), on ``--loop-accounts`` accounts, scaled up;
* a memory-bandwidth probe: the best of 5 sums of a 256 MB float64 array (read bandwidth) and
  of 5 copies of it (read + write bytes), and the kernel's time over the time the bytes it must
  move (:data:`KERNEL_BYTES_PER_ACCOUNT`) take at the faster of the two bandwidths;
* the parallel variant of the same kernel (``parallel=True``, numba ``prange`` over blocks of
  accounts) on all cores, when the kernel has one.

Agreement: every peer's health must equal the kernel's to ``TOLERANCE_REL`` relative to
``max(1 USD, |health|)``, else the script exits with status 1. Targets (issue 14): <= 50 ms
per tick on one core, >= 4x the numpy peer; the bandwidth ratio is reported (aim <= 5x).

    python benchmarks/bench_kernel.py [--accounts N] [--ticks K] [--loop-accounts M] [--block B]
"""

from __future__ import annotations

import argparse
import inspect
import math
import os
import statistics
import time
from typing import Any

import numpy as np
from scipy.special import ndtr

from crossmargin.book import load_demo_book
from crossmargin.margin.arrays import MAINT, MarketTables, PortfolioArrays, compile_market
from crossmargin.margin.kernel import evaluate_groups, market_marks_usd

BALANCES_PER_ACCOUNT = 4  # three deposits and one borrow (60 %) or deposit
POSITIONS_PER_ACCOUNT = 4  # of the demo book's 7 markets (3 options), random order
#: agreement of each peer with the kernel, relative to max(1 USD, |health|)
TOLERANCE_REL = 1e-9
#: bytes the kernel must move per account: 4 balance rows (asset id, qty: 16 B each), 4 position
#: rows (market id, qty, entry, funding: 32 B each), the two CSR offsets (16 B), and 3 outputs
#: written (24 B, + 24 B read for ownership of the written lines)
KERNEL_BYTES_PER_ACCOUNT = 4 * 16 + 4 * 32 + 16 + 2 * 24


def synthetic_book(tables: MarketTables, n: int, seed: int = 0) -> PortfolioArrays:
    """``n`` cross accounts of 8 rows, built directly as arrays (no pydantic for 1M accounts)."""
    rng = np.random.default_rng(seed)
    sym = tables.asset_symbols
    deposits = np.array([sym.index(s) for s in ("USDC", "BTC", "ETH", "SOL", "AAVE", "wstETH")])
    borrows = np.array([sym.index(s) for s in ("USDC", "USDT")])
    bal_asset = np.empty((n, BALANCES_PER_ACCOUNT), dtype=np.int64)
    picks = rng.permuted(np.tile(deposits, (n, 1)), axis=1)
    bal_asset[:, :3] = picks[:, :3]  # three distinct deposit assets per account
    bal_asset[:, 3] = rng.choice(borrows, n)  # USDC may repeat a deposit: a second row
    bal_asset.sort(axis=1)  # rows sorted by asset within each account
    prices = tables.price_usd[bal_asset]
    value_usd = rng.lognormal(np.log(20_000), 1.0, (n, BALANCES_PER_ACCOUNT))
    is_borrow = np.isin(bal_asset, borrows) & (rng.random((n, BALANCES_PER_ACCOUNT)) < 0.6)
    bal_qty = np.where(is_borrow, -0.5, 1.0) * value_usd / prices
    markets = rng.permuted(np.tile(np.arange(tables.n_markets), (n, 1)), axis=1)
    pos_market = markets[:, :POSITIONS_PER_ACCOUNT]
    underlying_usd = tables.price_usd[tables.market_underlying[pos_market]]
    settle_usd = tables.price_usd[tables.market_settle[pos_market]]
    mark_usd = market_marks_usd(tables)[pos_market]
    notional = rng.lognormal(np.log(30_000), 1.0, (n, POSITIONS_PER_ACCOUNT))
    # size by the underlying's notional (an option's too); entry near the mark, in settle units
    pos_qty = rng.choice([-1.0, 1.0], (n, POSITIONS_PER_ACCOUNT)) * notional / underlying_usd
    pos_entry = mark_usd / settle_usd * (1 + rng.normal(0, 0.05, (n, POSITIONS_PER_ACCOUNT)))
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


def _norm_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def black76_python(f: float, k: float, vol: float, t: float, is_call: bool) -> float:
    """Black-76 premium, forward = spot, no discounting: phi (F N(phi d1) - K N(phi d2))."""
    s = vol * math.sqrt(t)
    d1 = math.log(f / k) / s + 0.5 * s
    d2 = d1 - s
    if is_call:
        return f * _norm_cdf(d1) - k * _norm_cdf(d2)
    return k * _norm_cdf(-d2) - f * _norm_cdf(-d1)


def python_loop_health(
    tables: MarketTables, arrays: PortfolioArrays, prices: np.ndarray, m: int
) -> list[float]:
    """The Python peer: maint health of the first ``m`` accounts, one account and one row at a
    time, over plain Python lists (the naive implementation a kernel replaces)."""
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
    is_option, is_call = tables.market_is_option.tolist(), tables.option_is_call.tolist()
    strike, vol, t_yrs = (
        tables.option_strike.tolist(),
        tables.option_vol.tolist(),
        tables.option_t_yrs.tolist(),
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
            s = price[settle[k]]
            underlying = price[und[k]]
            if is_option[k]:
                mark = black76_python(underlying, strike[k] * s, vol[k], t_yrs[k], is_call[k])
            else:
                mark = basis[k] * underlying
            pnl = qty * (mark - entry * s) - funding * s
            if is_option[k]:  # maint: |q| max(f S, f V) for a short, nothing for a long
                req = -qty * max(frac[k] * underlying, frac[k] * mark) if qty < 0 else 0.0
            else:
                notional = abs(qty) * mark
                req = notional * frac[k]
                for floor, f, cum in brackets[k]:
                    if notional >= floor:
                        req = notional * f - cum
                if mimf[k] > 0:
                    premium = max(frac[k], 0.8 * frac[k] + mimf[k] * math.sqrt(abs(qty)))
                    req = max(req, notional * premium)
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


def numpy_marks(tables: MarketTables, prices: np.ndarray) -> np.ndarray:
    """Mark of every market, USD: basis x underlying, or a Black-76 premium (scipy ndtr)."""
    underlying = prices[tables.market_underlying]
    marks = tables.market_basis * underlying
    opt = tables.market_is_option
    f, k = underlying[opt], tables.option_strike[opt] * prices[tables.market_settle[opt]]
    s = tables.option_vol[opt] * np.sqrt(tables.option_t_yrs[opt])
    d1 = np.log(f / k) / s + 0.5 * s
    d2 = d1 - s
    phi = np.where(tables.option_is_call[opt], 1.0, -1.0)
    marks[opt] = phi * (f * ndtr(phi * d1) - k * ndtr(phi * d2))
    return marks


def _segment_sum(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sum of ``values[starts[i]:starts[i+1]]`` per segment (empty segments give 0)."""
    n = starts.size - 1
    out = np.zeros(n)
    nonempty = starts[1:] > starts[:-1]
    if values.size:
        out[nonempty] = np.add.reduceat(values, starts[:-1][nonempty])
    return out


def numpy_health(
    tables: MarketTables,
    arrays: PortfolioArrays,
    prices: np.ndarray,
    out: np.ndarray,
    block: int = 65_536,
) -> np.ndarray:
    """The numpy peer: maint health of every group, vectorized over blocks of ``block`` groups
    (blocks keep the per-row temporaries in cache)."""
    L = MAINT
    marks = numpy_marks(tables, prices)
    settle_usd = prices[tables.market_settle]
    underlying_usd = prices[tables.market_underlying]
    frac = tables.margin_frac[L]
    max_b = int(tables.bracket_count.max())
    max_t = int(tables.tier_count.max())
    n = arrays.n_groups
    for g0 in range(0, n, block):
        g1 = min(n, g0 + block)
        r0, r1 = arrays.pos_start[g0], arrays.pos_start[g1]
        m = arrays.pos_market[r0:r1]
        q = arrays.pos_qty[r0:r1]
        mark, s = marks[m], settle_usd[m]
        pnl = q * (mark - arrays.pos_entry[r0:r1] * s) - arrays.pos_funding[r0:r1] * s
        abs_q = np.abs(q)
        notional = abs_q * mark
        k = np.zeros(m.size, dtype=np.int64)
        for j in range(1, max_b):
            k += notional >= tables.bracket_floor_usd[m, j]
        req = notional * tables.bracket_frac[L, m, k] - tables.bracket_cum_usd[L, m, k]
        f0, imf = frac[m], tables.market_imf[m]
        premium = np.maximum(f0, 0.8 * f0 + imf * np.sqrt(abs_q))
        req = np.where(imf > 0.0, np.maximum(req, notional * premium), req)
        u = underlying_usd[m]
        option_req = np.where(q < 0.0, abs_q * np.maximum(f0 * u, f0 * mark), 0.0)
        req = np.where(tables.market_is_option[m], option_req, req)
        gain = np.maximum(pnl, 0.0)
        pw, pimf = tables.pnl_weight[L, m], tables.pnl_imf[m]
        pw = np.where(pimf > 0.0, np.minimum(pw, 1.1 / (1.0 + pimf * np.sqrt(gain))), pw)
        pos_h = gain * pw - np.maximum(-pnl, 0.0) - req

        b0, b1 = arrays.bal_start[g0], arrays.bal_start[g1]
        a = arrays.bal_asset[b0:b1]
        bq = arrays.bal_qty[b0:b1]
        px = prices[a]
        long_v = np.maximum(bq, 0.0) * px
        counted, edge, factor = np.zeros(a.size), np.zeros(a.size), np.ones(a.size)
        for j in range(max_t):
            above = tables.tier_above_usd[a, j]
            passed = long_v > above
            counted = np.where(passed, counted + (above - edge) * factor, counted)
            edge = np.where(passed, above, edge)
            factor = np.where(passed, tables.tier_factor[a, j], factor)
        long_v = counted + (long_v - edge) * factor
        aw, lw, aimf = tables.asset_weight[L, a], tables.liab_weight[L, a], tables.asset_imf[a]
        root = np.sqrt(np.abs(bq))
        aw = np.where(aimf > 0.0, np.minimum(aw, 1.1 / (1.0 + aimf * root)), aw)
        lw = np.where(aimf > 0.0, np.maximum(lw, 0.8 * lw + aimf * root), lw)
        bal_h = long_v * aw - np.maximum(-bq, 0.0) * px * lw
        out[g0:g1] = _segment_sum(pos_h, arrays.pos_start[g0 : g1 + 1] - r0) + _segment_sum(
            bal_h, arrays.bal_start[g0 : g1 + 1] - b0
        )
    return out


def bandwidth_probe(mbytes: int = 256, repeats: int = 5) -> tuple[float, float]:
    """(read GB/s, copy GB/s counting read + write) on this core: best of ``repeats``."""
    src = np.ones(mbytes * 2**20 // 8)
    dst = np.empty_like(src)
    read, copy = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        src.sum()
        read.append(time.perf_counter() - t)
        t = time.perf_counter()
        np.copyto(dst, src)
        copy.append(time.perf_counter() - t)
    return src.nbytes / min(read) / 1e9, 2 * src.nbytes / min(copy) / 1e9


def _times(fn: Any, ticks: int, tables: MarketTables, seed: int = 1) -> tuple[list[float], Any]:
    rng = np.random.default_rng(seed)
    times = []
    prices = tables.price_usd
    for _ in range(ticks):
        prices = tables.price_usd * np.exp(rng.normal(0, 0.01, tables.n_assets))
        start = time.perf_counter()
        fn(prices)
        times.append(time.perf_counter() - start)
    return times, prices


def _rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float((np.abs(a - b) / np.maximum(1.0, np.abs(b))).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--ticks", type=int, default=20)
    parser.add_argument("--loop-accounts", type=int, default=5_000)
    parser.add_argument("--block", type=int, default=16_384, help="numpy peer's block (groups)")
    args = parser.parse_args()
    all_cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    if all_cores:
        os.sched_setaffinity(0, {min(all_cores)})  # one core
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    tables = compile_market(load_demo_book())
    t0 = time.perf_counter()
    arrays = synthetic_book(tables, args.accounts)
    build_s = time.perf_counter() - t0
    rows = arrays.bal_qty.size + arrays.pos_qty.size
    n = arrays.n_groups
    out = (np.empty(n), np.empty(n), np.empty(n))

    def kernel(prices: np.ndarray, **kw: Any) -> None:
        evaluate_groups(tables, arrays, MAINT, prices, out=out, **kw)

    kernel(tables.price_usd)  # compile (or load the numba cache)
    times, prices = _times(kernel, args.ticks, tables)
    health = out[0] - out[1]

    peer_out = np.empty(n)
    peer_times, peer_prices = _times(
        lambda p: numpy_health(tables, arrays, p, peer_out, args.block),
        max(3, args.ticks // 4),
        tables,
    )
    kernel(peer_prices)
    numpy_diff = _rel_diff(peer_out, out[0] - out[1])
    kernel(prices)

    m = min(args.loop_accounts, args.accounts)
    start = time.perf_counter()
    loop = np.array(python_loop_health(tables, arrays, prices, m))
    loop_s = time.perf_counter() - start
    loop_diff = _rel_diff(loop, health[:m])

    read_gbs, copy_gbs = bandwidth_probe()
    # the faster of the two probes: the bound is the least time the bytes can take
    bound_ms = KERNEL_BYTES_PER_ACCOUNT * n / (max(read_gbs, copy_gbs) * 1e9) * 1e3

    median_ms, best_ms = statistics.median(times) * 1e3, min(times) * 1e3
    peer_median_ms, peer_best_ms = statistics.median(peer_times) * 1e3, min(peer_times) * 1e3
    loop_ms = loop_s / m * n * 1e3
    print(
        f"accounts {n:,}  rows {rows:,}  (built in {build_s:.2f} s); one core pinned; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(
        f"kernel maint tick:  median {median_ms:7.1f} ms  best {best_ms:7.1f} ms "
        f"({rows / (median_ms / 1e3) / 1e6:.0f} M rows/s)"
    )
    print(
        f"numpy peer:         median {peer_median_ms:7.1f} ms  best {peer_best_ms:7.1f} ms  "
        f"ratio (peer / kernel, medians) {peer_median_ms / median_ms:.2f}x, best "
        f"{peer_best_ms / best_ms:.2f}x   max rel diff {numpy_diff:.1e}"
    )
    print(
        f"python loop peer:   {loop_s / m * 1e6:.2f} us/account on {m:,} accounts -> "
        f"{loop_ms / 1e3:.1f} s for all  ratio {loop_ms / median_ms:.0f}x   "
        f"max rel diff {loop_diff:.1e}"
    )
    print(
        f"bandwidth probe:    read {read_gbs:.1f} GB/s, copy {copy_gbs:.1f} GB/s (read + write); "
        f"{KERNEL_BYTES_PER_ACCOUNT} B/account -> bound {bound_ms:.1f} ms; kernel / bound "
        f"{median_ms / bound_ms:.1f}x (median), {best_ms / bound_ms:.1f}x (best)"
    )
    if "parallel" in inspect.signature(evaluate_groups).parameters and len(all_cores) > 1:
        os.sched_setaffinity(0, all_cores)
        import numba

        threads = numba.config.NUMBA_NUM_THREADS
        kernel(tables.price_usd, parallel=True)
        par_times, par_prices = _times(lambda p: kernel(p, parallel=True), args.ticks, tables)
        par_health = out[0] - out[1]
        kernel(par_prices)
        par_diff = _rel_diff(par_health, out[0] - out[1])
        par_median, par_best = statistics.median(par_times) * 1e3, min(par_times) * 1e3
        print(
            f"parallel kernel:    median {par_median:7.1f} ms  best {par_best:7.1f} ms on "
            f"{len(all_cores)} cores ({threads} numba threads); speed-up vs one core "
            f"{median_ms / par_median:.2f}x (medians)   max rel diff {par_diff:.1e}"
        )
    else:
        par_diff = 0.0
    ratio = peer_median_ms / median_ms
    print(
        f"targets: <= 50 ms {'met' if median_ms <= 50 else 'NOT met'}; "
        f">= 4x numpy {'met' if ratio >= 4 else 'NOT met'}; tolerance {TOLERANCE_REL:.0e} "
        f"relative to max(1 USD, |health|)"
    )
    if max(numpy_diff, loop_diff, par_diff) > TOLERANCE_REL:
        raise SystemExit("kernel and a peer disagree")


if __name__ == "__main__":
    main()
