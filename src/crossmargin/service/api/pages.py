"""The risk desk in a browser: the dashboard's static files (HTML, CSS, vanilla JS, no CDN).

``/`` redirects to ``/dashboard/``; ``/dashboard/...`` serves the files of
``crossmargin/service/static`` without a key (the page logs in with an API key and sends it
as ``X-API-Key`` on every data request). The page is a single-page app with hash routes
(``#/overview``, ``#/accounts``, ``#/account/ID``, ``#/risk``, ``#/admin``) over the JSON API
and the WebSocket stream. Register with ``app.include_router(pages.router)`` (or
``mount_pages(app)``).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, RedirectResponse, Response

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
}

# Everything comes from this origin: no CDN, no inline script, no third-party connection.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


def static_file(relative: str) -> Path | None:
    """The file under :data:`STATIC_DIR` named by ``relative``; None if it does not exist,
    is not one of the served types or would leave the directory."""
    if not relative or relative.endswith("/"):
        relative += "index.html"
    if "\\" in relative or "\x00" in relative or len(relative) > 200:
        return None
    root = STATIC_DIR.resolve()
    try:
        path = (root / relative).resolve()
    except (OSError, ValueError):
        return None
    if path.parent != root and root not in path.parents:
        return None
    if path.suffix not in MEDIA_TYPES or not path.is_file():
        return None
    return path


@router.api_route("/", methods=["GET", "HEAD"])
def root() -> RedirectResponse:
    """The dashboard."""
    return RedirectResponse("/dashboard/", status_code=307)


@router.api_route("/dashboard", methods=["GET", "HEAD"])
def dashboard_root() -> RedirectResponse:
    return RedirectResponse("/dashboard/", status_code=307)


@router.api_route("/dashboard/{relative:path}", methods=["GET", "HEAD"])
def dashboard_file(relative: str) -> Response:
    """A static file of the dashboard (no key needed; the data behind it needs one)."""
    path = static_file(relative)
    if path is None:
        return Response(
            '{"error": "path: no such file of the dashboard"}',
            status_code=404,
            media_type="application/json",
        )
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=SECURITY_HEADERS)


def mount_pages(app: FastAPI) -> None:
    """Serve the dashboard from ``app`` (same as ``app.include_router(router)``)."""
    app.include_router(router)
