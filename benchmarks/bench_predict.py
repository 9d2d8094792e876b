"""Benchmark: scoring 1,000,000 accounts - the analytic first-passage baseline from arrays of
distance, volatility and horizon, and the learned model's calibrated probability on 1,000,000
feature rows - on one core.

The model is the account model as ``crossmargin train accounts`` fits it (same settings), on a
small simulated history; the 1,000,000 feature rows are its rows resampled with 1 % noise. The
peer, measured in the same run on ``--loop-accounts`` accounts and extrapolated, is a plain
per-account Python loop: the textbook closed form with ``math.erfc`` and a walk down each tree
of the same model. The two must agree to 1e-12 (baseline, relative) and exactly (model), and
scikit-learn's own ``predict_proba`` (timed on ``--sklearn-rows``) exactly; the benchmark exits
non-zero if they do not. Target (issue #16): <= 1 s for both on one core.
Times are wall clock (median and best of ``--repeats``) and CPU time of the process (on a
shared machine the wall clock includes waiting for the core).

    python benchmarks/bench_predict.py [--accounts N] [--repeats K] [--loop-accounts M]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

from crossmargin.predict.firstpassage import (
    BGK_BETA,
    drift_toward_barrier,
    hit_probability,
)


def timed(fn: object, repeats: int) -> tuple[float, float, float, object]:
    """(median wall s, best wall s, median CPU s, last result) of ``fn()``."""
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        out = fn()  # type: ignore[operator]
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), min(walls), statistics.median(cpus), out


def loop_baseline(d: list[float], s: list[float], t: list[float], dt: float) -> list[float]:
    """The peer: per account, Hull's down-barrier formula (nu = -sigma^2/2, martingale price)
    with the Broadie-Glasserman-Kou shift, plain floats."""
    out = []
    for dist, sigma, horizon in zip(d, s, t, strict=True):
        x = -(dist + BGK_BETA * sigma * math.sqrt(dt))  # ln(b/S) of the shifted barrier
        nu = -0.5 * sigma * sigma
        v = sigma * math.sqrt(horizon)
        n1 = 0.5 * math.erfc(-((x - nu * horizon) / v) / math.sqrt(2.0))
        n2 = 0.5 * math.erfc(-((x + nu * horizon) / v) / math.sqrt(2.0))
        out.append(n1 + math.exp(x) ** (2.0 * nu / (sigma * sigma)) * n2)
    return out


def loop_model(scorer: object, rows: np.ndarray) -> list[float]:
    """The peer: per account, walk each tree node by node (Python), then the isotonic map."""
    feature = scorer.feature.tolist()  # type: ignore[attr-defined]
    threshold = scorer.threshold.tolist()  # type: ignore[attr-defined]
    left, right = scorer.left.tolist(), scorer.right.tolist()  # type: ignore[attr-defined]
    leaf, value = scorer.leaf.tolist(), scorer.value.tolist()  # type: ignore[attr-defined]
    missing = scorer.missing_left.tolist()  # type: ignore[attr-defined]
    roots = scorer.roots.tolist()  # type: ignore[attr-defined]
    out = []
    for row in rows.tolist():
        acc = scorer.baseline  # type: ignore[attr-defined]
        for node in roots:
            while not leaf[node]:
                v = row[feature[node]]
                if v != v:
                    node = left[node] if missing[node] else right[node]
                else:
                    node = left[node] if v <= threshold[node] else right[node]
            acc += value[node]
        out.append(acc)
    raw = np.array(out)
    return list(scorer.calibrate(raw))  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--loop-accounts", type=int, default=5_000)
    parser.add_argument("--epochs", type=int, default=80, help="simulated history of the model")
    parser.add_argument(
        "--sklearn-rows", type=int, default=100_000, help="rows for scikit-learn's own predict"
    )
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    n = args.accounts
    rng = np.random.default_rng(0)
    # baseline inputs: log distance to liquidation, daily vol, horizon 1 day, hourly checks
    distance = rng.lognormal(np.log(0.08), 0.8, n)
    sigma = rng.uniform(0.02, 0.08, n)
    horizon = np.full(n, 1.0)
    monitor = 1.0 / 24.0
    drift = drift_toward_barrier(-1.0, sigma)

    def baseline() -> np.ndarray:
        return hit_probability(distance, sigma, horizon, drift, monitor)

    baseline()  # compile or load the numba cache
    b_med, b_best, b_cpu, b_out = timed(baseline, args.repeats)
    probs = np.asarray(b_out)

    from crossmargin.predict.accounts import simulate_accounts
    from crossmargin.predict.training import train_accounts

    t0 = time.perf_counter()
    history = simulate_accounts(args.epochs, 200, 1.0, 24, seed=0)
    model, _evaluation = train_accounts(history)
    fit_s = time.perf_counter() - t0
    pick = rng.integers(0, history.values.shape[0], n)
    rows = history.values[pick] * (1.0 + 0.01 * rng.standard_normal((n, len(history.names))))
    rows = np.ascontiguousarray(rows)
    model.predict_proba(rows[:10])  # compile or load the numba cache
    m_med, m_best, m_cpu, m_out = timed(lambda: model.predict_proba(rows), args.repeats)
    learned = np.asarray(m_out)

    k = min(args.sklearn_rows, n)
    start = time.perf_counter()
    sk = model.estimator.predict_proba(rows[:k])[:, 1]
    sklearn_all_s = (time.perf_counter() - start) / k * n
    diff_sk = float(np.max(np.abs(sk - learned[:k])))

    m = min(args.loop_accounts, n)
    start = time.perf_counter()
    loop_b = loop_baseline(distance[:m].tolist(), sigma[:m].tolist(), horizon[:m].tolist(), monitor)
    loop_model_p = loop_model(model.scorer, rows[:m])
    loop_s = time.perf_counter() - start
    loop_all_s = loop_s / m * n
    diff_b = float(np.max(np.abs(np.array(loop_b) - probs[:m]) / np.maximum(probs[:m], 1e-300)))
    diff_m = float(np.max(np.abs(np.array(loop_model_p) - learned[:m])))
    total_med, total_cpu = b_med + m_med, b_cpu + m_cpu
    trees, depth = model.scorer.roots.size, model.scorer.depth
    print(
        f"accounts {n:,}  (one core; model: {trees} trees of depth <= {depth}, "
        f"{len(history.names)} features, fitted in {fit_s:.1f} s)"
    )
    print(
        f"baseline (closed form + BGK): median {b_med * 1e3:.0f} ms, best {b_best * 1e3:.0f} ms,"
        f" CPU {b_cpu * 1e3:.0f} ms"
    )
    print(
        f"model predict_proba:          median {m_med * 1e3:.0f} ms, best {m_best * 1e3:.0f} ms,"
        f" CPU {m_cpu * 1e3:.0f} ms"
    )
    print(f"total: median {total_med:.2f} s wall, {total_cpu:.2f} s CPU")
    print(
        f"python loop: {loop_s / m * 1e6:.1f} us/account on {m:,} accounts "
        f"-> {loop_all_s:.0f} s for all"
    )
    print(
        f"ratio (loop / vectorized, median wall): {loop_all_s / total_med:.0f}x   "
        f"max rel diff baseline {diff_b:.1e}, max abs diff model {diff_m:.1e}"
    )
    print(
        f"scikit-learn predict_proba (1 thread): {sklearn_all_s:.1f} s for all (measured on "
        f"{k:,} rows; {sklearn_all_s / m_med:.0f}x the compiled walker), max abs diff {diff_sk:.1e}"
    )
    print(
        f"target <= 1 s: wall {'met' if total_med <= 1.0 else 'NOT met'}, "
        f"CPU {'met' if total_cpu <= 1.0 else 'NOT met'}"
    )
    if diff_b > 1e-12 or diff_m > 0.0 or diff_sk > 0.0:
        raise SystemExit("vectorized scoring and the Python loop disagree")


if __name__ == "__main__":
    main()
