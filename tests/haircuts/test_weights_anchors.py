"""Weight, collateral-tier and bracket functions against numbers published by other systems.

Each test cites its anchor: a repository and test (or file), or a document URL. The numbers are
written here as literals; nothing is read from outside the repository at run time.

Conventions used to compare against integer fixed-point code:

* Drift v2 weights are integers in 1e4 precision (``SPOT_WEIGHT_PRECISION``) and its imf factors
  are integers in 1e6 precision (``SPOT_IMF_PRECISION``). Our functions are real-valued, so a Drift
  integer ``n`` corresponds to ``floor(weight * 1e4) == n`` with ``imf = imf_int / 1e6`` and
  ``size`` the token quantity (Drift passes the size in 1e9 precision and takes ``isqrt(size*10)``
  against a 1e5 divisor, which is ``sqrt(tokens)`` in real terms).
* Binance brackets and tiers are in the quote currency (USDT for USDT-M, BTC for COIN-M); the
  functions are unit-agnostic.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import crossmargin as cm
from crossmargin.book import book_from_data
from crossmargin.haircuts import (
    bracket_cums,
    bracket_requirement,
    size_discounted_asset_weight,
    size_premium_liab_weight,
    tiered_value,
)
from tests.helpers import BTCUSDT_CUM, BTCUSDT_FLOOR, BTCUSDT_MMR, DRIFT_DV3_PNL_WEIGHTS, asset


def drift_weight_int(weight: float) -> int:
    """A real weight as Drift's integer in 1e4 precision (Drift divides with floor)."""
    return math.floor(weight * 1e4)


# ---------------------------------------------------------------------------------------------
# Drift v2 DV-1: drift-labs/protocol-v2 programs/drift/src/math/margin/tests.rs
#   ::spot_market_asset_weight
# Market 1: init asset weight 9000, init liab weight 11000 (1e4 precision), 1000 tokens at $1.
# Market 2: iaw 1500, maw 7500, ilw 15000, mlw 12500; 100,000 tokens at $0.5.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("imf_int", "tokens", "expected_aw", "expected_lw"),
    [
        (0, 1000.0, 9000, 11000),  # imf 0: base weights
        (10, 1000.0, 9000, 11000),  # imf 10: too small to bind at 1000 tokens
        (10_000, 1000.0, 8357, 11962),  # imf 10_000: both bind
        (100_000, 1000.0, 2642, 40422),  # imf SPOT_IMF_PRECISION / 10
    ],
)
def test_drift_dv1_spot_market_init_weights(
    imf_int: int, tokens: float, expected_aw: int, expected_lw: int
) -> None:
    """drift-labs/protocol-v2 programs/drift/src/math/margin/tests.rs::spot_market_asset_weight,
    market 1 (iaw 9000, ilw 11000, 1000 tokens): Init asset and liability weights."""
    imf = imf_int / 1e6
    assert drift_weight_int(size_discounted_asset_weight(0.9, imf, tokens)) == expected_aw
    assert drift_weight_int(size_premium_liab_weight(1.1, imf, tokens)) == expected_lw


def test_drift_dv1_small_imf_binds_at_a_million_times_the_size() -> None:
    """Same Drift test: imf 10 with the size multiplied by 1e6 (1e9 tokens) gives aw 8357."""
    assert drift_weight_int(size_discounted_asset_weight(0.9, 10 / 1e6, 1000.0 * 1e6)) == 8357


def test_drift_dv1_maint_liab_weight_with_zero_default() -> None:
    """Same Drift test: the market's maint liability weight is left at its default 0, and with
    imf 100_000 the Maintenance liability weight is 31622 (= 0.8*0 + 0.1*sqrt(1000)).

    Our books require liability weights >= 1, so the function is called directly with w = 0."""
    lw = size_premium_liab_weight(0.0, 100_000 / 1e6, 1000.0)
    assert drift_weight_int(lw) == 31622
    assert lw == pytest.approx(0.1 * math.sqrt(1000.0), rel=1e-12)


