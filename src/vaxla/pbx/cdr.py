"""Call records: written in batches off the signalling path."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert

from vaxla.store.db import Database
from vaxla.store.models import CallRecord

log = logging.getLogger("vaxla.cdr")


@dataclass(slots=True)
class CallOutcome:
    call_id: str
    caller: str
    callee: str
    started_at: float
    answered_at: float | None = None
    ended_at: float | None = None
    result: str = "failed"
    sip_status: int | None = None
    hangup_by: str | None = None
    forwarded_from: str | None = None  # the number dialled, when forwarding moved the call
    forward_kind: str | None = None


def _dt(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


class CallRecordWriter:
    """Queues finished calls and inserts them in one transaction per batch."""

    def __init__(self, db: Database, batch: int = 1000, interval: float = 1.0) -> None:
        self.db = db
        self.batch = batch
        self.interval = interval
        self._queue: list[CallOutcome] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def add(self, outcome: CallOutcome) -> None:
        self._queue.append(outcome)
        if len(self._queue) >= self.batch:
            self._wake.set()

    async def _run(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self.batch], self._queue[self.batch :]
            try:
                async with self.db.transaction() as s:
                    # Core executemany: one statement for the batch, no ORM objects.
                    await s.execute(
                        insert(CallRecord),
                        [
                            {
                                "call_id": o.call_id,
                                "caller": o.caller,
                                "callee": o.callee,
                                "started_at": _dt(o.started_at),
                                "answered_at": _dt(o.answered_at),
                                "ended_at": _dt(o.ended_at),
                                "result": o.result,
                                "sip_status": o.sip_status,
                                "hangup_by": o.hangup_by,
                                "forwarded_from": o.forwarded_from,
                                "forward_kind": o.forward_kind,
                            }
                            for o in batch
                        ],
                    )
            except Exception:
                log.exception("writing %d call records failed; will retry", len(batch))
                self._queue[:0] = batch
                await asyncio.sleep(1.0)
                if self._closing:
                    return

    async def close(self) -> None:
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        await self.flush()
