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
