"""Exact-integer Uniswap v3 math against v3-core's own test vectors.

Source of every number: github.com/Uniswap/v3-core (commit d8b1c635), files
``test/SqrtPriceMath.spec.ts``, ``test/SwapMath.spec.ts``, ``test/TickMath.spec.ts`` and
``test/__snapshots__/TickMath.spec.ts.snap``; each test below names the ``it(...)`` it
reproduces. ``E18`` is ``expandTo18Decimals(1)``, ``enc(a, b)`` is ``encodePriceSqrt(a, b)``.
Results match exactly (integers), tick prices to 1e-12 relative.
"""

from __future__ import annotations

import pytest

from crossmargin.amm import v3math as m
from crossmargin.amm.v3math import encode_price_sqrt_x96 as enc

E18 = 10**18
MAX_UINT128 = (1 << 128) - 1
PRICE_1024 = 20282409603651670423947251286016  # 'fails if output amount ...' cases


def test_encode_price_sqrt_matches_the_specs_constants() -> None:
    # enc(1, 1) is exactly 2^96 (SqrtPriceMath.spec 'returns input price if amount in is zero')
    assert enc(1, 1) == 1 << 96
    assert enc(121, 100) == (11 << 96) // 10  # sqrt(1.21) = 1.1 exactly


# --- SqrtPriceMath #getNextSqrtPriceFromInput ------------------------------------------


