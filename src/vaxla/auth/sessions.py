"""Server-side browser sessions and their CSRF tokens.

The cookie holds a random token; the database keeps only its SHA-256, when
it was last used and whether it was revoked, so signing out (or an
administrator locking someone out) ends the session on every node at once.

The CSRF token of a session is an HMAC of the session token with a node
secret (a synchronizer token that needs no storage): a page gets it in a
``<meta>`` element and sends it back in ``X-CSRF-Token`` or a form field.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from vaxla.api.auth import Principal
from vaxla.auth.models import User, UserRole, WebSession
from vaxla.auth.users import check_roles_or_empty
from vaxla.store.db import Database

TOUCH_EVERY = timedelta(seconds=60)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionStore:
    def __init__(
        self,
        db: Database,
        secret: bytes,
        *,
        idle: timedelta = timedelta(hours=8),
        lifetime: timedelta = timedelta(hours=12),
        clock: Callable[[], float] | None = None,
    ) -> None:
        import time

        self.db = db
        self.secret = secret
        self.idle = idle
        self.lifetime = lifetime
        self.clock = clock or time.time

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # ----------------------------------------------------------- CSRF

    def csrf_for(self, token: str) -> str:
        return hmac.new(self.secret, b"csrf:" + token.encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, token: str, csrf: str | None) -> bool:
        return bool(csrf) and hmac.compare_digest(self.csrf_for(token), csrf or "")

    # ----------------------------------------------------------- sessions

    async def create(self, user_id: int, source: str = "", user_agent: str = "") -> str:
        token = secrets.token_urlsafe(32)
        now = self.now()
        async with self.db.transaction() as s:
            s.add(
                WebSession(
                    token_sha256=_digest(token),
                    user_id=user_id,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=now + self.lifetime,
                    source=source[:64],
                    user_agent=user_agent[:200],
                )
            )
        return token

    async def principal_for(self, token: str) -> Principal | None:
        """The signed-in user behind a cookie, or None when the session is over."""
        now = self.now()
        async with self.db.session() as s:
            row = (
                await s.execute(
                    select(WebSession, User)
                    .join(User, User.id == WebSession.user_id)
                    .where(WebSession.token_sha256 == _digest(token))
                )
            ).first()
            if row is None:
                return None
            session, user = row
            if (
                session.revoked_at is not None
                or session.expires_at <= now
                or session.last_seen_at + self.idle <= now
                or not user.active
            ):
                return None
            roles = check_roles_or_empty(
                await s.scalars(select(UserRole.role).where(UserRole.user_id == user.id))
            )
            if now - session.last_seen_at >= TOUCH_EVERY:
                await s.execute(
                    update(WebSession).where(WebSession.id == session.id).values(last_seen_at=now)
                )
                await s.commit()
        return Principal.of(
            user.username,
            set(roles),
            user_id=user.id,
            extension=user.extension,
            language=user.language,
            via="session",
        )

    async def revoke(self, token: str) -> None:
        async with self.db.transaction() as s:
            await s.execute(
                update(WebSession)
                .where(WebSession.token_sha256 == _digest(token), WebSession.revoked_at.is_(None))
                .values(revoked_at=self.now())
            )

    async def revoke_user(self, user_id: int, keep: str | None = None) -> int:
        """End every session of a user (but ``keep``); returns how many ended."""
        query = update(WebSession).where(
            WebSession.user_id == user_id, WebSession.revoked_at.is_(None)
        )
        if keep is not None:
            query = query.where(WebSession.token_sha256 != _digest(keep))
        async with self.db.transaction() as s:
            result = await s.execute(query.values(revoked_at=self.now()))
        return int(result.rowcount)  # type: ignore[attr-defined]
