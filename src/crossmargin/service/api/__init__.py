"""HTTP and WebSocket API of the live engine (FastAPI): :func:`create_app`."""

from crossmargin.service.api.app import create_app

__all__ = ["create_app"]
