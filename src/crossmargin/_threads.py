"""How many threads pay on this machine right now (issue 14, benchmarks/bench_threads.py).

Measured on the 2-core machine (benchmarks/README.md, "Threads"): with the second core idle
(load average 1.4 with the benchmark itself running), two threads were faster at every size
measured: the risk kernel 1.2x at 10k accounts to 1.9x at 1M, portfolio margin 1.5x from 1,000
options, Monte Carlo VaR 1.6-1.8x from 10,000 paths, Monte Carlo cascades 1.1-1.8x. With other
processes keeping it busy (load average 3.5-4.5), two threads were slower at almost every size
(numba's thread pool waits ~8 ms for a busy core: up to 16x slower on small problems). So: use
the cores that are idle by the 1-minute load average, and one thread below a size where
threads were not measured.
"""

from __future__ import annotations

import math
import os


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def idle_threads(work: float = math.inf, min_work: float = 0.0, cap: int | None = None) -> int:
    """Threads worth using: 1 when ``work < min_work`` (fixed costs dominate), else the cores
    not kept busy by other processes: ``floor(cores - load + 1.5)`` clipped to ``[1, cores]``
    (``load``: the 1-minute load average, which counts this busy process as about 1), at
    most ``cap``."""
    cores = available_cores()
    if work < min_work or cores == 1:
        return 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average (Windows): trust the cores
        load = 0.0
    threads = max(1, min(cores, math.floor(cores - load + 1.5)))
    return threads if cap is None else max(1, min(threads, cap))
