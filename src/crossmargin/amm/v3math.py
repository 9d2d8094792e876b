r"""Uniswap v3 swap arithmetic in exact integers (the reference path).

Prices are square roots in Q64.96 fixed point: ``sqrt_x96 = floor(sqrt(token1 / token0) 2^96)``;
liquidity ``L`` and amounts are integers in the tokens' smallest units. Written from the
formulas of the Uniswap v3 whitepaper (H. Adams et al., 2021, section 6.2.1) and the rounding
rules documented in v3-core's ``SqrtPriceMath`` / ``SwapMath`` / ``FullMath`` libraries
(github.com/Uniswap/v3-core, contracts/libraries): amounts a trader pays are rounded up,
amounts paid out and prices are rounded so the pool never loses to rounding. Python integers
are unbounded, so the 256-bit overflow branches of the contracts are reproduced explicitly where
they change a result. The tests check this module against the published vectors of v3-core's
``test/SqrtPriceMath.spec.ts``, ``test/SwapMath.spec.ts`` and ``test/TickMath.spec.ts``.

.. math::

    \Delta x = L \left(\frac{1}{\sqrt{P_a}} - \frac{1}{\sqrt{P_b}}\right), \qquad
    \Delta y = L (\sqrt{P_b} - \sqrt{P_a}), \qquad
    \sqrt{P'} = \frac{L \sqrt P}{L \pm \Delta x \sqrt P} \ \text{(token0)}, \quad
    \sqrt{P'} = \sqrt P \pm \frac{\Delta y}{L} \ \text{(token1)}
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, localcontext

from crossmargin.errors import InputError

Q96 = 1 << 96
UINT256_MAX = (1 << 256) - 1
UINT160_MAX = (1 << 160) - 1
UINT128_MAX = (1 << 128) - 1
#: fee denominator: fees are in hundredths of a basis point ("pips"), 3000 = 0.30 %
FEE_DENOMINATOR = 1_000_000
MIN_TICK = -887_272
MAX_TICK = 887_272
#: fee tier (pips) -> tick spacing, as enabled by the v3 factory (500/10, 3000/60, 10000/200;
#: 100/1 added by governance in 2021)
FEE_TIER_SPACING: dict[int, int] = {100: 1, 500: 10, 3000: 60, 10_000: 200}


class V3MathError(InputError):
    """An operation the pool contract would revert (no liquidity, price out of range)."""


def mul_div(a: int, b: int, denominator: int) -> int:
    """floor(a b / d), refusing a result past 256 bits (FullMath.mulDiv)."""
    if denominator <= 0:
        raise V3MathError("denominator", denominator, "must be > 0")
    result = a * b // denominator
    if result > UINT256_MAX:
        raise V3MathError("mul_div", result, "result overflows 256 bits")
    return result


def mul_div_up(a: int, b: int, denominator: int) -> int:
    """ceil(a b / d), refusing a result past 256 bits (FullMath.mulDivRoundingUp)."""
    if denominator <= 0:
        raise V3MathError("denominator", denominator, "must be > 0")
    result = -(-(a * b) // denominator)
    if result > UINT256_MAX:
        raise V3MathError("mul_div_up", result, "result overflows 256 bits")
    return result


def div_up(a: int, b: int) -> int:
    """ceil(a / b) for b > 0."""
    return -(-a // b)


def _to_uint160(value: int, what: str) -> int:
    if not 0 <= value <= UINT160_MAX:
        raise V3MathError(what, value, "price does not fit 160 bits")
    return value


def next_sqrt_price_from_amount0_rounding_up(
    sqrt_x96: int, liquidity: int, amount: int, add: bool
) -> int:
    """sqrt(P') after adding (``add``) or removing ``amount`` of token0; rounded up.

    ``L sqrt(P) / (L +- amount sqrt(P))`` in Q96; when ``amount sqrt(P)`` overflows 256 bits
    the contract uses the equivalent ``L / (L / sqrt(P) + amount)``, which rounds differently.
    """
    if amount == 0:
        return sqrt_x96
    numerator1 = liquidity << 96
    product = amount * sqrt_x96
    if add:
        if product <= UINT256_MAX and numerator1 + product <= UINT256_MAX:
            return mul_div_up(numerator1, sqrt_x96, numerator1 + product)
        return div_up(numerator1, numerator1 // sqrt_x96 + amount)
    if product > UINT256_MAX or numerator1 <= product:
        raise V3MathError("amount_out", amount, "more token0 than the pool's virtual reserve")
    return _to_uint160(mul_div_up(numerator1, sqrt_x96, numerator1 - product), "sqrt_price_x96")


def next_sqrt_price_from_amount1_rounding_down(
    sqrt_x96: int, liquidity: int, amount: int, add: bool
) -> int:
    """sqrt(P') after adding or removing ``amount`` of token1: ``sqrt(P) +- amount / L``,
    the quotient rounded down when adding and up when removing."""
    if add:
        return _to_uint160(sqrt_x96 + mul_div(amount, Q96, liquidity), "sqrt_price_x96")
    quotient = mul_div_up(amount, Q96, liquidity)
    if sqrt_x96 <= quotient:
        raise V3MathError("amount_out", amount, "more token1 than the pool's virtual reserve")
    return sqrt_x96 - quotient


def _check_price_liquidity(sqrt_x96: int, liquidity: int) -> None:
    if sqrt_x96 <= 0:
        raise V3MathError("sqrt_price_x96", sqrt_x96, "must be > 0")
    if liquidity <= 0:
        raise V3MathError("liquidity", liquidity, "must be > 0")


def next_sqrt_price_from_input(
    sqrt_x96: int, liquidity: int, amount_in: int, zero_for_one: bool
) -> int:
    """Price after ``amount_in`` enters (token0 if ``zero_for_one``); never past the target."""
    _check_price_liquidity(sqrt_x96, liquidity)
    if zero_for_one:
        return next_sqrt_price_from_amount0_rounding_up(sqrt_x96, liquidity, amount_in, True)
    return next_sqrt_price_from_amount1_rounding_down(sqrt_x96, liquidity, amount_in, True)


def next_sqrt_price_from_output(
    sqrt_x96: int, liquidity: int, amount_out: int, zero_for_one: bool
) -> int:
    """Price after ``amount_out`` leaves (token1 if ``zero_for_one``); always reaches it."""
    _check_price_liquidity(sqrt_x96, liquidity)
    if zero_for_one:
        return next_sqrt_price_from_amount1_rounding_down(sqrt_x96, liquidity, amount_out, False)
    return next_sqrt_price_from_amount0_rounding_up(sqrt_x96, liquidity, amount_out, False)


def amount0_delta(sqrt_a_x96: int, sqrt_b_x96: int, liquidity: int, round_up: bool) -> int:
    """Token0 between two prices: ``L 2^96 (sqrt_b - sqrt_a) / sqrt_b / sqrt_a``."""
    lo, hi = min(sqrt_a_x96, sqrt_b_x96), max(sqrt_a_x96, sqrt_b_x96)
    if lo <= 0:
        raise V3MathError("sqrt_price_x96", lo, "must be > 0")
    numerator1, numerator2 = liquidity << 96, hi - lo
    if round_up:
        return div_up(mul_div_up(numerator1, numerator2, hi), lo)
    return mul_div(numerator1, numerator2, hi) // lo


def amount1_delta(sqrt_a_x96: int, sqrt_b_x96: int, liquidity: int, round_up: bool) -> int:
    """Token1 between two prices: ``L (sqrt_b - sqrt_a) / 2^96``."""
    lo, hi = min(sqrt_a_x96, sqrt_b_x96), max(sqrt_a_x96, sqrt_b_x96)
    if round_up:
        return mul_div_up(liquidity, hi - lo, Q96)
    return mul_div(liquidity, hi - lo, Q96)


@dataclass(frozen=True)
class SwapStep:
    """One step of a swap within a range of constant liquidity (amounts in smallest units)."""

    sqrt_next_x96: int
    amount_in: int  # excluding the fee
    amount_out: int
    fee_amount: int


def compute_swap_step(
    sqrt_current_x96: int,
    sqrt_target_x96: int,
    liquidity: int,
    amount_remaining: int,
    fee_pips: int,
) -> SwapStep:
    """Swap toward ``sqrt_target`` within constant liquidity (SwapMath.computeSwapStep).

    ``amount_remaining >= 0`` is an exact input (fee included), ``< 0`` an exact output. The
    direction is token0 -> token1 when the target is at or below the current price. The fee is
    ``amount_in f / (1 - f)`` rounded up, or all the unused input when the step ends short of
    the target.
    """
    if not 0 <= fee_pips < FEE_DENOMINATOR:
        raise V3MathError("fee_pips", fee_pips, f"must be in [0, {FEE_DENOMINATOR})")
    zero_for_one = sqrt_current_x96 >= sqrt_target_x96
    exact_in = amount_remaining >= 0
    amount_in = amount_out = 0
    if exact_in:
        remaining_less_fee = mul_div(amount_remaining, FEE_DENOMINATOR - fee_pips, FEE_DENOMINATOR)
        amount_in = (
            amount0_delta(sqrt_target_x96, sqrt_current_x96, liquidity, True)
            if zero_for_one
            else amount1_delta(sqrt_current_x96, sqrt_target_x96, liquidity, True)
        )
        if remaining_less_fee >= amount_in:
            sqrt_next = sqrt_target_x96
        else:
            sqrt_next = next_sqrt_price_from_input(
                sqrt_current_x96, liquidity, remaining_less_fee, zero_for_one
            )
    else:
        amount_out = (
            amount1_delta(sqrt_target_x96, sqrt_current_x96, liquidity, False)
            if zero_for_one
            else amount0_delta(sqrt_current_x96, sqrt_target_x96, liquidity, False)
        )
        if -amount_remaining >= amount_out:
            sqrt_next = sqrt_target_x96
        else:
            sqrt_next = next_sqrt_price_from_output(
                sqrt_current_x96, liquidity, -amount_remaining, zero_for_one
            )
    reached = sqrt_next == sqrt_target_x96
    if zero_for_one:
        if not (reached and exact_in):
            amount_in = amount0_delta(sqrt_next, sqrt_current_x96, liquidity, True)
        if not (reached and not exact_in):
            amount_out = amount1_delta(sqrt_next, sqrt_current_x96, liquidity, False)
    else:
        if not (reached and exact_in):
            amount_in = amount1_delta(sqrt_current_x96, sqrt_next, liquidity, True)
        if not (reached and not exact_in):
            amount_out = amount0_delta(sqrt_current_x96, sqrt_next, liquidity, False)
    if not exact_in and amount_out > -amount_remaining:
        amount_out = -amount_remaining  # never pay out more than asked
    if exact_in and sqrt_next != sqrt_target_x96:
        fee = amount_remaining - amount_in
    else:
        fee = mul_div_up(amount_in, fee_pips, FEE_DENOMINATOR - fee_pips)
    return SwapStep(sqrt_next, amount_in, amount_out, fee)


def sqrt_price_x96_at_tick(tick: int) -> int:
    """ceil(sqrt(1.0001^tick) 2^96), computed with 80 significant digits.

    Uniswap's TickMath.getSqrtRatioAtTick approximates the same number with a fixed product of
    constants and rounds up; the two agree exactly at the negative ticks of v3-core's TickMath
    vectors and to 3e-20 relative at the largest ticks (tested to 1e-12, the agreement this
    module promises).
    """
    if not MIN_TICK <= tick <= MAX_TICK:
        raise V3MathError("tick", tick, f"must be in [{MIN_TICK}, {MAX_TICK}]")
    with localcontext() as ctx:
        ctx.prec = 80
        value = (Decimal("1.0001") ** tick).sqrt() * Decimal(Q96)
        return int(value.to_integral_value(rounding=ROUND_CEILING))


def encode_price_sqrt_x96(reserve1: int, reserve0: int) -> int:
    """sqrt(reserve1 / reserve0) in Q96 the way v3-core's tests encode it
    (test/shared/utilities.ts ``encodePriceSqrt``: bignumber.js with 20 decimal places,
    half-up, then the product with 2^96 floored)."""
    if reserve0 <= 0 or reserve1 <= 0:
        raise V3MathError("reserves", (reserve1, reserve0), "must be > 0")
    with localcontext() as ctx:
        ctx.prec = 200
        places = Decimal(1).scaleb(-20)
        ratio = (Decimal(reserve1) / Decimal(reserve0)).quantize(places, rounding=ROUND_HALF_UP)
        root = ratio.sqrt().quantize(places, rounding=ROUND_HALF_UP)
        return int((root * Decimal(Q96)).to_integral_value(rounding=ROUND_FLOOR))
