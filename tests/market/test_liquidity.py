"""Order-book execution, the square-root impact law and its calibration."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from crossmargin.errors import InputError
from crossmargin.market.liquidity import OrderBook, SqrtImpact, calibrate_sqrt_impact
from tests.helpers import SHARED


def test_order_book_walks_levels_by_hand() -> None:
    book = OrderBook(
        bids=[(99.0, 1.0), (98.0, 2.0), (95.0, 5.0)], asks=[(101.0, 1.0), (103.0, 4.0)]
    )
    assert book.mid == 100.0
    sale = book.execute(2.5)  # 1 @ 99 + 1.5 @ 98
    assert sale.qty_filled == 2.5
    assert sale.average_price == pytest.approx((99.0 + 1.5 * 98.0) / 2.5)
    assert sale.slippage_frac == pytest.approx((100.0 - sale.average_price) / 100.0)
    assert sale.cost == pytest.approx(100.0 * 2.5 - (99.0 + 1.5 * 98.0))
    too_big = book.execute(10.0)  # only 8 bid
    assert too_big.qty_filled == 8.0 and too_big.unfilled_qty == 2.0
    buy = book.execute(-2.0)  # 1 @ 101 + 1 @ 103
    assert buy.average_price == 102.0 and buy.slippage_frac == pytest.approx(0.02)


@pytest.mark.parametrize(
    ("bids", "asks", "message"),
    [
        ([(99.0, 1.0), (100.0, 1.0)], [(101.0, 1.0)], "descending"),
        ([(99.0, -1.0)], [(101.0, 1.0)], "price > 0, qty > 0"),
        ([(102.0, 1.0)], [(101.0, 1.0)], "crosses"),
        ([(math.nan, 1.0)], [(101.0, 1.0)], "price > 0"),
    ],
)
def test_bad_books(
    bids: list[tuple[float, float]], asks: list[tuple[float, float]], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        OrderBook(bids, asks)


def test_sqrt_impact_formula() -> None:
    model = SqrtImpact(k=0.8, sigma_daily=0.05, daily_volume_qty=1e6, spread_frac=0.0004)
    # 10,000 units = 1 % of daily volume: 0.0002 + 0.8 * 0.05 * 0.1
    assert model.slippage_frac(1e4) == pytest.approx(0.0002 + 0.004)
    assert model.slippage_frac(-4e4) == pytest.approx(0.0002 + 0.008)  # sqrt: 4x size, 2x cost
    fill = model.execute(2e5, reference_price=2000.0, horizon_days=1.0)
    assert fill.qty_filled == 1e5  # capped at 10 % participation of one day
    assert fill.average_price == pytest.approx(2000.0 * (1 - model.slippage_frac(1e5)))
    with pytest.raises(InputError, match="daily_volume_qty"):
        SqrtImpact(k=0.8, sigma_daily=0.05, daily_volume_qty=0.0)


def test_calibration_recovers_a_known_coefficient() -> None:
    rng = np.random.default_rng(11)
    n = 20_000
    sigma = 0.001
    flow = np.where(rng.random(n) < 0.3, rng.exponential(20.0, n) * rng.choice([-1, 1], n), 0.0)
    c_true = 0.05
    returns = c_true * sigma * np.sign(flow) * np.sqrt(np.abs(flow)) + rng.normal(0, sigma, n)
    mid = 1000.0 * np.exp(np.concatenate([[0.0], np.cumsum(returns)]))
    minutes = pd.DataFrame(
        {
            "mid": mid,
            "liq_short_qty": np.concatenate([[0.0], np.maximum(flow, 0)]),
            "liq_long_qty": np.concatenate([[0.0], np.maximum(-flow, 0)]),
        }
    )
    fit = calibrate_sqrt_impact(minutes)
    assert fit.c == pytest.approx(c_true, rel=0.1)
    assert fit.t_stat > 10


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is absent")
def test_calibration_on_binance_eth_january_2021() -> None:
    """Forced flow and the mid move together, strongly (the fit is contemporaneous: part of it
    is prices causing liquidations, not only liquidations moving prices; docs/methodology.md)."""
    from crossmargin.market.loaders import load_binance_liquidations

    minutes = load_binance_liquidations(SHARED / "binance_ethusdt_1min_liquidations_2021-01.csv")
    fit = calibrate_sqrt_impact(minutes)
    assert fit.c > 0 and fit.t_stat > 20
    assert 0.05 < fit.r_squared < 0.9
    assert fit.n_flow_minutes > 5_000
