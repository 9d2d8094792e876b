"""Execution models: at what price, and how much of, a liquidation order fills.

Vectorized over orders: ``fill(symbol, qty, reference_usd)`` takes arrays of signed quantities
(``> 0`` sells, ``< 0`` buys back) and reference prices and returns the filled quantity (same
sign, ``|filled| <= |qty|``) and the average fill price in USD.

* :class:`OracleTransfer` - the liquidator takes the position over at the reference price
  (Mango v4, Drift v2, Aave v3): everything fills, no slippage (the bonus is a fee).
* :class:`DepthExecution` - per instrument, either an order book of levels quoted relative to
  the reference price (walked level by level: partial fills when depth runs out) or the
  square-root impact model (Almgren et al. 2005) with a participation cap.

Each order executes against fresh depth: orders of different accounts in one batch do not
consume each other's liquidity (their joint price impact is the cascade simulator's job).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from crossmargin.book.schema import Book, DepthBook
from crossmargin.errors import InputError
from crossmargin.margin.arrays import FloatArray
from crossmargin.market.liquidity import OrderBook, SqrtImpact


class ExecutionModel(Protocol):
    """Anything that fills signed quantities of an instrument around a reference price."""

    def fill(
        self, symbol: str, qty: FloatArray, reference_usd: FloatArray
    ) -> tuple[FloatArray, FloatArray]: ...


@dataclass(frozen=True)
class OracleTransfer:
    """The liquidator takes over at the reference (oracle) price; everything fills."""

    def fill(
        self, symbol: str, qty: FloatArray, reference_usd: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        return qty.copy(), reference_usd.copy()


@dataclass(frozen=True)
class RelativeBook:
    """Order-book depth relative to the reference: levels of (offset_frac, qty) per side.

    A bid at offset 0.01 sits 1 % below the reference, an ask at 0.01 1 % above. Built from an
    :class:`~crossmargin.market.liquidity.OrderBook` by :meth:`from_order_book`.
    """

    bid_offset_frac: FloatArray
    bid_qty: FloatArray
    ask_offset_frac: FloatArray
    ask_qty: FloatArray

    @staticmethod
    def from_order_book(book: OrderBook) -> RelativeBook:
        mid = book.mid
        return RelativeBook(
            bid_offset_frac=(mid - book.bids[:, 0]) / mid,
            bid_qty=book.bids[:, 1].copy(),
            ask_offset_frac=(book.asks[:, 0] - mid) / mid,
            ask_qty=book.asks[:, 1].copy(),
        )

    def fill(self, qty: FloatArray, reference_usd: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Walk the levels: filled qty and the average price (the reference where none fills)."""
        filled = np.zeros_like(qty)
        average = reference_usd.copy()
        for selling, offsets, sizes in (
            (True, self.bid_offset_frac, self.bid_qty),
            (False, self.ask_offset_frac, self.ask_qty),
        ):
            mask = qty > 0 if selling else qty < 0
            if not mask.any() or sizes.size == 0:
                continue
            wanted = np.abs(qty[mask])
            cum_qty = np.concatenate(([0.0], np.cumsum(sizes)))
            cum_offset_qty = np.concatenate(([0.0], np.cumsum(sizes * offsets)))
            take = np.minimum(wanted, cum_qty[-1])
            level = np.clip(np.searchsorted(cum_qty, take, side="left") - 1, 0, sizes.size - 1)
            partial = take - cum_qty[level]
            offset_qty = cum_offset_qty[level] + partial * offsets[level]
            mean_offset = np.divide(offset_qty, take, out=np.zeros_like(take), where=take > 0.0)
            sign = -1.0 if selling else 1.0
            filled[mask] = -take if not selling else take
            average[mask] = reference_usd[mask] * (1.0 + sign * mean_offset)
        return filled, average


@dataclass(frozen=True)
class DepthExecution:
    """Fill against depth per instrument: a relative book or the square-root impact model.

    Instruments without an entry fill completely at the reference (deep markets, stablecoins).
    ``horizon_days`` caps a square-root-impact fill at ``participation * daily volume * h``.
    """

    books: Mapping[str, RelativeBook] = field(default_factory=dict)
    impact: Mapping[str, SqrtImpact] = field(default_factory=dict)
    horizon_days: float = 1.0

    def __post_init__(self) -> None:
        both = set(self.books) & set(self.impact)
        if both:
            raise InputError("execution", sorted(both), "an instrument has a book and a model")
        if not (np.isfinite(self.horizon_days) and self.horizon_days > 0):
            raise InputError("horizon_days", self.horizon_days, "must be a finite number > 0")

    def fill(
        self, symbol: str, qty: FloatArray, reference_usd: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        book = self.books.get(symbol)
        if book is not None:
            return book.fill(qty, reference_usd)
        model = self.impact.get(symbol)
        if model is None:
            return qty.copy(), reference_usd.copy()
        cap = model.max_qty(self.horizon_days)
        filled = np.clip(qty, -cap, cap)
        slip = np.asarray(model.slippage_frac(filled), dtype=np.float64)
        average = reference_usd * (1.0 - np.sign(filled) * slip)
        return filled, average


def execution_from_book(book: Book) -> ExecutionModel:
    """The book's ``depth:`` section as an execution model (:class:`OracleTransfer` without)."""
    if not book.depth:
        return OracleTransfer()
    books: dict[str, RelativeBook] = {}
    impact: dict[str, SqrtImpact] = {}
    for name, spec in book.depth.items():
        if isinstance(spec, DepthBook):
            books[name] = RelativeBook(
                bid_offset_frac=np.array([lvl[0] for lvl in spec.bids], dtype=np.float64),
                bid_qty=np.array([lvl[1] for lvl in spec.bids], dtype=np.float64),
                ask_offset_frac=np.array([lvl[0] for lvl in spec.asks], dtype=np.float64),
                ask_qty=np.array([lvl[1] for lvl in spec.asks], dtype=np.float64),
            )
        else:
            impact[name] = SqrtImpact(
                k=spec.k,
                sigma_daily=spec.sigma_daily,
                daily_volume_qty=spec.daily_volume_qty,
                spread_frac=spec.spread_frac,
                participation_frac=spec.participation_frac,
            )
    return DepthExecution(books=books, impact=impact)
