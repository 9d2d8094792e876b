"""Helpers of the prediction tests: synthetic minute data (in the Binance file's layout) and
the location of the real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

#: ../shared/data beside the project (the brief's location rule)
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
ETH_MINUTES = SHARED / "binance_ethusdt_1min_liquidations_2021-01.csv"


def needs_eth_minutes() -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        not ETH_MINUTES.is_file(),
        reason=f"{ETH_MINUTES} is absent (the shared data folder is not in a fresh clone)",
    )


def synthetic_minute_frame(n: int = 4_000, seed: int = 0) -> pd.DataFrame:
    """Minutes of a random-walk mid with a persistent 'stress' state (a Markov chain: calm
    0.99, stress 0.95) that triples volatility and brings liquidation bursts on the side of
    the last move: waves are partly predictable from vol and recent liquidations."""
    rng = np.random.default_rng(seed)
    stress = np.zeros(n, dtype=bool)
    for t in range(1, n):
        stay = 0.95 if stress[t - 1] else 0.99
        stress[t] = stress[t - 1] if rng.random() < stay else not stress[t - 1]
    sigma = np.where(stress, 0.003, 0.001)
    r = sigma * rng.standard_normal(n)
    mid = 1000.0 * np.exp(np.cumsum(r))
    spread = mid * (0.5 + 2.0 * stress + rng.random(n)) * 1e-4
    burst = stress & (rng.random(n) < 0.4)
    size = np.exp(rng.normal(3.0, 1.0, n)) * burst + np.exp(rng.normal(0.0, 1.0, n)) * (
        rng.random(n) < 0.1
    )
    falling = np.concatenate([[0.0], np.diff(np.log(mid))]) < 0
    index = pd.date_range("2021-01-01", periods=n, freq="min", tz="UTC")
    frame = pd.DataFrame(
        {
            "bid": mid - spread / 2,
            "ask": mid + spread / 2,
            "liq_long_qty": np.where(falling, size, 0.1 * size),
            "liq_short_qty": np.where(falling, 0.1 * size, size),
        },
        index=index,
    )
    frame.index.name = "time"
    return frame


def write_binance_csv(frame: pd.DataFrame, path: Path) -> Path:
    """``frame`` in the shared Binance file's layout (timestamps in microseconds)."""
    out = pd.DataFrame(
        {
            "timestamp_x": frame.index.asi8 / 1e3,
            "ask_price": frame["ask"].to_numpy(),
            "bid_price": frame["bid"].to_numpy(),
            "binance-futures_ethusdt_liquidation_long": frame["liq_long_qty"].to_numpy(),
            "binance-futures_ethusdt_liquidation_short": frame["liq_short_qty"].to_numpy(),
        }
    )
    out.to_csv(path, index=False)
    return path
