"""Input coercion and validation shared by the pricing functions.

Every array argument is converted to ``float64``, all are broadcast to one shape and flattened
to contiguous 1-D arrays for the kernels. A NaN, an infinity or an out-of-range value raises a
:class:`~crossmargin.pricing.errors.PricingInputError` naming the argument, the row and the
value: the kernels never see invalid rows, so they never produce a NaN.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from crossmargin.pricing.errors import PricingInputError

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


A = TypeVar("A", bound="np.ndarray[Any, Any]")


def readonly(array: A) -> A:
    """A read-only view: numba compiles one specialization per read-only/writable combination
    of its array arguments, so every input reaches the kernels read-only (one compilation)."""
    view = array.view()
    view.flags.writeable = False
    return view


def row_index(shape: tuple[int, ...], flat: int) -> int | tuple[int, ...] | None:
    """The index of flat row ``flat`` in an array of ``shape``, as users would write it."""
    if len(shape) == 0:
        return None
    if len(shape) == 1:
        return flat
    return tuple(int(i) for i in np.unravel_index(flat, shape))


def broadcast_floats(
    names: Sequence[str], values: Sequence[npt.ArrayLike]
) -> tuple[tuple[int, ...], list[FloatArray]]:
    """Broadcast ``values`` to one shape; return it and the flattened float64 copies."""
    arrays = []
    for name, value in zip(names, values, strict=True):
        try:
            arrays.append(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError) as exc:
            raise PricingInputError(
                name, None, value, "must be a number or an array of numbers"
            ) from exc
    try:
        shape = np.broadcast_shapes(*(a.shape for a in arrays))
    except ValueError as exc:
        shapes = ", ".join(f"{n}{a.shape}" for n, a in zip(names, arrays, strict=True))
        raise PricingInputError(
            "/".join(names), None, shapes, "array shapes do not broadcast together"
        ) from exc
    flat = [readonly(np.ascontiguousarray(np.broadcast_to(a, shape).ravel())) for a in arrays]
    return shape, flat


def as_flags(name: str, value: npt.ArrayLike, shape: tuple[int, ...]) -> BoolArray:
    """``is_call`` as a flattened bool array of ``shape`` (bools, or integers 0 and 1)."""
    array = np.asarray(value)
    if array.dtype != np.bool_:
        if not np.issubdtype(array.dtype, np.number):
            raise PricingInputError(name, None, value, "must be bool (True for a call) or 0/1")
        bad = np.flatnonzero((array != 0) & (array != 1))
        if bad.size:
            i = int(bad[0])
            index = row_index(array.shape, i)
            raise PricingInputError(name, index, array.ravel()[i], "must be True/False or 1/0")
        array = array != 0
    try:
        flags: BoolArray = np.ascontiguousarray(np.broadcast_to(array, shape).ravel())
        return readonly(flags)
    except ValueError as exc:
        raise PricingInputError(
            name, None, array.shape, f"shape does not broadcast to {shape}"
        ) from exc


def check_positive(name: str, values: FloatArray, shape: tuple[int, ...]) -> None:
    """Raise unless every value is finite and ``> 0`` (NaN fails the test ``x > 0``)."""
    bad = np.flatnonzero(~((values > 0.0) & (values < np.inf)))
    if bad.size:
        i = int(bad[0])
        raise PricingInputError(
            name, row_index(shape, i), float(values[i]), "must be finite and > 0"
        )


def check_finite(name: str, values: FloatArray, shape: tuple[int, ...]) -> None:
    """Raise unless every value is finite (not NaN, not +-inf)."""
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        i = int(bad[0])
        raise PricingInputError(name, row_index(shape, i), float(values[i]), "must be finite")


def check_range(
    name: str, values: FloatArray, shape: tuple[int, ...], low: float, high: float
) -> None:
    """Raise unless every value is in ``[low, high]`` (``low > 0``; NaN fails)."""
    bad = np.flatnonzero(~((values >= low) & (values <= high)))
    if bad.size:
        i = int(bad[0])
        value = float(values[i])
        reason = (
            "must be finite and > 0"
            if not value > 0.0 or value == np.inf
            else f"outside the supported range [{low:g}, {high:g}]"
        )
        raise PricingInputError(name, row_index(shape, i), value, reason)


def vol_from_total_variance(
    total_variance: Callable[[FloatArray, FloatArray], FloatArray],
    forward: npt.ArrayLike,
    strike: npt.ArrayLike,
    t_yrs: npt.ArrayLike,
) -> FloatArray:
    """Black vol ``sqrt(w(ln(K/F), T) / T)`` of a surface given by its total variance ``w``."""
    shape, (f, k, t) = broadcast_floats(("forward", "strike", "t_yrs"), (forward, strike, t_yrs))
    check_positive("forward", f, shape)
    check_positive("strike", k, shape)
    check_positive("t_yrs", t, shape)
    vol: FloatArray = np.sqrt(total_variance(np.log(k / f), t) / t).reshape(shape)
    return vol
