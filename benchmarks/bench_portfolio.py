"""Benchmark: portfolio margin of one account of 100,000 option positions x the full PM2 grid.

The account holds ``--options`` European options on one underlying (ETH at 3,000 USD) spread
over 12 expiries from 1 day to 1 year, strikes from 50 % to 200 % of spot, calls and puts, long
and short, SVI-like smile vols; plus a perp and a risk-cancelling collateral. The profile is
``derive-pm2``: 23 regular + 8 tail + 2 skew scenarios, plus the mark and the two basis moves,
i.e. 36 revaluations of every option. Prints:

* the time of one full ``portfolio_margin`` call (median and best of ``--repeats``) with the
  engine's default thread count (the idle cores: crossmargin._threads) and pinned to one
  thread, and the option revaluations per second;
* the peer: the same scenario PnL computed by a plain Python loop (``math.erfc`` Black-76, one
  option and one scenario at a time) on a ``--loop-options`` subset, extrapolated, and the
  ratio; the two agree to 1e-9 relative.

Target (issue #3): <= 1 s on this 2-core machine.

    python benchmarks/bench_portfolio.py [--options N] [--repeats K] [--loop-options M]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numba
import numpy as np

from crossmargin.portfolio import Portfolio, get_profile, portfolio_from_arrays, portfolio_margin
from crossmargin.portfolio.engine import PortfolioMarginResult

SPOT_USD = 3_000.0
EXPIRY_DAYS = np.array([1, 2, 7, 14, 21, 30, 60, 90, 120, 180, 270, 365], dtype=np.float64)


def synthetic_portfolio(n: int, seed: int = 0) -> Portfolio:
    """``n`` option positions on one underlying, built directly as arrays."""
    rng = np.random.default_rng(seed)
    t = EXPIRY_DAYS / 365.0
    fwd = SPOT_USD * np.exp(0.05 * t)
    expiry = rng.integers(0, t.shape[0], n)
    moneyness = np.exp(rng.uniform(np.log(0.5), np.log(2.0), n))
    strike = np.round(fwd[expiry] * moneyness, 0)
    k = np.log(strike / fwd[expiry])
    vol = 0.55 + 0.25 * k * k - 0.1 * k + 0.1 * np.exp(-t[expiry] * 4.0)
    return portfolio_from_arrays(
        underlying_names=["ETH"],
        spot_usd=[SPOT_USD],
        expiry_underlying=np.zeros(t.shape[0], dtype=np.int64),
        expiry_t_yrs=t,
        expiry_fwd_usd=fwd,
        expiry_rate=np.full(t.shape[0], 0.05),
        option_expiry=expiry,
        option_strike_usd=strike,
        option_is_call=rng.random(n) < 0.5,
        option_qty=np.round(rng.normal(0.0, 10.0, n), 1),
        option_vol=vol,
        perp_underlying=np.zeros(1, dtype=np.int64),
        perp_qty=[-250.0],
        perp_mark_usd=[SPOT_USD + 1.5],
        collateral_names=["wstETH"],
        collateral_value_usd=[400.0 * SPOT_USD * 1.17],
        collateral_underlying=np.zeros(1, dtype=np.int64),
        collateral_mm_haircut_frac=[0.03],
        collateral_im_haircut_frac=[0.01],
        cash_usd=5_000_000.0,
    )


def _b76(f: float, k: float, vol: float, t: float, df: float, is_call: bool) -> float:
    total = vol * math.sqrt(t)
    d1 = math.log(f / k) / total + 0.5 * total
    d2 = d1 - total
    if is_call:
        value = f * 0.5 * math.erfc(-d1 / math.sqrt(2)) - k * 0.5 * math.erfc(-d2 / math.sqrt(2))
        return df * max(value, f - k, 0.0)
    value = k * 0.5 * math.erfc(d2 / math.sqrt(2)) - f * 0.5 * math.erfc(d1 / math.sqrt(2))
    return df * max(value, k - f, 0.0)


def python_loop_option_pnl(
    portfolio: Portfolio, m: int, up_mult: np.ndarray, down_mult: np.ndarray
) -> tuple[np.ndarray, float]:
    """The peer: the undiscounted option value change of the first ``m`` option rows in every
    regular and tail scenario of the grid, one option and one scenario at a time."""
    profile = get_profile("derive-pm2")
    grid = profile.grid("ETH")
    rows = [
        (
            float(portfolio.expiry_fwd_usd[portfolio.option_expiry[o]]),
            float(portfolio.option_strike_usd[o]),
            float(portfolio.option_vol[o]),
            float(portfolio.expiry_t_yrs[portfolio.option_expiry[o]]),
            float(portfolio.expiry_df[portfolio.option_expiry[o]]),
            bool(portfolio.option_is_call[o]),
            float(portfolio.option_qty[o]),
            int(portfolio.option_expiry[o]),
        )
        for o in range(m)
    ]
    min_vol = profile.vol_shock.min_vol_up
    scenarios = [
        (float(grid.spot_mult[s]), int(grid.vol_state[s]))
        for s in range(grid.n)
        if grid.vol_state[s] <= 2
    ]
    start = time.perf_counter()
    out = []
    for mult, state in scenarios:
        total = 0.0
        for f, k, vol, t, df, is_call, qty, e in rows:
            if state == 1:
                v = max(min_vol, vol * float(up_mult[e]))
            elif state == 2:
                v = max(vol * float(down_mult[e]), 1e-12)
            else:
                v = vol
            total += qty * (_b76(f * mult, k, v, t, df, is_call) - _b76(f, k, vol, t, df, is_call))
        out.append(total)
    return np.array(out), time.perf_counter() - start


def _time(portfolio: Portfolio, repeats: int) -> tuple[list[float], PortfolioMarginResult]:
    profile = get_profile("derive-pm2")
    result = portfolio_margin(portfolio, profile)  # compile / load the cached kernel
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = portfolio_margin(portfolio, profile)
        times.append(time.perf_counter() - start)
    return times, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--options", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--loop-options", type=int, default=2_000)
    args = parser.parse_args()

    start = time.perf_counter()
    portfolio = synthetic_portfolio(args.options)
    build_s = time.perf_counter() - start
    profile = get_profile("derive-pm2")
    columns = profile.grid("ETH").n + 3  # + mark and the two basis moves
    revaluations = args.options * columns

    threads = numba.config.NUMBA_NUM_THREADS
    all_times, result = _time(portfolio, args.repeats)
    numba.set_num_threads(1)
    one_times, result_one = _time(portfolio, args.repeats)
    numba.set_num_threads(threads)
    assert result_one.maint.margin_usd == result.maint.margin_usd

    risk = result.underlyings[0]
    m = min(args.loop_options, args.options)
    sub = synthetic_portfolio(args.options)  # same seed: the first m rows of the same book
    loop_pnl, loop_s = python_loop_option_pnl(sub, m, risk.vol_up_mult, risk.vol_down_mult)
    # the same quantity from the engine on the m-row sub-account, without static discounts
    small = portfolio_from_arrays(
        underlying_names=["ETH"],
        spot_usd=[SPOT_USD],
        expiry_underlying=np.zeros(EXPIRY_DAYS.shape[0], dtype=np.int64),
        expiry_t_yrs=sub.expiry_t_yrs,
        expiry_fwd_usd=sub.expiry_fwd_usd,
        expiry_rate=sub.expiry_rate,
        option_expiry=sub.option_expiry[:m],
        option_strike_usd=sub.option_strike_usd[:m],
        option_is_call=sub.option_is_call[:m],
        option_qty=sub.option_qty[:m],
        option_vol=sub.option_vol[:m],
    )
    plain = profile.model_copy(update={"static_discount": None})
    engine_pnl = portfolio_margin(small, plain).underlyings[0].option_pnl_usd
    regular = profile.grid("ETH").vol_state <= 2
    damp = profile.grid("ETH").dampening[regular]
    err = np.max(np.abs(engine_pnl[regular] - loop_pnl * damp) / np.maximum(np.abs(loop_pnl), 1.0))
    assert err < 1e-9, err
    loop_scaled = loop_s * (args.options / m) * (columns / len(loop_pnl))

    median_all = statistics.median(all_times)
    print(f"portfolio margin, {args.options:,} options x {columns} grid columns (derive-pm2)")
    print(f"  build arrays (validation, sort)  {build_s * 1e3:8.1f} ms")
    print(
        f"  margin, default ({threads} max)  median {median_all * 1e3:8.1f} ms"
        f"   best {min(all_times) * 1e3:8.1f} ms"
        f"   {revaluations / median_all / 1e6:6.1f} M option revaluations/s"
    )
    print(
        f"  margin, 1 thread         median {statistics.median(one_times) * 1e3:8.1f} ms"
        f"   best {min(one_times) * 1e3:8.1f} ms"
    )
    print(
        f"  peer: Python loop on {m:,} options  {loop_s:8.2f} s"
        f"  -> {loop_scaled:8.1f} s extrapolated;  ratio {loop_scaled / median_all:,.0f}x"
        f"  (max rel. difference {err:.1e})"
    )
    print(
        f"  worst scenario: {risk.worst_label}; loss {result.loss_usd:,.0f} USD; "
        f"MM {result.maint.margin_usd:,.0f}, IM {result.initial.margin_usd:,.0f}"
    )
    print(f"  target <= 1 s: {'met' if median_all <= 1.0 else 'NOT met'}")


if __name__ == "__main__":
    main()
