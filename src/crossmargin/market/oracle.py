"""Multi-source oracle aggregation with staleness, outlier and confidence guards.

Each asset has several sources pushing ``(price, confidence, timestamp)``. At read time:

1. *fresh* quotes are those no older than ``max_age_s`` (Drift v2 ``StaleForMargin``; Mango v4
   ``max_staleness_slots``);
2. the median of the fresh quotes is the reference; quotes farther than ``max_deviation_frac``
   from it are dropped as outliers;
3. the aggregate price is the median of the kept quotes; its confidence is the larger of their
   median confidence and their largest distance from the aggregate;
4. the asset's state follows the number of kept quotes: ``healthy`` with at least
   ``min_sources_healthy``, ``degraded`` with at least ``min_sources_degraded``, else ``halted``.
   Degraded blocks new risk (withdrawals, borrows, new positions); halted also pauses the
   liquidations that depend on the price. Every state change is an event with its reason.

Valuation is conservative: assets at ``price - c``, liabilities at ``price + c`` with
``c = min(confidence, confidence_cap_frac * price)`` (Pyth-style confidence; Drift's
``TooUncertain`` guard), and for init checks also against the stable price
(:mod:`crossmargin.market.stable_price`): assets at ``min(., stable)``, liabilities at
``max(., stable)`` (Mango v4).

Quotes are rejected on arrival - with an event, never silently - when the price is not a finite
number > 0, the confidence is negative or too wide, the timestamp goes backwards or repeats for
that source, or the price jumps by more than ``max_jump_ratio`` against the source's last price
(Drift v2 ``TooVolatile``, default 5x).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from crossmargin.errors import InputError, UnknownNameError
from crossmargin.market.stable_price import StablePrice, StablePriceConfig


class OracleState(StrEnum):
    """Health of an asset's price."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    HALTED = "halted"

    @property
    def allows_new_risk(self) -> bool:
        return self is OracleState.HEALTHY

    @property
    def allows_liquidation(self) -> bool:
        return self is not OracleState.HALTED


class OracleConfig(BaseModel):
    """Guards of the oracle layer (defaults follow Drift v2 and Mango v4 where they publish)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_age_s: float = Field(60.0, gt=0, description="Older quotes are stale (Drift: ~60 s).")
    max_deviation_frac: float = Field(
        0.02, gt=0, description="Quotes farther than this from the fresh median are outliers."
    )
    max_confidence_frac: float = Field(
        0.02, gt=0, description="Quotes with confidence/price above this are rejected (Drift 2%)."
    )
    confidence_cap_frac: float = Field(
        0.01, ge=0, description="Cap of the conservative valuation adjustment, fraction of price."
    )
    max_jump_ratio: float = Field(
        5.0, gt=1, description="Reject a quote moving more than this factor (Drift TooVolatile)."
    )
    min_sources_healthy: int = Field(2, ge=1)
    min_sources_degraded: int = Field(1, ge=1)
    stable: StablePriceConfig = Field(default_factory=StablePriceConfig)

    @model_validator(mode="after")
    def _check_counts(self) -> OracleConfig:
        if self.min_sources_degraded > self.min_sources_healthy:
            raise InputError(
                "min_sources_degraded",
                self.min_sources_degraded,
                f"must not exceed min_sources_healthy {self.min_sources_healthy}",
            )
        return self


@dataclass(frozen=True)
class Quote:
    """One source's price of one asset: USD, confidence (USD, >= 0), epoch seconds."""

    source: str
    price: float
    confidence: float
    timestamp_s: float


@dataclass(frozen=True)
class OracleEvent:
    """A state change or a rejected quote, with its reason."""

    timestamp_s: float
    asset: str
    kind: str  # "state" or "rejected"
    reason: str
    source: str | None = None
    old_state: OracleState | None = None
    new_state: OracleState | None = None


@dataclass(frozen=True)
class AggregatedPrice:
    """An asset's price at one time, with the figures a margin check needs (USD)."""

    asset: str
    timestamp_s: float
    state: OracleState
    price_usd: float  # NaN when halted with no usable quote
    confidence_usd: float  # already capped at confidence_cap_frac x price
    stable_price_usd: float
    n_sources: int
    n_fresh: int
    n_used: int

    @property
    def asset_price_usd(self) -> float:
        """Price for collateral at maint: ``price - c``."""
        return self.price_usd - self.confidence_usd

    @property
    def liab_price_usd(self) -> float:
        """Price for liabilities at maint: ``price + c``."""
        return self.price_usd + self.confidence_usd

    @property
    def init_asset_price_usd(self) -> float:
        """Price for collateral at init: ``min(price - c, stable)``."""
        return min(self.asset_price_usd, self.stable_price_usd)

    @property
    def init_liab_price_usd(self) -> float:
        """Price for liabilities at init: ``max(price + c, stable)``."""
        return max(self.liab_price_usd, self.stable_price_usd)


@dataclass
class _AssetFeed:
    last: dict[str, Quote] = field(default_factory=dict)
    state: OracleState = OracleState.HALTED
    stable: StablePrice | None = None


