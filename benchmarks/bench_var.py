"""Benchmark: Monte Carlo VaR, 100,000 paths x 20 assets, an account of 50 positions with options.

The account holds 10 deposits and a USDC borrow, 19 perps and 31 European options on five
underlyings; 1,000 days of synthetic fat-tailed returns (seeded) feed the Student-t copula.
Timed: the whole ``risk_of_returns(method="monte-carlo")`` at 1 day, 99 % and 97.5 % (copula
fit, 100,000 simulated paths, full revaluation of every path through the kernel with Black-76
option marks, VaR and ES of equity and maint health), median of ``--repeats`` runs after a
warm-up. Target (issue #6): <= 1 s on this 2-core machine.

The peer, measured in the same run: the straightforward loop that calls the kernel once per
path (:func:`crossmargin.margin.kernel.evaluate_groups` with the path's prices) on
``--loop-paths`` paths; its time is scaled to all paths, and its equity and health are checked
to agree with the tiled batch on those paths (to 1e-9 relative).

    python benchmarks/bench_var.py [--paths 100000] [--repeats 5] [--loop-paths 5000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time

import numpy as np

from crossmargin.book.schema import Book
from crossmargin.margin.arrays import PortfolioArrays, compile_accounts, compile_market
from crossmargin.margin.kernel import evaluate_groups
from crossmargin.risk.revalue import ScenarioRevaluer
from crossmargin.risk.var import fit_t_copula, risk_of_returns, simulate_t_copula

N_CRYPTO = 19  # + USDC = 20 assets
OPTION_UNDERLYINGS = 5
OPTIONS = 31
AS_OF = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)


def synthetic_book(seed: int = 0) -> Book:
    """20 assets, 19 perps, 31 options; one cross account with 50 positions."""
    rng = np.random.default_rng(seed)
    names = [f"C{i:02d}" for i in range(N_CRYPTO)]
    prices = np.exp(rng.uniform(np.log(1.0), np.log(50_000.0), N_CRYPTO))
    assets = {
        "USDC": {
            "price": 1.0,
            "init_asset_weight": 1.0,
            "maint_asset_weight": 1.0,
            "init_liab_weight": 1.0,
            "maint_liab_weight": 1.0,
        }
    }
    for name, price in zip(names, prices, strict=True):
        assets[name] = {
            "price": float(price),
            "init_asset_weight": 0.8,
            "maint_asset_weight": 0.9,
            "init_liab_weight": 1.2,
            "maint_liab_weight": 1.1,
        }
    markets: dict[str, dict[str, object]] = {}
    positions = []
    for name, price in zip(names, prices, strict=True):
        markets[f"{name}-PERP"] = {
            "kind": "perp",
            "underlying": name,
            "settle_asset": "USDC",
            "initial_margin_frac": 0.05,
            "maint_margin_frac": 0.025,
        }
        qty = float(rng.choice([-1, 1]) * rng.uniform(20_000, 200_000) / price)
        positions.append(
            {
                "market": f"{name}-PERP",
                "qty": qty,
                "entry_price": float(price * rng.uniform(0.95, 1.05)),
            }
        )
    for k in range(OPTIONS):
        u = k % OPTION_UNDERLYINGS
        name, price = names[u], float(prices[u])
        strike = float(price * rng.uniform(0.7, 1.3))
        days = int(rng.integers(7, 180))
        kind = "call" if k % 2 else "put"
        symbol = f"{name}-{days}D-{strike:.4g}-{kind[0].upper()}"
        markets[symbol] = {
            "kind": "option",
            "underlying": name,
            "settle_asset": "USDC",
            "strike": strike,
            "expiry": (AS_OF + dt.timedelta(days=days)).isoformat(),
            "option_type": kind,
            "mark_vol": float(rng.uniform(0.4, 1.0)),
        }
        qty = float(rng.choice([-1, 1]) * rng.uniform(10_000, 100_000) / price)
        positions.append({"market": symbol, "qty": qty, "entry_price": float(0.05 * price)})
    balances = {"USDC": -500_000.0}
    for name, price in zip(names[:10], prices[:10], strict=True):
        balances[name] = float(rng.uniform(50_000, 300_000) / price)
    return Book.model_validate(
        {
            "as_of": AS_OF.isoformat(),
            "assets": assets,
            "markets": markets,
            "accounts": [{"id": "desk", "balances": balances, "positions": positions}],
        }
    )


def synthetic_returns(revaluer: ScenarioRevaluer, days: int = 1000, seed: int = 1) -> np.ndarray:
    """One-factor fat-tailed daily log returns (Student-t 4 shocks), zero for USDC."""
    rng = np.random.default_rng(seed)
    n = revaluer.n_assets
    market = rng.standard_t(4, days)[:, None]
    own = rng.standard_t(4, (days, n))
    beta = rng.uniform(0.5, 1.0, n)
    r = 0.03 * (beta * market + 0.6 * own) / np.sqrt(2.0)
    r[:, [k for k, s in enumerate(revaluer.asset_symbols) if s == "USDC"]] = 0.0
    return r


def compile_one(book: Book) -> PortfolioArrays:
    tables = compile_market(book)
    return compile_accounts(tables, book.accounts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--loop-paths", type=int, default=5_000)
    args = parser.parse_args()
    book = synthetic_book()
    revaluer = ScenarioRevaluer.from_book(book, "desk")
    returns = synthetic_returns(revaluer)
    n_pos = revaluer.arrays.pos_qty.size
    n_opt = int(revaluer.tables.market_is_option[revaluer.arrays.pos_market].sum())

    def run() -> object:
        return risk_of_returns(
            revaluer,
            returns,
            methods=["monte-carlo"],
            horizons_days=[1],
            n_paths=args.paths,
            account_id="desk",
        )

    run()  # warm-up: numba cache, tiles
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    median_s = statistics.median(times)

    # components
    t0 = time.perf_counter()
    copula = fit_t_copula(returns)
    t1 = time.perf_counter()
    paths = simulate_t_copula(copula, args.paths, seed=7)
    t2 = time.perf_counter()
    batch = revaluer.revalue(paths)
    t3 = time.perf_counter()
    one_thread = ScenarioRevaluer(revaluer.full_tables, compile_one(book), threads=1)
    one_thread.revalue(paths[:10])
    t4 = time.perf_counter()
    one_thread.revalue(paths)
    one_thread_s = time.perf_counter() - t4

    # the peer: one kernel call per path
    m = min(args.loop_paths, args.paths)
    tables, arrays = revaluer.tables, revaluer.arrays
    level = revaluer.level
    loop_equity = np.empty(m)
    loop_health = np.empty(m)
    start = time.perf_counter()
    for s in range(m):
        prices = tables.price_usd * np.exp(paths[s])
        wa, wl, eq = evaluate_groups(tables, arrays, level, prices)
        loop_equity[s] = eq.sum()
        loop_health[s] = (wa - wl).sum()
    loop_s = (time.perf_counter() - start) * args.paths / m
    scale = np.maximum(1.0, np.abs(batch.health_usd[:m]))
    agree = max(
        float(np.max(np.abs(loop_health - batch.health_usd[:m]) / scale)),
        float(
            np.max(
                np.abs(loop_equity - batch.equity_usd[:m])
                / np.maximum(1.0, np.abs(batch.equity_usd[:m]))
            )
        ),
    )
    figure = result.figure("monte-carlo", 1, 0.99)  # type: ignore[attr-defined]
    print(
        f"account: {revaluer.n_assets} assets, {n_pos} positions ({n_opt} options), "
        f"{returns.shape[0]} days of returns; {args.paths:,} paths"
    )
    print(
        f"Monte Carlo VaR (fit + simulate + revalue + VaR/ES), median of {args.repeats}: "
        f"{median_s:.3f} s (best {min(times):.3f} s; target <= 1 s)"
    )
    print(
        f"  components: copula fit {t1 - t0:.3f} s (nu = {copula.nu:g}), "
        f"simulate {t2 - t1:.3f} s, revalue {t3 - t2:.3f} s "
        f"({(t3 - t2) / args.paths * 1e6:.2f} us/path)"
    )
    print(
        f"  99% 1-day: equity VaR {figure.equity_var_usd:,.0f} ES {figure.equity_es_usd:,.0f}; "
        f"health VaR {figure.health_var_usd:,.0f} ES {figure.health_es_usd:,.0f} USD"
    )
    print(
        f"peer (one kernel call per path, {m:,} paths scaled to {args.paths:,}): "
        f"revalue {loop_s:.3f} s; batch revalue is {loop_s / (t3 - t2):.1f}x faster, "
        f"whole MC VaR {loop_s / median_s:.1f}x the peer's revaluation alone; "
        f"agreement {agree:.1e} relative"
    )
    print(
        f"  batch revalue on one thread: {one_thread_s:.3f} s, "
        f"{loop_s / one_thread_s:.1f}x the peer (the peer is single-threaded)"
    )


if __name__ == "__main__":
    main()
