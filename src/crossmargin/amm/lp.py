r"""A Uniswap v3 LP position: holdings, value, delta and gamma as functions of the price.

A position of liquidity :math:`L` on :math:`[P_a, P_b]` (quote per base) holds, at price
:math:`P` (whitepaper eqs. 6.29-6.30, the real reserves of one range):

.. math::

    x = L \left(\frac{1}{\sqrt{\max(P, P_a) \wedge P_b}} - \frac{1}{\sqrt{P_b}}\right), \qquad
    y = L \left(\sqrt{\min(P, P_b) \vee P_a} - \sqrt{P_a}\right)

base and quote; its value is :math:`V = x P + y`, its delta :math:`\partial V / \partial P = x`
(the terms from moving reserves cancel: the pool trades at its own marginal price) and its
gamma :math:`\partial^2 V / \partial P^2 = -L / (2 P^{3/2})` inside the range, 0 outside: an
LP is **short gamma** - it sells base as the price rises and buys it as it falls, so any move
loses against holding the starting reserves (impermanent loss).

As collateral the position is credited at its value with its own haircut (:attr:`LPPosition.
haircut_frac`); :func:`gamma_loss_usd` is the second-order loss of a move, which the haircut
should cover over the liquidation horizon.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from crossmargin.amm.pools import price_at_tick
from crossmargin.errors import InputError


@dataclass(frozen=True)
class LPPosition:
    """Liquidity ``liquidity`` between ticks ``tick_lower`` < ``tick_upper`` (human units)."""

    tick_lower: int
    tick_upper: int
    liquidity: float
    haircut_frac: float = 0.1

    def __post_init__(self) -> None:
        if self.tick_lower >= self.tick_upper:
            raise InputError("tick_lower", self.tick_lower, f"must be below {self.tick_upper}")
        if not (math.isfinite(self.liquidity) and self.liquidity > 0.0):
            raise InputError("liquidity", self.liquidity, "must be a finite number > 0")
        if not 0.0 <= self.haircut_frac <= 1.0:
            raise InputError("haircut_frac", self.haircut_frac, "must be in [0, 1]")

    @property
    def sqrt_bounds(self) -> tuple[float, float]:
        return math.sqrt(price_at_tick(self.tick_lower)), math.sqrt(price_at_tick(self.tick_upper))

    def amounts(self, price: float) -> tuple[float, float]:
        """(base, quote) held at ``price``."""
        sa, sb = self.sqrt_bounds
        s = min(max(math.sqrt(price), sa), sb)
        return self.liquidity * (1.0 / s - 1.0 / sb), self.liquidity * (s - sa)

    def value(self, price: float) -> float:
        """Value in quote units: x P + y."""
        base, quote = self.amounts(price)
        return base * price + quote

    def delta(self, price: float) -> float:
        """dV/dP: the base held."""
        return self.amounts(price)[0]

    def gamma(self, price: float) -> float:
        """d2V/dP2: -L / (2 P^1.5) inside the range, 0 outside (short gamma)."""
        sa, sb = self.sqrt_bounds
        s = math.sqrt(price)
        return -self.liquidity / (2.0 * s**3) if sa < s < sb else 0.0


def gamma_loss_usd(position: LPPosition, price: float, move_frac: float) -> float:
    """Loss against the delta hedge over a move of ``move_frac`` x price: the exact
    ``V(P) + x dP - V(P + dP)`` (>= 0: short gamma), about ``|gamma| dP^2 / 2``."""
    moved = price * (1.0 + move_frac)
    return position.value(price) + position.delta(price) * (moved - price) - position.value(moved)
