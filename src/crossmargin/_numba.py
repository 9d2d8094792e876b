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
