"""Margin, health and liquidation through the risk kernel, against other systems' numbers.

Each test cites its anchor (repository and test, or document URL). Expected numbers are written
here as literals, or computed in the test from the anchor's published formula; nothing is read
from outside the repository at run time. Where our model differs from the anchor by convention,
the test says so and asserts our behaviour.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

import crossmargin as cm
from crossmargin.book import book_from_data
from crossmargin.haircuts import size_discounted_asset_weight
from crossmargin.margin import AccountMargin, BucketMargin
from tests.helpers import BTCUSDT_CUM, BTCUSDT_FLOOR, BTCUSDT_MMR, DRIFT_DV3_PNL_WEIGHTS, asset


def perp(
    underlying: str, settle: str, init_frac: float, maint_frac: float, **extra: Any
) -> dict[str, Any]:
    return {
        "kind": "perp",
        "underlying": underlying,
        "settle_asset": settle,
        "initial_margin_frac": init_frac,
        "maint_margin_frac": maint_frac,
        **extra,
    }


def margin_one(data: dict[str, Any], **kwargs: Any) -> AccountMargin:
    (report,) = cm.margin(book_from_data(data), **kwargs)
    return report


def bucket_named(report: AccountMargin, name: str) -> BucketMargin:
    (bucket,) = [b for b in report.buckets if b.name == name]
    return bucket


# ---------------------------------------------------------------------------------------------
# Drift v2 DV-3 through the kernel: drift-labs/protocol-v2
# programs/drift/src/math/margin/tests.rs::calculate_user_equity_value_tests
# (unrealized_pnl_imf_factor 1000 = 0.001, unrealized_pnl_initial_asset_weight 10000 = 1.0).
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("upnl_usd", "expected_int"), DRIFT_DV3_PNL_WEIGHTS)
def test_drift_dv3_pnl_weight_flows_through_the_kernel(upnl_usd: float, expected_int: int) -> None:
    """drift-labs/protocol-v2 programs/drift/src/math/margin/tests.rs
    ::calculate_user_equity_value_tests: a perp with positive PnL u and pnl_imf_factor 0.001
    counts u * w(u) as an init asset, with floor(w * 1e4) the Drift integer (9559, 9516, ...).

    Margin fractions are 0, so the requirement does not enter the weighted liabilities."""
    mark = 30_000.0
    # enough units that the PnL per unit stays below the mark (entry prices are >= 0)
    qty = float(math.ceil(upnl_usd / 20_000.0))
    per_unit = upnl_usd / qty
    report = margin_one(
        {
            "assets": {"USDC": asset(1.0), "BTC": asset(mark, 0.8, 0.9, 1.2, 1.1)},
            "markets": {
                "BTC-PERP": perp(
                    "BTC",
                    "USDC",
                    0.0,
                    0.0,
                    init_pnl_weight=1.0,
                    maint_pnl_weight=1.0,
                    pnl_imf_factor=0.001,
                )
            },
            "accounts": [
                {
                    "id": "a",
                    "positions": [
                        {"market": "BTC-PERP", "qty": qty, "entry_price": mark - per_unit}
                    ],
                }
            ],
        },
    )
    pnl = report.equity_usd
    assert pnl == pytest.approx(upnl_usd, rel=1e-9)
    weight = 1.1 / (1.0 + 0.001 * math.sqrt(pnl))  # Drift's real-valued size discount
    assert report.init.weighted_assets_usd == pytest.approx(pnl * weight, rel=1e-12)
    assert report.init.weighted_liabilities_usd == pytest.approx(0.0, abs=1e-9)
    assert math.floor(report.init.weighted_assets_usd / pnl * 1e4) == expected_int
    # the kernel uses the same scalar function as the one tested in tests/haircuts
    assert report.init.weighted_assets_usd == pytest.approx(
        pnl * size_discounted_asset_weight(1.0, 0.001, pnl), rel=1e-12
    )


# ---------------------------------------------------------------------------------------------
# Binance margin tiers through the kernel. BTCUSDT tiers announced 2021-03-18,
# https://www.binance.com/tr/support/announcement/86cf9aa472574b8cb2e05bb751c2a9a6 ; MM formula
# https://www.binance.com/en/futures/trading-rules/perpetual/portfolio-margin/notional-limit ;
# recurrence and continuity https://www.binance.com/es/support/faq/ceccfcfb4e3a45e3b48b0b1bb1a8ae46
# ---------------------------------------------------------------------------------------------

BTCUSDT_IMR = [0.008, 0.01, 0.02, 0.05, 0.10, 0.20, 0.25, 0.333, 0.50, 1.00]
BTC_PRICE = 50_000.0


def btcusdt_market() -> dict[str, Any]:
    return perp(
        "BTC",
        "USDT",
        BTCUSDT_IMR[0],
        BTCUSDT_MMR[0],
        brackets=[
            {"notional_floor_usd": f, "initial_margin_frac": i, "maint_margin_frac": m}
            for f, i, m in zip(BTCUSDT_FLOOR[1:], BTCUSDT_IMR[1:], BTCUSDT_MMR[1:], strict=True)
        ],
    )


def btcusdt_book(accounts: list[dict[str, Any]], btc_price: float = BTC_PRICE) -> dict[str, Any]:
    return {
        "assets": {"USDT": asset(1.0), "BTC": asset(btc_price, 0.9, 0.95, 1.05, 1.02)},
        "markets": {"BTCUSDT": btcusdt_market()},
        "accounts": accounts,
    }


def test_binance_500k_position_maintenance_through_the_kernel() -> None:
    """Binance USDT-M FAQ https://binance.com/cn/support/faq/b3c689c1f50a44cabb3a84e663b81d93:
    500,000 USDT of BTCUSDT -> maintenance amount 1,300, MM = 500,000 x 1 % - 1,300 = 3,700.
    With entry = mark the PnL is 0 and the maint weighted liabilities are the MM alone."""
    report = margin_one(
        btcusdt_book(
            [{"id": "a", "positions": [{"market": "BTCUSDT", "qty": 10.0, "entry_price": 5e4}]}]
        )
    )
    assert report.maint.weighted_liabilities_usd == pytest.approx(3_700.0, rel=1e-12)
    assert report.maint.weighted_assets_usd == pytest.approx(0.0, abs=1e-9)


def test_binance_brackets_are_continuous_through_the_kernel() -> None:
    """Binance FAQ ceccfcfb4e3a45e3b48b0b1bb1a8ae46 (continuity of MM = N x MMR - cum): at every
    floor of the BTCUSDT 2021 table, the kernel's maint (and init) requirement just below the
    floor equals the one at the floor (relative 1e-9), and at the floor it is
    floor x MMR_k - cum_k with the announced table's cum."""
    accounts = []
    for k, floor in enumerate(BTCUSDT_FLOOR[1:], start=1):
        qty = floor / BTC_PRICE
        for tag, q in (("at", qty), ("below", qty * (1 - 1e-12))):
            accounts.append(
                {
                    "id": f"{tag}-{k}",
                    "positions": [{"market": "BTCUSDT", "qty": q, "entry_price": BTC_PRICE}],
                }
            )
    reports = {r.account_id: r for r in cm.margin(book_from_data(btcusdt_book(accounts)))}
    for k, floor in enumerate(BTCUSDT_FLOOR[1:], start=1):
        at, below = reports[f"at-{k}"], reports[f"below-{k}"]
        expected = floor * BTCUSDT_MMR[k] - BTCUSDT_CUM[k]
        assert at.maint.weighted_liabilities_usd == pytest.approx(expected, rel=1e-12), k
        assert below.maint.weighted_liabilities_usd == pytest.approx(
            at.maint.weighted_liabilities_usd, rel=1e-9
        ), k
        assert below.init.weighted_liabilities_usd == pytest.approx(
            at.init.weighted_liabilities_usd, rel=1e-9
        ), k


