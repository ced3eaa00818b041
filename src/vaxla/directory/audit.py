"""The directory's audit log: who changed what, when, before and after.

Entries are added to the caller's session, so they commit (or roll back)
together with the change they describe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from vaxla.directory.models import AuditEntry


def add(
    s: AsyncSession,
    *,
    actor: str,
    action: str,
    entity: str,
    entity_id: object,
    now: datetime,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    s.add(
        AuditEntry(
            at=now,
            actor=actor,
            action=action,
            entity=entity,
            entity_id=str(entity_id),
            before=before,
            after=after,
        )
    )


def update(
    s: AsyncSession,
    row: object,
    changes: dict[str, Any],
    *,
    actor: str,
    entity: str,
    entity_id: object,
    now: datetime,
) -> None:
    """Apply ``changes`` to a model row and audit them (before and after)."""
    before = {k: getattr(row, k) for k in changes}
    for k, v in changes.items():
        setattr(row, k, v)
    add(
        s,
        actor=actor,
        action="update",
        entity=entity,
        entity_id=entity_id,
        now=now,
        before=before,
        after=changes,
    )


async def add_many(s: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Bulk audit rows (keys as in :class:`AuditEntry`) for batch imports."""
    if rows:
        conn = await s.connection()
        await conn.execute(insert(cast(Table, AuditEntry.__table__)), list(rows))


@dataclass(frozen=True, slots=True)
class AuditView:
    id: int
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


async def entries(
    s: AsyncSession,
    entity: str | None = None,
    entity_id: str | None = None,
    limit: int = 100,
) -> list[AuditView]:
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if entity is not None:
        query = query.where(AuditEntry.entity == entity)
    if entity_id is not None:
        query = query.where(AuditEntry.entity_id == entity_id)
    rows = await s.scalars(query)
    return [
        AuditView(r.id, r.at, r.actor, r.action, r.entity, r.entity_id, r.before, r.after)
        for r in rows
    ]


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Fields whose values differ: ``{field: (before, after)}``."""
    keys = list(dict.fromkeys([*before, *after]))
    return {k: (before.get(k), after.get(k)) for k in keys if before.get(k) != after.get(k)}
