"""Synthetic, seeded inputs shared by the risk-analytics tests (no shared data needed)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from crossmargin.book.schema import Book
from crossmargin.risk.returns import ReturnData, returns_from_frames
from tests.helpers import asset

AS_OF = "2026-11-25T00:00:00Z"


def synthetic_prices(
    symbols: tuple[str, ...] = ("BTC", "ETH", "LTC"),
    days: int = 600,
    seed: int = 3,
    corr: float = 0.7,
    vol: float = 0.03,
) -> dict[str, pd.Series]:
    """Daily closes from Student-t(4) log returns with a common factor (equicorrelation)."""
    rng = np.random.default_rng(seed)
    common = rng.standard_t(4, days)
    index = pd.date_range("2020-01-01", periods=days + 1, freq="D", tz="UTC")
    out = {}
    for k, symbol in enumerate(symbols):
        own = np.random.default_rng(seed + 100 + k).standard_t(4, days)
        r = vol * (np.sqrt(corr) * common + np.sqrt(1 - corr) * own) / np.sqrt(2.0)
        out[symbol] = pd.Series(1000.0 * np.exp(np.concatenate([[0.0], np.cumsum(r)])), index)
    return out


def synthetic_returns(**kwargs: Any) -> ReturnData:
    return returns_from_frames(synthetic_prices(**kwargs))


def option_book(accounts: list[dict[str, Any]], eth: float = 3000.0) -> Book:
    """USDC, ETH, BTC, a governance token GOV; perps, a future and ETH options."""
    expiry = (dt.datetime(2026, 11, 25, tzinfo=dt.UTC) + dt.timedelta(days=30)).isoformat()
    return Book.model_validate(
        {
            "as_of": AS_OF,
            "assets": {
                "USDC": asset(1.0),
                "ETH": asset(eth, 0.8, 0.9, 1.2, 1.1),
                "BTC": asset(90_000.0, 0.85, 0.9, 1.15, 1.1),
                "GOV": asset(100.0, 0.5, 0.6, 1.5, 1.4),
            },
            "markets": {
                "ETH-PERP": {
                    "kind": "perp",
                    "underlying": "ETH",
                    "settle_asset": "USDC",
                    "initial_margin_frac": 0.04,
                    "maint_margin_frac": 0.02,
                },
                "BTC-PERP": {
                    "kind": "perp",
                    "underlying": "BTC",
                    "settle_asset": "USDC",
                    "initial_margin_frac": 0.04,
                    "maint_margin_frac": 0.02,
                },
                "ETH-P-2800": {
                    "kind": "option",
                    "underlying": "ETH",
                    "settle_asset": "USDC",
                    "strike": 2800.0,
                    "expiry": expiry,
                    "option_type": "put",
                    "mark_vol": 0.7,
                },
                "ETH-C-3400": {
                    "kind": "option",
                    "underlying": "ETH",
                    "settle_asset": "USDC",
                    "strike": 3400.0,
                    "expiry": expiry,
                    "option_type": "call",
                    "mark_vol": 0.65,
                },
            },
            "accounts": accounts,
        }
    )
