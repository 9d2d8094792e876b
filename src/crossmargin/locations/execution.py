r"""Liquidation where the collateral is: an execution model over located symbols.

For a symbol of :class:`~crossmargin.locations.view.LocatedView` (``ETH@arbitrum``):

* at a **halted** location, or **in flight**: nothing fills - the collateral is stranded (it
  keeps its zero credit and stays in the owner's equity);
* at an open or delayed location: the order executes on that location's depth - its
  ``depth_pool`` if the book names one, else the inner model's depth for the base asset - and
  the proceeds come home at the transfer cost: the average price is
  :math:`p (1 - c^{frac}) (1 - d) - c^{fixed} / |q|` for a sale (a buy pays the costs on top),
  with :math:`d` the price risk of the transfer delay when the asset's volatility is given:
  :math:`d = 1 - e^{-z \sigma \sqrt{f / 365}}` over the finality :math:`f` in days at the
  confidence of ``delay_confidence`` (the lognormal move of :func:`crossmargin.haircuts.
  dynamic.price_risk`, the same price risk the dynamic haircuts charge).

Home symbols go to the inner model unchanged. A remote lot with the same credit as a local one
therefore gains the same health at a higher cost, and the engine - which chooses by health
gained per USD of cost - sells the local lot first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from crossmargin.amm.pools import SwapVenue
from crossmargin.liquidation.execution import ExecutionModel, OracleTransfer
from crossmargin.locations.schema import IN_FLIGHT_SEP
from crossmargin.locations.view import LP_LOCATION, LocatedView, location_of
from crossmargin.margin.arrays import FloatArray


@dataclass(frozen=True)
class LocatedExecution:
    """Route each located symbol to its location's depth; strand halted and in-flight lots."""

    view: LocatedView
    inner: ExecutionModel = field(default_factory=OracleTransfer)
    pools: Mapping[str, SwapVenue] = field(default_factory=dict)  # by pool name
    quote_usd: float = 1.0
    volatility_annual: Mapping[str, float] = field(default_factory=dict)  # by base asset
    delay_confidence: float = 0.99

    def delay_frac(self, base: str, finality_s: float) -> float:
        """Price risk of waiting ``finality_s`` for the proceeds (0 without a volatility)."""
        sigma = self.volatility_annual.get(base)
        if sigma is None or finality_s <= 0.0:
            return 0.0
        from crossmargin.haircuts.dynamic import price_risk

        down, _ = price_risk(sigma, finality_s / 86_400.0, self.delay_confidence)
        return down

    def fill(
        self, symbol: str, qty: FloatArray, reference_usd: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        where = self.view.where.get(symbol)
        if where is None:
            return self.inner.fill(symbol, qty, reference_usd)
        if where == LP_LOCATION:  # liquidity withdrawn, the tokens sold at home
            return self.inner.fill(self.view.base_of[symbol], qty, reference_usd)
        if IN_FLIGHT_SEP in where:
            return np.zeros_like(qty), reference_usd.copy()
        location = location_of(self.view.source, where)
        if location.state == "halted":
            return np.zeros_like(qty), reference_usd.copy()
        base = self.view.base_of[symbol]
        pool = self.pools.get(location.depth_pool or "")
        if pool is not None:
            from crossmargin.amm.execution import AmmExecution

            filled, price = AmmExecution({base: pool}, quote_usd=self.quote_usd).fill(
                base, qty, reference_usd
            )
        else:
            filled, price = self.inner.fill(base, qty, reference_usd)
        size = np.abs(filled)
        fixed = np.divide(
            location.transfer_cost_usd, size, out=np.zeros_like(size), where=size > 0.0
        )
        delay = self.delay_frac(base, location.effective_finality_s)
        keep = (1.0 - location.transfer_cost_frac) * (1.0 - delay)
        sale = price * keep - fixed
        purchase = price / keep + fixed
        return filled, np.where(filled >= 0.0, sale, purchase)


def execution_for(
    view: LocatedView,
    base_dir: Path | None = None,
    shocks: Mapping[str, float] | None = None,
    inner: ExecutionModel | None = None,
) -> LocatedExecution | None:
    """The located execution of a compiled book, with the book's pools as the depth of the
    locations that name one; ``None`` when the book has nothing located.

    ``shocks`` (``{"ETH": -0.3}``, the moves the liquidation applies to the oracle) move each
    pool of a shocked base asset along its curve to ``pool price x (1 + move)`` first: before a
    liquidation trades, arbitrageurs have already carried the shock into the pool (without it a
    pool would still quote the pre-crash price and liquidations would sell above the oracle).
    ``inner`` executes the home symbols (the book's ``depth:`` section; oracle price without).
    """
    if not view.where:
        return None
    from crossmargin.amm.pools import build_pool

    moves = dict(shocks or {})
    pools: dict[str, SwapVenue] = {}
    for name, spec in view.source.pools.items():
        pool: SwapVenue = build_pool(spec, base_dir)
        move = moves.get(spec.base)
        if move is not None:
            pool = pool.with_price(pool.price * (1.0 + move))
        pools[name] = pool
    if inner is None:
        return LocatedExecution(view, pools=pools)
    return LocatedExecution(view, inner=inner, pools=pools)