def test_input_amount_of_0_1_token1() -> None:
    """'input amount of 0.1 token1'."""
    got = m.next_sqrt_price_from_input(enc(1, 1), E18, E18 // 10, False)
    assert got == 87150978765690771352898345369


def test_input_amount_of_0_1_token0() -> None:
    """'input amount of 0.1 token0'."""
    got = m.next_sqrt_price_from_input(enc(1, 1), E18, E18 // 10, True)
    assert got == 72025602285694852357767227579


def test_amount_in_above_uint96_max_zero_for_one() -> None:
    """'amountIn > type(uint96).max and zeroForOne = true'."""
    assert m.next_sqrt_price_from_input(enc(1, 1), 10 * E18, 2**100, True) == 624999999995069620


def test_any_input_amount_cannot_underflow_the_price() -> None:
    """'any input amount cannot underflow the price'."""
    assert m.next_sqrt_price_from_input(1, 1, 2**255, True) == 1


def test_can_return_1_with_enough_amount_in() -> None:
    """'can return 1 with enough amountIn and zeroForOne = true' (overflow branch)."""
    assert m.next_sqrt_price_from_input(enc(1, 1), 1, m.UINT256_MAX // 2, True) == 1


def test_returns_the_minimum_price_for_max_inputs() -> None:
    """'returns the minimum price for max inputs'."""
    sqrt_p = 2**160 - 1
    amount = m.UINT256_MAX - (MAX_UINT128 << 96) // sqrt_p
    assert m.next_sqrt_price_from_input(sqrt_p, MAX_UINT128, amount, True) == 1


@pytest.mark.parametrize("zero_for_one", [True, False])
def test_zero_input_returns_the_input_price(zero_for_one: bool) -> None:
    """'returns input price if amount in is zero and zeroForOne = true/false'."""
    price = enc(1, 1)
    assert m.next_sqrt_price_from_input(price, E18 // 10, 0, zero_for_one) == price
    assert m.next_sqrt_price_from_output(price, E18 // 10, 0, zero_for_one) == price


def test_input_failures() -> None:
    """'fails if price is zero', 'fails if liquidity is zero', 'fails if input amount
    overflows the price'."""
    with pytest.raises(m.V3MathError, match="sqrt_price_x96"):
        m.next_sqrt_price_from_input(0, 0, E18 // 10, False)
    with pytest.raises(m.V3MathError, match="liquidity"):
        m.next_sqrt_price_from_input(1, 0, E18 // 10, True)
    with pytest.raises(m.V3MathError, match="160 bits"):
        m.next_sqrt_price_from_input(2**160 - 1, 1024, 1024, False)


# --- SqrtPriceMath #getNextSqrtPriceFromOutput -----------------------------------------


@pytest.mark.parametrize(
    ("amount_out", "zero_for_one"),
    [(4, False), (5, False), (262145, True), (262144, True)],
    ids=["exactly-reserve0", "above-reserve0", "above-reserve1", "exactly-reserve1"],
)
def test_output_beyond_virtual_reserves_fails(amount_out: int, zero_for_one: bool) -> None:
    """'fails if output amount is (exactly | greater than) the virtual reserves of token0/1'."""
    with pytest.raises(m.V3MathError, match="virtual reserve"):
        m.next_sqrt_price_from_output(PRICE_1024, 1024, amount_out, zero_for_one)


def test_output_just_less_than_virtual_reserves_of_token1() -> None:
    """'succeeds if output amount is just less than the virtual reserves of token1'."""
    got = m.next_sqrt_price_from_output(PRICE_1024, 1024, 262143, True)
    assert got == 77371252455336267181195264


def test_output_amount_of_0_1_token1_one_for_zero() -> None:
    """'output amount of 0.1 token1' (zeroForOne = false)."""
    got = m.next_sqrt_price_from_output(enc(1, 1), E18, E18 // 10, False)
    assert got == 88031291682515930659493278152


def test_output_amount_of_0_1_token1_zero_for_one() -> None:
    """'output amount of 0.1 token1' (the second one, zeroForOne = true)."""
    got = m.next_sqrt_price_from_output(enc(1, 1), E18, E18 // 10, True)
    assert got == 71305346262837903834189555302


@pytest.mark.parametrize("zero_for_one", [True, False])
def test_impossible_output_reverts(zero_for_one: bool) -> None:
    """'reverts if amountOut is impossible in zero for one / one for zero direction'."""
    with pytest.raises(m.V3MathError):
        m.next_sqrt_price_from_output(enc(1, 1), 1, m.UINT256_MAX, zero_for_one)


# --- SqrtPriceMath #getAmount0Delta / #getAmount1Delta ---------------------------------


def test_amount0_delta_price_1_to_1_21() -> None:
    """'returns 0.1 amount1 for price of 1 to 1.21' (#getAmount0Delta)."""
    up = m.amount0_delta(enc(1, 1), enc(121, 100), E18, True)
    assert up == 90909090909090910
    assert m.amount0_delta(enc(1, 1), enc(121, 100), E18, False) == up - 1


def test_amount1_delta_price_1_to_1_21() -> None:
    """'returns 0.1 amount1 for price of 1 to 1.21' (#getAmount1Delta)."""
    up = m.amount1_delta(enc(1, 1), enc(121, 100), E18, True)
    assert up == 100000000000000000
    assert m.amount1_delta(enc(1, 1), enc(121, 100), E18, False) == up - 1


def test_amount_deltas_are_zero_without_liquidity_or_move() -> None:
    """'returns 0 if liquidity is 0', 'returns 0 if prices are equal'."""
    assert m.amount0_delta(enc(1, 1), enc(2, 1), 0, True) == 0
    assert m.amount1_delta(enc(1, 1), enc(2, 1), 0, True) == 0
    assert m.amount0_delta(enc(1, 1), enc(1, 1), 0, True) == 0


def test_amount0_delta_works_for_prices_that_overflow() -> None:
    """'works for prices that overflow': rounding up adds exactly one unit."""
    a, b = enc(2**90, 1), enc(2**96, 1)
    assert m.amount0_delta(a, b, E18, True) == m.amount0_delta(a, b, E18, False) + 1


def test_sqrt_p_times_sqrt_q_overflows() -> None:
    """'swap computation' / 'sqrtP * sqrtQ overflows'."""
    sqrt_p = 1025574284609383690408304870162715216695788925244
    liquidity = 50015962439936049619261659728067971248
    sqrt_q = m.next_sqrt_price_from_input(sqrt_p, liquidity, 406, True)
    assert sqrt_q == 1025574284609383582644711336373707553698163132913
    assert m.amount0_delta(sqrt_q, sqrt_p, liquidity, True) == 406


# --- SwapMath #computeSwapStep ----------------------------------------------------------


def test_exact_in_capped_at_target_one_for_zero() -> None:
    """'exact amount in that gets capped at price target in one for zero'."""
    target = enc(101, 100)
    step = m.compute_swap_step(enc(1, 1), target, 2 * E18, E18, 600)
    assert (step.amount_in, step.fee_amount, step.amount_out) == (
        9975124224178055,
        5988667735148,
        9925619580021728,
    )
    assert step.amount_in + step.fee_amount < E18
    assert step.sqrt_next_x96 == target
    assert step.sqrt_next_x96 < m.next_sqrt_price_from_input(enc(1, 1), 2 * E18, E18, False)


def test_exact_out_capped_at_target_one_for_zero() -> None:
    """'exact amount out that gets capped at price target in one for zero'."""
    target = enc(101, 100)
    step = m.compute_swap_step(enc(1, 1), target, 2 * E18, -E18, 600)
    assert (step.amount_in, step.fee_amount, step.amount_out) == (
        9975124224178055,
        5988667735148,
        9925619580021728,
    )
    assert step.sqrt_next_x96 == target


def test_exact_in_fully_spent_one_for_zero() -> None:
    """'exact amount in that is fully spent in one for zero'."""
    step = m.compute_swap_step(enc(1, 1), enc(1000, 100), 2 * E18, E18, 600)
    assert (step.amount_in, step.fee_amount, step.amount_out) == (
        999400000000000000,
        600000000000000,
        666399946655997866,
    )
    assert step.amount_in + step.fee_amount == E18
    after = m.next_sqrt_price_from_input(enc(1, 1), 2 * E18, E18 - step.fee_amount, False)
    assert step.sqrt_next_x96 == after < enc(1000, 100)


def test_exact_out_fully_received_one_for_zero() -> None:
    """'exact amount out that is fully received in one for zero'."""
    step = m.compute_swap_step(enc(1, 1), enc(10000, 100), 2 * E18, -E18, 600)
    assert (step.amount_in, step.fee_amount, step.amount_out) == (
        2000000000000000000,
        1200720432259356,
        E18,
    )
    assert step.sqrt_next_x96 == m.next_sqrt_price_from_output(enc(1, 1), 2 * E18, E18, False)


def test_amount_out_is_capped_at_the_desired_amount_out() -> None:
    """'amount out is capped at the desired amount out'."""
    step = m.compute_swap_step(
        417332158212080721273783715441582,
        1452870262520218020823638996,
        159344665391607089467575320103,
        -1,
        1,
    )
    assert (step.amount_in, step.fee_amount, step.amount_out) == (1, 1, 1)
    assert step.sqrt_next_x96 == 417332158212080721273783715441581


def test_target_price_of_1_uses_partial_input_amount() -> None:
    """'target price of 1 uses partial input amount'."""
    amount = 3915081100057732413702495386755767
    step = m.compute_swap_step(2, 1, 1, amount, 1)
    assert step.amount_in == 39614081257132168796771975168
    assert step.fee_amount == 39614120871253040049813
    assert step.amount_in + step.fee_amount <= amount
    assert (step.amount_out, step.sqrt_next_x96) == (0, 1)


def test_entire_input_amount_taken_as_fee() -> None:
    """'entire input amount taken as fee'."""
    step = m.compute_swap_step(2413, 79887613182836312, 1985041575832132834610021537970, 10, 1872)
    assert (step.amount_in, step.fee_amount, step.amount_out, step.sqrt_next_x96) == (
        0,
        10,
        0,
        2413,
    )


def test_intermediate_insufficient_liquidity_zero_for_one_exact_output() -> None:
    """'handles intermediate insufficient liquidity in zero for one exact output case'."""
    target = PRICE_1024 * 11 // 10
    step = m.compute_swap_step(PRICE_1024, target, 1024, -4, 3000)
    assert (step.amount_out, step.sqrt_next_x96, step.amount_in, step.fee_amount) == (
        0,
        target,
        26215,
        79,
    )


def test_intermediate_insufficient_liquidity_one_for_zero_exact_output() -> None:
    """'handles intermediate insufficient liquidity in one for zero exact output case'."""
    target = PRICE_1024 * 9 // 10
    step = m.compute_swap_step(PRICE_1024, target, 1024, -263000, 3000)
    assert (step.amount_out, step.sqrt_next_x96, step.amount_in, step.fee_amount) == (
        26214,
        target,
        1,
        1,
    )


# --- TickMath #getSqrtRatioAtTick (spec + snapshot) -------------------------------------

TICK_VECTORS = {
    -887272: 4295128739,  # 'min tick'
    -887271: 4295343490,  # 'min tick +1'
    887271: 1461373636630004318706518188784493106690254656249,  # 'max tick - 1'
    887272: 1461446703485210103287273052203988822378723970342,  # 'max tick'
    -50: 79030349367926598376800521322,  # snapshot 'tick -50 result 1'
    -100: 78833030112140176575862854579,
    -250: 78244023372248365697264290337,
    -500: 77272108795590369356373805297,
    -1000: 75364347830767020784054125655,
    -2500: 69919044979842180277688105136,
    -3000: 68192822843687888778582228483,
    -4000: 64867181785621769311890333195,
    -5000: 61703726247759831737814779831,
    -50000: 6504256538020985011912221507,
    -150000: 43836292794701720435367485,
    -250000: 295440463448801648376846,
    -500000: 1101692437043807371,
    -738203: 7409801140451,
}


@pytest.mark.parametrize(("tick", "expected"), sorted(TICK_VECTORS.items()))
def test_sqrt_price_at_tick_within_1e12(tick: int, expected: int) -> None:
    got = m.sqrt_price_x96_at_tick(tick)
    assert abs(got - expected) <= 1e-12 * expected


def test_tick_out_of_range_is_refused() -> None:
    """'throws for too low' / 'throws for too high'."""
    for tick in (m.MIN_TICK - 1, m.MAX_TICK + 1):
        with pytest.raises(m.V3MathError, match="tick"):
            m.sqrt_price_x96_at_tick(tick)
