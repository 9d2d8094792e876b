"""Where independent simulation tasks run: serially, on threads, or on a Dask cluster.

The same code runs everywhere: a task is a picklable function applied to each item, and
results come back in the items' order, so a run gives identical numbers on every executor for
the same seed (tasks draw no random numbers; paths are drawn before they are shipped).

Dask (``dask.distributed``): a local cluster by default (``processes=False``: workers are
threads of this process, nothing to pickle and no ``__main__`` guard needed), or a remote
scheduler with ``address="tcp://HOST:PORT"``. Scripts that start a *process*-based local cluster
must guard their entry point with ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from crossmargin._threads import idle_threads
from crossmargin.errors import InputError

T = TypeVar("T")
R = TypeVar("R")

_ADDRESS = re.compile(r"^(tcp|tls|inproc)://[A-Za-z0-9_.\-\[\]:]+:\d{1,5}$")


class Executor(Protocol):
    """Applies a function to items, results in order."""

    name: str

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]: ...

    def close(self) -> None: ...


class SerialExecutor:
    name = "serial"

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        return [fn(item) for item in items]

    def close(self) -> None:
        return None


class ThreadExecutor:
    """Threads of this process: the numba kernels release the GIL."""

    name = "threads"

    def __init__(self, workers: int | None = None) -> None:
        # default: the idle cores (a second thread on a busy core measured slower)
        workers = idle_threads() if workers is None else workers
        if workers < 1:
            raise InputError("workers", workers, "must be >= 1")
        self.workers = workers

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        with ThreadPoolExecutor(self.workers) as pool:
            return list(pool.map(fn, items))

    def close(self) -> None:
        return None


class DaskExecutor:
    """A ``dask.distributed`` client: a local cluster, or the scheduler at ``address``."""

    name = "dask"

    def __init__(self, address: str | None = None, workers: int = 2) -> None:
        from dask.distributed import Client, LocalCluster

        self.cluster: Any = None
        if address is None:
            self.cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=False,
                dashboard_address=None,
            )
            self.client = Client(self.cluster)
        else:
            if not _ADDRESS.match(address):
                raise InputError("--scheduler", address, "expected tcp://HOST:PORT")
            try:
                self.client = Client(address, timeout="10s")
            except OSError as exc:
                raise InputError("--scheduler", address, f"cannot connect: {exc}") from None

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        futures = self.client.map(fn, list(items), pure=False)
        return list(self.client.gather(futures))

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def make_executor(
    kind: str = "serial", scheduler: str | None = None, workers: int | None = None
) -> Executor:
    """``serial``, ``threads`` or ``dask`` (``scheduler`` implies dask). ``workers``: threads
    default to the idle cores (:func:`crossmargin._threads.idle_threads`), Dask to 2."""
    if scheduler is not None:
        if not _ADDRESS.match(scheduler):
            raise InputError("--scheduler", scheduler, "expected tcp://HOST:PORT")
        return DaskExecutor(scheduler, 2 if workers is None else workers)
    if kind == "serial":
        return SerialExecutor()
    if kind == "threads":
        return ThreadExecutor(workers)
    if kind == "dask":
        return DaskExecutor(None, 2 if workers is None else workers)
    raise InputError("--executor", kind, "must be serial, threads or dask")
