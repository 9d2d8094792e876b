r"""The scenario revaluation kernel: the value of every expiry of one underlying in every scenario.

.. math::

    V_{e,s} = \sum_{o \in e} q_o \; \mathrm{B76}\big(F_e(m_s),\, K_o,\, \sigma_{o,v(s)},\,
              T_e,\, D_e,\, \phi_o\big), \qquad F_e(m) = (F_e - F^{fix}_e)\,m + F^{fix}_e

with :math:`\mathrm{B76}` the project's one Black-76 pricer
(:func:`crossmargin.pricing.black76_price_row`), :math:`m_s` the scenario's spot multiplier
(1 for the skew states unless the profile moves the forward in them) and
:math:`\sigma_{o,v}` the option's vol in the scenario's vol state :math:`v`, taken from a
``[5, n_options]`` table computed once per option before the scenario loop (mark, up, down,
linear-skew and abs-skew vols: all the per-position work is hoisted out of it). Options are
sorted by expiry, so each expiry is a contiguous slice; the scenarios are spread over the CPU
cores (``prange``): each thread writes its own column of ``out``, no two threads the same cell.
Each expiry's prices go to a scratch array first and are summed after, in row order: a running
floating-point sum in the pricing loop would keep LLVM from vectorizing it (measured 4x).

A vol of 0 (a down multiplier floored at 0, a skew multiplier <= 0) or an expired option
(:math:`T = 0`) is priced at :data:`VOL_FLOOR`: the Black-76 value then equals the discounted
intrinsic value to ~1e-12 relative - Derive does the same, pricing a zero total vol as one
wei (``lyra-utils`` ``Black76._standardCall``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba
import numpy as np

from crossmargin.portfolio.grid import SKEW_LINEAR
from crossmargin.portfolio.positions import BoolArray, FloatArray, IntArray
from crossmargin.pricing import black76_price_row

F = TypeVar("F", bound=Callable[..., Any])

VOL_FLOOR = 1e-12
"""Smallest vol passed to the pricer (per 1.0): a zero vol is priced at intrinsic value."""


def _parallel_kernel(func: F) -> F:
    """``numba.njit`` with ``parallel=True`` (``prange``), cached, typed for mypy."""
    options: dict[str, Any] = {"cache": True, "nogil": True, "parallel": True}
    return cast(F, numba.njit(**options)(func))


@_parallel_kernel
def expiry_values_kernel(
    spot_mult: FloatArray,
    vol_state: IntArray,
    skew_moves_forward: bool,
    fwd_usd: FloatArray,
    fwd_fixed_usd: FloatArray,
    t_yrs: FloatArray,
    df: FloatArray,
    option_start: IntArray,
    strike_usd: FloatArray,
    is_call: BoolArray,
    qty: FloatArray,
    vol_table: FloatArray,
    out: FloatArray,
) -> None:
    """``out[e, s] = V_{e,s}`` (module docstring) for the expiries ``e`` of one underlying.

    ``option_start[e] .. option_start[e + 1]`` are expiry ``e``'s option rows (absolute row
    numbers into ``strike_usd``, ``is_call``, ``qty`` and the columns of ``vol_table``);
    ``out`` has shape ``[n_expiries, n_scenarios]``. Inputs must be valid (positive forwards,
    strikes and vols, ``t_yrs >= 0``): :func:`~crossmargin.portfolio.positions.
    portfolio_from_arrays` checks them.
    """
    n_scenarios = spot_mult.shape[0]
    n_expiries = fwd_usd.shape[0]
    longest = 0
    for e in range(n_expiries):
        longest = max(longest, option_start[e + 1] - option_start[e])
    for s in numba.prange(n_scenarios):
        state = vol_state[s]
        mult = spot_mult[s] if (state < SKEW_LINEAR or skew_moves_forward) else 1.0
        vols = vol_table[state]
        values = np.empty(longest)  # per thread: the loop below vectorizes, a running sum would not
        for e in range(n_expiries):
            fixed = fwd_fixed_usd[e]
            forward = (fwd_usd[e] - fixed) * mult + fixed
            t = t_yrs[e]
            discount = df[e]
            first = option_start[e]
            n = option_start[e + 1] - first
            for j in range(n):
                o = first + j
                values[j] = qty[o] * black76_price_row(
                    forward, strike_usd[o], vols[o], t, discount, is_call[o]
                )
            total = 0.0
            for j in range(n):
                total += values[j]
            out[e, s] = total
