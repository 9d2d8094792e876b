"""AMM pools as a depth source of the liquidation engine.

:class:`AmmExecution` satisfies :class:`crossmargin.liquidation.execution.ExecutionModel`:
``fill(symbol, qty, reference_usd)`` sells (``qty > 0``) or buys back (``< 0``) each order
against the symbol's pool *as it stands* (each order sees fresh depth, the contract of every
execution model; the cascade simulator moves the pool between rounds). The fill price is the
pool's average ``quote received / base sold`` times the quote asset's USD price, so the
slippage the engine books to the makers is what the pool gains at the reference price.
Symbols without a pool go to ``inner`` (default: the oracle transfer).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from crossmargin.amm.pools import SwapVenue
from crossmargin.liquidation.execution import ExecutionModel, OracleTransfer
from crossmargin.margin.arrays import FloatArray


@dataclass(frozen=True)
class AmmExecution:
    """Fill against constant-product or concentrated-liquidity pools, by symbol."""

    pools: Mapping[str, SwapVenue]
    inner: ExecutionModel = field(default_factory=OracleTransfer)
    quote_usd: float = 1.0

    def fill(
        self, symbol: str, qty: FloatArray, reference_usd: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        pool = self.pools.get(symbol)
        if pool is None:
            return self.inner.fill(symbol, qty, reference_usd)
        filled = np.zeros_like(qty)
        average = reference_usd.copy()
        for i, q in enumerate(qty):
            if q == 0.0:
                continue
            swap = pool.swap(float(q))
            filled[i] = swap.base_filled
            if swap.base_filled != 0.0:
                average[i] = swap.quote_usd / swap.base_filled * self.quote_usd
        return filled, average


@dataclass(frozen=True)
class AmmImpact:
    """A pool as the liquidity term of the dynamic haircuts: the same ``slippage_frac(qty)``
    as :class:`~crossmargin.market.liquidity.SqrtImpact`, read off the pool's curve.

    ``slippage = 1 - quote received / (|qty| x pool price)`` for selling ``|qty|`` base; a part
    the pool cannot fill counts as lost (conservative: a concentrated pool beyond its range).
    """

    pool: SwapVenue

    def slippage_frac(self, qty: float | FloatArray) -> float | FloatArray:
        sizes = np.atleast_1d(np.abs(np.asarray(qty, dtype=np.float64)))
        out = np.zeros_like(sizes)
        for i, size in enumerate(sizes):
            if size > 0.0:
                out[i] = 1.0 - self.pool.swap(float(size)).quote_usd / (size * self.pool.price)
        return float(out[0]) if np.ndim(qty) == 0 else out
