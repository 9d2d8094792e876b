"""Portfolio margin against published numbers and hand-computed formulas.

Each test cites its source. Numbers from other systems are written here as literals; nothing is
read from outside the repository at run time (the Derive reference cases are in
``test_derive_pm2_cases.py``).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
import yaml

from crossmargin.portfolio import (
    PortfolioSpec,
    deribit_profile,
    derive_pm2_profile,
    generic_profile,
    get_profile,
    portfolio_from_arrays,
    portfolio_margin,
)
from crossmargin.portfolio.engine import naked_short_qty
from crossmargin.portfolio.grid import skew_multiplier, static_discounts, vol_shock_multipliers
from crossmargin.portfolio.profiles import extended_scenarios
from crossmargin.pricing import black76


def spec(**sections: Any) -> PortfolioSpec:
    data: dict[str, Any] = {"underlyings": {"ETH": {"spot_usd": 3000.0}}}
    data.update(sections)
    return PortfolioSpec.from_data(data)


# ---- grids and shock formulas ---------------------------------------------------------------


def test_derive_grid_is_the_published_table() -> None:
    """docs.derive.xyz "Portfolio Margin Parameters [New]": 23 regular scenarios (+18 % up;
    +13.5 .. -13.5 % in 4.5 % steps with up / static / down; -18 % up) and 8 tail scenarios
    with vol up and dampening 0.21, 0.42, 0.27, 0.13, 0.069, 0.046, 0.034, 0.027."""
    grid = derive_pm2_profile().grid("ETH")
    regular = [
        (round((m - 1) * 100, 6), int(v))
        for m, v, k in zip(grid.spot_mult, grid.vol_state, grid.kind, strict=True)
        if k == "regular"
    ]
    up, none, down = 1, 0, 2
    expected = [(18.0, up)]
    for move in (13.5, 9.0, 4.5, 0.0, -4.5, -9.0, -13.5):
        expected += [(move, up), (move, none), (move, down)]
    expected += [(-18.0, up)]
    assert regular == expected
    tails = [
        (round((m - 1) * 100, 6), d)
        for m, d, k in zip(grid.spot_mult, grid.dampening, grid.kind, strict=True)
        if k == "tail"
    ]
    assert tails == [
        (-66.0, 0.21),
        (-33.0, 0.42),
        (50.0, 0.27),
        (100.0, 0.13),
        (200.0, 0.069),
        (300.0, 0.046),
        (400.0, 0.034),
        (500.0, 0.027),
    ]
    assert [k for k in grid.kind if k == "skew"] == ["skew", "skew"]


def test_extended_weights_are_range_over_move() -> None:
    """Paradex's published tail weights equal 0.16/|shock| (anchors.md 3.4: -66 % -> 24 %,
    -33 % -> 48 %, +50 % -> 32 %, +100 % -> 16 %, +200 % -> 8 %, +300 % -> 5.33 %,
    +400 % -> 4 %, +500 % -> 3.20 %; the table rounds to whole percents, 0.16/0.66 = 24.2 %)."""
    got = [s.dampening for s in extended_scenarios((-0.66, -0.33, 0.5, 1, 2, 3, 4, 5), 0.16)]
    published_pct = [24, 48, 32, 16, 8, 5.33, 4, 3.20]
    assert [
        round(g * 100, 2 if p % 1 else 0) for g, p in zip(got, published_pct, strict=True)
    ] == published_pct


def test_deribit_grid_buckets() -> None:
    """support.deribit.com "Portfolio Margin": +-16 % (BTC) in 9 evenly spaced buckets, each
    with vol up / same / down, then the extended table (8 moves, vol up only)."""
    profile = deribit_profile()
    for name, price_range in (("BTC", 0.16), ("ETH", 0.18)):
        grid = profile.grid(name)
        moves = sorted(
            {
                round(m - 1.0, 9)
                for m, k in zip(grid.spot_mult, grid.kind, strict=True)
                if k == "regular"
            }
        )
        assert moves == pytest.approx([price_range * j / 4 for j in range(-4, 5)])
        assert sum(k == "regular" for k in grid.kind) == 27
        assert sum(k == "tail" for k in grid.kind) == 8


def test_vol_shock_example_from_deribit_docs() -> None:
    """deribit.com/pages/docs/portfoliomargin: "maximum implied volatility change of
    (30/days to expiration)^0.30*38.00%. Example: options expiring in 30 days: IV change of
    maximum 38.00%, options expiring in 15 days: IV change of maximum (30/15)^0.30*38.00%"."""
    t = np.array([30.0, 15.0]) / 365.0
    up, down = vol_shock_multipliers(t, 0.38, 0.38, 0.3, 0.13, 1.0)
    assert up == pytest.approx([1.38, 1.0 + 0.38 * 2.0**0.3], rel=1e-14)
    assert down == pytest.approx([0.62, 1.0 - 0.38 * 2.0**0.3], rel=1e-14)


