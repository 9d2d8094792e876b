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
