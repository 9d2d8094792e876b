r"""Calibration: the loosest margin parameters whose bad-debt VaR stays under a target.

Two knobs, a **margin scale** :math:`s` and a **haircut scale** :math:`s_h` (by default
:math:`s_h = s`: one knob on every risk parameter of the market):

* margin fractions (and bracket fractions) of perps and futures: :math:`f' = \min(1, s f)`;
* haircuts: asset weights :math:`w' = \max(0, 1 - s_h(1 - w))`, liability weights
  :math:`w' = 1 + s_h(w - 1)`.

For each :math:`s` (or each :math:`(s, s_h)` of a two-dimensional grid) the same generated
positions and collateral have their cash set so that each account's init health is exactly 0:
fully used margin, the book a venue must survive; the **capital required** is the equity they
then post (USD). Then the same price paths (common random numbers) run the fast cascade
(:class:`CascadeConfig` with ``model="closeout"``) and give the **bad-debt VaR99**. The
recommendation is the parameter set with the least capital whose VaR99 <= the target; the
frontier is the (capital, VaR99) curve over the grid, each point flagged ``efficient`` when no
other point has both less capital and a lower VaR99 (Pareto). This is the capital-efficiency /
insolvency-risk trade-off that Gauntlet and Chaos Labs report for lending
markets, computed in the open on our kernel.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from crossmargin.book.schema import Book, OptionMarket
from crossmargin.errors import InputError
from crossmargin.margin.arrays import INIT, FloatArray, compile_market
from crossmargin.margin.kernel import evaluate_groups
from crossmargin.simulation.cascade import CascadeConfig
from crossmargin.simulation.executors import Executor
from crossmargin.simulation.generate import GeneratedBook
from crossmargin.simulation.montecarlo import run_monte_carlo, var_es

DEFAULT_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0)


@dataclass(frozen=True)
class FrontierPoint:
    scale: float  # of margin fractions (and of haircuts unless haircut_scale differs)
    capital_required_usd: float
    bad_debt_var99_usd: float
    bad_debt_es99_usd: float
    prob_bad_debt: float
    haircut_scale: float | None = None  # None: the same as ``scale``
    efficient: bool = True  # no other grid point has less capital and a lower VaR99

    @property
    def label(self) -> str:
        """``1.5`` for one knob, ``m1.5/h2`` for a margin and a haircut scale."""
        if self.haircut_scale is None or self.haircut_scale == self.scale:
            return f"{self.scale:g}"
        return f"m{self.scale:g}/h{self.haircut_scale:g}"

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "label": self.label}


@dataclass(frozen=True)
class Calibration:
    target_var99_usd: float
    frontier: list[FrontierPoint]
    recommended: FrontierPoint | None  # None: no scale on the grid meets the target

    def to_dict(self) -> dict[str, Any]:
        return {
            "target_var99_usd": self.target_var99_usd,
            "recommended": None if self.recommended is None else self.recommended.to_dict(),
            "frontier": [p.to_dict() for p in self.frontier],
        }


def scaled_market(market: Book, scale: float, haircut_scale: float | None = None) -> Book:
    """``market`` with every margin fraction scaled by ``scale`` and every haircut by
    ``haircut_scale`` (default: ``scale``) (module docstring)."""
    if not (np.isfinite(scale) and scale > 0.0):
        raise InputError("scale", scale, "must be a finite number > 0")
    h = scale if haircut_scale is None else haircut_scale
    if not (np.isfinite(h) and h > 0.0):
        raise InputError("haircut_scale", h, "must be a finite number > 0")
    assets: dict[str, Any] = {}
    for symbol, asset in market.assets.items():
        update: dict[str, float] = {}
        for name in ("init_asset_weight", "maint_asset_weight"):
            w = getattr(asset, name)
            if w is not None:
                update[name] = max(0.0, 1.0 - h * (1.0 - w))
        for name in ("init_liab_weight", "maint_liab_weight"):
            w = getattr(asset, name)
            if w is not None:
                update[name] = 1.0 + h * (w - 1.0)
        assets[symbol] = asset.model_copy(update=update)
    markets: dict[str, Any] = {}
    for symbol, m in market.markets.items():
        if isinstance(m, OptionMarket):
            markets[symbol] = m
            continue
        brackets = [
            b.model_copy(
                update={
                    "initial_margin_frac": min(1.0, scale * b.initial_margin_frac),
                    "maint_margin_frac": min(1.0, scale * b.maint_margin_frac),
                }
            )
            for b in m.brackets
        ]
        markets[symbol] = m.model_copy(
            update={
                "initial_margin_frac": min(1.0, scale * m.initial_margin_frac),
                "maint_margin_frac": min(1.0, scale * m.maint_margin_frac),
                "brackets": brackets,
            }
        )
    data = market.model_dump()
    data["assets"] = {k: v.model_dump() for k, v in assets.items()}
    data["markets"] = {k: v.model_dump() for k, v in markets.items()}
    return Book.model_validate(data)


def funded_under(
    generated: GeneratedBook, market: Book, cash_asset: str = "USDC"
) -> tuple[GeneratedBook, float]:
    r"""The generated positions and non-cash collateral under another market's parameters, with
    each account's cash set so that its init health is exactly 0 (fully used margin, the
    account a venue must survive); returns the book and the capital posted (sum of equity, USD).

    Cash ``c`` (USD) counts :math:`\varphi(c) = w^A c` when positive and :math:`w^L c` when
    negative (a borrow): the new cash solves :math:`\varphi(c') = \varphi(c) - H_{init}`.
    """
    tables = compile_market(market)
    cash = tables.asset_id(cash_asset, "cash_asset")
    w_asset, w_liab = tables.asset_weight[INIT, cash], tables.liab_weight[INIT, cash]
    if w_asset <= 0.0:
        raise InputError("cash_asset", cash_asset, "has no init asset weight")
    if tables.tier_count[cash] or tables.asset_imf[cash]:
        raise InputError("cash_asset", cash_asset, "must have no collateral tiers or imf")
    book = GeneratedBook(
        market, tables, generated.balance_qty.copy(), generated.position_qty, generated.entry_settle
    )
    wa, wl, _ = evaluate_groups(tables, book.to_arrays(), INIT)
    price = tables.price_usd[cash]
    c = book.balance_qty[:, cash] * price
    phi = np.where(c >= 0.0, w_asset * c, w_liab * c) - (wa - wl)
    book.balance_qty[:, cash] = np.where(phi >= 0.0, phi / w_asset, phi / w_liab) / price
    _, _, equity = evaluate_groups(tables, book.to_arrays(), INIT)
    return book, float(equity.sum())


def calibrate(
    generated: GeneratedBook,
    log_returns: FloatArray,
    target_var99_usd: float,
    scales: Sequence[float] = DEFAULT_SCALES,
    config: CascadeConfig | None = None,
    executor: Executor | None = None,
    progress: Callable[[int], None] | None = None,
    haircut_scales: Sequence[float] | None = None,
) -> Calibration:
    """Scan ``scales`` (with ``haircut_scales``: the grid ``scales x haircut_scales``) (module
    docstring); ``log_returns`` are the shared paths."""
    if not (np.isfinite(target_var99_usd) and target_var99_usd >= 0.0):
        raise InputError("--target-var99", target_var99_usd, "must be a finite number >= 0")
    if not scales:
        raise InputError("--scales", [], "needs at least one scale")
    if haircut_scales is not None and not haircut_scales:
        raise InputError("--haircut-scales", [], "needs at least one scale")
    config = (config or CascadeConfig()).model_copy(update={"model": "closeout"})
    haircuts: list[float | None] = (
        [None] if haircut_scales is None else [float(h) for h in sorted(haircut_scales)]
    )
    grid = [(float(s), h) for s in sorted(scales) for h in haircuts]
    points = []
    for scale, haircut in grid:
        market = scaled_market(generated.market, scale, haircut)
        book, capital = funded_under(generated, market)
        mc = run_monte_carlo(book.tables, book.to_arrays(), log_returns, config, executor)
        var, es = var_es(mc.bad_debt_usd, 0.99)
        points.append(
            FrontierPoint(
                scale=scale,
                capital_required_usd=capital,
                bad_debt_var99_usd=var,
                bad_debt_es99_usd=es,
                prob_bad_debt=float((mc.bad_debt_usd > 0.0).mean()),
                haircut_scale=haircut,
            )
        )
        if progress is not None:
            progress(1)
    points = [replace(p, efficient=not _dominated(p, points)) for p in points]
    feasible = [p for p in points if p.bad_debt_var99_usd <= target_var99_usd]
    recommended = min(feasible, key=lambda p: p.capital_required_usd) if feasible else None
    return Calibration(target_var99_usd, points, recommended)


def _dominated(p: FrontierPoint, points: Sequence[FrontierPoint]) -> bool:
    """Another point needs no more capital and has no higher VaR99, one of them strictly."""
    return any(
        q.capital_required_usd <= p.capital_required_usd
        and q.bad_debt_var99_usd <= p.bad_debt_var99_usd
        and (
            q.capital_required_usd < p.capital_required_usd
            or q.bad_debt_var99_usd < p.bad_debt_var99_usd
        )
        for q in points
    )
