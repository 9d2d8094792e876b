"""Market data: multi-source oracles with failure handling, and the stable price."""

from crossmargin.market.oracle import (
    AggregatedPrice,
    OracleBook,
    OracleConfig,
    OracleEvent,
    OracleState,
    Quote,
    prices_for_margin,
)
from crossmargin.market.stable_price import StablePrice, StablePriceConfig

__all__ = [
    "AggregatedPrice",
    "OracleBook",
    "OracleConfig",
    "OracleEvent",
    "OracleState",
    "Quote",
    "StablePrice",
    "StablePriceConfig",
    "prices_for_margin",
]