# ---------------------------------------------------------------------------------------------
# Binance isolated liquidation price (USDⓈ-M). Formula: Binance FAQ
# https://binance.com/cn/support/faq/b3c689c1f50a44cabb3a84e663b81d93 (liquidation price),
#   LP = (WB + cum - side*Q*EP) / (Q*MMR - side*Q)   in isolated mode (TMM1 = UPNL1 = 0),
# recomputed with the bracket of the liquidation notional.
# ---------------------------------------------------------------------------------------------


def isolated_btcusdt(qty: float, entry: float, wallet: float) -> dict[str, Any]:
    return btcusdt_book(
        [
            {
                "id": "iso",
                "mode": "isolated",
                "balances": {"USDT": wallet},
                "positions": [
                    {
                        "market": "BTCUSDT",
                        "qty": qty,
                        "entry_price": entry,
                        "isolated_collateral": {"USDT": wallet},
                    }
                ],
            }
        ]
    )


def binance_isolated_lp(qty: float, entry: float, wallet: float, mmr: float, cum: float) -> float:
    side = 1.0 if qty > 0 else -1.0
    size = abs(qty)
    return (wallet + cum - side * size * entry) / (size * mmr - side * size)


def test_binance_isolated_long_liquidation_price() -> None:
    """Binance USDⓈ-M liquidation price (FAQ b3c689c1f50a44cabb3a84e663b81d93), example: isolated
    long 1 BTC @ 50,000, wallet 5,000 USDT, tier 1 (MMR 0.4 %, cum 0):
    LP = (5000 - 50000) / (0.004 - 1) = 45,180.72."""
    report = margin_one(isolated_btcusdt(1.0, 50_000.0, 5_000.0))
    bucket = bucket_named(report, "BTCUSDT")
    lp = bucket.liquidation_prices["BTC"]
    assert binance_isolated_lp(1.0, 50_000.0, 5_000.0, 0.004, 0.0) == pytest.approx(
        45_180.72, abs=0.005
    )
    assert lp.below_usd == pytest.approx(45_000.0 / 0.996, rel=1e-6)
    assert lp.below_usd == pytest.approx(45_180.72, abs=0.005)
    assert lp.above_usd is None  # a long's maint health only rises with the price
    assert report.liquidation_prices["BTC"].below_usd == pytest.approx(45_000.0 / 0.996, rel=1e-6)
    assert not report.liquidatable


