r"""Hedge suggestions: the delta-neutral perp trade per underlying, and the trade that maximizes
stressed maint health within a trade-size budget.

* **Delta hedge.** The kernel's delta of equity in each asset's log return,
  :math:`\delta_a = \partial E/\partial r_a` (USD; collateral, borrows, perps, futures and
  options together, :func:`crossmargin.risk.var.sensitivities`), is neutralized with one perp
  (else dated future) whose delta per unit is its mark :math:`M_m` (USD):
  :math:`x_m = -\sum_{a \to m} \delta_a / M_m`. An asset without a market of its own (a
  staked token) is hedged on the market of its alias or proxy (its return source). Of several
  markets on one underlying the one with the lowest maint margin fraction is used (the
  smallest margin for the same delta).
* **Budget hedge.** Trades :math:`x` in those markets maximizing the stressed maint health
  :math:`H_\alpha(x)`, the mean of the worst :math:`1-\alpha` share of maint health over the
  scenarios (full revaluation), subject to :math:`\sum_m |x_m| M_m \le B` (USD notional):
  ``scipy.optimize.minimize`` (SLSQP, smooth :math:`|x| \approx \sqrt{x^2+\epsilon^2}`), started
  from no trade and from the delta hedge scaled into the budget; the best point wins.

Before and after: health, liquidation prices (:meth:`MarginEngine.what_if`, trades filled at
the mark) and 1-day VaR of equity and health over the same scenarios.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import optimize

from crossmargin.book.schema import Book, FutureMarket, PerpMarket
from crossmargin.display import rounded_repr
from crossmargin.errors import InputError
from crossmargin.locations.schema import LOCATED_SEP, base_asset
from crossmargin.margin.arrays import compile_market
from crossmargin.margin.engine import MarginEngine, apply_changes
from crossmargin.margin.kernel import market_marks_usd
from crossmargin.margin.results import AccountMargin, Trade
from crossmargin.risk.returns import (
    MissingReturnsError,
    ReturnData,
    ReturnMapping,
    map_assets,
    mapped_returns,
)
from crossmargin.risk.revalue import ScenarioRevaluer
from crossmargin.risk.var import sensitivities, var_es

FloatArray = npt.NDArray[np.float64]

DEFAULT_CONFIDENCE = 0.99
#: without return data: moves of every non-stable asset together (with their mirrors)
UNIFORM_MOVES = (-0.05, -0.1, -0.2, -0.3)


@rounded_repr
@dataclass(frozen=True)
class HedgeState:
    """An account's figures with some trades applied (none: the account as it is)."""

    trades: tuple[Trade, ...]
    maint_health_usd: float
    init_health_usd: float
    stressed_health_usd: float  # mean of the worst (1 - confidence) maint health, scenarios
    equity_var_usd: float
    health_var_usd: float
    liquidation_prices: dict[str, float | None]  # nearest, by asset
    delta_usd: dict[str, float]  # equity delta per asset's log return

    def to_dict(self) -> dict[str, Any]:
        return {
            "trades": [{"market": t.market, "qty": t.qty} for t in self.trades],
            "maint_health_usd": self.maint_health_usd,
            "init_health_usd": self.init_health_usd,
            "stressed_health_usd": self.stressed_health_usd,
            "equity_var_usd": self.equity_var_usd,
            "health_var_usd": self.health_var_usd,
            "liquidation_prices": self.liquidation_prices,
            "delta_usd": self.delta_usd,
        }


@rounded_repr
@dataclass(frozen=True)
class HedgePlan:
    """Before, the delta hedge, and (with a budget) the budget hedge."""

    account_id: str
    confidence: float
    budget_usd: float | None
    before: HedgeState
    delta_hedge: HedgeState
    budget_hedge: HedgeState | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "confidence": self.confidence,
            "budget_usd": self.budget_usd,
            "before": self.before.to_dict(),
            "delta_hedge": self.delta_hedge.to_dict(),
            "budget_hedge": None if self.budget_hedge is None else self.budget_hedge.to_dict(),
        }


def hedge_market(book: Book, asset: str) -> str | None:
    """The perp (else future) on ``asset`` with the lowest maint margin fraction, or None."""
    best: tuple[int, float, str] | None = None
    for name, market in book.markets.items():
        if market.underlying != asset or not isinstance(market, PerpMarket | FutureMarket):
            continue
        key = (0 if isinstance(market, PerpMarket) else 1, market.maint_margin_frac, name)
        if best is None or key < best:
            best = key
    return None if best is None else best[2]


def _mark_usd(book: Book) -> dict[str, float]:
    tables = compile_market(book)
    return dict(zip(tables.market_symbols, market_marks_usd(tables).tolist(), strict=True))


