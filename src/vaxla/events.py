"""The internal event bus: features publish, the web console and API follow.

Every event gets a monotonically increasing position so a reconnecting
client can resume where it left off (the last ``history`` events are kept).
The in-process bus serves one node; a Redis/NATS bridge carries the same
events between nodes in a multi-node region.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class BusEvent:
    position: int
    topic: str  # e.g. "diversion.changed", "registration.changed", "call.state"
    data: dict[str, Any]
    at: float = field(default_factory=time.time)


class EventBus:
    def __init__(self, history: int = 10_000) -> None:
        self._history: deque[BusEvent] = deque(maxlen=history)
        self._position = 0
        self._subscribers: set[asyncio.Queue[BusEvent]] = set()

    @property
    def position(self) -> int:
        return self._position

    def publish(self, topic: str, data: dict[str, Any]) -> BusEvent:
        self._position += 1
        event = BusEvent(self._position, topic, data)
        self._history.append(event)
        for queue in list(self._subscribers):
            if queue.full():
                # A subscriber that cannot keep up loses its oldest event rather
                # than stall publishers; it sees the gap in positions and resumes.
                queue.get_nowait()
            queue.put_nowait(event)
        return event

    def since(self, position: int) -> list[BusEvent]:
        """Events after ``position`` still in history (oldest first)."""
        return [e for e in self._history if e.position > position]

    async def subscribe(
        self, after: int | None = None, maxsize: int = 1000
    ) -> AsyncIterator[BusEvent]:
        """Yield events as they happen, first the missed ones after ``after``."""
        queue: asyncio.Queue[BusEvent] = asyncio.Queue(maxsize)
        self._subscribers.add(queue)
        try:
            last = after if after is not None else self._position
            for event in self.since(last):
                last = event.position
                yield event
            while True:
                event = await queue.get()
                if event.position <= last:
                    continue
                last = event.position
                yield event
        finally:
            self._subscribers.discard(queue)