@pytest.mark.parametrize(
    ("label", "weight", "base_int"),
    [("Init", 0.15, 1500), ("Fill", 0.45, 4500), ("Maint", 0.75, 7500)],
)
def test_drift_dv1_market2_all_levels_collapse_to_337(
    label: str, weight: float, base_int: int
) -> None:
    """Same Drift test, market 2 (iaw 1500, maw 7500; Fill is their average 4500), 100,000
    tokens at $0.5: imf 0 leaves 1500 / 4500 / 7500; imf 100_000 gives 337 at every level (the
    size discount binds; the price does not enter the asset weight)."""
    assert drift_weight_int(size_discounted_asset_weight(weight, 0.0, 100_000.0)) == base_int
    assert drift_weight_int(size_discounted_asset_weight(weight, 0.1, 100_000.0)) == 337, label


def test_drift_dv1_size_discount_flows_through_the_kernel() -> None:
    """DV-1 market 1 with imf 10_000 (0.01): a deposit of 1000 tokens at $1 is weighted 0.8357..
    and a borrow of 1000 tokens 1.1962.. at Init (drift-labs/protocol-v2
    programs/drift/src/math/margin/tests.rs::spot_market_asset_weight)."""
    book = book_from_data(
        {
            "assets": {
                "USDC": asset(1.0),
                "TKN": asset(1.0, 0.9, 0.95, 1.1, 1.05, imf_factor=0.01),
            },
            "accounts": [
                {"id": "deposit", "balances": {"TKN": 1000.0}},
                {"id": "borrow", "balances": {"TKN": -1000.0, "USDC": 5000.0}},
            ],
        }
    )
    deposit, borrow = cm.margin(book)
    aw = 1.1 / (1.0 + 0.01 * math.sqrt(1000.0))
    lw = 0.8 * 1.1 + 0.01 * math.sqrt(1000.0)
    assert deposit.init.weighted_assets_usd == pytest.approx(1000.0 * aw, rel=1e-12)
    assert drift_weight_int(deposit.init.weighted_assets_usd / 1000.0) == 8357
    assert borrow.init.weighted_liabilities_usd == pytest.approx(1000.0 * lw, rel=1e-12)
    assert drift_weight_int(borrow.init.weighted_liabilities_usd / 1000.0) == 11962


# ---------------------------------------------------------------------------------------------
# Drift v2 DV-3: programs/drift/src/math/margin/tests.rs::calculate_user_equity_value_tests
# unrealized_pnl_imf_factor 1000 (0.001), unrealized_pnl_initial_asset_weight 10000 (1.0); the
# PnL "size" is the PnL in dollars (Drift scales quote 1e6 by 1000 to the 1e9 size precision).
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("pnl_usd", "expected"), DRIFT_DV3_PNL_WEIGHTS)
def test_drift_dv3_unrealized_pnl_initial_weight(pnl_usd: float, expected: int) -> None:
    """drift-labs/protocol-v2 programs/drift/src/math/margin/tests.rs
    ::calculate_user_equity_value_tests: get_unrealized_asset_weight(upnl, Initial)."""
    assert drift_weight_int(size_discounted_asset_weight(1.0, 1000 / 1e6, pnl_usd)) == expected


# ---------------------------------------------------------------------------------------------
# Binance tiered collateral ("Cross Margin collateral haircuts", Example 1 and Example 2):
# https://www.binance.com/en-BH/support/faq/binance-cross-margin-collateral-haircuts-4bec9126c021472285b20874f9380dfb
# ---------------------------------------------------------------------------------------------

BTC_TIER_ABOVE = [100e6, 120e6, 150e6, 180e6]
BTC_TIER_FACTOR = [0.975, 0.95, 0.90, 0.85]


def test_binance_tiered_collateral_example_1() -> None:
    """Binance FAQ 4bec9126c021472285b20874f9380dfb, Example 1: 6,000 BTC at 20,000 USDT
    (120,000,000 notional) with BTC tiers 100 % to 100M, 97.5 % 100M-120M, ... counts
    100,000,000 x 100 % + 20,000,000 x 97.5 % = 119,500,000 USDT."""
    value = tiered_value(6000 * 20_000.0, BTC_TIER_ABOVE, BTC_TIER_FACTOR, 4)
    assert value == pytest.approx(119_500_000.0, rel=1e-12)