def delta_hedge_trades(
    book: Book, revaluer: ScenarioRevaluer, mapping: ReturnMapping | None = None
) -> list[Trade]:
    """Trades that zero the equity delta of every risk factor (see the module docstring)."""
    from crossmargin.risk.stress import builtin_scenarios

    aliases = builtin_scenarios().aliases
    delta = sensitivities(revaluer).equity_delta
    marks = _mark_usd(book)
    source = dict(zip(mapping.assets, mapping.column, strict=True)) if mapping else {}
    qty: dict[str, float] = {}
    for k, symbol in enumerate(revaluer.asset_symbols):
        if source.get(symbol, 0) < 0 or abs(delta[k]) < 1e-9 * max(1.0, revaluer.base_equity_usd):
            continue  # a stablecoin, or no exposure
        market = hedge_market(book, symbol)
        if market is None:
            # the same risk factor: assets sharing its return column, else its alias
            peers = [a for a, c in source.items() if c == source.get(symbol) and a != symbol]
            peers += [aliases[symbol]] if symbol in aliases else []
            peers += [base_asset(symbol)] if base_asset(symbol) != symbol else []  # ETH@arb
            for peer in peers:
                market = hedge_market(book, peer)
                if market is not None:
                    break
        if market is None:
            continue
        qty[market] = qty.get(market, 0.0) - float(delta[k]) / marks[market]
    return [Trade(m, q) for m, q in qty.items() if q != 0.0]


def _tail_mean(values: FloatArray, confidence: float) -> float:
    k = max(1, math.ceil(round(values.size * (1.0 - confidence), 9)))
    return float(np.partition(values, k - 1)[:k].mean())


def _state(
    book: Book,
    engine: MarginEngine,
    account_id: str,
    trades: Sequence[Trade],
    scenarios: FloatArray,
    confidence: float,
    symbols: tuple[str, ...],
) -> HedgeState:
    what_if = engine.what_if(account_id, list(trades))
    after: AccountMargin = what_if.after
    account = apply_changes(book, book.account(account_id), list(trades), {})
    if any(LOCATED_SEP in s for s in account.balances):  # every lot of an asset moves together
        from crossmargin.locations.liqprice import joint_liquidation_prices
        from crossmargin.locations.view import compiled_view

        moved = [account if a.id == account_id else a for a in book.accounts]
        view = compiled_view(book.model_copy(update={"accounts": moved}))
        after = joint_liquidation_prices(view, MarginEngine(view.book), [after])[0]
    revaluer = ScenarioRevaluer.from_book(book, account)
    r = _columns_for(revaluer, scenarios, symbols)
    out = revaluer.revalue(r)
    delta = sensitivities(revaluer).equity_delta
    return HedgeState(
        trades=tuple(trades),
        maint_health_usd=after.maint.health_usd,
        init_health_usd=after.init.health_usd,
        stressed_health_usd=_tail_mean(out.health_usd, confidence),
        equity_var_usd=var_es(revaluer.base_equity_usd - out.equity_usd, confidence)[0],
        health_var_usd=var_es(revaluer.base_health_usd - out.health_usd, confidence)[0],
        liquidation_prices={k: v.nearest_usd for k, v in after.liquidation_prices.items()},
        delta_usd=dict(zip(revaluer.asset_symbols, delta.tolist(), strict=True)),
    )


def _columns_for(
    revaluer: ScenarioRevaluer, scenarios: FloatArray, symbols: tuple[str, ...]
) -> FloatArray:
    """Scenario columns for the revaluer's assets (an asset new to the account takes 0)."""
    out = np.zeros((scenarios.shape[0], revaluer.n_assets))
    for k, symbol in enumerate(revaluer.asset_symbols):
        if symbol in symbols:
            out[:, k] = scenarios[:, symbols.index(symbol)]
    return out


def suggest_hedges(
    book: Book,
    account_id: str,
    scenarios: FloatArray,
    symbols: Sequence[str],
    *,
    budget_usd: float | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
    mapping: ReturnMapping | None = None,
) -> HedgePlan:
    """Delta hedge and budget hedge of one account.

    ``scenarios[S, len(symbols)]`` are 1-day log returns of ``symbols`` (every asset the
    account and its hedge markets touch; a missing one is held at its price).
    """
    if budget_usd is not None and not (math.isfinite(budget_usd) and budget_usd > 0.0):
        raise InputError("budget_usd", budget_usd, "must be a finite number > 0")
    names = tuple(symbols)
    r = np.asarray(scenarios, dtype=np.float64)
    if r.ndim != 2 or r.shape[1] != len(names) or r.shape[0] < 20:
        raise InputError("scenarios", r.shape, f"need [>= 20, {len(names)}] log returns")
    engine = MarginEngine(book)
    revaluer = ScenarioRevaluer.from_book(book, account_id)
    before = _state(book, engine, account_id, [], r, confidence, names)
    hedge = delta_hedge_trades(book, revaluer, mapping)
    delta_state = _state(book, engine, account_id, hedge, r, confidence, names)
    budget_state = None
    if budget_usd is not None:
        trades = _optimize_budget(book, account_id, hedge, r, names, budget_usd, confidence)
        budget_state = _state(book, engine, account_id, trades, r, confidence, names)
    return HedgePlan(account_id, confidence, budget_usd, before, delta_state, budget_state)


