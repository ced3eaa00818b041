"""Users and their roles (R87–R90): who may sign in and what they may do.

A person may hold several roles. Every change is audited together with the
change itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from vaxla.api.auth import ROLE_ORDER, Principal
from vaxla.auth import audit
from vaxla.auth.models import User, UserRole
from vaxla.auth.passwords import MIN_PASSWORD, PasswordHashing
from vaxla.errors import Conflict, InvalidInput, NotFound

LANGUAGES = ("sv", "en")
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,99}$")


class UserNotFound(NotFound):
    error_id = "user-not-found"


class UserExists(Conflict):
    error_id = "user-exists"


class WeakPassword(InvalidInput):
    error_id = "weak-password"


@dataclass(frozen=True, slots=True)
class UserInfo:
    id: int
    username: str
    display_name: str
    roles: tuple[str, ...]  # most privileged first
    extension: str | None
    person_id: int | None
    language: str
    active: bool
    locked_until: datetime | None
    failed_signins: int
    identity_provider: str
    created_at: datetime

    def principal(self, via: str = "session") -> Principal:
        return Principal.of(
            self.username,
            set(self.roles),
            user_id=self.id,
            extension=self.extension,
            language=self.language,
            via=via,
        )

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "display_name": self.display_name,
            "roles": list(self.roles),
            "extension": self.extension,
            "person_id": self.person_id,
            "language": self.language,
            "active": self.active,
            "locked_until": self.locked_until,
            "identity_provider": self.identity_provider,
            "created_at": self.created_at,
        }


def check_roles(roles: Iterable[str]) -> tuple[str, ...]:
    wanted = set(roles)
    unknown = wanted - set(ROLE_ORDER)
    if unknown or not wanted:
        raise InvalidInput(
            "roles must be one or more of the known roles",
            field="roles",
            unknown=sorted(unknown),
            allowed=list(ROLE_ORDER),
        )
    return tuple(r for r in ROLE_ORDER if r in wanted)


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise WeakPassword(
            f"a password needs at least {MIN_PASSWORD} characters", min_length=MIN_PASSWORD
        )


async def _roles_of(s: AsyncSession, user_id: int) -> tuple[str, ...]:
    rows = await s.scalars(select(UserRole.role).where(UserRole.user_id == user_id))
    return check_roles_or_empty(rows)


def check_roles_or_empty(roles: Iterable[str]) -> tuple[str, ...]:
    held = set(roles)
    return tuple(r for r in ROLE_ORDER if r in held)


def info_of(u: User, roles: tuple[str, ...]) -> UserInfo:
    return UserInfo(
        u.id,
        u.username,
        u.display_name,
        roles,
        u.extension,
        u.person_id,
        u.language,
        u.active,
        u.locked_until,
        u.failed_signins,
        u.identity_provider,
        u.created_at,
    )


class UserStore:
    def __init__(
        self,
        db: Any,
        hashing: PasswordHashing,
        clock: Callable[[], float] | None = None,
    ) -> None:
        import time

        self.db = db
        self.hashing = hashing
        self.clock = clock or time.time

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    async def add(
        self,
        username: str,
        *,
        password: str | None,
        roles: Iterable[str],
        display_name: str = "",
        extension: str | None = None,
        person_id: int | None = None,
        language: str = "sv",
        actor: str = "system",
        identity_provider: str = "local",
    ) -> UserInfo:
        username = username.strip().lower()
        if not _USERNAME.match(username):
            raise InvalidInput(
                "a username is 2–100 lower-case letters, digits or . _ @ -", field="username"
            )
        held = check_roles(roles)
        if language not in LANGUAGES:
            raise InvalidInput("language is sv or en", field="language")
        hashed = None
        if password is not None:
            check_password(password)
            hashed = await self.hashing.hash(password)
        now = self.now()
        async with self.db.transaction() as s:
            if await s.scalar(select(User.id).where(User.username == username)) is not None:
                raise UserExists(f"there is already a user {username!r}", username=username)
            user = User(
                username=username,
                display_name=display_name or username,
                password_hash=hashed,
                extension=extension or None,
                person_id=person_id,
                language=language,
                active=True,
                failed_signins=0,
                identity_provider=identity_provider,
                created_at=now,
                updated_at=now,
            )
            s.add(user)
            await s.flush()
            s.add_all([UserRole(user_id=user.id, role=r) for r in held])
            info = info_of(user, held)
            audit.record(
                s,
                actor=actor,
                action="create",
                entity="user",
                entity_id=username,
                after=_audit_view(info),
                now=now,
            )
        return info

    async def get(self, user_id: int) -> UserInfo:
        async with self.db.session() as s:
            user = await s.get(User, user_id)
            if user is None:
                raise UserNotFound(f"no user {user_id}", id=user_id)
            return info_of(user, await _roles_of(s, user.id))

    async def by_username(self, username: str) -> UserInfo | None:
        async with self.db.session() as s:
            user = await s.scalar(select(User).where(User.username == username.strip().lower()))
            if user is None:
                return None
            return info_of(user, await _roles_of(s, user.id))

    async def list(self) -> list[UserInfo]:
        async with self.db.session() as s:
            users = list(await s.scalars(select(User).order_by(User.username)))
            roles: dict[int, list[str]] = {}
            for row in await s.execute(select(UserRole.user_id, UserRole.role)):
                roles.setdefault(row[0], []).append(row[1])
            return [info_of(u, check_roles_or_empty(roles.get(u.id, []))) for u in users]

    async def update(self, user_id: int, changes: dict[str, Any], actor: str) -> UserInfo:
        """Change display name, roles, extension, person, language, active; ``unlock``."""
        now = self.now()
        async with self.db.transaction() as s:
            user = await s.get(User, user_id)
            if user is None:
                raise UserNotFound(f"no user {user_id}", id=user_id)
            before = _audit_view(info_of(user, await _roles_of(s, user.id)))
            held = await _roles_of(s, user.id)
            if "roles" in changes and changes["roles"] is not None:
                held = check_roles(changes["roles"])
                await s.execute(delete(UserRole).where(UserRole.user_id == user.id))
                s.add_all([UserRole(user_id=user.id, role=r) for r in held])
            if changes.get("language") is not None:
                if changes["language"] not in LANGUAGES:
                    raise InvalidInput("language is sv or en", field="language")
                user.language = changes["language"]
            for name in ("display_name", "extension", "person_id", "active"):
                if name in changes and (changes[name] is not None or name != "display_name"):
                    setattr(user, name, changes[name] if changes[name] != "" else None)
            if changes.get("unlock"):
                user.locked_until = None
                user.failed_signins = 0
            user.updated_at = now
            info = info_of(user, held)
            after = _audit_view(info)
            audit.record(
                s,
                actor=actor,
                action="update",
                entity="user",
                entity_id=user.username,
                before={k: v for k, v in before.items() if after.get(k) != v},
                after={k: v for k, v in after.items() if before.get(k) != v},
                now=now,
            )
        return info

    async def set_password(self, user_id: int, password: str, actor: str) -> None:
        check_password(password)
        hashed = await self.hashing.hash(password)
        now = self.now()
        async with self.db.transaction() as s:
            user = await s.get(User, user_id)
            if user is None:
                raise UserNotFound(f"no user {user_id}", id=user_id)
            user.password_hash = hashed
            user.updated_at = now
            audit.record(
                s,
                actor=actor,
                action="set-password",
                entity="user",
                entity_id=user.username,
                now=now,
            )

    async def remove(self, user_id: int, actor: str) -> None:
        now = self.now()
        async with self.db.transaction() as s:
            user = await s.get(User, user_id)
            if user is None:
                raise UserNotFound(f"no user {user_id}", id=user_id)
            before = _audit_view(info_of(user, await _roles_of(s, user.id)))
            await s.delete(user)
            audit.record(
                s,
                actor=actor,
                action="delete",
                entity="user",
                entity_id=user.username,
                before=before,
                now=now,
            )


def _audit_view(info: UserInfo) -> dict[str, Any]:
    return {
        "display_name": info.display_name,
        "roles": list(info.roles),
        "extension": info.extension,
        "person_id": info.person_id,
        "language": info.language,
        "active": info.active,
    }
