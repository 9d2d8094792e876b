"""Helpers shared by the tests: asset dictionaries and the optional ../shared data folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

#: ../shared/data beside the project (absent in a user's fresh clone: tests skip with a reason)
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(), reason="../shared/data is absent (a fresh clone has no shared folder)"
)


def asset(
    price: float,
    iaw: float = 1.0,
    maw: float = 1.0,
    ilw: float = 1.0,
    mlw: float = 1.0,
    **extra: Any,
) -> dict[str, Any]:
    """An asset entry of a portfolio file (weights default to a USD stablecoin's)."""
    return {
        "price": price,
        "init_asset_weight": iaw,
        "maint_asset_weight": maw,
        "init_liab_weight": ilw,
        "maint_liab_weight": mlw,
        **extra,
    }


def lp_book_data() -> dict[str, Any]:
    """A book whose one account ``lp`` holds a Uniswap v3 LP position (ticks 76,020-84,000,
    liquidity 1,000, haircut 20 %) in pool ``eth-v3`` at ETH 3,000 and owes 20,000 USDC."""
    return {
        "assets": {
            "USDC": asset(1.0),
            "ETH": asset(3000.0, 0.8, 0.9, 1.2, 1.1),
        },
        "pools": {
            "eth-v3": {
                "kind": "concentrated",
                "base": "ETH",
                "quote": "USDC",
                "price": 3000.0,
                "ranges": [{"tick_lower": 76020, "tick_upper": 84000, "liquidity": 1000.0}],
            }
        },
        "accounts": [
            {
                "id": "lp",
                "balances": {"USDC": -20000},
                "lp_positions": [
                    {"pool": "eth-v3", "tick_lower": 76020, "tick_upper": 84000}
                    | {"liquidity": 1000.0, "haircut_frac": 0.2}
                ],
            }
        ],
    }


#: Drift v2 DV-3 (programs/drift/src/math/margin/tests.rs, calculate_user_equity_value_tests):
#: unrealized PnL in USD -> floor(1e4 x initial PnL weight) with pnl imf factor 0.001.
DRIFT_DV3_PNL_WEIGHTS: list[tuple[float, int]] = [
    (22_699.050905, 9559),
    (24_282.786896 * 1, 9516),
    (24_282.786896 * 10, 7368),
    (24_282.786896 * 100, 4299),
    (24_282.786896 * 1000, 1855),
    (24_282.786896 * 10_000, 663),
    (24_282.786896 * 800_000, 78),
]


#: Binance BTCUSDT USD-M margin tiers announced 2021-03-18
#: (https://www.binance.com/tr/support/announcement/86cf9aa472574b8cb2e05bb751c2a9a6): notional
#: floor (USDT), maintenance margin rate, and the maintenance amount "cum" from the recurrence in
#: https://www.binance.com/es/support/faq/ceccfcfb4e3a45e3b48b0b1bb1a8ae46
BTCUSDT_FLOOR = [0.0, 50e3, 250e3, 1e6, 10e6, 20e6, 50e6, 100e6, 200e6, 300e6]
BTCUSDT_MMR = [0.004, 0.005, 0.01, 0.025, 0.05, 0.10, 0.125, 0.15, 0.25, 0.50]
BTCUSDT_CUM = [
    0.0,
    50.0,
    1_300.0,
    16_300.0,
    266_300.0,
    1_266_300.0,
    2_516_300.0,
    5_016_300.0,
    25_016_300.0,
    100_016_300.0,
]
