"""Portfolio-file models of AMM pools (issue #17): ``pools:`` in the book.

A pool is described by its reserves (constant product) or by liquidity per tick range, as
ranges or as a tick-liquidity table inline or in a CSV (``tick,liquidity_net``, relative to
the book file). Ticks are in human price units: price = 1.0001^tick, quote per base.

.. code-block:: yaml

    pools:
      eth-v2: {kind: constant_product, base: ETH, quote: USDC, base_qty: 1000, quote_qty: 3.0e6}
      eth-v3: {kind: concentrated, base: ETH, quote: USDC, price: 3000, fee_pips: 3000,
               ranges: [{tick_lower: 78000, tick_upper: 82020, liquidity: 5.0e4}]}
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from crossmargin.errors import FieldValueError, InputError

MIN_TICK = -887_272
MAX_TICK = 887_272
#: fee tiers of Uniswap v3 (pips: hundredths of a basis point) and their tick spacings
FEE_TIER_SPACING: dict[int, int] = {100: 1, 500: 10, 3000: 60, 10_000: 200}
RESERVE_MAX = 1e18
LIQUIDITY_MAX = 1e24


def _bounded(*, ge: float | None = None, gt: float | None = None, le: float | None = None) -> Any:
    return Field(strict=True, allow_inf_nan=False, ge=ge, gt=gt, le=le)


Tick = Annotated[int, Field(strict=True, ge=MIN_TICK, le=MAX_TICK)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class _PoolBase(_Model):
    base: str = Field(description="Asset sold into the pool (token0), e.g. ETH.")
    quote: str = Field("USDC", description="Asset paid out (token1), e.g. USDC.")


def _reserve(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FieldValueError(name, value, "must be a number")
    if not (math.isfinite(value) and 0 < value <= RESERVE_MAX):
        raise FieldValueError(name, value, f"reserves must be > 0 and at most {RESERVE_MAX:g}")


class ConstantProductSpec(_PoolBase):
    """x y = k with a fee on the input (Uniswap v2: 0.003)."""

    kind: Literal["constant_product"]
    base_qty: float
    quote_qty: float
    fee_frac: Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0, lt=1)] = 0.003

    @model_validator(mode="before")
    @classmethod
    def _check_reserves(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name in ("base_qty", "quote_qty"):
                if name in data:
                    _reserve(name, data[name])
        return data


class TickRange(_Model):
    tick_lower: Tick
    tick_upper: Tick
    liquidity: Annotated[float, _bounded(gt=0, le=LIQUIDITY_MAX)]


class ConcentratedSpec(_PoolBase):
    """Uniswap v3: liquidity per tick range (``ranges``), or a table of initialized ticks
    (``ticks`` / ``liquidity_net`` inline, or ``ticks_csv``), at ``price`` (quote per base)."""

    kind: Literal["concentrated"]
    price: Annotated[float, _bounded(gt=0, le=1e12)]
    fee_pips: Literal[100, 500, 3000, 10_000] = 3000
    ranges: list[TickRange] = Field(default_factory=list)
    ticks: list[Tick] = Field(default_factory=list)
    liquidity_net: list[Annotated[float, _bounded(ge=-LIQUIDITY_MAX, le=LIQUIDITY_MAX)]] = Field(
        default_factory=list
    )
    ticks_csv: str | None = Field(None, description="CSV tick,liquidity_net; relative path.")

    @property
    def fee_frac(self) -> float:
        return self.fee_pips / 1_000_000

    @model_validator(mode="after")
    def _check_table(self) -> Self:
        given = sum(bool(x) for x in (self.ranges, self.ticks, self.ticks_csv))
        if given != 1:
            raise FieldValueError("ranges", given, "give exactly one of ranges, ticks, ticks_csv")
        spacing = FEE_TIER_SPACING[self.fee_pips]
        for i, r in enumerate(self.ranges):
            if r.tick_lower >= r.tick_upper:
                raise FieldValueError(
                    f"ranges[{i}].tick_lower", r.tick_lower, f"must be below {r.tick_upper}"
                )
            for name in ("tick_lower", "tick_upper"):
                if getattr(r, name) % spacing:
                    raise FieldValueError(
                        f"ranges[{i}].{name}", getattr(r, name), f"not a multiple of {spacing}"
                    )
        if self.ticks:
            check_tick_table(self.ticks, self.liquidity_net)
        return self

    def table(self, base_dir: Path | None = None) -> tuple[list[int], list[float]]:
        """(ticks, liquidity_net), from whichever form was given."""
        if self.ranges:
            net: dict[int, float] = {}
            for r in self.ranges:
                net[r.tick_lower] = net.get(r.tick_lower, 0.0) + r.liquidity
                net[r.tick_upper] = net.get(r.tick_upper, 0.0) - r.liquidity
            ticks = sorted(net)
            return ticks, [net[t] for t in ticks]
        if self.ticks:
            return list(self.ticks), list(self.liquidity_net)
        assert self.ticks_csv is not None
        path = Path(self.ticks_csv)
        return read_tick_csv(path if base_dir is None or path.is_absolute() else base_dir / path)


def check_tick_table(ticks: list[int], liquidity_net: list[float]) -> None:
    """Ticks strictly increasing, one net per tick, the running liquidity never negative and
    the nets summing to 0; a one-line :class:`FieldValueError` otherwise."""
    if len(ticks) != len(liquidity_net):
        raise FieldValueError(
            "liquidity_net", len(liquidity_net), f"need one per tick ({len(ticks)})"
        )
    running = 0.0
    scale = max((abs(v) for v in liquidity_net), default=1.0)
    for i, (tick, value) in enumerate(zip(ticks, liquidity_net, strict=True)):
        if i and tick <= ticks[i - 1]:
            raise FieldValueError(f"ticks[{i}]", tick, f"out of order: not above {ticks[i - 1]}")
        running += value
        if running < -1e-9 * scale:
            raise FieldValueError(f"liquidity_net[{i}]", value, "liquidity below zero")
    if abs(running) > 1e-9 * scale:
        raise FieldValueError("liquidity_net", running, "must sum to 0 (every range closed)")


def read_tick_csv(path: Path) -> tuple[list[int], list[float]]:
    """A ``tick,liquidity_net`` CSV (header row), validated like an inline table."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError("ticks_csv", str(path), f"cannot read: {exc.strerror}") from None
    ticks: list[int] = []
    nets: list[float] = []
    rows = list(csv.reader(text.splitlines()))
    if not rows or [c.strip() for c in rows[0]] != ["tick", "liquidity_net"]:
        raise InputError("ticks_csv", str(path), "header must be tick,liquidity_net")
    for line, row in enumerate(rows[1:], start=2):
        try:
            tick, net = int(row[0]), float(row[1])
        except (ValueError, IndexError):
            raise InputError(
                f"ticks_csv:{line}", row, "need an integer tick and a number"
            ) from None
        if not (MIN_TICK <= tick <= MAX_TICK and math.isfinite(net)):
            raise InputError(f"ticks_csv:{line}", row, "tick out of range or net not finite")
        ticks.append(tick)
        nets.append(net)
    try:
        check_tick_table(ticks, nets)
    except FieldValueError as exc:
        raise InputError(f"ticks_csv.{exc.subfield}", exc.value, exc.reason) from None
    return ticks, nets