@pytest.mark.parametrize(
    ("qty", "entry", "wallet", "mmr", "cum", "side"),
    [
        # short 1 BTC @ 50,000, wallet 5,000: LP lands above 50,000 notional -> tier 2 (0.5 %, 50)
        (-1.0, 50_000.0, 5_000.0, 0.005, 50.0, "above"),
        # long 2 BTC @ 50,000, wallet 10,000: LP notional ~90,400 -> tier 2 (0.5 %, 50)
        (2.0, 50_000.0, 10_000.0, 0.005, 50.0, "below"),
    ],
)
def test_binance_isolated_liquidation_price_derived(
    qty: float, entry: float, wallet: float, mmr: float, cum: float, side: str
) -> None:
    """Derived with the Binance isolated LP formula (FAQ b3c689c1f50a44cabb3a84e663b81d93) and
    the bracket of the liquidation notional (BTCUSDT 2021 tiers): short 1 @ 50,000 with 5,000 ->
    55,050 / 1.005 = 54,776.12; long 2 @ 50,000 with 10,000 -> 89,950 / 1.99 = 45,201.01."""
    expected = binance_isolated_lp(qty, entry, wallet, mmr, cum)
    # the liquidation notional is really in the bracket whose MMR and cum were used
    assert 50e3 <= abs(qty) * expected < 250e3
    report = margin_one(isolated_btcusdt(qty, entry, wallet))
    lp = bucket_named(report, "BTCUSDT").liquidation_prices["BTC"]
    got = lp.above_usd if side == "above" else lp.below_usd
    assert got == pytest.approx(expected, rel=1e-6)
    literal = {"above": 55_050.0 / 1.005, "below": 89_950.0 / 1.99}[side]
    assert got == pytest.approx(literal, rel=1e-6)


