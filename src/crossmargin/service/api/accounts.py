"""Accounts: live figures, detail (liquidation prices, Greeks, portfolio margin), explain,
what-if, stress, history; and the movements of money on them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Query, Response

from crossmargin.errors import CrossmarginError
from crossmargin.margin.arrays import INIT, LEVELS, MAINT, compile_accounts
from crossmargin.margin.engine import account_margins, evaluate_arrays, explain_arrays
from crossmargin.service.api.deps import (
    CoreDep,
    KeyDep,
    PrincipalDep,
    readable_account,
    require,
)
from crossmargin.service.api.errors import NotFound
from crossmargin.service.api.models import OpenAccount, StressIn, TradeIn, Transfer, WhatIfIn
from crossmargin.service.core import MarginCore
from crossmargin.service.risk import finite_or_none, heatmap
from crossmargin.service.state import STATUS_NAMES

router = APIRouter(prefix="/v1/accounts", tags=["accounts"])

SortKey = Literal[
    "account_id",
    "equity_usd",
    "init_health_usd",
    "maint_health_usd",
    "health_ratio",
    "status",
    "leverage",
    "distance_to_liquidation_frac",
]


@router.get("")
def list_accounts(
    core: CoreDep,
    principal: PrincipalDep,
    status: Annotated[
        Literal["healthy", "margin_call", "liquidatable", "bankrupt"] | None, Query()
    ] = None,
    sort: SortKey = "maint_health_usd",
    descending: bool = False,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    q: Annotated[str | None, Query(max_length=128)] = None,
) -> dict[str, Any]:
    """Accounts the caller may see, with live figures, leverage and distance to liquidation
    (linear estimate, in % and in daily-volatility units); paged, sorted and filtered
    server-side (``q``: account-id substring)."""
    with core.lock:
        work = core.work
        dist = core.distances()
        visible = np.arange(len(work.accounts))
        if not principal.can_read_all():
            owners = np.array(work.owners, dtype=object)
            visible = visible[owners == principal.owner] if visible.size else visible
        if status is not None:
            visible = visible[work.status[visible] == STATUS_NAMES.index(status)]
        if q:
            visible = np.array([i for i in visible if q in work.accounts[i].id], dtype=np.int64)
        if sort == "account_id":
            keys = np.array([work.accounts[i].id for i in visible], dtype=object)
            order = np.argsort(keys, kind="stable")
        else:
            column = {
                "equity_usd": work.equity,
                "init_health_usd": work.init_health,
                "maint_health_usd": work.maint_health,
                "status": work.status.astype(np.float64),
                "leverage": np.nan_to_num(dist.leverage, nan=np.inf),
                "distance_to_liquidation_frac": np.nan_to_num(dist.distance_frac, nan=np.inf),
                "health_ratio": np.where(
                    work.maint_wl > 0,
                    work.maint_wa / np.where(work.maint_wl > 0, work.maint_wl, 1),
                    np.inf,
                ),
            }[sort][visible]
            order = np.argsort(column, kind="stable")
        if descending:
            order = order[::-1]
        page = visible[order][offset : offset + limit]
        rows = []
        for i in page.tolist():
            asset = int(dist.distance_asset[i])
            rows.append(
                {
                    **work.summary(i),
                    "leverage": finite_or_none(float(dist.leverage[i])),
                    "distance_to_liquidation_frac": finite_or_none(float(dist.distance_frac[i])),
                    "distance_asset": work.asset_symbols[asset] if asset >= 0 else None,
                    "distance_vol_units": finite_or_none(float(dist.distance_vol_units[i])),
                    "liquidation_probability_1d": finite_or_none(float(dist.probability_1d[i])),
                }
            )
        return {"total": int(visible.size), "offset": offset, "accounts": rows}


def _detail(core: MarginCore, i: int) -> dict[str, Any]:
    account = core.work.account_model(i)
    arrays = compile_accounts(core.tables, [account])
    report = account_margins(evaluate_arrays(core.tables, arrays))[0].to_dict()
    prices = core.tables.price_usd
    collateral = []
    for symbol, qty in account.balances.items():
        a = core.work.asset_id(symbol)
        collateral.append(
            {
                "asset": symbol,
                "qty": qty,
                "price_usd": float(prices[a]),
                "value_usd": qty * float(prices[a]),
            }
        )
    weighted = explain_arrays(core.tables, arrays, MAINT, prices)
    weighted_init = explain_arrays(core.tables, arrays, INIT, prices)
    for row in collateral:
        row["maint_weighted_usd"] = sum(
            c.contribution_usd for c in weighted if c.kind == "balance" and c.name == row["asset"]
        )
        row["init_weighted_usd"] = sum(
            c.contribution_usd
            for c in weighted_init
            if c.kind == "balance" and c.name == row["asset"]
        )
    out: dict[str, Any] = {
        **core.work.summary(i),
        "collateral": collateral,
        "balances": dict(account.balances),
        "positions": [p.model_dump() for p in account.positions],
        "margin": report,
    }
    if account.positions:
        from crossmargin.portfolio import portfolio_from_book, portfolio_greeks

        book = core.account_book(i)
        try:  # e.g. a borrowed underlying has no portfolio view: say why, keep the rest
            spec = portfolio_from_book(book, account.id)
            out["greeks"] = portfolio_greeks(spec.to_portfolio())
        except CrossmarginError as exc:
            out["greeks"] = {"error": str(exc)}
        if account.mode == "portfolio":
            from crossmargin.margin.engine import MarginEngine

            try:
                result = MarginEngine(book).portfolio_result(book.accounts[0])
                out["portfolio"] = result.to_dict(False)
            except CrossmarginError as exc:
                out["portfolio"] = {"error": str(exc)}
    return out


@router.get("/{account_id}")
def get_account(account_id: str, core: CoreDep, principal: PrincipalDep) -> dict[str, Any]:
    """Live figures, balances, positions, margin report with liquidation prices, Greeks and
    (portfolio mode) the scenario-grid breakdown."""
    with core.lock:
        i = readable_account(core, principal, account_id)
        return _detail(core, i)


@router.get("/{account_id}/explain")
def explain(
    account_id: str,
    core: CoreDep,
    principal: PrincipalDep,
    level: Literal["init", "maint"] = "maint",
) -> dict[str, Any]:
    """Each balance's and position's contribution to health at ``level`` (USD)."""
    with core.lock:
        i = readable_account(core, principal, account_id)
        arrays = compile_accounts(core.tables, [core.work.account_model(i)])
        rows = explain_arrays(core.tables, arrays, LEVELS[level], core.tables.price_usd)
        return {"level": level, "rows": [r.to_dict() for r in rows]}


@router.post("/{account_id}/what-if")
def what_if(
    account_id: str, body: WhatIfIn, core: CoreDep, principal: PrincipalDep
) -> dict[str, Any]:
    """The account before and after a hypothetical change (nothing moves): the live prices and
    the oracle's conservative valuation, through the same kernel as the live figures; a
    portfolio-mode account through its scenario grid. ``blocked`` lists the changes that add
    risk on an asset whose oracle is not healthy."""
    from crossmargin.margin.engine import MarginEngine, apply_changes
    from crossmargin.margin.results import Trade, WhatIf

    trades = [Trade(market=t.market, qty=t.qty) for t in body.trades]
    with core.lock:
        i = readable_account(core, principal, account_id)
        account = core.work.account_model(i)
        if account.mode == "portfolio":
            book = core.account_book(i)
        else:
            tables = core.tables
            for n, trade in enumerate(trades):
                core.work.market_id(trade.market, f"trades[{n}].market")
            for symbol in body.withdrawals:
                core.work.asset_id(symbol, f"withdrawals.{symbol}")
            prices = tables.prices_with(dict(body.prices))
            before = account_margins(evaluate_arrays(tables, compile_accounts(tables, [account])))
            changed = apply_changes(
                core.market_book, account, trades, dict(body.withdrawals), tables
            )
            after = account_margins(
                evaluate_arrays(tables, compile_accounts(tables, [changed]), prices)
            )
            blocked = core.what_if_blocks(account, trades, dict(body.withdrawals))
            return WhatIf(before[0], after[0], tuple(blocked)).to_dict()
    engine = MarginEngine(book)
    return engine.what_if(account_id, trades, dict(body.withdrawals), dict(body.prices)).to_dict()


@router.post("/{account_id}/stress")
def stress(
    account_id: str, body: StressIn, core: CoreDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Health after relative price moves (e.g. ETH -20 %), all else at the live prices."""
    with core.lock:
        i = readable_account(core, principal, account_id)
        prices = core.tables.price_usd.copy()
        for symbol, move in body.shocks.items():
            prices[core.work.asset_id(symbol, f"shocks.{symbol}")] *= 1.0 + move
        account = core.work.account_model(i)
        arrays = compile_accounts(core.tables, [account])
        report = account_margins(evaluate_arrays(core.tables, arrays, prices), False)[0]
    return {"shocks": dict(body.shocks), "after": report.to_dict(), "before": core.work.summary(i)}


