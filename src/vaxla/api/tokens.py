"""API tokens: shown once at creation, stored only as SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select

from vaxla.errors import InvalidInput, NotFound
from vaxla.store.db import Database
from vaxla.store.models import ApiToken

ROLES = (
    "admin",  # system administrator
    "directory-admin",
    "directory-editor",
    "operator",  # telefonist
    "supervisor",
    "agent",  # handläggare
    "employee",
)


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: int
    name: str
    role: str
    created_at: datetime
    expires_at: datetime | None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, name: str, role: str = "admin", days: int | None = None) -> str:
        if role not in ROLES:
            raise InvalidInput(f"unknown role {role!r}", field="role", allowed=list(ROLES))
        token = "vx_" + secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        async with self.db.transaction() as s:
            s.add(
                ApiToken(
                    name=name,
                    token_sha256=_digest(token),
                    role=role,
                    created_at=now,
                    expires_at=now + timedelta(days=days) if days else None,
                )
            )
        return token

    async def lookup(self, token: str) -> TokenInfo | None:
        async with self.db.session() as s:
            row = await s.scalar(select(ApiToken).where(ApiToken.token_sha256 == _digest(token)))
        if row is None:
            return None
        if row.expires_at is not None and row.expires_at <= datetime.now(UTC):
            return None
        return TokenInfo(row.id, row.name, row.role, row.created_at, row.expires_at)

    async def verify(self, token: str) -> str | None:
        """The token's role, or None when it is unknown or expired."""
        info = await self.lookup(token)
        return None if info is None else info.role

    async def list(self) -> list[TokenInfo]:
        async with self.db.session() as s:
            rows = await s.scalars(select(ApiToken).order_by(ApiToken.id))
            return [TokenInfo(r.id, r.name, r.role, r.created_at, r.expires_at) for r in rows]

    async def revoke(self, token_id: int) -> None:
        async with self.db.transaction() as s:
            result = await s.execute(delete(ApiToken).where(ApiToken.id == token_id))
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise NotFound(f"no token {token_id}", id=token_id)