def test_vol_shock_long_term_power_and_floor() -> None:
    """Derive PMRMLib_2._addVolShocks: long-term power beyond 30 days; DTE floored; down >= 0."""
    t = np.array([60.0, 0.25, 1.0]) / 365.0
    up, down = vol_shock_multipliers(t, 0.5, 2.0, 0.3, 0.13, 1.0)
    assert up[0] == pytest.approx(1.0 + 0.5 * 0.5**0.13, rel=1e-14)
    assert up[1] == up[2] == pytest.approx(1.0 + 0.5 * 30.0**0.3, rel=1e-14)
    assert down[1] == 0.0


def test_skew_multiplier_piecewise() -> None:
    """Derive _getExpirySkewedShockedMTM: 1 + min(c, k c/k*) for k >= 0, 1 + max(-c, k c/k*)."""
    cap, k_star = np.array([0.2]), np.array([0.5])
    k = np.array([-1.0, -0.25, 0.0, 0.25, 1.0])
    assert skew_multiplier(k, cap, k_star) == pytest.approx([0.8, 0.9, 1.0, 1.1, 1.2])


def test_static_discount_formula() -> None:
    """Derive _addStaticDiscount: b+ exp(-T(r a+ + c+)) and min(1/D, b- / exp(-T(r a- + c-)))."""
    t, r = np.array([0.5]), np.array([0.1])
    df = np.exp(-r * t)
    pos, neg = static_discounts(t, r, df, 0.95, 1.0, 0.08, 1.04, 0.5, 0.08)
    assert pos[0] == pytest.approx(0.95 * math.exp(-0.5 * (0.1 + 0.08)), rel=1e-15)
    assert neg[0] == pytest.approx(min(1 / df[0], 1.04 * math.exp(0.5 * (0.05 + 0.08))), rel=1e-15)


# ---- contingencies ----------------------------------------------------------------------------


def test_naked_short_per_strike_example_from_deribit_docs() -> None:
    """deribit.com/pages/docs/portfoliomargin: "you have a position in strike X, call +10 and
    put -20, your net short position on strike X is -10"; Derive's _addOptionContingency nets
    a call and a put at the same strike the same way."""
    p = spec(
        expiries={"E": {"underlying": "ETH", "t_yrs": 0.1, "forward_usd": 3000.0}},
        options=[
            {"expiry": "E", "strike_usd": 3200, "option_type": "call", "qty": 10, "vol": 0.6},
            {"expiry": "E", "strike_usd": 3200, "option_type": "put", "qty": -20, "vol": 0.6},
            {"expiry": "E", "strike_usd": 2500, "option_type": "put", "qty": -3, "vol": 0.7},
            {"expiry": "E", "strike_usd": 4000, "option_type": "call", "qty": 5, "vol": 0.7},
        ],
    ).to_portfolio()
    assert naked_short_qty(p).tolist() == [13.0]


def test_derive_margin_formula_on_a_perp() -> None:
    """docs.derive.xyz/docs/pm2: Margin = MtM + factor x maxLoss + contingencies (losses
    negative), factor 0.8 (MM) / 1.0 (IM); mainnet parameters (v2-core config-mainnet.sol
    getPMRM2Params): perp contingency 3 % (MM) + 1 % (IM) of |perp| x spot.

    A long perp of 2 at mark 3001 loses most at -18 % (-0.18 x 2 x 3001 = -1080.36); the tails
    lose less (-66 % x 0.21 = -13.86 %, -33 % x 0.42 = -13.86 %)."""
    p = spec(
        cash_usd=10_000.0,
        perps=[{"underlying": "ETH", "qty": 2, "mark_usd": 3001, "value_usd": 50}],
    )
    result = portfolio_margin(p.to_portfolio(), derive_pm2_profile())
    loss = 0.18 * 2 * 3001
    assert result.loss_usd == pytest.approx(loss, rel=1e-14)
    risk = result.underlyings[0]
    assert risk.worst_label == "spot -18%, vol up"
    mtm = 10_000.0 + 50.0
    assert result.maint.margin_usd == pytest.approx(mtm - 0.8 * loss - 0.03 * 2 * 3000, rel=1e-14)
    assert result.initial.margin_usd == pytest.approx(
        mtm - 1.0 * loss - (0.03 + 0.01) * 2 * 3000, rel=1e-14
    )


