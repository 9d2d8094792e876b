"""Dynamic haircuts: price risk by hand, Mango/Drift size scaling anchors, bounds and steps."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossmargin.errors import InputError
from crossmargin.haircuts.dynamic import (
    DynamicHaircutConfig,
    Weights,
    price_risk,
    recommend_weights,
    scaled_init_asset_weight,
    scaled_init_liab_weight,
)
from crossmargin.market.liquidity import SqrtImpact


def test_price_risk_by_hand() -> None:
    """80 % annual volatility, 1 day, 99 %: z = 2.326348, move = z * 0.8 * sqrt(1/365)."""
    down, up = price_risk(0.8, 1.0, 0.99)
    move = 2.3263478740408408 * 0.8 * math.sqrt(1 / 365)
    assert down == pytest.approx(1 - math.exp(-move), rel=1e-12)
    assert up == pytest.approx(math.exp(move) - 1, rel=1e-12)


def test_weights_from_volatility_and_liquidity() -> None:
    impact = SqrtImpact(k=1.0, sigma_daily=0.04, daily_volume_qty=1e6)
    rec = recommend_weights("ETH", 0.8, position_qty=1e4, impact=impact)
    liquidity = 1.0 * 0.04 * math.sqrt(1e4 / 1e6)
    assert rec.liquidity_frac == pytest.approx(liquidity)
    assert rec.weights.maint_asset_weight == pytest.approx(
        1 - rec.maint_price_risk_down - liquidity
    )
    assert rec.weights.maint_liab_weight == pytest.approx(1 + rec.maint_price_risk_up + liquidity)
    assert rec.weights.init_asset_weight < rec.weights.maint_asset_weight
    assert rec.weights.init_liab_weight > rec.weights.maint_liab_weight
    assert rec.binding == ()


def test_mango_deposit_and_borrow_scaling_mv1_cases_10_11() -> None:
    """blockworks-foundation/mango-v4 health/cache.rs test_health1 cases 10 and 11 (anchor MV-1):
    tokens of price 1/5/10 with init weights 0.8/0.5/0.5 (liab 1.2/1.5/1.5), deposits (borrows)
    100/1500/10000 tokens and weight-scale starts 1000/5000/10000 USD."""
    prices, iaw, ilw = (1.0, 5.0, 10.0), (0.8, 0.5, 0.5), (1.2, 1.5, 1.5)
    bank_tokens, start = (100.0, 1500.0, 10000.0), (1000.0, 5000.0, 10000.0)
    health = sum(
        100.0 * p * scaled_init_asset_weight(w, b * p, s)
        for p, w, b, s in zip(prices, iaw, bank_tokens, start, strict=True)
    )
    assert health == pytest.approx(296.6666666667, rel=1e-10)
    health = -sum(
        100.0 * p * scaled_init_liab_weight(w, b * p, s)
        for p, w, b, s in zip(prices, ilw, bank_tokens, start, strict=True)
    )
    assert health == pytest.approx(-16245.0, rel=1e-12)


@pytest.mark.parametrize(
    ("tokens", "expected"), [(1, 9000), (20_000, 9000), (40_000, 4500), (60_000, 3000)]
)
def test_drift_scale_initial_asset_weight_dv2(tokens: float, expected: int) -> None:
    """drift-labs/protocol-v2 math/margin/tests.rs spot_market_scale_initial_asset_weight
    (anchor DV-2): iaw 9000 (1e4 precision), start $500,000, price $25."""
    weight = scaled_init_asset_weight(0.9, tokens * 25.0, 500_000.0)
    assert round(weight * 1e4) == expected


def test_floors_caps_and_step_limit() -> None:
    cfg = DynamicHaircutConfig(asset_weight_floor=0.1, max_step_frac=0.05)
    wild = recommend_weights("MEME", 30.0, cfg)  # 3000 % vol: a 1-day 99 % fall of 97 %
    assert wild.weights.maint_asset_weight == 0.1 and wild.weights.init_asset_weight == 0.1
    assert any("floor" in b for b in wild.binding)
    assert wild.weights.maint_liab_weight == cfg.liab_weight_cap
    previous = Weights(0.8, 0.9, 1.2, 1.1)
    stepped = recommend_weights("ETH", 2.0, cfg, previous=previous)
    assert stepped.weights.maint_asset_weight == pytest.approx(0.9 * 0.95)
    assert stepped.weights.init_asset_weight == pytest.approx(0.8 * 0.95)
    assert any("step limit" in b for b in stepped.binding)


def test_bad_config_and_volatility() -> None:
    with pytest.raises(InputError, match="asset_weight_floor"):
        DynamicHaircutConfig(asset_weight_floor=0.9, asset_weight_cap=0.5)
    with pytest.raises(InputError, match="volatility_annual"):
        recommend_weights("ETH", math.nan)


weights_strategy = st.builds(
    Weights,
    st.floats(0.0, 1.0),
    st.floats(0.0, 1.0),
    st.floats(1.0, 6.0),
    st.floats(1.0, 6.0),
)


@settings(max_examples=300, deadline=None)
@given(
    vol=st.floats(0.0, 20.0),
    qty=st.floats(0.0, 1e9),
    deposits=st.floats(0.0, 1e10),
    previous=st.none() | weights_strategy,
)
def test_weights_never_leave_floor_and_cap(
    vol: float, qty: float, deposits: float, previous: Weights | None
) -> None:
    cfg = DynamicHaircutConfig(asset_weight_floor=0.05, deposit_scale_start_usd=1e6)
    impact = SqrtImpact(k=1.0, sigma_daily=0.05, daily_volume_qty=1e6)
    w = recommend_weights(
        "X", vol, cfg, position_qty=qty, impact=impact, deposits_usd=deposits, previous=previous
    ).weights
    for value in (w.init_asset_weight, w.maint_asset_weight):
        assert cfg.asset_weight_floor <= value <= cfg.asset_weight_cap
    for value in (w.init_liab_weight, w.maint_liab_weight):
        assert cfg.liab_weight_floor <= value <= cfg.liab_weight_cap
    assert w.init_asset_weight <= w.maint_asset_weight
    assert w.init_liab_weight >= w.maint_liab_weight
