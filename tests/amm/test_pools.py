"""Pools against outside references: Uniswap v3-core's pool swap snapshots and Uniswap
v2-core's getInputPrice vectors; float pools against the exact-integer path; invariants.

v3: github.com/Uniswap/v3-core (d8b1c635) ``test/UniswapV3Pool.swaps.spec.ts`` (pool set-ups:
``TEST_POOLS``) and ``test/__snapshots__/UniswapV3Pool.swaps.spec.ts.snap`` (amount0Delta /
amount1Delta / amount0Before of the named cases). v2: github.com/Uniswap/v2-core
``test/UniswapV2Pair.spec.ts`` ``swapTestCases`` / ``getInputPrice:i`` ([swapAmount,
token0Amount, token1Amount, expectedOutputAmount], fee 0.3 %).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossmargin.amm import v3math as m
from crossmargin.amm import v3pool
from crossmargin.amm.pools import ConcentratedPool, ConstantProductPool, sell_curve
from crossmargin.errors import InputError

E18 = 10**18
SPACING = 60  # FeeAmount.MEDIUM
LO, HI = -887220, 887220  # getMinTick(60), getMaxTick(60)
ADDITIONAL = [(LO, HI, 2 * E18), (LO, -SPACING, 2 * E18), (SPACING, HI, 2 * E18)]
ZERO_AROUND = [(LO, -SPACING, 2 * E18), (SPACING, HI, 2 * E18)]
FULL = [(LO, HI, 2 * E18)]


def _exact(ranges: list[tuple[int, int, int]], zero_for_one: bool, amount: int, limit=None):
    net = v3pool.liquidity_net_of_ranges(ranges)
    price = m.encode_price_sqrt_x96(1, 1)
    return v3pool.exact_swap(
        net, price, v3pool.active_liquidity(net, price), 3000, zero_for_one, amount, limit
    )


@pytest.mark.parametrize(
    ("name", "ranges", "zero_for_one", "amount", "limit", "delta0", "delta1"),
    [
        (
            "additional liquidity around current price swap exactly 1.0000 token0 for token1",
            ADDITIONAL,
            True,
            E18,
            None,
            E18,
            -795933705287758544,
        ),
        (
            "additional liquidity around current price swap exactly 1.0000 token1 for token0",
            ADDITIONAL,
            False,
            E18,
            None,
            -795933705287758544,
            E18,
        ),
        (
            "additional liquidity around current price swap token0 for exactly 1.0000 token1",
            ADDITIONAL,
            True,
            -E18,
            None,
            1342022152495072924,
            -E18,
        ),
        (
            "0 liquidity, all liquidity around current price swap exactly 1.0000 token0 for token1",
            ZERO_AROUND,
            True,
            E18,
            None,
            E18,
            -662011820624678025,
        ),
        (
            "0 liquidity, all liquidity around current price swap exactly 1.0000 token1 for "
            "token0 to price 2.0000",
            ZERO_AROUND,
            False,
            E18,
            (2, 1),
            -579795727715083389,
            824893095908431542,
        ),
        (
            "2e18 max range liquidity swap exactly 1.0000 token0 for token1 to price 0.50000",
            FULL,
            True,
            E18,
            (50, 100),
            830919884399388263,
            -585786437626904951,
        ),
    ],
)
def test_exact_swap_reproduces_v3_pool_snapshots(
    name, ranges, zero_for_one, amount, limit, delta0, delta1
) -> None:
    """'UniswapV3Pool swap tests medium fee, 1:1 price, <name> 1' - exact integers."""
    sqrt_limit = None if limit is None else m.encode_price_sqrt_x96(*limit)
    result = _exact(ranges, zero_for_one, amount, sqrt_limit)
    assert (result.amount0, result.amount1) == (delta0, delta1), name


def test_minted_amounts_match_amount0_before() -> None:
    """The snapshot's amount0Before 3994009290088178439 of the 'additional liquidity' pool:
    token0 the three positions deposit at price 1 (amounts rounded up, as minting does)."""
    price = m.encode_price_sqrt_x96(1, 1)
    total = 0
    for lower, upper, liquidity in ADDITIONAL:
        lo = max(m.sqrt_price_x96_at_tick(lower), price)
        hi = m.sqrt_price_x96_at_tick(upper)
        total += m.amount0_delta(lo, hi, liquidity, True) if hi > lo else 0
    assert total == 3994009290088178439


def _float_pool(ranges: list[tuple[int, int, int]]) -> ConcentratedPool:
    return ConcentratedPool.from_ranges([(a, b, c / E18) for a, b, c in ranges], 1.0, 0.003)


@pytest.mark.parametrize(
    ("ranges", "expected"),
    [(ADDITIONAL, 795933705287758544 / E18), (ZERO_AROUND, 662011820624678025 / E18)],
)
def test_float_pool_matches_the_snapshots(ranges, expected: float) -> None:
    """The float pool (human units, L = 2) gives the snapshot's token1 out to 1e-12."""
    result = _float_pool(ranges).swap(1.0)
    assert result.base_filled == 1.0
    assert result.quote_usd == pytest.approx(expected, rel=1e-12)