def test_depeg_raises_the_im_loss_factor() -> None:
    """Derive getMarginAndMarkToMarket: IM factor += (threshold - stable) x pegLossFactor."""
    p = spec(
        cash_usd=0.0,
        stable_price_usd=0.95,
        perps=[{"underlying": "ETH", "qty": -1, "mark_usd": 3000}],
    )
    result = portfolio_margin(p.to_portfolio(), derive_pm2_profile())
    assert result.initial.loss_factor == pytest.approx(1.0 + (0.99 - 0.95) * 4.0)
    assert result.maint.loss_factor == 0.8


def test_confidence_contingency() -> None:
    """Derive _getConfidenceContingency: (1 - c) x confMargin x notional when c < 0.55."""
    p = spec(
        underlyings={"ETH": {"spot_usd": 3000.0, "confidence": 0.5}},
        perps=[{"underlying": "ETH", "qty": 1, "mark_usd": 3000}],
        collaterals=[{"name": "BTC", "amount": 1, "price_usd": 60_000, "confidence": 0.4}],
    )
    result = portfolio_margin(p.to_portfolio(), derive_pm2_profile())
    assert result.initial.contingencies.confidence_usd == pytest.approx(0.5 * 3000 + 0.6 * 60_000)
    assert result.maint.contingencies.confidence_usd == 0.0


# ---- Deribit: coin-settled PnL ------------------------------------------------------------------

#: docs.deribit.com private/pme/simulate, example response, initial_risk_vectors.BTC-PERPETUAL
#: "standard" (BTC, price_range 0.16, buckets_count 4, 3 vol scenarios per bucket): one value
#: per bucket from -16 % upwards (the +12 % and +16 % entries are cut off in the page).
DERIBIT_PERP_VECTOR = {
    -0.16: -0.05991206933333334,
    -0.12: -0.04289159509090909,
    -0.08: -0.027351162086956524,
    -0.04: -0.013105765166666668,
    0.0: 0.0,
    0.04: 0.012097629384615385,
}


def test_deribit_perp_pnl_in_coin_is_q_m_over_1_plus_m() -> None:
    """A perp's PnL in BTC is Q x m/(1+m); the published vector implies Q = 0.31453836... BTC
    (from its -16 % entry) and every other entry must follow."""
    q = -DERIBIT_PERP_VECTOR[-0.16] * 0.84 / 0.16
    spot = 65_000.0
    p = PortfolioSpec.from_data(
        {
            "underlyings": {"BTC": {"spot_usd": spot}},
            "perps": [{"underlying": "BTC", "qty": q, "mark_usd": spot}],
        }
    ).to_portfolio()
    risk = portfolio_margin(p, deribit_profile()).underlyings[0]
    for move, expected in DERIBIT_PERP_VECTOR.items():
        (rows,) = np.nonzero(
            np.isclose(risk.grid.spot_mult, 1.0 + move) & (risk.grid.dampening == 1.0)
        )
        assert len(rows) == 3  # vol up, same, down
        coin_pnl = risk.perp_pnl_usd[rows] / spot
        assert coin_pnl == pytest.approx([expected] * 3, rel=1e-12, abs=1e-15)


def test_coin_collateral_has_no_coin_pnl_and_options_are_measured_in_coin() -> None:
    """Coin settlement: a post-shock value V' counts V'/m in today's USD (value / spot in coin)."""
    data = {
        "underlyings": {"BTC": {"spot_usd": 60_000.0}},
        "expiries": {"E": {"underlying": "BTC", "t_yrs": 0.1, "forward_usd": 60_000.0}},
        "options": [
            {"expiry": "E", "strike_usd": 70_000, "option_type": "call", "qty": -1, "vol": 0.6}
        ],
        "collaterals": [{"name": "BTC", "amount": 2, "price_usd": 60_000, "shocked_with": "BTC"}],
    }
    p = PortfolioSpec.from_data(data).to_portfolio()
    risk = portfolio_margin(p, deribit_profile()).underlyings[0]
    assert np.all(risk.collateral_pnl_usd == 0.0)
    i = int(np.flatnonzero((risk.grid.spot_mult == 1.12) & (risk.grid.vol_state == 0))[0])
    v0 = -black76(60_000.0, 70_000.0, 0.6, 0.1).price
    v1 = -black76(60_000.0 * 1.12, 70_000.0, 0.6, 0.1).price
    assert risk.option_pnl_usd[i] == pytest.approx(v1 / 1.12 - v0, rel=1e-12)


