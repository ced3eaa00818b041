"""The media clock: one timer for every leg, mixer and recorder of a node.

Ticks every 10 ms on the event loop's monotonic clock, at absolute times
(``start + k * period``) so that timer lateness never accumulates as drift.
When the loop falls behind by more than a few ticks (a stalled loop), the
clock skips ahead rather than firing a burst. Subscribers are plain
callables ``(tick, now)``; each decides what to do on which ticks (a 20 ms
packetiser acts on even ticks, a 30 ms one on every third).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger("vaxla.media")

TICK = 0.010
Subscriber = Callable[[int, float], None]


class MediaClock:
    def __init__(self, period: float = TICK, max_behind: int = 5) -> None:
        self.period = period
        self.max_behind = max_behind
        self.tick = 0
        self._subs: dict[int, Subscriber] = {}
        self._next_id = 0
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._start = 0.0
        self.late_ticks = 0
        self.skipped = 0

    def subscribe(self, fn: Subscriber) -> int:
        key = self._next_id
        self._next_id += 1
        self._subs[key] = fn
        if self._handle is None:
            self._begin()
        return key

    def unsubscribe(self, key: int) -> None:
        self._subs.pop(key, None)
        if not self._subs and self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _begin(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._start = self._loop.time()
        self.tick = 0
        self._handle = self._loop.call_at(self._start + self.period, self._fire)

    def _fire(self) -> None:
        loop = self._loop
        assert loop is not None
        now = loop.time()
        self.tick += 1
        due = self._start + self.tick * self.period
        if now - due > self.max_behind * self.period:
            behind = int((now - due) / self.period)
            self.skipped += behind
            self._start += behind * self.period
            due = self._start + self.tick * self.period
        elif now - due > self.period / 2:
            self.late_ticks += 1
        for key, fn in list(self._subs.items()):
            try:
                fn(self.tick, now)
            except Exception:
                log.exception("media clock subscriber failed; removed")
                self._subs.pop(key, None)
        if self._subs:
            self._handle = loop.call_at(due + self.period, self._fire)
        else:
            self._handle = None

    def close(self) -> None:
        self._subs.clear()
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
