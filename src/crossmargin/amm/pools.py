r"""AMM pools in float64 for the margin engine: constant product and concentrated liquidity.

Both pools trade a *base* token (token0, e.g. ETH) against a *quote* token (token1, e.g. USDC);
the price is quote per base in human units. :meth:`swap` takes a signed base quantity - ``> 0``
sells base into the pool, ``< 0`` buys base out of it - and returns what the trader receives
in quote (negative: pays), the base actually filled (less when liquidity runs out) and the pool
after the trade. Pools are immutable values.

* :class:`ConstantProductPool` - :math:`x y = k` with a fee on the input (Uniswap v2,
  ``UniswapV2Library.getAmountOut``: :math:`\Delta y = \frac{\Delta x (1-f) y}{x + \Delta x
  (1-f)}`; ``getAmountIn``: :math:`\Delta x = \frac{x \Delta y}{(y - \Delta y)(1-f)}`).
* :class:`ConcentratedPool` - Uniswap v3: liquidity :math:`L` constant between initialized
  ticks, price :math:`1.0001^{tick}`; within a range :math:`\Delta x = L(1/\sqrt{P_a} -
  1/\sqrt{P_b})`, :math:`\Delta y = L(\sqrt{P_b} - \sqrt{P_a})`, the fee :math:`f` taken from
  the input. The same step as :func:`crossmargin.amm.v3math.compute_swap_step` without rounding
  (the exact-integer path :mod:`crossmargin.amm.v3pool` is the reference it is tested against).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from crossmargin.errors import InputError
from crossmargin.margin.arrays import FloatArray

#: the tick range of Uniswap v3 (prices 1.0001^tick)
MIN_TICK = -887_272
MAX_TICK = 887_272
TICK_BASE = 1.0001


def price_at_tick(tick: float) -> float:
    """Quote per base at a tick: ``1.0001^tick``."""
    return float(TICK_BASE**tick)


def tick_at_price(price: float) -> float:
    """The (fractional) tick of a price: ``log(price) / log(1.0001)``."""
    return math.log(price) / math.log(TICK_BASE)


class SwapVenue(Protocol):
    """Anything that trades base for quote at a moving price: pools, a simulated book."""

    @property
    def price(self) -> float: ...

    def swap(self, base_qty: float) -> Swap: ...

    def with_price(self, price: float) -> SwapVenue: ...


@dataclass(frozen=True)
class Swap:
    """Result of a swap, trader's side: quote received (< 0 paid), base filled (signed like the
    request), fee paid (in the input token) and the pool after."""

    quote_usd: float
    base_filled: float
    fee: float
    pool: SwapVenue


def _check_fee(fee_frac: float) -> None:
    if not (math.isfinite(fee_frac) and 0.0 <= fee_frac < 1.0):
        raise InputError("fee_frac", fee_frac, "must be a finite number in [0, 1)")


@dataclass(frozen=True)
class ConstantProductPool:
    """Reserves ``base_qty`` x ``quote_qty`` = k, fee on the input (0.003 = Uniswap v2)."""

    base_qty: float
    quote_qty: float
    fee_frac: float = 0.003

    def __post_init__(self) -> None:
        for name in ("base_qty", "quote_qty"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise InputError(name, value, "reserves must be finite numbers > 0")
        _check_fee(self.fee_frac)

    @property
    def price(self) -> float:
        """Marginal price, quote per base: y / x."""
        return self.quote_qty / self.base_qty

    def swap(self, base_qty: float) -> Swap:
        """Sell (``> 0``) or buy (``< 0``) ``|base_qty|`` base; a buy is capped below the
        reserve (the whole reserve would cost infinitely much)."""
        x, y, keep = self.base_qty, self.quote_qty, 1.0 - self.fee_frac
        if base_qty >= 0.0:
            effective = base_qty * keep
            out = effective * y / (x + effective)
            after = ConstantProductPool(x + base_qty, y - out, self.fee_frac)
            return Swap(out, base_qty, base_qty * self.fee_frac, after)
        wanted = min(-base_qty, x * (1.0 - 1e-9))
        cost = x * y / (x - wanted) - y  # quote that must enter after the fee
        paid = cost / keep
        after = ConstantProductPool(x - wanted, y + paid, self.fee_frac)
        return Swap(-paid, -wanted, paid - cost, after)

    def with_price(self, price: float) -> ConstantProductPool:
        """The pool moved to ``price`` along its curve (an arbitrageur's trade, no fee)."""
        k = self.base_qty * self.quote_qty
        return replace(self, base_qty=math.sqrt(k / price), quote_qty=math.sqrt(k * price))

    def value_usd(self, base_usd: float, quote_usd: float = 1.0) -> float:
        """Reserves at outside prices, USD."""
        return self.base_qty * base_usd + self.quote_qty * quote_usd


@dataclass(frozen=True)
class ConcentratedPool:
    """Uniswap v3 liquidity: initialized ticks with their ``liquidity_net``, the price and the
    active liquidity (in human units: ``L = sqrt(x y)`` of a full-range position)."""

    ticks: tuple[int, ...]
    liquidity_net: tuple[float, ...]
    sqrt_price: float
    liquidity: float
    fee_frac: float = 0.003

    def __post_init__(self) -> None:
        _check_fee(self.fee_frac)
        if len(self.ticks) != len(self.liquidity_net):
            raise InputError("ticks", len(self.ticks), "one liquidity_net per tick")
        previous = MIN_TICK - 1
        for tick in self.ticks:
            if not MIN_TICK <= tick <= MAX_TICK:
                raise InputError("ticks", tick, f"must be in [{MIN_TICK}, {MAX_TICK}]")
            if tick <= previous:
                raise InputError("ticks", tick, f"out of order: not above the tick {previous}")
            previous = tick
        if not (math.isfinite(self.sqrt_price) and self.sqrt_price > 0.0):
            raise InputError("sqrt_price", self.sqrt_price, "must be a finite number > 0")
        if not (math.isfinite(self.liquidity) and self.liquidity >= 0.0):
            raise InputError("liquidity", self.liquidity, "must be a finite number >= 0")

    @staticmethod
    def from_ranges(
        ranges: list[tuple[int, int, float]], price: float, fee_frac: float = 0.003
    ) -> ConcentratedPool:
        """A pool of positions ``(tick_lower, tick_upper, liquidity)`` at ``price``."""
        net: dict[int, float] = {}
        for i, (lower, upper, liquidity) in enumerate(ranges):
            if lower >= upper:
                raise InputError(f"ranges[{i}].tick_lower", lower, f"must be below {upper}")
            if not (math.isfinite(liquidity) and liquidity > 0.0):
                raise InputError(f"ranges[{i}].liquidity", liquidity, "must be > 0")
            net[lower] = net.get(lower, 0.0) + liquidity
            net[upper] = net.get(upper, 0.0) - liquidity
        ticks = sorted(net)
        return ConcentratedPool.from_table(ticks, [net[t] for t in ticks], price, fee_frac)

    @staticmethod
    def from_table(
        ticks: list[int], liquidity_net: list[float], price: float, fee_frac: float = 0.003
    ) -> ConcentratedPool:
        """A pool from a tick-liquidity table (ticks strictly increasing, nets summing to 0,
        the running liquidity never negative) at ``price``."""
        if not (math.isfinite(price) and price > 0.0):
            raise InputError("price", price, "must be a finite number > 0")
        running, scale = 0.0, max((abs(v) for v in liquidity_net), default=1.0)
        for tick, value in zip(ticks, liquidity_net, strict=True):
            if not math.isfinite(value):
                raise InputError(f"liquidity_net[{tick}]", value, "must be a finite number")
            running += value
            if running < -1e-9 * scale:
                raise InputError(f"liquidity_net[{tick}]", value, "liquidity below zero")
        if abs(running) > 1e-9 * scale:
            raise InputError("liquidity_net", running, "nets must sum to 0 (every range closed)")
        sqrt_price = math.sqrt(price)
        active = sum(
            v for t, v in zip(ticks, liquidity_net, strict=True) if price_at_tick(t) <= price
        )
        return ConcentratedPool(
            tuple(ticks), tuple(liquidity_net), sqrt_price, max(active, 0.0), fee_frac
        )

    @property
    def price(self) -> float:
        return self.sqrt_price**2

    def _sqrt_at(self, index: int) -> float:
        return math.sqrt(price_at_tick(self.ticks[index]))

    def swap(self, base_qty: float) -> Swap:
        """Sell (``> 0``, token0 in) or buy (``< 0``, exact token0 out) base across ticks."""
        selling = base_qty >= 0.0
        sqrt_p, liquidity, fee = self.sqrt_price, self.liquidity, self.fee_frac
        sqrts = [self._sqrt_at(i) for i in range(len(self.ticks))]
        cursor = bisect_right(sqrts, sqrt_p) - 1 if selling else bisect_right(sqrts, sqrt_p)
        remaining, quote, fees = abs(base_qty), 0.0, 0.0
        while remaining > 0.0 and 0 <= cursor < len(sqrts):
            target = sqrts[cursor]
            if liquidity > 0.0:
                if selling:  # base in: the price falls toward the target
                    reach = liquidity * (1.0 / target - 1.0 / sqrt_p)  # base in, net of fee
                    net_in = remaining * (1.0 - fee)
                    nxt = (
                        target
                        if net_in >= reach
                        else (liquidity * sqrt_p / (liquidity + net_in * sqrt_p))
                    )
                    base_in = reach if nxt == target else net_in
                    remaining -= base_in / (1.0 - fee) if nxt == target else remaining
                    fees += base_in * fee / (1.0 - fee)
                    quote += liquidity * (sqrt_p - nxt)
                else:  # base out: the price rises toward the target
                    reach = liquidity * (1.0 / sqrt_p - 1.0 / target)
                    nxt = (
                        target
                        if remaining >= reach
                        else (liquidity * sqrt_p / (liquidity - remaining * sqrt_p))
                    )
                    remaining -= reach if nxt == target else remaining
                    cost = liquidity * (nxt - sqrt_p) / (1.0 - fee)
                    fees += cost * fee
                    quote -= cost
                sqrt_p = nxt
                if nxt != target:
                    break
            else:
                sqrt_p = target
            liquidity += -self.liquidity_net[cursor] if selling else self.liquidity_net[cursor]
            liquidity = max(liquidity, 0.0)
            cursor += -1 if selling else 1
        filled = abs(base_qty) - max(remaining, 0.0)
        after = replace(self, sqrt_price=sqrt_p, liquidity=liquidity)
        return Swap(quote, filled if selling else -filled, fees, after)

    def with_price(self, price: float) -> ConcentratedPool:
        """The pool moved to ``price`` with the active liquidity there (an arbitrageur's
        trade, no fee)."""
        sqrt_p = math.sqrt(price)
        active = sum(
            v
            for t, v in zip(self.ticks, self.liquidity_net, strict=True)
            if price_at_tick(t) <= price
        )
        return replace(self, sqrt_price=sqrt_p, liquidity=max(active, 0.0))

    def reserves(self) -> tuple[float, float]:
        """Real token amounts held by the pool: (base, quote) summed over its ranges."""
        base = quote = 0.0
        active = 0.0
        sqrts = [self._sqrt_at(i) for i in range(len(self.ticks))]
        for i in range(len(sqrts) - 1):
            active += self.liquidity_net[i]
            lo, hi = sqrts[i], sqrts[i + 1]
            if active <= 0.0:
                continue
            s = min(max(self.sqrt_price, lo), hi)
            base += active * (1.0 / s - 1.0 / hi)
            quote += active * (s - lo)
        return base, quote


Pool = ConstantProductPool | ConcentratedPool


def sell_curve(pool: Pool, sizes: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Average fill price and slippage (fraction below the pool's price) of selling each size
    of base from the same starting pool: the depth profile a dynamic haircut reads."""
    average = np.empty_like(sizes)
    for i, size in enumerate(sizes):
        result = pool.swap(float(size))
        average[i] = result.quote_usd / result.base_filled if result.base_filled > 0 else pool.price
    return average, 1.0 - average / pool.price


def build_pool(spec: Any, base_dir: Path | None = None) -> Pool:
    """The pool a book's ``pools:`` entry describes (:mod:`crossmargin.amm.schema`)."""
    from crossmargin.amm.schema import ConcentratedSpec

    if isinstance(spec, ConcentratedSpec):
        ticks, nets = spec.table(base_dir)
        return ConcentratedPool.from_table(ticks, nets, spec.price, spec.fee_frac)
    return ConstantProductPool(spec.base_qty, spec.quote_qty, spec.fee_frac)


def arbitrage_to(pool: Pool, price: float, iterations: int = 200) -> tuple[SwapVenue, float, float]:
    """An arbitrageur trades the pool back to an outside ``price`` (paying the pool's fee):
    returns (pool after, base bought from the pool (< 0: sold to it), quote paid (< 0:
    received)). The trader's gain at the outside price is ``base x price - quote``."""
    if not (math.isfinite(price) and price > 0.0):
        raise InputError("price", price, "must be a finite number > 0")
    buying = price > pool.price
    lo, hi = 0.0, (pool.reserves()[0] if isinstance(pool, ConcentratedPool) else pool.base_qty)
    if not buying:  # selling base: the most that is ever needed moves the price below target
        hi = max(hi, 1.0)
        while pool.swap(hi).pool.price > price and hi < 1e30:
            hi *= 2.0
    for _ in range(iterations):  # bisection on the size that lands on the target price
        mid = 0.5 * (lo + hi)
        after = pool.swap(-mid if buying else mid).pool.price
        if (after < price) if buying else (after > price):
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-15 * max(hi, 1.0):
            break
    size = lo
    swap = pool.swap(-size if buying else size)
    return swap.pool, -swap.base_filled, -swap.quote_usd
