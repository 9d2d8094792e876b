"""The system view, the journal, assets and markets, and risk parameters (admin)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from crossmargin.service.api.deps import (
    AdminDep,
    AdminOrOracleDep,
    CoreDep,
    KeyDep,
    PrincipalDep,
    require,
)
from crossmargin.service.api.models import AssetPatch

router = APIRouter(prefix="/v1", tags=["system"])


@router.get("/system", dependencies=[require("admin", "auditor")])
def system(core: CoreDep) -> dict[str, Any]:
    """Insurance fund, fees, socialized losses, bad debt, open interest, status counts, oracle
    states and the ten accounts nearest liquidation."""
    with core.lock:
        return core.system_summary()


@router.get("/events", dependencies=[require("admin", "auditor")])
def events(
    core: CoreDep,
    # a sequence number is a 64-bit integer in SQLite and PostgreSQL: larger is a 422, not a 500
    after_seq: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    newest_first: bool = False,
    with_changes: bool = False,
) -> dict[str, Any]:
    """The journal after ``after_seq`` (the tape: margin calls, liquidations, movements);
    ``newest_first`` for the latest events; the row changes only with ``with_changes``."""
    found = core.ledger.events(
        after_seq,
        limit,
        kinds=[kind] if kind else None,
        newest_first=newest_first,
        with_changes=with_changes,
    )
    return {"events": found}


@router.get("/assets")
def assets(core: CoreDep, principal: PrincipalDep) -> dict[str, Any]:
    """Assets with their current risk parameters and live prices."""
    with core.lock:
        book = core.market_book
        return {
            "assets": {
                s: {**json.loads(a.model_dump_json()), "price_usd": float(core.price_usd[k])}
                for k, (s, a) in enumerate(book.assets.items())
            }
        }


@router.get("/markets")
def markets(core: CoreDep, principal: PrincipalDep) -> dict[str, Any]:
    with core.lock:
        return {
            "markets": {
                s: json.loads(m.model_dump_json()) for s, m in core.market_book.markets.items()
            }
        }


@router.patch("/assets/{symbol}")
def patch_asset(
    symbol: str,
    body: AssetPatch,
    core: CoreDep,
    key: KeyDep,
    response: Response,
    principal: AdminDep,
) -> dict[str, Any]:
    """Change an asset's risk parameters (a versioned parameter event; every account
    re-margined at once)."""
    patch = body.model_dump(exclude_none=True)
    committed = core.set_asset_params(symbol, patch, key, principal.name)
    if committed.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return {"seq": committed.seq, **committed.result}


class FundingIn(BaseModel):
    """A funding payment: a fraction of each position's notional, longs pay when > 0."""

    model_config = ConfigDict(extra="forbid")

    rate_frac: Annotated[float, Field(ge=-0.1, le=0.1, allow_inf_nan=False, strict=True)]


@router.post("/markets/{market}/funding", status_code=201)
def funding(
    market: str,
    body: FundingIn,
    core: CoreDep,
    key: KeyDep,
    response: Response,
    principal: AdminOrOracleDep,
) -> dict[str, Any]:
    """Apply a funding payment to every position of ``market`` (admin or oracle)."""
    committed = core.apply_funding(market, body.rate_frac, key, principal.name)
    if committed.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return {"seq": committed.seq, **committed.result}