@pytest.mark.parametrize(
    ("notional", "expected"),
    [
        (50e6, 50e6),  # inside the first tier: all counted
        (100e6, 100e6),  # exactly at the first edge
        # derived with the FAQ's progressive rule: 100M + 20M*0.975 + 30M*0.95 + 10M*0.9
        (160e6, 100e6 + 19.5e6 + 28.5e6 + 9e6),
        # above the table's last edge (200M) the last listed factor 85 % continues
        (200e6, 100e6 + 19.5e6 + 28.5e6 + 27e6 + 17e6),
    ],
)
def test_binance_tiered_collateral_is_progressive(notional: float, expected: float) -> None:
    """Binance FAQ 4bec9126c021472285b20874f9380dfb: the tier ratio is marginal (like tax
    brackets), so each slice counts at its own ratio (values derived from the BTC tier table)."""
    assert tiered_value(notional, BTC_TIER_ABOVE, BTC_TIER_FACTOR, 4) == pytest.approx(
        expected, rel=1e-12
    )


def test_binance_tiered_collateral_example_2_token_x() -> None:
    """Binance FAQ 4bec9126c021472285b20874f9380dfb, Example 2 "Token X" tiers: 100 % to 500k,
    90 % 500k-1M, 80 % 1M-2M, 60 % 2M-4M, 30 % 4M-7M, 10 % above 7M. For 10,000,000 the
    progressive sum (derived) is 500k + 450k + 800k + 1.2M + 900k + 300k = 4,150,000."""
    above = [0.5e6, 1e6, 2e6, 4e6, 7e6]
    factor = [0.9, 0.8, 0.6, 0.3, 0.1]
    assert tiered_value(10e6, above, factor, 5) == pytest.approx(4_150_000.0, rel=1e-12)


def test_binance_tiered_collateral_through_the_kernel() -> None:
    """Binance FAQ 4bec9126c021472285b20874f9380dfb, Example 1 through the risk kernel: a
    6,000 BTC deposit at 20,000 with asset weight 1 and the BTC tiers counts 119,500,000 USD at
    both levels, while equity stays at the un-haircut 120,000,000."""
    book = book_from_data(
        {
            "assets": {
                "USDT": asset(1.0),
                "BTC": asset(
                    20_000.0,
                    collateral_tiers=[
                        {"above_usd": a, "factor": f}
                        for a, f in zip(BTC_TIER_ABOVE, BTC_TIER_FACTOR, strict=True)
                    ],
                ),
            },
            "accounts": [{"id": "whale", "balances": {"BTC": 6000.0}}],
        }
    )
    (report,) = cm.margin(book)
    assert report.init.weighted_assets_usd == pytest.approx(119_500_000.0, rel=1e-12)
    assert report.maint.weighted_assets_usd == pytest.approx(119_500_000.0, rel=1e-12)
    assert report.equity_usd == pytest.approx(120_000_000.0, rel=1e-12)


# ---------------------------------------------------------------------------------------------
# Binance margin tiers (maintenance amount "cum").
# BTCUSDT tiers announced 2021-03-18:
#   https://www.binance.com/tr/support/announcement/86cf9aa472574b8cb2e05bb751c2a9a6
# Maintenance amount recurrence and the COIN-M example:
#   https://www.binance.com/es/support/faq/ceccfcfb4e3a45e3b48b0b1bb1a8ae46
# USDT-M example "500,000 USDT -> maintenance amount 1,300 USDT":
#   https://binance.com/cn/support/faq/b3c689c1f50a44cabb3a84e663b81d93
# ---------------------------------------------------------------------------------------------


def test_binance_btcusdt_maintenance_amounts() -> None:
    """Binance BTCUSDT tiers of 2021-03-18 (announcement 86cf9aa472574b8cb2e05bb751c2a9a6):
    cum_n = floor_n*(MMR_n - MMR_n-1) + cum_n-1 gives 0, 50, 1,300, 16,300, ..., 100,016,300."""
    cums = bracket_cums(BTCUSDT_FLOOR, BTCUSDT_MMR)
    assert cums.shape == (10,)
    np.testing.assert_allclose(cums, BTCUSDT_CUM, rtol=1e-12, atol=1e-9)


