"""A Uniswap v3 swap across initialized ticks, in exact integers (the reference path).

The loop of ``UniswapV3Pool.swap`` (whitepaper section 6.3): step toward the next initialized
tick in the swap's direction (or the price limit) with :func:`~crossmargin.amm.v3math.
compute_swap_step`; on reaching a tick, add its ``liquidity_net`` (moving up) or subtract it
(moving down). Amounts are the tokens' smallest units; the float pool of
:mod:`crossmargin.amm.pools` is checked against this one.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass

from crossmargin.amm import v3math as m

#: the price limits the pool accepts (TickMath MIN_SQRT_RATIO + 1 and MAX_SQRT_RATIO - 1)
MIN_SQRT_LIMIT = 4295128739 + 1
MAX_SQRT_LIMIT = 1461446703485210103287273052203988822378723970342 - 1


@dataclass(frozen=True)
class ExactSwap:
    """Signed token deltas from the pool's side (+ into the pool), the price after and the
    total fee taken (in the input token)."""

    amount0: int
    amount1: int
    sqrt_after_x96: int
    liquidity_after: int
    fee_amount: int


def liquidity_net_of_ranges(ranges: list[tuple[int, int, int]]) -> dict[int, int]:
    """Tick -> liquidity_net from positions ``(tick_lower, tick_upper, liquidity)``."""
    net: dict[int, int] = {}
    for lower, upper, liquidity in ranges:
        if lower >= upper:
            raise m.V3MathError("tick_lower", lower, f"must be below tick_upper {upper}")
        net[lower] = net.get(lower, 0) + liquidity
        net[upper] = net.get(upper, 0) - liquidity
    return {t: v for t, v in net.items() if v != 0}


def active_liquidity(net: Mapping[int, int], sqrt_x96: int) -> int:
    """Liquidity in force at a price: the sum of nets of the ticks at or below it."""
    return sum(v for t, v in net.items() if m.sqrt_price_x96_at_tick(t) <= sqrt_x96)


def exact_swap(
    net: Mapping[int, int],
    sqrt_x96: int,
    liquidity: int,
    fee_pips: int,
    zero_for_one: bool,
    amount_specified: int,
    sqrt_limit_x96: int | None = None,
) -> ExactSwap:
    """Swap ``amount_specified`` (``> 0`` exact input, ``< 0`` exact output) through the ticks.

    ``net`` maps initialized ticks to their liquidity_net; ``liquidity`` is the active
    liquidity at ``sqrt_x96``. Stops at the price limit (default: the pool's extreme price).
    """
    if sqrt_limit_x96 is None:
        sqrt_limit_x96 = MIN_SQRT_LIMIT if zero_for_one else MAX_SQRT_LIMIT
    if zero_for_one and not MIN_SQRT_LIMIT <= sqrt_limit_x96 < sqrt_x96:
        raise m.V3MathError("sqrt_limit_x96", sqrt_limit_x96, "must be below the price")
    if not zero_for_one and not sqrt_x96 < sqrt_limit_x96 <= MAX_SQRT_LIMIT:
        raise m.V3MathError("sqrt_limit_x96", sqrt_limit_x96, "must be above the price")
    ticks = sorted(net)
    prices = [m.sqrt_price_x96_at_tick(t) for t in ticks]
    # the next tick to cross: downward the highest at or below the price (a price sitting on
    # a tick leaves that tick's liquidity at once), upward the lowest strictly above
    cursor = bisect_right(prices, sqrt_x96) - 1 if zero_for_one else bisect_right(prices, sqrt_x96)
    exact_in = amount_specified > 0
    remaining, calculated, fees = amount_specified, 0, 0
    while remaining != 0 and sqrt_x96 != sqrt_limit_x96:
        inside = 0 <= cursor < len(ticks)
        if zero_for_one:
            target = max(prices[cursor], sqrt_limit_x96) if inside else sqrt_limit_x96
        else:
            target = min(prices[cursor], sqrt_limit_x96) if inside else sqrt_limit_x96
        if liquidity == 0:  # nothing to trade in this range: jump to the next tick
            step = m.SwapStep(target, 0, 0, 0)
        else:
            step = m.compute_swap_step(sqrt_x96, target, liquidity, remaining, fee_pips)
        if exact_in:
            remaining -= step.amount_in + step.fee_amount
            calculated -= step.amount_out
        else:
            remaining += step.amount_out
            calculated += step.amount_in + step.fee_amount
        fees += step.fee_amount
        sqrt_x96 = step.sqrt_next_x96
        if inside and sqrt_x96 == prices[cursor]:
            # crossing the tick: its net enters moving up, leaves moving down
            liquidity += -net[ticks[cursor]] if zero_for_one else net[ticks[cursor]]
            if liquidity < 0:
                raise m.V3MathError("liquidity_net", net[ticks[cursor]], "liquidity below zero")
            cursor += -1 if zero_for_one else 1
    used = amount_specified - remaining
    amount0, amount1 = (used, calculated) if zero_for_one == exact_in else (calculated, used)
    return ExactSwap(amount0, amount1, sqrt_x96, liquidity, fees)
