"""A typed wrapper around ``numba.njit`` so that ``mypy --strict`` keeps the signatures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba

F = TypeVar("F", bound=Callable[..., Any])


def jit(func: F) -> F:
    """Compile ``func`` in nopython mode, caching the machine code on disk.

    ``fastmath`` stays off: IEEE semantics keep results bit-identical to a plain evaluation order,
    which the batch-equals-single tests rely on.
    """
    return cast(F, numba.njit(cache=True, nogil=True)(func))


def jit_no_refcount(func: F) -> F:
    """Like :func:`jit`, for allocation-free helpers that take arrays and run once per row.

    Compiled without numba's reference-counting runtime (``_nrt=False``): a call into a normal
    jitted function increments and decrements the count of each array argument (atomic
    operations), which made these helpers the cost of the whole kernel loop (4x measured).
    The helper must therefore never allocate.
    """
    options: dict[str, Any] = {"cache": True, "nogil": True, "_nrt": False}
    return cast(F, numba.njit(**options)(func))