def _optimize_budget(
    book: Book,
    account_id: str,
    delta_trades: list[Trade],
    scenarios: FloatArray,
    names: tuple[str, ...],
    budget_usd: float,
    confidence: float,
) -> list[Trade]:
    """Trades in the delta-hedge markets maximizing stressed health within the budget."""
    if not delta_trades:
        return []
    markets = [t.market for t in delta_trades]
    marks_all = _mark_usd(book)
    marks = np.array([marks_all[m] for m in markets])
    account = book.account(account_id)
    eps = 1e-6 * budget_usd

    def stressed(x: FloatArray) -> float:
        trades = [Trade(m, float(q)) for m, q in zip(markets, x, strict=True) if q != 0.0]
        changed = apply_changes(book, account, trades, {})
        revaluer = ScenarioRevaluer.from_book(book, changed, chunk=scenarios.shape[0])
        out = revaluer.revalue(_columns_for(revaluer, scenarios, names))
        return _tail_mean(out.health_usd, confidence)

    scale = max(abs(stressed(np.zeros(len(markets)))), 1.0)

    def objective(x: FloatArray) -> float:
        return -stressed(x) / scale

    def budget_left(x: FloatArray) -> float:
        return float(budget_usd - np.sum(np.sqrt(x * x + (eps / marks) ** 2) * marks)) / budget_usd

    full = np.array([t.qty for t in delta_trades])
    notional = float(np.sum(np.abs(full) * marks))
    scaled = full * min(1.0, 0.999 * budget_usd / notional) if notional > 0 else full
    bounds = [(-budget_usd / mk, budget_usd / mk) for mk in marks]
    candidates = [np.zeros(len(markets)), scaled]
    for start in (np.zeros(len(markets)), scaled):
        result = optimize.minimize(
            objective,
            start,
            method="SLSQP",
            bounds=bounds,
            constraints=[{"type": "ineq", "fun": budget_left}],
            options={"maxiter": 60, "ftol": 1e-9, "eps": 1e-4 * float(np.min(budget_usd / marks))},
        )
        candidates.append(np.asarray(result.x, dtype=np.float64))
    feasible = [x for x in candidates if float(np.sum(np.abs(x) * marks)) <= budget_usd * 1.0001]
    best = max(feasible, key=stressed)
    return [Trade(m, float(q)) for m, q in zip(markets, best, strict=True) if abs(q) > 1e-12]


def hedge_scenarios(
    book: Book,
    account_id: str,
    data: ReturnData | None,
    proxies: dict[str, str] | None = None,
) -> tuple[FloatArray, tuple[str, ...], ReturnMapping | None, str]:
    """Scenarios for :func:`suggest_hedges`: ``(returns, symbols, mapping, label)``.

    With return ``data``: the historical 1-day returns of every book asset that has a series
    (the account's own assets must have one: :class:`MissingReturnsError` otherwise). Without:
    the shipped stress scenarios and uniform moves of every non-stable asset
    (:data:`UNIFORM_MOVES`), with their mirror images (a documented fallback; the "VaR" is then
    a quantile over those few scenarios).
    """
    revaluer = ScenarioRevaluer.from_book(book, account_id)
    if data is None:
        from crossmargin.risk.stress import builtin_scenarios

        library = builtin_scenarios()
        symbols = tuple(book.assets)
        rows = []
        for name in library.scenarios:
            prices = library.prices(book, name)
            rows.append([math.log(prices[s] / book.assets[s].price) for s in symbols])
        risky = np.array(
            [base_asset(s) not in library.stablecoins for s in symbols], dtype=np.float64
        )
        for move in UNIFORM_MOVES:
            rows.append((math.log1p(move) * risky).tolist())
        scen = np.array(rows)
        return np.vstack([scen, -scen]), symbols, None, "stress scenarios, uniform moves, mirrors"
    map_assets(revaluer.asset_symbols, data, proxies)  # the account's assets must map
    usable = []
    for symbol in book.assets:
        try:
            map_assets([symbol], data, proxies)
        except MissingReturnsError:
            continue
        usable.append(symbol)
    mapping = map_assets(usable, data, proxies)
    return mapped_returns(data, mapping), tuple(usable), mapping, "historical returns"
