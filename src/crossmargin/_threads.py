"""How many threads pay on this machine right now (issue 14, benchmarks/bench_threads.py).

Measured on the 2-core machine (benchmarks/README.md, "Threads"): when the second core is idle,
a second thread speeds up the risk kernel 1.9x at 1M accounts and portfolio margin 1.35x at
100,000 options; when other processes keep it busy (load average >= cores), every parallel
path was slower on two threads than on one at every size measured (numba's thread pool waits
~8 ms for a busy core), by up to 16x on small problems. So: use the cores that are idle (by
the 1-minute load average), and one thread for work below a size where threads were not seen
to pay.
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
    not kept busy by other processes: ``floor(cores - load + 1)`` clipped to ``[1, cores]``
    (``load``: the 1-minute load average, which counts this process too), at most ``cap``."""
    cores = available_cores()
    if work < min_work or cores == 1:
        return 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average (Windows): trust the cores
        load = 0.0
    threads = max(1, min(cores, math.floor(cores - load + 1.0)))
    return threads if cap is None else max(1, min(threads, cap))
