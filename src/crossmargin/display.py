"""Readable ``repr`` of result objects: floats shown without summation-order noise.

The kernel sums each row's contribution in array order, so a figure can carry ~1e-16 x its
terms' magnitudes of noise (``3684250.0000000005``). :func:`rounded_repr` gives a dataclass a
``repr`` (and so ``str``) showing every float at :data:`REPR_DIGITS` significant digits - the
same rule as the JSON's USD figures (``commands.common.USD_DIGITS``) - while the stored
numbers stay exactly what the kernel computed (``report.equity_usd`` is unchanged).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, TypeVar

#: 13 significant digits: 5e-14 relative, below any price or quantity's precision
REPR_DIGITS = 13

T = TypeVar("T")


def display_float(value: float) -> float:
    """``value`` rounded to :data:`REPR_DIGITS` significant digits (non-finite unchanged)."""
    return float(f"{value:.{REPR_DIGITS}g}") if math.isfinite(value) else value


def clean_repr(value: Any) -> str:
    """``repr(value)`` with floats at :data:`REPR_DIGITS` significant digits, recursing into
    dataclasses (their ``repr=True`` fields), dicts, lists and tuples."""
    if isinstance(value, bool | int | str) or value is None:
        return repr(value)
    if isinstance(value, float):
        return repr(display_float(float(value)))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        inner = ", ".join(
            f"{f.name}={clean_repr(getattr(value, f.name))}"
            for f in dataclasses.fields(value)
            if f.repr
        )
        return f"{type(value).__qualname__}({inner})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{clean_repr(k)}: {clean_repr(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(clean_repr(v) for v in value) + "]"
    if isinstance(value, tuple):
        items = [clean_repr(v) for v in value]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    return repr(value)


def rounded_repr(cls: type[T]) -> type[T]:
    """Class decorator (outside ``@dataclass``): ``repr``/``str`` by :func:`clean_repr`."""

    def __repr__(self: Any) -> str:
        return clean_repr(self)

    cls.__repr__ = __repr__  # type: ignore[method-assign]
    return cls
