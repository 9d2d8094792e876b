"""Errors as HTTP answers: one line naming the field and the value, never a traceback."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from crossmargin.errors import CrossmarginError, InputError, UnknownNameError, _short_repr
from crossmargin.service.core import Refused
from crossmargin.service.ledger import IdempotencyConflict


class NotFound(CrossmarginError):
    """An id the caller may not see or that does not exist (the same answer for both)."""

    def __init__(self, what: str, value: str) -> None:
        self.what = what
        super().__init__(f"{what}: no {what} with this id (got {_short_repr(value)})")


_PLAIN_PART = re.compile(r"^[A-Za-z0-9_.\[\]-]{1,64}$")


def _loc_part(part: object) -> str:
    """One step of a validation error's location; a caller's odd key (a newline, 10 kB of
    text) is shown quoted and shortened so the answer stays one line."""
    text = str(part)
    return text if _PLAIN_PART.match(text) else _short_repr(text)


def _answer(status: int, error: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": error, **extra}, status_code=status)


def install(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _answer(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        if first.get("type") == "json_invalid":
            reason = (first.get("ctx") or {}).get("error", "invalid JSON")
            at = first.get("loc", ("body", "?"))[-1]
            return _answer(422, f"body: not valid JSON ({reason} at character {at})", field="body")
        where = ".".join(_loc_part(p) for p in first.get("loc", ()) if p != "body") or "body"
        value = first.get("input", None)
        message = str(first.get("msg", "invalid")).replace("\n", " ")
        return _answer(422, f"{where}: {message} (got {_short_repr(value)})", field=where)

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return _answer(404, str(exc))

    @app.exception_handler(UnknownNameError)
    async def _unknown(_: Request, exc: UnknownNameError) -> JSONResponse:
        return _answer(404, str(exc), field=exc.field)

    @app.exception_handler(Refused)
    async def _refused(_: Request, exc: Refused) -> JSONResponse:
        return _answer(422, str(exc), field=exc.field, reason=exc.reason, **exc.detail)

    @app.exception_handler(IdempotencyConflict)
    async def _conflict(_: Request, exc: IdempotencyConflict) -> JSONResponse:
        return _answer(409, str(exc), field="Idempotency-Key")

    @app.exception_handler(InputError)
    async def _input(_: Request, exc: InputError) -> JSONResponse:
        return _answer(400, str(exc), field=exc.field)

    @app.exception_handler(CrossmarginError)
    async def _other(_: Request, exc: CrossmarginError) -> JSONResponse:
        return _answer(400, str(exc).splitlines()[0][:300])