# ---------------------------------------------------------------------------------------------
# Mango v4 MV-1: blockworks-foundation/mango-v4
# programs/mango-v4/src/health/cache.rs::tests::test_health1 (Init health), cases 2-5, 12, 13.
# ---------------------------------------------------------------------------------------------


def mango_book(token1: float, base_lots: int, quote: float) -> dict[str, Any]:
    """The test_health1 setup in our portfolio-file terms.

    Mapping (Mango mocks in programs/mango-v4/src/health/test.rs):
    * token1: price 1, mock weights (0.2, 0.1) -> init aw 0.8 / lw 1.2, maint aw 0.9 / lw 1.1;
      stable price = oracle and weight scaling off, so Init uses these weights unscaled.
    * perp1: price 5 settled in token1, base weights (0.2, 0.1) -> init base asset weight 0.8 /
      liab weight 1.2, i.e. a margin fraction of 0.2 (init) and 0.1 (maint), since
      net*w*p = net*p - 0.2*|net|*p for both signs; pnl weights (0.05, 0.02) -> overall asset
      weight 0.95 (init) / 0.98 (maint) = our init_pnl_weight / maint_pnl_weight.
    * base_lot_size 10: qty = base_lots * 10.
    * Mango's quote position q is the PnL part not carried by the base: with entry_price 0 and
      unrealized_funding = -q, our PnL qty*(mark - entry) - funding = qty*mark + q.
    * pnl_convention settle_netted: Mango adds hupnl = (PnL - requirement), times the overall
      asset weight when positive, to the settle token balance, then weights that balance.
    """
    account: dict[str, Any] = {
        "id": "mango",
        "positions": [
            {
                "market": "PERP1",
                "qty": base_lots * 10.0,
                "entry_price": 0.0,
                "unrealized_funding": -quote,
            }
        ],
    }
    if token1:
        account["balances"] = {"TOKEN1": token1}
    return {
        "pnl_convention": "settle_netted",
        "assets": {
            "TOKEN1": asset(1.0, 0.8, 0.9, 1.2, 1.1),
            # the perp's base: only its price (5) matters; no balance is held
            "BASE1": asset(5.0, 0.5, 0.7, 1.5, 1.3),
        },
        "markets": {
            "PERP1": perp("BASE1", "TOKEN1", 0.2, 0.1, init_pnl_weight=0.95, maint_pnl_weight=0.98)
        },
        "accounts": [account],
    }


@pytest.mark.parametrize(
    ("case", "token1", "base_lots", "quote", "expected"),
    [
        (2, 0.0, -1, 100.0, 0.8 * 0.95 * (100 - 1.2 * 1 * 50)),  # 30.4
        (3, 0.0, 1, -100.0, 1.2 * (-100 + 0.8 * 1 * 50)),  # -72.0
        (4, 0.0, 10, 100.0, 0.8 * 0.95 * (100 + 0.8 * 10 * 50)),  # 380.0
        (5, 0.0, 30, -100.0, 0.8 * 0.95 * (-100 + 0.8 * 30 * 50)),  # 836.0
        (12, -100.0, 1, 100.0, 0.8 * (-100 + 0.95 * (100 + 0.8 * 1 * 50))),  # 26.4
        (13, 100.0, -1, -100.0, 1.2 * (100 - 100 - 1.2 * 1 * 50)),  # -72.0
    ],
)
def test_mango_mv1_test_health1_init_health(
    case: int, token1: float, base_lots: int, quote: float, expected: float
) -> None:
    """blockworks-foundation/mango-v4 programs/mango-v4/src/health/cache.rs
    ::tests::test_health1, Init health of cases 2, 3, 4, 5, 12, 13 (expected values are the
    source's expressions; see mango_book for the mapping of Mango's perp state to ours)."""
    literal = {2: 30.4, 3: -72.0, 4: 380.0, 5: 836.0, 12: 26.4, 13: -72.0}[case]
    assert expected == pytest.approx(literal, rel=1e-12)
    report = margin_one(mango_book(token1, base_lots, quote))
    assert report.init.health_usd == pytest.approx(literal, rel=1e-12, abs=1e-9)


