"""Prices: the oracle role pushes quotes; anyone with a key reads the oracle states."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter

from crossmargin.errors import InputError
from crossmargin.service.api.deps import CoreDep, PrincipalDep, require
from crossmargin.service.api.models import Quotes
from crossmargin.service.ticks import Tick

router = APIRouter(prefix="/v1/prices", tags=["prices"])
MAX_FUTURE_S = 5.0  # a quote from the future is a broken clock, not a fresh price


@router.post("", dependencies=[require("oracle", "admin")])
def push_prices(body: Quotes, core: CoreDep) -> dict[str, Any]:
    """Push quotes; each goes through the oracle layer (staleness, outliers, confidence, jumps)
    and the accounts exposed to a moved asset are re-margined before the answer returns.
    Rejected quotes are listed with their reasons (the request itself succeeds)."""
    now = time.time()
    ticks = []
    for n, quote in enumerate(body.quotes):
        stamp = now if quote.timestamp_s is None else quote.timestamp_s
        if stamp > now + MAX_FUTURE_S:
            raise InputError(f"quotes[{n}].timestamp_s", stamp, "is in the future")
        if quote.asset not in core.market_book.assets:
            raise InputError(f"quotes[{n}].asset", quote.asset, "unknown asset")
        ticks.append(Tick(quote.asset, quote.source, quote.price_usd, quote.confidence_usd, stamp))
    return core.ingest(ticks, now)


@router.get("")
def oracle_states(core: CoreDep, principal: PrincipalDep) -> dict[str, Any]:
    """Every asset's oracle state, aggregated price, confidence, stable and margin price."""
    with core.lock:
        return {"assets": core.oracle_view()}
