"""The FastAPI application of the live engine: routers per resource, one core, timers."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterable
from typing import Any

from fastapi import FastAPI

from crossmargin.service.api import accounts, errors, pages, prices, risk, stream, system
from crossmargin.service.auth import KeyStore
from crossmargin.service.core import MarginCore
from crossmargin.service.ticks import Tick


def create_app(
    core: MarginCore,
    feed: Iterable[list[Tick]] | None = None,
    sweep_s: float = 1.0,
    persist_s: float = 5.0,
    distances_s: float = 5.0,
) -> FastAPI:
    """The app over ``core``. ``feed`` (batches of ticks, already paced) runs in a thread;
    every ``sweep_s`` the oracle states are re-aggregated (a silent feed turns stale);
    every ``persist_s`` the live prices are saved; every ``distances_s`` the pool's distances
    to liquidation are recomputed off the writer lock."""
    stop = threading.Event()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        hub = stream.Hub(core, asyncio.get_running_loop())
        app.state.hub = hub
        unsubscribe = core.subscribe(hub.publish)
        tasks = [
            asyncio.create_task(_every(sweep_s, core.sweep)),
            asyncio.create_task(_every(persist_s, core.persist_prices)),
        ]
        tasks.append(asyncio.create_task(_every(distances_s, core.refresh_distances)))
        if core.config.dynamic_haircuts:
            tasks.append(
                asyncio.create_task(_every(core.config.haircut_interval_s, core.recompute_haircuts))
            )
        runner = None
        if feed is not None:
            runner = threading.Thread(target=_run_feed, args=(core, feed, stop), daemon=True)
            runner.start()
        try:
            yield
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
            unsubscribe()
            with contextlib.suppress(Exception):
                core.persist_prices()

    app = FastAPI(
        title="crossmargin live margin engine",
        version="1",
        description="Cross-collateralized margin, live: prices in, every exposed account "
        "re-margined, movements checked and journaled, liquidations on their own.",
        lifespan=lifespan,
    )
    app.state.core = core
    app.state.keys = KeyStore(core.engine)
    errors.install(app)
    for module in (accounts, prices, system, risk, stream, pages):
        app.include_router(module.router)

    @app.get("/v1/health", tags=["system"])
    def health() -> dict[str, Any]:
        """Liveness (no key needed)."""
        return {"ok": True, "accounts": len(core.work.accounts)}

    return app


async def _every(seconds: float, action: Any) -> None:
    while True:
        await asyncio.sleep(seconds)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(action)


def _run_feed(core: MarginCore, feed: Iterable[list[Tick]], stop: threading.Event) -> None:
    for batch in feed:
        if stop.is_set():
            return
        core.ingest(batch)