# ---------------------------------------------------------------------------------------------
# Aave v3 health factor: aave/aave-v3-core contracts/protocol/libraries/logic/GenericLogic.sol
# calculateUserAccountData, HF = sum(C_i * LT_i) / totalDebt (liquidation thresholds LT of the
# mainnet market as listed by morpho-org/morpho-aavev3-optimizer PR #617: WETH 8250, WBTC 7500,
# USDC 7600, DAI 7700). Liquidation eligibility (LiquidationLogic): HF < 1 strictly.
# Mapping: maint asset weight = LT, liability weight 1 (debt at face value).
# ---------------------------------------------------------------------------------------------

AAVE_LT = {"WETH": 0.825, "WBTC": 0.75, "USDC": 0.76, "DAI": 0.77}


def aave_book(balances: dict[str, float], prices: dict[str, float]) -> dict[str, Any]:
    # init weights stand in for LTV (borrowing power) and are not part of the check
    return {
        "assets": {
            sym: asset(prices[sym], AAVE_LT[sym] - 0.05, AAVE_LT[sym], 1.0, 1.0) for sym in AAVE_LT
        },
        "accounts": [{"id": "aave", "balances": balances}],
    }


def aave_health_factor(balances: dict[str, float], prices: dict[str, float]) -> float:
    """HF by the GenericLogic.calculateUserAccountData formula, in real numbers."""
    collateral = {s: q * prices[s] for s, q in balances.items() if q > 0}
    debt = sum(-q * prices[s] for s, q in balances.items() if q < 0)
    total_collateral = sum(collateral.values())
    avg_lt = sum(c * AAVE_LT[s] for s, c in collateral.items()) / total_collateral
    hf_v30 = total_collateral * avg_lt / debt  # v3.0: percentMul(totalCollateral, avgLT)/debt
    hf_v37 = sum(c * AAVE_LT[s] for s, c in collateral.items()) / debt  # v3.7 form
    assert hf_v30 == pytest.approx(hf_v37, rel=1e-12)
    return hf_v37


PRICES = {"WETH": 2_000.0, "WBTC": 60_000.0, "USDC": 1.0, "DAI": 1.0}


def test_aave_health_factor_three_collaterals() -> None:
    """aave/aave-v3-core GenericLogic.calculateUserAccountData: 10 WETH ($20,000, LT 82.5 %),
    0.5 WBTC ($30,000, LT 75 %) and 5,000 USDC (LT 76 %) against 30,000 DAI of debt:
    HF = (16,500 + 22,500 + 3,800) / 30,000 = 1.42667. Our maint health ratio is the HF."""
    balances = {"WETH": 10.0, "WBTC": 0.5, "USDC": 5_000.0, "DAI": -30_000.0}
    hf = aave_health_factor(balances, PRICES)
    assert hf == pytest.approx(42_800.0 / 30_000.0, rel=1e-12)
    report = margin_one(aave_book(balances, PRICES))
    assert report.maint.health_ratio == pytest.approx(hf, rel=1e-12)
    assert report.maint.weighted_assets_usd == pytest.approx(42_800.0, rel=1e-12)
    assert report.maint.weighted_liabilities_usd == pytest.approx(30_000.0, rel=1e-12)
    assert not report.liquidatable


