"""Writing ``dir_index_changes``: which people's search rows a transaction changed.

Called in the same transaction as the rows themselves, so the log and the
rows commit together (see :mod:`vaxla.directory.memory_index`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from vaxla.directory.models import IndexChange

KEEP = timedelta(hours=24)  # an index idle longer than this rebuilds (memory_index.IDLE_REBUILD)


async def changed(
    s: AsyncSession, person_ids: Iterable[int] | None, now: datetime | None = None
) -> None:
    """Log these people as changed; None: everyone (a bulk load)."""
    now = now or datetime.now(UTC)
    if person_ids is None:
        await s.execute(insert(IndexChange), [{"person_id": None, "at": now}])
    else:
        rows = [{"person_id": pid, "at": now} for pid in dict.fromkeys(person_ids)]
        if not rows:
            return
        await s.execute(insert(IndexChange), rows)
    # Old entries go; the newest always stays, so sequence numbers keep growing.
    newest = select(func.max(IndexChange.seq)).scalar_subquery()
    await s.execute(
        delete(IndexChange).where(IndexChange.at < now - KEEP, IndexChange.seq < newest)
    )
