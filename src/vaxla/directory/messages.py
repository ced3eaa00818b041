"""Messages left for a person in the diversion view (R46.21).

They wait with status ``pending`` until the SMS and e-mail channels arrive
and deliver them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vaxla.directory import audit
from vaxla.directory.errors import InvalidDirectoryInput, PersonNotFound
from vaxla.directory.models import LeftMessage, Person

CHANNELS = ("sms", "email", "any")


@dataclass(frozen=True, slots=True)
class MessageView:
    id: int
    person_id: int
    text: str
    caller_name: str
    caller_number: str
    channel: str
    status: str
    left_by: str
    created_at: datetime
    delivered_at: datetime | None


def _view(m: LeftMessage) -> MessageView:
    return MessageView(
        m.id,
        m.person_id,
        m.text,
        m.caller_name,
        m.caller_number,
        m.channel,
        m.status,
        m.left_by,
        m.created_at,
        m.delivered_at,
    )


async def leave(
    s: AsyncSession,
    person_id: int,
    text: str,
    *,
    caller_name: str = "",
    caller_number: str = "",
    channel: str = "any",
    actor: str,
    now: datetime,
) -> MessageView:
    if await s.get(Person, person_id) is None:
        raise PersonNotFound(f"no person {person_id}", id=person_id)
    if not text.strip():
        raise InvalidDirectoryInput("a message has text")
    if channel not in CHANNELS:
        raise InvalidDirectoryInput(f"unknown channel {channel!r}", allowed=list(CHANNELS))
    m = LeftMessage(
        person_id=person_id,
        text=text.strip(),
        caller_name=caller_name,
        caller_number=caller_number,
        channel=channel,
        status="pending",
        left_by=actor,
        created_at=now,
    )
    s.add(m)
    await s.flush()
    audit.add(
        s,
        actor=actor,
        action="leave",
        entity="message",
        entity_id=m.id,
        now=now,
        after={"person_id": person_id, "text": m.text, "caller_number": caller_number},
    )
    return _view(m)


async def for_person(
    s: AsyncSession, person_id: int, status: str | None = None, limit: int = 100
) -> list[MessageView]:
    query = (
        select(LeftMessage)
        .where(LeftMessage.person_id == person_id)
        .order_by(LeftMessage.id.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(LeftMessage.status == status)
    return [_view(m) for m in await s.scalars(query)]


async def pending(s: AsyncSession, limit: int = 100) -> list[MessageView]:
    """Messages waiting for delivery (for the SMS/e-mail channels to pick up)."""
    query = (
        select(LeftMessage)
        .where(LeftMessage.status == "pending")
        .order_by(LeftMessage.id)
        .limit(limit)
    )
    return [_view(m) for m in await s.scalars(query)]
