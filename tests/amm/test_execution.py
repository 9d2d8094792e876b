"""The AMM as a depth source: the execution-model contract of the liquidation engine and the
liquidity term of the dynamic haircuts (haircuts/dynamic.py: asset weight = 1 - price risk -
liquidity, liquidity = slippage of liquidating the position)."""

from __future__ import annotations

import numpy as np
import pytest

from crossmargin.amm.execution import AmmExecution, AmmImpact
from crossmargin.amm.pools import ConcentratedPool, ConstantProductPool
from crossmargin.haircuts.dynamic import recommend_weights


def test_fill_is_the_v2_curve_and_cumulative() -> None:
    pool = ConstantProductPool(100.0, 300_000.0, 0.003)
    execution = AmmExecution({"ETH": pool})
    qty = np.array([1.0, 5.0, -2.0, 0.0])
    filled, price = execution.fill("ETH", qty, np.full(4, 3000.0))
    assert filled[:3] == pytest.approx(qty[:3])
    # Uniswap v2 getAmountOut for 1 ETH: 1 x 0.997 x 300,000 / (100 + 0.997)
    assert price[0] == pytest.approx(0.997 * 300_000 / 100.997, rel=1e-12)
    assert price[2] > 3000.0 > price[1] and price[3] == 3000.0
    # symbols without a pool go to the inner model (oracle transfer)
    other, px = execution.fill("BTC", np.array([1.0]), np.array([60_000.0]))
    assert (other[0], px[0]) == (1.0, 60_000.0)


def test_out_of_range_sale_is_partial() -> None:
    pool = ConcentratedPool.from_ranges([(-600, 600, 100.0)], 1.0)
    filled, _ = AmmExecution({"X": pool}).fill("X", np.array([1e6]), np.array([1.0]))
    assert 0.0 < filled[0] < 1e6


def test_pool_slippage_lowers_the_dynamic_weight() -> None:
    pool = ConstantProductPool(1000.0, 3_000_000.0, 0.003)
    impact = AmmImpact(pool)
    small, large = impact.slippage_frac(1.0), impact.slippage_frac(200.0)
    assert 0.003 < small < large < 1.0
    assert np.allclose(impact.slippage_frac(np.array([1.0, 200.0])), [small, large])
    thin = recommend_weights("ETH", 0.6, position_qty=200.0, impact=impact)  # type: ignore[arg-type]
    none = recommend_weights("ETH", 0.6, position_qty=200.0)
    assert thin.weights.maint_asset_weight < none.weights.maint_asset_weight