def test_float_pool_buy_matches_token0_for_exact_token1_inverse() -> None:
    """Buying base with quote is the mirror of 'swap exactly 1.0000 token1 for token0'
    (price 1, symmetric pool): buying 0.795933705287758544 base costs 1.0 quote."""
    result = _float_pool(ADDITIONAL).swap(-795933705287758544 / E18)
    assert result.quote_usd == pytest.approx(-1.0, rel=1e-12)


@pytest.mark.parametrize(
    ("case", "swap", "reserve_in", "reserve_out", "expected"),
    [
        (0, 1, 5, 10, 1662497915624478906),
        (1, 1, 10, 5, 453305446940074565),
        (2, 2, 5, 10, 2851015155847869602),
        (3, 2, 10, 5, 831248957812239453),
        (4, 1, 10, 10, 906610893880149131),
        (5, 1, 100, 100, 987158034397061298),
        (6, 1, 1000, 1000, 996006981039903216),
    ],
)
def test_constant_product_v2_get_input_price(case, swap, reserve_in, reserve_out, expected) -> None:
    """v2-core UniswapV2Pair.spec.ts 'getInputPrice:<case>'."""
    pool = ConstantProductPool(float(reserve_in), float(reserve_out), 0.003)
    assert pool.swap(float(swap)).quote_usd == pytest.approx(expected / E18, rel=1e-12)


def test_bad_pools_are_one_line_errors() -> None:
    with pytest.raises(InputError, match=r"base_qty.*reserves must be"):
        ConstantProductPool(-1.0, 10.0)
    with pytest.raises(InputError, match="ticks: out of order"):
        ConcentratedPool.from_table([10, 5], [1.0, -1.0], 1.0)
    with pytest.raises(InputError, match="liquidity below zero"):
        ConcentratedPool.from_table([0, 10], [-1.0, 1.0], 1.0)
    with pytest.raises(InputError, match="sum to 0"):
        ConcentratedPool.from_table([0, 10], [1.0, -0.5], 1.0)


amounts = st.floats(min_value=1e-6, max_value=50.0, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(amount=amounts, selling=st.booleans())
def test_float_pool_agrees_with_exact_path(amount: float, selling: bool) -> None:
    """Any size, either direction: the float pool within 1e-9 of the exact-integer swap."""
    pool = _float_pool(ADDITIONAL)
    size = amount if selling else -min(amount, 3.0)
    exact = _exact(ADDITIONAL, selling, round(size * E18))
    result = pool.swap(size)
    quote_exact = -(exact.amount1) / E18
    assert result.quote_usd == pytest.approx(quote_exact, rel=1e-9, abs=1e-15)


@settings(max_examples=60, deadline=None)
@given(amount=amounts)
def test_round_trip_never_profits(amount: float) -> None:
    """Selling then buying back the same base costs the fees (never a free profit)."""
    for pool in (_float_pool(ADDITIONAL), ConstantProductPool(100.0, 100.0, 0.003)):
        sold = pool.swap(amount)
        bought = sold.pool.swap(-sold.base_filled)
        assert sold.quote_usd + bought.quote_usd <= 1e-12
    v2 = ConstantProductPool(100.0, 100.0, 0.003)
    after = v2.swap(amount).pool
    assert after.base_qty * after.quote_qty >= v2.base_qty * v2.quote_qty  # fees grow k


def test_concentration_lowers_slippage() -> None:
    """The same 10 base sold into a pool with the liquidity concentrated near the price slips
    less than into a constant-product pool of the same price and same reserves at the mid."""
    v2 = ConstantProductPool(1000.0, 3_000_000.0, 0.003)
    width = 2000  # about +-22 % around 3000
    centre = round(math.log(3000.0) / math.log(1.0001))
    # a v3 position holding the same reserves over a narrower range has a larger L
    sa, sb = math.sqrt(1.0001 ** (centre - width)), math.sqrt(1.0001 ** (centre + width))
    s = math.sqrt(3000.0)
    liquidity = 1000.0 / (1.0 / s - 1.0 / sb)
    v3 = ConcentratedPool.from_ranges([(centre - width, centre + width, liquidity)], 3000.0)
    sizes = np.array([10.0, 100.0])
    _, slip_v2 = sell_curve(v2, sizes)
    _, slip_v3 = sell_curve(v3, sizes)
    assert np.all(slip_v3 < slip_v2)
    assert v3.reserves()[0] == pytest.approx(1000.0, rel=1e-9)
    assert sa < s < sb
