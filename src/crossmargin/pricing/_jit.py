"""The numba decorator of the pricing kernels (typed for ``mypy --strict``).

Differences from :func:`crossmargin._numba.jit`, both needed for the loops to vectorize (SIMD):

* ``error_model="numpy"``: a float division by zero gives inf/NaN as in numpy instead of a
  Python ``ZeroDivisionError`` check per division (a branch that stops the vectorizer). Inputs
  are validated before the kernels run, so no division by zero can happen on valid rows.
* ``fastmath={"contract"}``: LLVM may fuse ``a*b + c`` into one FMA instruction (one rounding
  instead of two: never less accurate). No other fast-math flag: ``nnan``/``ninf`` would let
  the compiler delete the NaN checks, ``reassoc``/``afn`` would change results between builds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba

F = TypeVar("F", bound=Callable[..., Any])

FASTMATH = frozenset({"contract"})


def kernel(func: F) -> F:
    """Compile ``func`` in nopython mode (cached on disk), numpy error model, FMA contraction."""
    options: dict[str, Any] = {
        "cache": True,
        "nogil": True,
        "error_model": "numpy",
        "fastmath": set(FASTMATH),
    }
    return cast(F, numba.njit(**options)(func))
