"""The WebSocket event stream ``/api/v1/events``: live changes, filtered by role.

A client connects with its session cookie (browser) or an
``Authorization: Bearer`` header (API client), optionally with
``?after=N``: it then first receives every event after position N still in
the node's history, so a reconnecting browser misses nothing; when N is too
old it gets ``{"type": "gap"}`` and reloads its view. Messages are JSON:
``{"type": "hello", "position": N, ...}`` once, then
``{"type": "event", "position", "topic", "data", "at"}``.

What a principal sees (:func:`visible`):

- ``phone.state``, ``registration.changed``, ``directory.person.changed``: everyone;
- ``diversion.changed``: everything for roles that see all directory fields,
  only which person changed for the others (they refetch through the API,
  which applies the field access levels);
- ``call.state``: operators and supervisors all calls, others their own
  extension's calls only;
- ``message.left``: roles that see all directory fields;
- ``forwarding.changed``: everything for roles that see all directory fields
  and for the extension's own user, only which extension changed for others;
- anything else: administrators.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from starlette.websockets import WebSocket, WebSocketDisconnect

from vaxla.api.auth import Principal
from vaxla.events import BusEvent, EventBus

SEE_ALL_FIELDS = ("operator", "supervisor", "agent", "directory-editor", "directory-admin")
SEE_ALL_CALLS = ("operator", "supervisor")
PUBLIC_TOPICS = frozenset({"phone.state", "registration.changed", "directory.person.changed"})
RECHECK_EVERY = 30.0


def visible(event: BusEvent, p: Principal) -> dict[str, Any] | None:
    """The event's data as ``p`` may see it, or None when hidden."""
    topic, data = event.topic, event.data
    if topic in PUBLIC_TOPICS or "admin" in p.roles:
        return data
    if topic == "diversion.changed":
        if p.has(*SEE_ALL_FIELDS):
            return data
        if "person_id" in data:
            return {"person_id": data["person_id"]}
        return {"rule": {"id": (data.get("rule") or {}).get("id")}}
    if topic == "call.state":
        if p.has(*SEE_ALL_CALLS):
            return data
        own = p.extension
        if own and own in (str(data.get("caller")), str(data.get("callee"))):
            return data
        return None
    if topic == "message.left" and p.has(*SEE_ALL_FIELDS):
        return data
    if topic == "forwarding.changed":
        if p.has(*SEE_ALL_FIELDS) or (p.extension and p.extension == data.get("extension")):
            return data
        return {"extension": data.get("extension")}
    return None


def same_origin(ws: WebSocket) -> bool:
    """Browsers send Origin: refuse pages of other sites (cross-site WebSocket hijacking)."""
    origin = ws.headers.get("origin")
    if origin is None:
        return True  # not a browser
    host = ws.headers.get("host", "")
    return urlsplit(origin).netloc == host


async def serve_events(
    ws: WebSocket,
    bus: EventBus,
    authenticate: Callable[[WebSocket], Awaitable[Principal | None]],
) -> None:
    if not same_origin(ws):
        await ws.close(code=4403, reason="cross-site")
        return
    principal = await authenticate(ws)
    if principal is None:
        await ws.close(code=4401, reason="sign in or send a bearer token")
        return
    after: int | None = None
    raw = ws.query_params.get("after")
    if raw is not None and raw.lstrip("-").isdigit():
        after = max(0, int(raw))
    await ws.accept()
    gap = False
    if after is not None and after < bus.position:
        missed = bus.since(after)
        gap = not missed or missed[0].position > after + 1
    await ws.send_json(
        {
            "type": "hello",
            "position": bus.position,
            "subject": principal.subject,
            "roles": sorted(principal.roles),
        }
    )
    if gap:
        await ws.send_json({"type": "gap", "position": bus.position})
        after = bus.position

    async def pump() -> None:
        nonlocal principal
        async for event in bus.subscribe(after=after):
            data = visible(event, principal)
            if data is None:
                continue
            await ws.send_json(
                {
                    "type": "event",
                    "position": event.position,
                    "topic": event.topic,
                    "data": data,
                    "at": event.at,
                }
            )

    async def listen() -> None:
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                await ws.receive_text()  # pings from the client; nothing to answer

    async def recheck() -> None:
        # A revoked or expired session ends the stream too.
        while True:
            await asyncio.sleep(RECHECK_EVERY)
            if await authenticate(ws) is None:
                return

    tasks = [asyncio.create_task(c) for c in (pump(), listen(), recheck())]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                exc = task.exception()
                if not isinstance(exc, WebSocketDisconnect | RuntimeError):
                    raise exc  # type: ignore[misc]
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await ws.close()
