"""Benchmark: Black-76 price, delta, gamma and vega of 10,000,000 options on one core.

Prints the throughput of the numba kernel (``black76_greeks_array``, preallocated outputs, no
theta) and of the public ``black76()`` (validation, allocation and theta included), in million
options per second on one core, and the ratio against two peers measured in the same run:
a plain numpy + ``scipy.special.ndtr`` implementation (same formulas, evaluated in cache-sized
blocks with in-place operations: its best form) and QuantLib's ``blackFormula`` (price only) in
a Python loop on a ``--ql-options`` subset. Then the accuracy against QuantLib
(``blackFormula`` for prices, ``BlackCalculator`` for the Greeks) on a sample. Target
(issue #3): >= 30 M options/s per core, >= 2x the numpy peer, at 1e-12 relative accuracy (or
1e-12 x F absolute for tiny prices).

    python benchmarks/bench_black76.py [--options N] [--repeats K] [--ql-options M]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

os.environ["NUMBA_NUM_THREADS"] = "1"

import numpy as np
from scipy.special import ndtr

from crossmargin.pricing import black76, black76_greeks_array

INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
BLOCK = 1 << 14  # numpy peer: rows per block, so that temporaries stay in cache


def synthetic_options(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """F/K in [0.5, 2], expiry 1 day to 3 years, vol 5% to 300%, rates 0-10%, calls and puts."""
    rng = np.random.default_rng(seed)
    forward = 100.0 * np.exp(rng.normal(0.0, 0.1, n))
    t = rng.uniform(1.0 / 365.0, 3.0, n)
    return {
        "f": forward,
        "k": forward * np.exp(rng.uniform(-math.log(2.0), math.log(2.0), n)),
        "vol": rng.uniform(0.05, 3.0, n),
        "t": t,
        "df": np.exp(-rng.uniform(0.0, 0.1, n) * t),
        "is_call": rng.random(n) < 0.5,
    }


def numpy_peer(o: dict[str, np.ndarray], out: tuple[np.ndarray, ...]) -> None:
    """The same four outputs with numpy and scipy.special.ndtr, block by block, in place."""
    price, delta, gamma, vega = out
    for start in range(0, o["f"].size, BLOCK):
        s = slice(start, start + BLOCK)
        f, k, vol, t, df = o["f"][s], o["k"][s], o["vol"][s], o["t"][s], o["df"][s]
        phi = np.where(o["is_call"][s], 1.0, -1.0)
        sqrt_t = np.sqrt(t)
        total_vol = vol * sqrt_t
        d1 = np.log(f / k)
        d1 /= total_vol
        d1 += 0.5 * total_vol
        d2 = d1 - total_vol
        cdf1 = ndtr(phi * d1)
        cdf2 = ndtr(phi * d2)
        pdf1 = np.exp(-0.5 * d1 * d1)
        pdf1 *= INV_SQRT_2PI
        np.multiply(df * phi, f * cdf1 - k * cdf2, out=price[s])
        np.multiply(df * phi, cdf1, out=delta[s])
        df_pdf = df * pdf1
        np.divide(df_pdf, f * total_vol, out=gamma[s])
        np.multiply(df_pdf * f, sqrt_t, out=vega[s])


def exact_prices(o: dict[str, np.ndarray], rows: list[int]) -> dict[int, float] | None:
    """Black-76 prices of ``rows`` in 50-digit arithmetic (None without mpmath installed)."""
    try:
        import mpmath as mp
    except ImportError:
        return None
    mp.mp.dps = 50
    out = {}
    for i in rows:
        f, k, df = (mp.mpf(float(o[key][i])) for key in ("f", "k", "df"))
        std = mp.mpf(float(o["vol"][i])) * mp.sqrt(mp.mpf(float(o["t"][i])))
        d1 = mp.log(f / k) / std + std / 2
        phi = 1 if o["is_call"][i] else -1
        out[i] = float(df * phi * (f * mp.ncdf(phi * d1) - k * mp.ncdf(phi * (d1 - std))))
    return out


def timed(fn: object, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--options", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--ql-options", type=int, default=300_000)
    parser.add_argument("--accuracy-sample", type=int, default=100_000)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    n = args.options
    o = synthetic_options(n)
    outputs = tuple(np.zeros(n) for _ in range(4))  # zeros: pages touched before timing
    no_theta = np.empty(0)

    def kernel() -> None:
        black76_greeks_array(
            o["f"], o["k"], o["vol"], o["t"], o["df"], o["is_call"], *outputs, no_theta
        )

    kernel()  # compile (or load the numba cache)
    kernel_s = timed(kernel, args.repeats)
    api_s = timed(lambda: black76(o["f"], o["k"], o["vol"], o["t"], o["df"], o["is_call"]), 3)
    peer_out = tuple(np.zeros(n) for _ in range(4))
    numpy_s = timed(lambda: numpy_peer(o, peer_out), 3)
    for name, ours, theirs in zip(
        ("price", "delta", "gamma", "vega"), outputs, peer_out, strict=True
    ):
        scale = np.maximum(np.abs(theirs), 1e-12 * (o["f"] if name in ("price", "vega") else 1.0))
        assert np.max(np.abs(ours - theirs) / scale) < 1e-9, f"numpy peer disagrees on {name}"

    import QuantLib as ql

    m = min(args.ql_options, n)
    kinds = [ql.Option.Call if c else ql.Option.Put for c in o["is_call"][:m].tolist()]
    rows = list(
        zip(
            kinds,
            o["k"][:m].tolist(),
            o["f"][:m].tolist(),
            (o["vol"][:m] * np.sqrt(o["t"][:m])).tolist(),
            o["df"][:m].tolist(),
            strict=True,
        )
    )
    black_formula = ql.blackFormula
    start = time.perf_counter()
    ql_prices = [black_formula(kind, k, f, std, df) for kind, k, f, std, df in rows]
    ql_s = time.perf_counter() - start

    # accuracy against QuantLib on a sample: price (blackFormula), Greeks (BlackCalculator)
    sample = np.random.default_rng(1).choice(n, min(args.accuracy_sample, n), replace=False)
    worst = {"price": 0.0, "delta": 0.0, "gamma": 0.0, "vega": 0.0}
    relative = []  # (relative price difference, row) for prices >= 1e-6 F
    for i in sample.tolist():
        f, k, df = float(o["f"][i]), float(o["k"][i]), float(o["df"][i])
        std = float(o["vol"][i]) * math.sqrt(float(o["t"][i]))
        kind = ql.Option.Call if o["is_call"][i] else ql.Option.Put
        calc = ql.BlackCalculator(ql.PlainVanillaPayoff(kind, k), f, std, df)
        refs = {
            "price": ql.blackFormula(kind, k, f, std, df),
            "delta": calc.deltaForward(),
            "gamma": calc.gammaForward(),
            "vega": calc.vega(float(o["t"][i])),
        }
        scales = {"price": f, "delta": 1.0, "gamma": 1.0 / f, "vega": f}
        for (name, ref), got in zip(refs.items(), (a[i] for a in outputs), strict=True):
            err = abs(got - ref)
            # relative error, or absolute error / scale for tiny values (the target's metric)
            worst[name] = max(worst[name], min(err / max(abs(ref), 1e-300), err / scales[name]))
        if refs["price"] >= 1e-6 * f:
            relative.append((abs(outputs[0][i] - refs["price"]) / refs["price"], i, refs["price"]))
    relative.sort(reverse=True)
    arbiter = exact_prices(o, [row for _, row, _ in relative[:20]])

    kernel_rate = n / min(kernel_s) / 1e6
    kernel_median = n / statistics.median(kernel_s) / 1e6
    api_rate = n / min(api_s) / 1e6
    numpy_rate = n / min(numpy_s) / 1e6
    ql_rate = m / ql_s / 1e6
    print(f"options: {n:,} (price, delta, gamma, vega; float64; one core, numba threads = 1)")
    print(
        f"kernel black76_greeks_array: {kernel_rate:6.1f} M options/s (median {kernel_median:.1f})"
    )
    print(f"public black76() with theta, validation, allocation: {api_rate:6.1f} M options/s")
    print(
        f"numpy + scipy.special.ndtr : {numpy_rate:6.1f} M options/s"
        f"  -> kernel {kernel_rate / numpy_rate:.1f}x"
    )
    print(
        f"QuantLib blackFormula loop : {ql_rate:6.2f} M options/s (price only, {m:,} options)"
        f"  -> kernel {kernel_rate / ql_rate:.0f}x"
    )
    print(f"max error vs QuantLib on {sample.size:,} options, min(relative, absolute / scale):")
    print("  " + ", ".join(f"{name} {value:.1e}" for name, value in worst.items()))
    print("  (scale: F for price and vega, 1 for delta, 1/F for gamma)")
    print(f"  max relative price difference, prices >= 1e-6 F: {relative[0][0]:.1e}")
    if arbiter is not None:
        ours = max(abs(outputs[0][i] - x) / x for i, x in arbiter.items())
        theirs = max(abs(p - arbiter[i]) / arbiter[i] for _, i, p in relative[:20])
        print(
            f"  on the 20 largest differences, against 50-digit mpmath: ours {ours:.1e}, "
            f"QuantLib's {theirs:.1e}"
        )
    assert len(ql_prices) == m


if __name__ == "__main__":
    main()
