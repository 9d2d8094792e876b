"""A small book with collateral on a remote chain."""

from __future__ import annotations

from typing import Any

import pytest

USDC = {
    "price": 1.0,
    "init_asset_weight": 1.0,
    "maint_asset_weight": 1.0,
    "init_liab_weight": 1.0,
    "maint_liab_weight": 1.0,
}
ETH = {
    "price": 3000.0,
    "init_asset_weight": 0.8,
    "maint_asset_weight": 0.9,
    "init_liab_weight": 1.2,
    "maint_liab_weight": 1.1,
}


def book_data(**location: Any) -> dict[str, Any]:
    arbitrum = {"bridge_haircut_frac": 0.05, "finality_s": 600.0, **location}
    return {
        "assets": {"USDC": dict(USDC), "ETH": dict(ETH)},
        "locations": {"arbitrum": arbitrum},
        "accounts": [
            {
                "id": "alice",
                "balances": {"ETH": {"qty": 10, "location": "arbitrum"}, "USDC": -20000},
            }
        ],
    }


@pytest.fixture
def data() -> dict[str, Any]:
    return book_data()
