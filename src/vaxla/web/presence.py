"""Live phone state of every extension: free, ringing, busy or unregistered (R83).

Derived from the location service (registered or not) and the PBX's
``call.state`` events; every change is published on the bus as
``phone.state`` ``{extension, state}`` for the console. Registrations are
also polled once a second, so the state stays right even where the PBX does
not (yet) publish ``registration.changed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from vaxla.events import BusEvent, EventBus
from vaxla.pbx.phone_state import BUSY, FREE, RINGING, UNREGISTERED, phone_state

log = logging.getLogger("vaxla.web")

__all__ = ["BUSY", "FREE", "RINGING", "UNREGISTERED", "PhoneStates"]


class Registrations(Protocol):
    def lookup(self, aor: str, now: float) -> Sequence[object]: ...

    def all(self, now: float) -> Sequence[Any]: ...


@dataclass(slots=True)
class _Call:
    caller: str
    callee: str
    state: str  # ringing | answered


class PhoneStates:
    def __init__(
        self,
        bus: EventBus,
        location: Registrations | None,
        clock: Callable[[], float],
        poll: float = 1.0,
    ) -> None:
        self.bus = bus
        self.location = location
        self.clock = clock
        self.poll = poll
        self.calls: dict[str, _Call] = {}
        self._known: dict[str, str] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def registered(self, ext: str) -> bool | None:
        if self.location is None:
            return None
        return bool(self.location.lookup(ext, self.clock()))

    def state_of(self, ext: str) -> str:
        live = ((c.caller, c.callee, c.state == "answered") for c in self.calls.values())
        return phone_state(ext, live, self.registered(ext))

    def snapshot(self, extensions: Iterable[str]) -> dict[str, str]:
        return {ext: self.state_of(ext) for ext in extensions}

    def calls_of(self, ext: str) -> list[dict[str, str]]:
        return [
            {"call_id": cid, "caller": c.caller, "callee": c.callee, "state": c.state}
            for cid, c in self.calls.items()
            if ext in (c.caller, c.callee)
        ]

    def _changed(self, extensions: Iterable[str]) -> None:
        for ext in extensions:
            state = self.state_of(ext)
            if self._known.get(ext) != state:
                self._known[ext] = state
                self.bus.publish("phone.state", {"extension": ext, "state": state})

    def on_event(self, event: BusEvent) -> None:
        data = event.data
        if event.topic == "call.state":
            call_id = str(data.get("call_id", ""))
            caller, callee = str(data.get("caller", "")), str(data.get("callee", ""))
            state = data.get("state")
            before = self.calls.get(call_id)
            if state == "ended":
                self.calls.pop(call_id, None)
            elif state in ("ringing", "answered"):
                self.calls[call_id] = _Call(caller, callee, str(state))
            parties = [caller, callee]
            if before is not None:  # call forwarding moves a call to another callee
                parties += [p for p in (before.caller, before.callee) if p not in parties]
            self._changed(parties)
        elif event.topic == "registration.changed":
            self._changed([str(data.get("extension", ""))])

    async def _follow(self) -> None:
        async for event in self.bus.subscribe():
            try:
                self.on_event(event)
            except Exception:
                log.exception("phone state: could not apply an event")

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll)
            if self.location is None:
                continue
            now = self.clock()
            registered = {c.aor for c in self.location.all(now)}
            # Extensions seen before and every registered one: catches both edges.
            self._changed(sorted(registered | set(self._known)))

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._follow()), loop.create_task(self._poll())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
