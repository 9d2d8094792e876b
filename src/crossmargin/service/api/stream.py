"""WebSocket streams: an account's health, margin calls and liquidations, system risk, oracle
state changes.

Connect to ``/v1/stream?key=KEY`` (or send the key as ``X-API-Key``), then send
``{"subscribe": ["account:ID", "events", "system", "oracle"]}``. Each message is
``{"channel": ..., "account_id": ..., "data": {...}}``. An owner may subscribe to its own
accounts only; asking for another owner's account gets the same answer as an id that does not
exist. An owner's ``events`` carry only its own accounts' events; ``system`` is for admins and
auditors.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from crossmargin.service.auth import KeyStore, Principal
from crossmargin.service.core import MarginCore, Published

router = APIRouter(tags=["stream"])
QUEUE_LIMIT = 10_000


@dataclass(eq=False)  # hashed by identity: one entry per socket
class Connection:
    principal: Principal
    queue: asyncio.Queue[dict[str, Any]]
    accounts: set[str] = field(default_factory=set)
    channels: set[str] = field(default_factory=set)
    dropped: int = 0


class Hub:
    """Fans the core's messages out to connections (called from the writer's thread)."""

    def __init__(self, core: MarginCore, loop: asyncio.AbstractEventLoop) -> None:
        self.core = core
        self.loop = loop
        self.connections: set[Connection] = set()

    def publish(self, messages: list[Published]) -> None:
        if not self.connections:
            return
        stamp = time.time()
        for connection in list(self.connections):
            for message in messages:
                if self._wants(connection, message):
                    payload = {
                        "channel": message.channel,
                        "account_id": message.account_id,
                        "published_s": stamp,
                        "data": message.payload,
                    }
                    self.loop.call_soon_threadsafe(self._put, connection, payload)

    @staticmethod
    def _put(connection: Connection, payload: dict[str, Any]) -> None:
        if connection.queue.qsize() >= QUEUE_LIMIT:
            connection.dropped += 1  # a slow reader loses old updates, never blocks the engine
            return
        connection.queue.put_nowait(payload)

    def _wants(self, connection: Connection, message: Published) -> bool:
        if message.channel == "account":
            return message.account_id in connection.accounts
        if message.channel not in connection.channels:
            return False
        if message.channel == "events" and not connection.principal.can_read_all():
            return message.account_id in connection.accounts or self._owns(
                connection.principal, message.account_id
            )
        return True

    def _owns(self, principal: Principal, account_id: str | None) -> bool:
        if account_id is None:
            return False
        i = self.core.work.index.get(account_id)
        return i is not None and principal.owns(self.core.work.owners[i])


def _subscribe(hub: Hub, connection: Connection, names: list[Any]) -> list[str]:
    errors = []
    principal = connection.principal
    for name in names:
        if not isinstance(name, str) or len(name) > 200:
            errors.append("subscribe: each entry must be a channel name")
            continue
        if name.startswith("account:"):
            account_id = name[len("account:") :]
            i = hub.core.work.index.get(account_id)
            if i is None or not (
                principal.can_read_all() or principal.owns(hub.core.work.owners[i])
            ):
                errors.append(f"account: no account with this id (got {account_id[:80]!r})")
                continue
            connection.accounts.add(account_id)
            hub.core.watched.add(i)
        elif name in ("events", "oracle"):
            connection.channels.add(name)
        elif name == "system":
            if not principal.can_read_all():
                errors.append(f"system: role {principal.role} may not subscribe")
                continue
            connection.channels.add(name)
        else:
            errors.append(f"subscribe: unknown channel (got {name[:80]!r})")
    return errors


@router.websocket("/v1/stream")
async def stream(websocket: WebSocket) -> None:
    keys: KeyStore = websocket.app.state.keys
    hub: Hub = websocket.app.state.hub
    key = websocket.query_params.get("key") or websocket.headers.get("x-api-key")
    principal = keys.principal(key)
    if principal is None:
        await websocket.close(code=4401, reason="authorization: missing or unknown API key")
        return
    await websocket.accept()
    connection = Connection(principal, asyncio.Queue())
    hub.connections.add(connection)
    sender = asyncio.create_task(_send(websocket, connection))
    try:
        while True:
            text = await websocket.receive_text()
            try:
                request = json.loads(text)
                names = request["subscribe"]
                if not isinstance(names, list):
                    raise TypeError
            except (ValueError, KeyError, TypeError):
                await connection.queue.put(
                    {"channel": "error", "data": {"error": 'body: expected {"subscribe": [...]}'}}
                )
                continue
            errors = _subscribe(hub, connection, names)
            snapshot = {
                "channel": "subscribed",
                "data": {
                    "accounts": sorted(connection.accounts),
                    "channels": sorted(connection.channels),
                    "errors": errors,
                },
            }
            await connection.queue.put(snapshot)
            for account_id in sorted(connection.accounts):
                i = hub.core.work.index[account_id]
                await connection.queue.put(
                    {
                        "channel": "account",
                        "account_id": account_id,
                        "data": hub.core.work.summary(i),
                    }
                )
    except WebSocketDisconnect:
        pass
    finally:
        hub.connections.discard(connection)
        sender.cancel()
        still = {a for c in hub.connections for a in c.accounts}
        hub.core.watched = {hub.core.work.index[a] for a in still if a in hub.core.work.index}


async def _send(websocket: WebSocket, connection: Connection) -> None:
    try:
        while True:
            payload = await connection.queue.get()
            await websocket.send_text(json.dumps(payload, allow_nan=False))
    except (WebSocketDisconnect, RuntimeError, asyncio.CancelledError):
        return