# ---- the engine against the pricer, aggregation, output ------------------------------------------


def test_option_mtm_is_the_pricers_value() -> None:
    """One pricing implementation: the kernel's mark values are crossmargin.pricing.black76's."""
    rng = np.random.default_rng(1)
    n = 50
    t = np.array([0.02, 0.3, 1.1])
    fwd = np.array([2950.0, 3020.0, 3150.0])
    expiry = rng.integers(0, 3, n)
    strike = rng.uniform(1500, 6000, n)
    vol = rng.uniform(0.3, 1.5, n)
    is_call = rng.random(n) < 0.5
    qty = rng.normal(0, 5, n)
    rate = np.array([0.0, 0.05, 0.08])
    p = portfolio_from_arrays(
        underlying_names=["ETH"],
        spot_usd=[3000.0],
        expiry_underlying=[0, 0, 0],
        expiry_t_yrs=t,
        expiry_fwd_usd=fwd,
        expiry_rate=rate,
        option_expiry=expiry,
        option_strike_usd=strike,
        option_is_call=is_call,
        option_qty=qty,
        option_vol=vol,
    )
    result = portfolio_margin(p, generic_profile())
    prices = black76(fwd[expiry], strike, vol, t[expiry], np.exp(-rate * t)[expiry], is_call).price
    assert result.option_mtm_usd == pytest.approx(float((qty * prices).sum()), rel=1e-12)


def _two_underlyings(profile_update: dict[str, Any]) -> tuple[float, float, float]:
    data = {
        "underlyings": {"BTC": {"spot_usd": 60_000.0}, "ETH": {"spot_usd": 3000.0}},
        "perps": [
            {"underlying": "BTC", "qty": 1, "mark_usd": 60_000},
            {"underlying": "ETH", "qty": -10, "mark_usd": 3000},
        ],
    }
    p = PortfolioSpec.from_data(data).to_portfolio()
    profile = generic_profile().model_copy(update=profile_update)
    result = portfolio_margin(p, profile)
    btc, eth = (r.loss_usd for r in result.underlyings)
    return btc, eth, result.loss_usd


def test_aggregation_sum_and_correlation() -> None:
    """Sum of worst losses by default; sqrt(L' C L) with a correlation matrix (pairs missing
    from the matrix count as perfectly correlated, so an empty matrix equals the sum)."""
    btc, eth, total = _two_underlyings({})
    assert btc == pytest.approx(0.15 * 60_000) and eth == pytest.approx(0.15 * 30_000)
    assert total == pytest.approx(btc + eth)
    _, _, full = _two_underlyings({"aggregation": "correlation"})
    assert full == pytest.approx(btc + eth)
    rho = 0.6
    _, _, partial = _two_underlyings(
        {"aggregation": "correlation", "correlation": {"BTC": {"ETH": rho}}}
    )
    assert partial == pytest.approx(math.sqrt(btc**2 + eth**2 + 2 * rho * btc * eth))


def test_result_is_plain_data() -> None:
    """to_dict() is JSON- and YAML-serializable and names the worst scenario."""
    p = spec(
        expiries={"E": {"underlying": "ETH", "t_yrs": 0.05, "forward_usd": 3005.0}},
        options=[{"expiry": "E", "strike_usd": 3300, "option_type": "call", "qty": -4, "vol": 0.7}],
        perps=[{"underlying": "ETH", "qty": 1, "mark_usd": 3001}],
    )
    for name in ("derive-pm2", "deribit", "generic"):
        data = portfolio_margin(p.to_portfolio(), get_profile(name)).to_dict()
        assert json.loads(json.dumps(data)) == data
        assert yaml.safe_load(yaml.safe_dump(data)) == data
        assert data["underlyings"][0]["worst_scenario"]
        assert data["maint"]["requirement_usd"] <= data["initial"]["requirement_usd"]