@pytest.mark.parametrize("weth_price", [1_200.0, 1_499.0, 1_501.0, 2_000.0])
def test_aave_liquidatable_iff_health_factor_below_one(weth_price: float) -> None:
    """aave/aave-v3-core LiquidationLogic: a position is liquidatable iff HF < 1 (strict), with
    HF from GenericLogic.calculateUserAccountData. 10 WETH against 12,375 DAI: HF = 1 at a WETH
    price of 12,375 / (10 x 0.825) = 1,500, which is also our WETH liquidation price. The
    WETH-only average LT is 8250 bps, the value asserted by aave-v3-core
    test-suites/liquidation-underlying.spec.ts (currentLiquidationThreshold)."""
    balances = {"WETH": 10.0, "DAI": -12_375.0}
    prices = {**PRICES, "WETH": weth_price}
    hf = aave_health_factor(balances, prices)
    report = margin_one(aave_book(balances, PRICES), prices={"WETH": weth_price})
    assert report.maint.health_ratio == pytest.approx(hf, rel=1e-12)
    assert report.maint.weighted_assets_usd / (10.0 * weth_price) == pytest.approx(0.825, rel=1e-12)
    assert report.liquidatable == (hf < 1.0)
    assert report.liquidatable == (weth_price < 1_500.0)
    lp = report.liquidation_prices["WETH"]
    crossing = lp.above_usd if report.liquidatable else lp.below_usd
    assert crossing == pytest.approx(1_500.0, rel=1e-9)


def test_aave_health_factor_exactly_one_is_not_liquidatable() -> None:
    """aave/aave-v3-core LiquidationLogic requires HF < 1 strictly. 1 WBTC at $40,000 with LT
    75 % against 30,000 DAI is HF = 1.0 exactly (all binary-exact), and is not liquidatable."""
    balances = {"WBTC": 1.0, "DAI": -30_000.0}
    prices = {**PRICES, "WBTC": 40_000.0}
    assert aave_health_factor(balances, prices) == 1.0
    report = margin_one(aave_book(balances, prices))
    assert report.maint.health_ratio == 1.0
    assert report.maint.health_usd == 0.0
    assert not report.liquidatable
    # a one-dollar drop in WBTC makes HF < 1 and the account liquidatable
    lower = margin_one(aave_book(balances, prices), prices={"WBTC": 39_999.0})
    assert lower.maint.health_ratio < 1.0
    assert lower.liquidatable


# ---------------------------------------------------------------------------------------------
# dYdX v4: dydxprotocol/v4-chain
# DY-1 protocol/x/perpetuals/types/liquidity_tier_test.go::TestLiquidityTierGetMaintenanceMarginPpm
# DY-5 protocol/lib/margin/risk_test.go (IsLiquidatable, IsInitialCollateralized)
# Mapping: maint_margin_frac = IMF * MF ("maintenance fraction" of the initial fraction).
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("im_ppm", "mf_ppm", "expected_mmr_ppm"),
    [
        (150_000, 800_000, 120_000),
        (450_000, 770_000, 346_500),
        (637_239, 289_284, 184_343),
        (1_000_000, 1_000_000, 1_000_000),
        (1_000_000, 0, 0),
    ],
)
def test_dydx_dy1_maintenance_margin_ppm(im_ppm: int, mf_ppm: int, expected_mmr_ppm: int) -> None:
    """dydxprotocol/v4-chain protocol/x/perpetuals/types/liquidity_tier_test.go
    ::TestLiquidityTierGetMaintenanceMarginPpm: MMR = IM * MF / 1e6 (floor, ppm).

    A market with initial_margin_frac = IM and maint_margin_frac = IM * MF, on a $1,000,000
    notional at mark = entry, has a maint requirement equal to the MMR in ppm. dYdX divides
    integers exactly; 1e-6 absorbs float rounding of the exact products before the floor."""
    im, mmf = im_ppm / 1e6, (im_ppm / 1e6) * (mf_ppm / 1e6)
    report = margin_one(
        {
            "assets": {"USDC": asset(1.0), "X": asset(1.0)},
            "markets": {"X-USD": perp("X", "USDC", im, mmf)},
            "accounts": [
                {
                    "id": "a",
                    "balances": {"USDC": 2e6},
                    "positions": [{"market": "X-USD", "qty": 1e6, "entry_price": 1.0}],
                }
            ],
        }
    )
    maint_requirement = report.maint.weighted_liabilities_usd
    assert maint_requirement == pytest.approx(im_ppm * mf_ppm / 1e6, rel=1e-12, abs=1e-9)
    assert math.floor(maint_requirement + 1e-6) == expected_mmr_ppm
    assert report.init.weighted_liabilities_usd == pytest.approx(im_ppm, rel=1e-12)


