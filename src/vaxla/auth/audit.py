"""The audit log of the web platform: one log for the whole node.

Changes are written with the directory's audit module (table ``dir_audit``),
so the administrator sees every change (people, diversions, users, sessions,
extensions, calls) in one place. Rows join the caller's transaction.

:class:`RequestAudit` is the safety net: every state-changing API request
that succeeded and whose route does not write a detailed audit row itself is
logged with its method, path and status.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vaxla.directory import audit as _directory_audit
from vaxla.store.db import Database

log = logging.getLogger("vaxla.audit")

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def record(
    s: AsyncSession,
    *,
    actor: str,
    action: str,
    entity: str,
    entity_id: object,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> None:
    _directory_audit.add(
        s,
        actor=actor[:100],
        action=action[:40],
        entity=entity[:40],
        entity_id=str(entity_id)[:60],
        now=now or datetime.now(UTC),
        before=before,
        after=after,
    )


async def record_now(db: Database, **entry: Any) -> None:
    """One audit row in its own transaction."""
    async with db.transaction() as s:
        record(s, **entry)


class RequestAudit:
    """ASGI middleware: audit successful changes of routes that do not audit themselves."""

    def __init__(
        self,
        app: ASGIApp,
        db: Callable[[], Database],
        self_audited: tuple[str, ...],
    ) -> None:
        self.app = app
        self.db = db
        self.self_audited = self_audited

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in UNSAFE
            or not scope["path"].startswith("/api/")
            or scope["path"].startswith(self.self_audited)
        ):
            await self.app(scope, receive, send)
            return
        status = 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, watch)
        if status >= 400:
            return
        principal = scope.get("state", {}).get("principal")
        actor = getattr(principal, "subject", "anonymous")
        try:
            await record_now(
                self.db(),
                actor=actor,
                action=scope["method"].lower(),
                entity="api",
                entity_id=scope["path"],
                after={"status": status, "via": getattr(principal, "via", None)},
            )
        except Exception:  # the change is done; a lost audit row must be visible
            log.exception("writing the audit row failed", extra={"path": scope["path"]})
