"""LP positions: holdings against Uniswap v3-core's minted amounts, delta/gamma against finite
differences and the closed forms, short gamma, and LP collateral through the kernel.

Reference: v3-core (d8b1c635) test/__snapshots__/UniswapV3Pool.swaps.spec.ts.snap, 'medium fee,
1:1 price, additional liquidity around current price': amount0Before = amount1Before =
3994009290088178439 (three positions of L = 2e18 at price 1, TEST_POOLS in
test/UniswapV3Pool.swaps.spec.ts); whitepaper eqs. 6.29-6.30 for the real reserves.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossmargin.amm.lp import LPPosition, gamma_loss_usd
from crossmargin.book.io import book_from_data
from crossmargin.errors import InputError
from crossmargin.locations.timeline import account_figures
from tests.helpers import lp_book_data

LO, HI = -887220, 887220


def test_holdings_match_the_minted_snapshot_amounts() -> None:
    positions = [LPPosition(LO, HI, 2.0), LPPosition(LO, -60, 2.0), LPPosition(60, HI, 2.0)]
    base = sum(p.amounts(1.0)[0] for p in positions)
    quote = sum(p.amounts(1.0)[1] for p in positions)
    assert base == pytest.approx(3994009290088178439 / 1e18, rel=1e-12)
    assert quote == pytest.approx(3994009290088178439 / 1e18, rel=1e-12)


prices = st.floats(1500.0, 6000.0)


@settings(max_examples=50, deadline=None)
@given(price=prices)
def test_delta_and_gamma_are_the_derivatives(price: float) -> None:
    lp = LPPosition(76000, 84000, 1000.0)  # about 2,000 - 4,450 USDC per ETH
    h = price * 1e-5
    fd_delta = (lp.value(price + h) - lp.value(price - h)) / (2 * h)
    assert lp.delta(price) == pytest.approx(fd_delta, rel=1e-6, abs=1e-9)
    fd_gamma = (lp.delta(price + h) - lp.delta(price - h)) / (2 * h)
    assert lp.gamma(price) == pytest.approx(fd_gamma, rel=1e-4, abs=1e-12)
    assert lp.gamma(price) <= 0.0  # short gamma


@settings(max_examples=50, deadline=None)
@given(price=prices, move=st.floats(-0.5, 0.5))
def test_any_move_loses_against_the_delta_hedge(price: float, move: float) -> None:
    lp = LPPosition(76000, 84000, 1000.0)
    loss = gamma_loss_usd(lp, price, move)
    assert loss >= -1e-9 * lp.value(price)
    # below ~1e-5 the loss (~1e-10 USD) is smaller than the rounding of the values it differences
    if 1e-5 < abs(move) < 1e-3 and lp.gamma(price) < 0:
        assert loss == pytest.approx(-0.5 * lp.gamma(price) * (price * move) ** 2, rel=1e-2)


def test_out_of_range_is_one_token() -> None:
    lp = LPPosition(76000, 84000, 1000.0)
    assert lp.amounts(100.0)[1] == 0.0 and lp.gamma(100.0) == 0.0
    assert lp.amounts(1e6)[0] == 0.0
    with pytest.raises(InputError, match="tick_lower"):
        LPPosition(10, 10, 1.0)


def test_lp_collateral_through_the_kernel() -> None:
    data = lp_book_data()
    equity, _, maint = account_figures(book_from_data(data), "lp")
    x, y = LPPosition(76020, 84000, 1000.0).amounts(3000.0)
    assert equity == pytest.approx(x * 3000 + y - 20000)
    assert maint == pytest.approx((x * 3000 * 0.9 + y) * 0.8 - 20000)
    data["accounts"][0]["lp_positions"][0]["pool"] = "nope"
    with pytest.raises(InputError, match="not a concentrated pool"):
        book_from_data(data)