class OracleBook:
    """Quotes of many assets from many sources; aggregates on read and logs every event."""

    def __init__(self, assets: Iterable[str], config: OracleConfig | None = None) -> None:
        self.config = config or OracleConfig()
        self._feeds = {asset: _AssetFeed() for asset in assets}
        self.events: list[OracleEvent] = []

    @property
    def assets(self) -> tuple[str, ...]:
        return tuple(self._feeds)

    def _feed(self, asset: str) -> _AssetFeed:
        try:
            return self._feeds[asset]
        except KeyError:
            raise UnknownNameError("asset", asset, "not an asset of this oracle book") from None

    def push(self, asset: str, quote: Quote) -> bool:
        """Record a quote; returns ``False`` (and logs why) if it is rejected."""
        feed = self._feed(asset)
        reason = self._rejection(feed, quote)
        if reason is not None:
            self.events.append(
                OracleEvent(quote.timestamp_s, asset, "rejected", reason, source=quote.source)
            )
            return False
        feed.last[quote.source] = quote
        return True

    def _rejection(self, feed: _AssetFeed, quote: Quote) -> str | None:
        cfg = self.config
        if not (math.isfinite(quote.price) and quote.price > 0.0):
            return f"price must be a finite number > 0 (got {quote.price!r})"
        if not (math.isfinite(quote.confidence) and quote.confidence >= 0.0):
            return f"confidence must be a finite number >= 0 (got {quote.confidence!r})"
        if not math.isfinite(quote.timestamp_s):
            return f"timestamp must be finite (got {quote.timestamp_s!r})"
        if quote.confidence > cfg.max_confidence_frac * quote.price:
            return (
                f"confidence {quote.confidence:g} is more than "
                f"{cfg.max_confidence_frac:.2%} of the price {quote.price:g}"
            )
        previous = feed.last.get(quote.source)
        if previous is not None:
            if quote.timestamp_s < previous.timestamp_s:
                return (
                    f"timestamp {quote.timestamp_s:g} is older than the source's last "
                    f"{previous.timestamp_s:g} (out of order)"
                )
            if quote.timestamp_s == previous.timestamp_s:
                return f"repeated timestamp {quote.timestamp_s:g} from the same source"
            ratio = max(quote.price, previous.price) / min(quote.price, previous.price)
            if ratio > cfg.max_jump_ratio:
                return (
                    f"price {quote.price:g} jumps {ratio:.1f}x from the source's last "
                    f"{previous.price:g} (limit {cfg.max_jump_ratio:g}x)"
                )
        return None

    def aggregate(self, asset: str, now_s: float) -> AggregatedPrice:
        """Aggregate an asset's quotes at ``now_s``; updates its state and stable price."""
        cfg = self.config
        feed = self._feed(asset)
        quotes = list(feed.last.values())
        fresh = [q for q in quotes if now_s - q.timestamp_s <= cfg.max_age_s]
        stale = [q for q in quotes if q not in fresh]
        used: list[Quote] = []
        outliers: list[Quote] = []
        price = confidence = math.nan
        if fresh:
            reference = float(np.median([q.price for q in fresh]))
            for q in fresh:
                is_close = abs(q.price - reference) <= cfg.max_deviation_frac * reference
                (used if is_close else outliers).append(q)
        if used:
            price = float(np.median([q.price for q in used]))
            spread = max(abs(q.price - price) for q in used)
            confidence = max(float(np.median([q.confidence for q in used])), spread)
            confidence = min(confidence, cfg.confidence_cap_frac * price)
        n_used = len(used)
        if n_used >= cfg.min_sources_healthy:
            state = OracleState.HEALTHY
        elif n_used >= cfg.min_sources_degraded:
            state = OracleState.DEGRADED
        else:
            state = OracleState.HALTED
        if state is not feed.state:
            reason = self._state_reason(len(quotes), fresh, stale, outliers, n_used, now_s)
            self.events.append(
                OracleEvent(now_s, asset, "state", reason, old_state=feed.state, new_state=state)
            )
            feed.state = state
        if used:
            if feed.stable is None:
                feed.stable = StablePrice.starting_at(price, now_s, cfg.stable)
            else:
                feed.stable.update(now_s, price)
        stable = feed.stable.stable_price if feed.stable is not None else math.nan
        return AggregatedPrice(
            asset=asset,
            timestamp_s=now_s,
            state=state,
            price_usd=price,
            confidence_usd=confidence,
            stable_price_usd=stable,
            n_sources=len(quotes),
            n_fresh=len(fresh),
            n_used=n_used,
        )

    def _state_reason(
        self,
        n_sources: int,
        fresh: list[Quote],
        stale: list[Quote],
        outliers: list[Quote],
        n_used: int,
        now_s: float,
    ) -> str:
        parts = [f"{n_used} of {n_sources} sources fresh and agreeing"]
        if stale:
            ages = ", ".join(f"{q.source} {now_s - q.timestamp_s:.0f}s" for q in stale)
            parts.append(f"stale (> {self.config.max_age_s:g}s): {ages}")
        if outliers:
            names = ", ".join(f"{q.source} {q.price:g}" for q in outliers)
            parts.append(f"outliers (> {self.config.max_deviation_frac:.2%} from median): {names}")
        return "; ".join(parts)

    def snapshot(self, now_s: float) -> dict[str, AggregatedPrice]:
        """Aggregate every asset at ``now_s``."""
        return {asset: self.aggregate(asset, now_s) for asset in self._feeds}

    def state(self, asset: str) -> OracleState:
        """The asset's state as of its last aggregation (``halted`` before any)."""
        return self._feed(asset).state


def prices_for_margin(snapshot: dict[str, AggregatedPrice]) -> dict[str, float]:
    """The aggregated prices as USD overrides for the margin kernel.

    Raises :class:`InputError` naming the asset when its oracle is halted: a margin number on a
    price nobody vouches for would be silently wrong.
    """
    prices = {}
    for asset, aggregated in snapshot.items():
        if aggregated.state is OracleState.HALTED or not math.isfinite(aggregated.price_usd):
            raise InputError(f"oracle.{asset}", aggregated.state.value, "no usable price")
        prices[asset] = aggregated.price_usd
    return prices