def dydx_account(nc: float, notional: float) -> dict[str, Any]:
    """USDC balance NC and a BTC-USD perp of this notional at mark = entry (PnL 0), in liquidity
    tier 2 "Long-Tail" of protocol/testing/genesis.sh (IMF 20 %, MF 50 % -> MMF 10 %)."""
    account: dict[str, Any] = {"id": "dydx"}
    if nc:
        account["balances"] = {"USDC": nc}
    if notional:
        account["positions"] = [
            {"market": "BTC-USD", "qty": notional / 1_000.0, "entry_price": 1_000.0}
        ]
    return {
        "assets": {"USDC": asset(1.0), "BTC": asset(1_000.0, 0.8, 0.9, 1.2, 1.1)},
        "markets": {"BTC-USD": perp("BTC", "USDC", 0.2, 0.1)},
        "accounts": [account],
    }


@pytest.mark.parametrize(
    ("nc", "mmr", "expected"),
    [
        (0.0, 100.0, True),
        (75.0, 100.0, True),
        (100.0, 100.0, False),  # strict: TMMR > TNC; health exactly 0 is not liquidatable
        (125.0, 100.0, False),
    ],
)
def test_dydx_dy5_is_liquidatable(nc: float, mmr: float, expected: bool) -> None:
    """dydxprotocol/v4-chain protocol/lib/margin/risk_test.go IsLiquidatable(NC, MMR). The
    position's maint requirement is MMR (notional 1,000 at MMF 10 %), PnL 0, so maint health is
    NC - MMR and liquidatable iff NC < MMR."""
    report = margin_one(dydx_account(nc, mmr / 0.1))
    assert report.maint.weighted_liabilities_usd == pytest.approx(mmr, rel=1e-12)
    assert report.maint.health_usd == pytest.approx(nc - mmr, abs=1e-9)
    assert report.liquidatable is expected


def test_dydx_dy5_negative_collateral_without_positions_deviation() -> None:
    """dydxprotocol/v4-chain protocol/lib/margin/risk_test.go: IsLiquidatable(NC = -100,
    MMR = 0) is false in dYdX, because there is no position to liquidate (TMMR must be > 0).

    Deliberate deviation: in crossmargin a -100 USDC balance is a borrow weighted by a liability
    weight >= 1, so maint health is -100 and the account IS liquidatable (its collateral, if any,
    would be seized; with none it is bad debt to resolve). We assert our behaviour."""
    report = margin_one(dydx_account(-100.0, 0.0))
    assert report.maint.health_usd == pytest.approx(-100.0, rel=1e-12)
    assert report.liquidatable is True


@pytest.mark.parametrize(
    ("nc", "imr", "expected"),
    [(100.0, 100.0, True), (-100.0, 0.0, False)],
)
def test_dydx_dy5_is_initial_collateralized(nc: float, imr: float, expected: bool) -> None:
    """dydxprotocol/v4-chain protocol/lib/margin/risk_test.go IsInitialCollateralized(NC, IMR):
    (100, 100) -> true (init health exactly 0 allows new risk); (-100, 0) -> false. The position's
    init requirement is IMR (notional 500 at IMF 20 %)."""
    report = margin_one(dydx_account(nc, imr / 0.2))
    assert report.init.weighted_liabilities_usd == pytest.approx(
        imr + max(-nc, 0.0), rel=1e-12, abs=1e-9
    )
    assert report.init.health_usd == pytest.approx(nc - imr, abs=1e-9)
    assert report.can_open_risk is expected
