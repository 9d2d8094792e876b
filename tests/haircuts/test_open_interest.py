"""dYdX v4 open-interest scaling of the initial margin fraction (anchor DY-1)."""

from __future__ import annotations

import math

import pytest

import crossmargin as cm
from crossmargin.book import book_from_data
from crossmargin.errors import InputError
from crossmargin.haircuts import open_interest_scaled_frac


@pytest.mark.parametrize(
    ("oi", "expected_ppm"),
    [
        (0, 200_000),
        (1_500_000, 600_000),
        (1_234_567, 387_653),
        (2_000_000, 1_000_000),
        (2_500_000, 1_000_000),
    ],
)
def test_dydx_adjusted_initial_margin_ppm(oi: float, expected_ppm: int) -> None:
    """dydxprotocol/v4-chain x/perpetuals/types/liquidity_tier_test.go
    TestGetAdjustedInitialMarginPpm: IMF 200_000 ppm, OI caps 1_000_000 / 2_000_000 (floor)."""
    frac = open_interest_scaled_frac(0.2, oi, 1_000_000, 2_000_000)
    assert math.floor(frac * 1e6 + 1e-9) == expected_ppm


def test_dydx_scaling_off_when_caps_are_zero() -> None:
    """Same test file: caps 0 / 0 leave the base IMF (200_000)."""
    assert open_interest_scaled_frac(0.2, 5e6, 0.0, 0.0) == 0.2


@pytest.mark.parametrize(
    ("quote_quantums", "oi", "lower", "upper", "expected"),
    [
        (500_000, 28_123_456_789_123, 25e12, 60e12, 135_697),
        (500_000, 1.5e12, 1e12, 2e12, 300_000),
    ],
)
def test_dydx_initial_margin_quote_quantums(
    quote_quantums: int, oi: float, lower: float, upper: float, expected: int
) -> None:
    """liquidity_tier_test.go TestGetInitialMarginQuoteQuantums: IMR = ceil(notional x IMF_adj)."""
    frac = open_interest_scaled_frac(0.2, oi, lower, upper)
    assert math.ceil(quote_quantums * frac - 1e-9) == expected


def _book(open_interest_usd: float) -> dict[str, object]:
    usd = {
        "price": 1.0,
        "init_asset_weight": 1.0,
        "maint_asset_weight": 1.0,
        "init_liab_weight": 1.0,
        "maint_liab_weight": 1.0,
    }
    return {
        "assets": {"USDC": usd, "BTC": {**usd, "price": 50000.0}},
        "markets": {
            "BTC-PERP": {
                "kind": "perp",
                "underlying": "BTC",
                "settle_asset": "USDC",
                "initial_margin_frac": 0.2,
                "maint_margin_frac": 0.1,
                "open_interest_usd": open_interest_usd,
                "oi_lower_cap_usd": 1e6,
                "oi_upper_cap_usd": 2e6,
            }
        },
        "accounts": [
            {
                "id": "a",
                "balances": {"USDC": 1e5},
                "positions": [{"market": "BTC-PERP", "qty": 1.0, "entry_price": 50000.0}],
            }
        ],
    }


def test_open_interest_raises_only_the_initial_requirement() -> None:
    """dYdX: IMR uses the OI-adjusted IMF, MMR the base IMF x maintenance fraction."""
    calm = cm.margin(book_from_data(_book(0.0)))[0]
    crowded = cm.margin(book_from_data(_book(1.5e6)))[0]
    assert calm.init.weighted_liabilities_usd == pytest.approx(50000 * 0.2)
    assert crowded.init.weighted_liabilities_usd == pytest.approx(50000 * 0.6)
    assert crowded.maint.weighted_liabilities_usd == calm.maint.weighted_liabilities_usd


def test_upper_cap_must_exceed_lower() -> None:
    data = _book(0.0)
    data["markets"]["BTC-PERP"]["oi_upper_cap_usd"] = 5e5  # type: ignore[index]
    with pytest.raises(InputError, match="oi_upper_cap_usd"):
        book_from_data(data)