@router.get("/{account_id}/heatmap")
def stress_heatmap(account_id: str, core: CoreDep, principal: PrincipalDep) -> dict[str, Any]:
    """Maint health (USD) over a grid of moves (-30 % .. +30 %) of the account's two largest
    exposures: rows move the first asset, columns the second."""
    with core.lock:
        i = readable_account(core, principal, account_id)
        return heatmap(core, i)


@router.get("/{account_id}/events")
def history(
    account_id: str,
    core: CoreDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """The account's journal, newest first."""
    with core.lock:
        readable_account(core, principal, account_id)
    events = core.ledger.events(
        account_id=account_id, limit=limit, newest_first=True, with_changes=False
    )
    return {"events": events}


def _movement(
    kind: str,
    account_id: str,
    body: dict[str, Any],
    core: MarginCore,
    principal: Any,
    key: str,
    response: Response,
) -> dict[str, Any]:
    i = core.work.index.get(account_id)
    allowed = i is not None and (
        principal.owns(core.work.owners[i]) or (principal.role == "admin" and kind == "deposit")
    )
    if not allowed:
        raise NotFound("account", account_id)
    committed = core.movement(kind, account_id, key, body)
    if committed.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return {"seq": committed.seq, **committed.result}


@router.post("/{account_id}/deposits", status_code=201)
def deposit(
    account_id: str,
    body: Transfer,
    core: CoreDep,
    principal: PrincipalDep,
    key: KeyDep,
    response: Response,
) -> dict[str, Any]:
    """Credit ``qty`` of ``asset`` (the owner, or an admin crediting an account)."""
    return _movement("deposit", account_id, body.model_dump(), core, principal, key, response)


@router.post("/{account_id}/withdrawals", status_code=201)
def withdraw(
    account_id: str,
    body: Transfer,
    core: CoreDep,
    principal: PrincipalDep,
    key: KeyDep,
    response: Response,
) -> dict[str, Any]:
    """Debit ``qty`` of ``asset``; refused (422) if init health would fall below 0."""
    return _movement("withdrawal", account_id, body.model_dump(), core, principal, key, response)


@router.post("/{account_id}/trades", status_code=201)
def trade(
    account_id: str,
    body: TradeIn,
    core: CoreDep,
    principal: PrincipalDep,
    key: KeyDep,
    response: Response,
) -> dict[str, Any]:
    """Trade at the mark (or a price within the band); refused (422) if it adds risk beyond
    init health 0, naming the health it would leave."""
    data = body.model_dump()
    if data["price"] is None:
        data.pop("price")
    return _movement("trade", account_id, data, core, principal, key, response)


@router.post("", status_code=201, dependencies=[require("admin")])
def open_account(
    body: OpenAccount, core: CoreDep, key: KeyDep, response: Response
) -> dict[str, Any]:
    """Open an empty account for an owner (admin)."""
    from crossmargin.book.schema import Account

    account = Account(
        id=body.id, mode=body.mode, profile=body.profile if body.mode == "portfolio" else None
    )
    committed = core.open_account(account, body.owner, key)
    if committed.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return {"seq": committed.seq, **committed.result}


@router.post("/{account_id}/liquidate", dependencies=[require("admin")])
def liquidate(account_id: str, core: CoreDep, key: KeyDep) -> dict[str, Any]:
    """Liquidate now (admin; only an account with maint health < 0)."""
    return core.liquidate_now(account_id, key)
