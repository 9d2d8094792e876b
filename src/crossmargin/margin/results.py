"""The results of the margin engine: per-level figures, liquidation prices, bucket and account
reports, row contributions, hypothetical trades and what-if answers, the capital comparison.

Plain frozen dataclasses with ``to_dict`` (full precision) and a rounded ``repr``
(:func:`crossmargin.display.rounded_repr`); :mod:`crossmargin.margin.engine` fills them from the
one kernel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from crossmargin.display import rounded_repr

if TYPE_CHECKING:
    from crossmargin.margin.arrays import AccountMode
    from crossmargin.portfolio.engine import PortfolioMarginResult


@rounded_repr
@dataclass(frozen=True)
class LevelFigures:
    """Weighted assets and liabilities at one margin level (init or maint), USD."""

    weighted_assets_usd: float
    weighted_liabilities_usd: float

    @property
    def health_usd(self) -> float:
        """Health = weighted assets - weighted liabilities, USD."""
        return self.weighted_assets_usd - self.weighted_liabilities_usd

    @property
    def health_ratio(self) -> float:
        """Weighted assets / weighted liabilities; ``inf`` with no liabilities.

        With Aave's liquidation thresholds as maint asset weights this is Aave's health factor.
        """
        if self.weighted_liabilities_usd <= 0.0:
            return math.inf
        return self.weighted_assets_usd / self.weighted_liabilities_usd

    def to_dict(self) -> dict[str, float | None]:
        ratio = self.health_ratio
        return {
            "health_usd": self.health_usd,
            "weighted_assets_usd": self.weighted_assets_usd,
            "weighted_liabilities_usd": self.weighted_liabilities_usd,
            "health_ratio": None if math.isinf(ratio) else ratio,
        }


@rounded_repr
@dataclass(frozen=True)
class LiquidationPrice:
    """Prices of one asset at which maint health crosses zero, other prices fixed.

    ``below_usd`` is the nearest such price under the current one, ``above_usd`` the nearest
    above; ``None`` where health never crosses zero in that direction.
    """

    asset: str
    price_usd: float
    below_usd: float | None
    above_usd: float | None

    @property
    def nearest_usd(self) -> float | None:
        """The crossing closest to the current price (relative move), or ``None``."""
        candidates = [p for p in (self.below_usd, self.above_usd) if p is not None]
        if not candidates:
            return None
        return min(candidates, key=lambda p: abs(math.log(max(p, 1e-300) / self.price_usd)))

    def to_dict(self) -> dict[str, float | None]:
        return {
            "price_usd": self.price_usd,
            "below_usd": self.below_usd,
            "above_usd": self.above_usd,
            "nearest_usd": self.nearest_usd,
        }


@rounded_repr
@dataclass(frozen=True)
class BucketMargin:
    """Margin of one margin group: a cross account, or an isolated bucket."""

    name: str
    equity_usd: float
    init: LevelFigures
    maint: LevelFigures
    liquidation_prices: dict[str, LiquidationPrice] = field(default_factory=dict)

    @property
    def liquidatable(self) -> bool:
        """Liquidatable iff maint health < 0."""
        return self.maint.health_usd < 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "equity_usd": self.equity_usd,
            "init": self.init.to_dict(),
            "maint": self.maint.to_dict(),
            "liquidatable": self.liquidatable,
            "liquidation_prices": {k: v.to_dict() for k, v in self.liquidation_prices.items()},
        }


@rounded_repr
@dataclass(frozen=True)
class AccountMargin:
    """Margin of one account; ``buckets`` has one entry (cross) or one per isolated bucket."""

    account_id: str
    mode: AccountMode
    equity_usd: float
    init: LevelFigures
    maint: LevelFigures
    liquidatable: bool
    liquidation_prices: dict[str, LiquidationPrice]
    buckets: tuple[BucketMargin, ...]
    #: mode portfolio: the scenario-grid result (WA = mark-to-market, WL = its requirement)
    portfolio: PortfolioMarginResult | None = None

    @property
    def can_open_risk(self) -> bool:
        """A withdrawal or new position is allowed iff init health >= 0 after it."""
        return all(b.init.health_usd >= 0.0 for b in self.buckets)

    def to_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "mode": self.mode,
            "equity_usd": self.equity_usd,
            "init": self.init.to_dict(),
            "maint": self.maint.to_dict(),
            "liquidatable": self.liquidatable,
            "liquidation_prices": {k: v.to_dict() for k, v in self.liquidation_prices.items()},
            "buckets": [b.to_dict() for b in self.buckets] if self.mode == "isolated" else [],
            "portfolio": None if self.portfolio is None else self.portfolio.to_dict(False),
        }


@rounded_repr
@dataclass(frozen=True)
class Contribution:
    """One row's share of a bucket's health at one level, USD.

    Balances: + weighted value of a deposit, - weighted value of a borrow. Positions: weighted PnL
    minus margin requirement; under ``settle_netted`` the same amount already sits in the settle
    asset's row (shown for information, not to be added again).
    """

    account_id: str
    bucket: str
    kind: str  # "balance" or "position"
    name: str  # asset or market symbol
    qty: float
    contribution_usd: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "bucket": self.bucket,
            "kind": self.kind,
            "name": self.name,
            "qty": self.qty,
            "contribution_usd": self.contribution_usd,
        }


@rounded_repr
@dataclass(frozen=True)
class Trade:
    """A hypothetical trade of ``qty`` (signed) in ``market`` at ``price`` (default: the mark)."""

    market: str
    qty: float
    price: float | None = None


@rounded_repr
@dataclass(frozen=True)
class WhatIf:
    """An account before and after a hypothetical change."""

    before: AccountMargin
    after: AccountMargin
    blocked: tuple[str, ...] = ()  # oracle states that forbid the change, with reasons

    @property
    def allowed(self) -> bool:
        """Allowed iff init health >= 0 after the change (in every bucket) and no price the
        change adds risk on is degraded or halted."""
        return self.after.can_open_risk and not self.blocked

    def to_dict(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "blocked": list(self.blocked),
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
        }


@rounded_repr
@dataclass(frozen=True)
class CapitalComparison:
    """Capital (USD at weight 1) an account must add to pass the init check, per margin mode."""

    account_id: str
    isolated_required_usd: float
    cross_required_usd: float
    collateral_usd: float
    #: capital the account's risk ties up at init, equity - init health (cross pool)
    cross_requirement_usd: float = 0.0
    #: scenario-grid portfolio margin (the account's profile, default generic): capital to add,
    #: and the IM requirement (MTM - margin); ``None`` for an account without positions or one
    #: that portfolio margin cannot take (a borrowed underlying)
    portfolio_required_usd: float | None = None
    portfolio_requirement_usd: float | None = None

    @property
    def freed_usd(self) -> float:
        """Capital that cross-collateralization frees: isolated - cross requirement."""
        return self.isolated_required_usd - self.cross_required_usd

    @property
    def cross_to_isolated(self) -> float | None:
        """Cross requirement / isolated requirement (``None`` when isolated needs nothing)."""
        if self.isolated_required_usd <= 0.0:
            return None
        return self.cross_required_usd / self.isolated_required_usd

    def to_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "isolated_required_usd": self.isolated_required_usd,
            "cross_required_usd": self.cross_required_usd,
            "freed_usd": self.freed_usd,
            "cross_to_isolated": self.cross_to_isolated,
            "collateral_usd": self.collateral_usd,
            "cross_requirement_usd": self.cross_requirement_usd,
            "portfolio_required_usd": self.portfolio_required_usd,
            "portfolio_requirement_usd": self.portfolio_requirement_usd,
        }
