"""Exceptions of the option pricer.

Each names the input field, the row index and the offending value (subclasses of the project's
:class:`~crossmargin.errors.InputError`, so the CLI prints them on one line), because a pricer
that returned NaN for a bad row would let the NaN flow silently into a margin sum.
"""

from __future__ import annotations

from typing import Any

from crossmargin.errors import InputError


def _index_text(index: int | tuple[int, ...] | None) -> str:
    if index is None:
        return ""
    if isinstance(index, tuple):
        return "[" + ", ".join(str(i) for i in index) + "]"
    return f"[{index}]"


class PricingInputError(InputError):
    """An option input (forward, strike, vol, time, discount factor, price) is invalid.

    ``field`` is the argument name, ``index`` the row (an ``int`` for 1-D input, a tuple for
    N-D input, ``None`` for a scalar) and ``value`` the offending number.
    """

    def __init__(
        self, field: str, index: int | tuple[int, ...] | None, value: Any, reason: str
    ) -> None:
        self.index = index
        super().__init__(f"{field}{_index_text(index)}", value, reason)
        self.field = field


class ExpiredOptionError(PricingInputError):
    """Time to expiry ``<= 0`` without ``allow_expired=True`` (intrinsic-value mode)."""


class ImpliedVolUndefinedError(PricingInputError):
    """A price outside the open no-arbitrage interval: no volatility reproduces it.

    ``bound`` names the violated bound (``"lower"``: discounted intrinsic value, ``"upper"``:
    discounted forward for a call, discounted strike for a put) and ``bound_value`` its value.
    """

    def __init__(
        self,
        field: str,
        index: int | tuple[int, ...] | None,
        value: Any,
        bound: str,
        bound_value: float,
        detail: str = "",
    ) -> None:
        self.bound = bound
        self.bound_value = bound_value
        relation = "<=" if bound == "lower" else ">="
        what = (
            "discounted intrinsic value df*max(F-K, 0) for a call, df*max(K-F, 0) for a put"
            if bound == "lower"
            else "discounted forward df*F for a call, discounted strike df*K for a put"
        )
        reason = (
            f"implied volatility undefined: price {relation} the {bound} no-arbitrage bound "
            f"{bound_value!r} ({what}){detail}"
        )
        super().__init__(field, index, value, reason)


class SviParameterError(InputError):
    """A raw SVI slice whose parameters break a constraint (``field`` names slice and parameter)."""


class SviArbitrageError(InputError):
    """A raw SVI slice with butterfly arbitrage: Gatheral's density condition ``g(k) < 0``.

    ``slice_index`` is the slice, ``k`` the log-moneyness where ``g`` is negative and ``value``
    the value of ``g(k)``.
    """

    def __init__(self, slice_index: int, k: float, g: float) -> None:
        self.slice_index = slice_index
        self.k = k
        super().__init__(
            f"svi[{slice_index}]",
            g,
            f"butterfly arbitrage: g(k) < 0 at log-moneyness k = {k!r} "
            "(negative risk-neutral density, Gatheral & Jacquier 2014, eq. 2.1)",
        )


class CalendarArbitrageError(InputError):
    """Total variance decreasing in expiry at a fixed log-moneyness (calendar-spread arbitrage)."""