def _pool_kind(value: Any) -> str | None:
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return kind if isinstance(kind, str) else None


PoolSpec = Annotated[
    Annotated[ConstantProductSpec, Tag("constant_product")]
    | Annotated[ConcentratedSpec, Tag("concentrated")],
    Discriminator(
        _pool_kind,
        custom_error_type="pool_kind",
        custom_error_message="Input tag (kind) must be 'constant_product' or 'concentrated'",
    ),
]


class LPPositionSpec(_Model):
    """An account's Uniswap v3 LP position in a ``concentrated`` pool of the book, credited at
    its value with its own haircut (crossmargin.amm.lp)."""

    pool: str
    tick_lower: Tick
    tick_upper: Tick
    liquidity: Annotated[float, _bounded(gt=0, le=LIQUIDITY_MAX)]
    haircut_frac: Annotated[float, _bounded(ge=0, le=1)] = 0.1

    @model_validator(mode="after")
    def _check_range(self) -> Self:
        if self.tick_lower >= self.tick_upper:
            raise FieldValueError("tick_lower", self.tick_lower, f"must be below {self.tick_upper}")
        return self


def check_pool_references(
    pools: dict[str, Any], assets: set[str], lp: list[tuple[str, list[LPPositionSpec]]]
) -> None:
    """Pools trade known assets; LP positions name a concentrated pool of the book."""
    from crossmargin.errors import UnknownNameError

    for name, spec in pools.items():
        for side in ("base", "quote"):
            if getattr(spec, side) not in assets:
                raise UnknownNameError(f"pools.{name}.{side}", getattr(spec, side), "unknown asset")
    for where, positions in lp:
        for i, position in enumerate(positions):
            spec = pools.get(position.pool)
            if not isinstance(spec, ConcentratedSpec):
                raise UnknownNameError(
                    f"{where}.lp_positions[{i}].pool", position.pool, "not a concentrated pool"
                )