def test_binance_usdt_m_500k_maintenance_margin() -> None:
    """Binance USDT-M FAQ b3c689c1f50a44cabb3a84e663b81d93: a 500,000 USDT BTCUSDT position has
    maintenance amount 1,300 USDT (MMR 1 %), so MM = 500,000 x 1 % - 1,300 = 3,700; and a
    264,000 USDT position is in the 1 % bracket (MM = 2,640 - 1,300 = 1,340)."""
    cums = bracket_cums(BTCUSDT_FLOOR, BTCUSDT_MMR)
    assert cums[2] == pytest.approx(1_300.0, rel=1e-12)
    mm = bracket_requirement(500_000.0, BTCUSDT_FLOOR, BTCUSDT_MMR, cums, 10)
    assert mm == pytest.approx(3_700.0, rel=1e-12)
    mm_264k = bracket_requirement(264_000.0, BTCUSDT_FLOOR, BTCUSDT_MMR, cums, 10)
    assert mm_264k == pytest.approx(264_000.0 * 0.01 - 1_300.0, rel=1e-12)


@pytest.mark.parametrize("k", range(1, 10))
def test_binance_bracket_requirement_is_continuous_at_every_edge(k: int) -> None:
    """Binance FAQ ceccfcfb4e3a45e3b48b0b1bb1a8ae46: with the maintenance amount defined by the
    recurrence, MM is continuous at every bracket floor of the BTCUSDT table."""
    cums = bracket_cums(BTCUSDT_FLOOR, BTCUSDT_MMR)
    floor = BTCUSDT_FLOOR[k]
    at = bracket_requirement(floor, BTCUSDT_FLOOR, BTCUSDT_MMR, cums, 10)
    below = bracket_requirement(floor * (1 - 1e-12), BTCUSDT_FLOOR, BTCUSDT_MMR, cums, 10)
    assert at == pytest.approx(floor * BTCUSDT_MMR[k] - BTCUSDT_CUM[k], rel=1e-12)
    assert below == pytest.approx(at, rel=1e-9)
    # the bracket really changes at the floor: just above uses MMR_k, just below MMR_k-1
    assert below == pytest.approx(
        floor * (1 - 1e-12) * BTCUSDT_MMR[k - 1] - BTCUSDT_CUM[k - 1], rel=1e-12
    )


# COIN-M BTCUSD: brackets (in BTC) 0-10, 10-20, 20-30, 30-50, 50-100, 100-200, 200-400 with
# initial rates 0.8 %, 1 %, 2 %, 5 %, 10 %, 20 %, 25 % ("Leverage and Margin in Coin-Margined
# Futures Contracts", https://www.binance.com/en/support/faq/be2c7d9d95b04a7e8044ed02dd7dfe5c);
# maintenance rates taken as half the initial rates. This table reproduces both worked figures
# of FAQ ceccfcfb4e3a45e3b48b0b1bb1a8ae46 (Level 5 amount 1.81 BTC; 300 BTC -> 12.5 %, 11.81 BTC).
BTCUSD_FLOOR_BTC = [0.0, 10.0, 20.0, 30.0, 50.0, 100.0, 200.0]
BTCUSD_MMR = [0.004, 0.005, 0.01, 0.025, 0.05, 0.10, 0.125]


def test_binance_coin_m_level_5_maintenance_amount() -> None:
    """Binance COIN-M FAQ ceccfcfb4e3a45e3b48b0b1bb1a8ae46: "BTCUSD Maintenance Amount on Level 5
    = 50 BTC * (5% - 2.5%) + 0.56 BTC = 1.81 BTC"; and a 300 BTC position has MMR 12.5 % and
    maintenance amount 11.81 BTC."""
    cums = bracket_cums(BTCUSD_FLOOR_BTC, BTCUSD_MMR)
    assert cums[3] == pytest.approx(0.56, rel=1e-12)  # Level 4
    assert cums[4] == pytest.approx(1.81, rel=1e-12)  # Level 5
    assert cums[4] - cums[3] == pytest.approx(50 * (0.05 - 0.025), rel=1e-12)
    assert cums[6] == pytest.approx(11.81, rel=1e-12)  # Level 7, where 300 BTC falls
    mm = bracket_requirement(300.0, BTCUSD_FLOOR_BTC, BTCUSD_MMR, cums, 7)
    assert mm == pytest.approx(300.0 * 0.125 - 11.81, rel=1e-12)
