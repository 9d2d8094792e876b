"""Liquidation prices of an asset held at several locations: all its lots move together.

The margin engine's search moves one asset id at a time, so for a compiled book it would move
``ETH`` and hold ``ETH@arbitrum`` fixed. Here the multiplier ``m`` scales the base asset and
every located / in-flight symbol of it at once, and the account's maint health - from the
kernel, via :meth:`MarginEngine.evaluate` - is searched for its sign change: a log-spaced grid
down to ``1e-6 x`` and up to ``1e6 x`` brackets the first crossing, bisection refines it to
``1e-12`` relative. Cross accounts only (an isolated account keeps the engine's per-symbol
figures).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import replace

import numpy as np

from crossmargin.locations.view import LocatedView
from crossmargin.margin.arrays import MAINT
from crossmargin.margin.engine import MarginEngine
from crossmargin.margin.results import AccountMargin, LiquidationPrice

_DOWN = np.geomspace(1.0, 1e-6, 64)[1:]
_UP = np.geomspace(1.0, 1e6, 64)[1:]


def _health(
    engine: MarginEngine,
    view: LocatedView,
    account_id: str,
    base: str,
    prices: Mapping[str, float],
    mult: float,
) -> float:
    moved = dict(prices)
    base_price = prices.get(base, view.book.assets[base].price)
    for symbol in [base, *(s for s, b in view.base_of.items() if b == base)]:
        moved[symbol] = base_price * mult
    result = engine.evaluate([view.book.account(account_id)], prices=moved)
    return float(result.health[MAINT].sum())


def _crossing(
    health: Callable[[float], float], h0: float, grid: np.ndarray[tuple[int], np.dtype[np.float64]]
) -> float | None:
    """The first multiplier on ``grid`` where health changes sign, refined by bisection."""
    previous = 1.0
    for m in grid:
        h = health(float(m))
        if (h < 0.0) != (h0 < 0.0):
            lo, hi = previous, float(m)
            for _ in range(200):
                mid = math.sqrt(lo * hi)
                if (health(mid) < 0.0) != (h0 < 0.0):
                    hi = mid
                else:
                    lo = mid
                if abs(hi / lo - 1.0) < 1e-12:
                    break
            return hi
        previous = float(m)
    return None


def joint_crossings(
    view: LocatedView,
    engine: MarginEngine,
    account_id: str,
    base: str,
    prices: Mapping[str, float] | None = None,
) -> tuple[float | None, float | None]:
    """``(below_usd, above_usd)``: the prices of ``base`` at which the account's maint health
    changes sign when every lot of it (home, located, in flight) moves together (None: no
    crossing in ``[1e-6, 1e6] x`` the price)."""
    given = dict(prices or {})
    h0 = _health(engine, view, account_id, base, given, 1.0)

    def health(m: float) -> float:
        return _health(engine, view, account_id, base, given, m)

    price = given.get(base, view.book.assets[base].price)
    below, above = _crossing(health, h0, _DOWN), _crossing(health, h0, _UP)
    return (
        None if below is None else below * price,
        None if above is None else above * price,
    )


def joint_liquidation_prices(
    view: LocatedView,
    engine: MarginEngine,
    reports: list[AccountMargin],
    prices: Mapping[str, float] | None = None,
) -> list[AccountMargin]:
    """Reports whose located assets' liquidation prices move every lot of the asset together
    (the located symbols' own entries are dropped)."""
    if not view.base_of:
        return reports
    given = dict(prices or {})
    out = []
    for report in reports:
        account = view.book.account(report.account_id)
        located = [s for s in account.balances if s in view.base_of]
        if report.mode != "cross" or not located:
            out.append(report)
            continue
        figures = dict(report.liquidation_prices)
        for symbol in located:
            figures.pop(symbol, None)
        for base in sorted({view.base_of[s] for s in located}):
            below, above = joint_crossings(view, engine, report.account_id, base, given)
            if below is None and above is None:
                figures.pop(base, None)
                continue
            figures[base] = LiquidationPrice(
                asset=base,
                price_usd=given.get(base, view.book.assets[base].price),
                below_usd=below,
                above_usd=above,
            )
        buckets = tuple(replace(b, liquidation_prices=figures) for b in report.buckets)
        out.append(replace(report, liquidation_prices=figures, buckets=buckets))
    return out
