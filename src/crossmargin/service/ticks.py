"""A price tick as the service receives it: one source's quote of one asset."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tick:
    """One source's USD price of one asset, with its confidence (USD, >= 0) and epoch seconds."""

    asset: str
    source: str
    price_usd: float
    confidence_usd: float
    timestamp_s: float
