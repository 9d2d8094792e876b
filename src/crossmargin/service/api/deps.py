"""Dependencies shared by the routers: the caller, the core, the idempotency key."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Request

from crossmargin.service.api.errors import NotFound
from crossmargin.service.auth import KeyStore, Principal
from crossmargin.service.core import MarginCore


def get_core(request: Request) -> MarginCore:
    core: MarginCore = request.app.state.core
    return core


def get_principal(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Principal:
    """The caller from ``Authorization: Bearer KEY`` or ``X-API-Key: KEY`` (401 without)."""
    key = x_api_key
    if authorization and authorization.lower().startswith("bearer "):
        key = authorization[7:].strip()
    keys: KeyStore = request.app.state.keys
    principal = keys.principal(key)
    if principal is None:
        raise HTTPException(401, "authorization: missing or unknown API key")
    return principal


def require(*roles: str) -> Any:
    """A dependency that admits only ``roles`` (403 naming the caller's role otherwise)."""

    def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if principal.role not in roles:
            raise HTTPException(403, f"role: {principal.role} may not do this")
        return principal

    return Depends(check)


AdminDep = Annotated[Principal, require("admin")]
AdminOrOracleDep = Annotated[Principal, require("admin", "oracle")]


def idempotency_key(
    principal: Annotated[Principal, Depends(get_principal)],
    idempotency_key: Annotated[str | None, Header()] = None,
) -> str:
    """The caller's key, scoped by the API key's name (two callers never collide)."""
    if not idempotency_key:
        raise HTTPException(400, "Idempotency-Key: header required for a movement of money")
    if len(idempotency_key) > 64 or not idempotency_key.isprintable():
        raise HTTPException(400, "Idempotency-Key: at most 64 printable characters")
    return f"{principal.name}:{idempotency_key}"


def readable_account(core: MarginCore, principal: Principal, account_id: str) -> int:
    """The account's index if the caller may see it; else 404 exactly like an unknown id."""
    i = core.work.index.get(account_id)
    if i is None or not (principal.can_read_all() or principal.owns(core.work.owners[i])):
        raise NotFound("account", account_id)
    return i


CoreDep = Annotated[MarginCore, Depends(get_core)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
KeyDep = Annotated[str, Depends(idempotency_key)]
