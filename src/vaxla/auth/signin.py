"""Signing in: identity providers, the account lock and the per-source throttle.

Two independent limits protect passwords (R87–R89):

- **per account**: after ``lock_after`` wrong passwords in a row the account
  is locked for ``lock_for``; the count lives in the database, so every node
  sees it. Other accounts are not affected.
- **per source**: a source address with more than ``source_limit`` failed
  sign-ins within ``source_window`` is refused for a while, whichever
  accounts it tries, so one client cannot lock out a whole office by
  guessing; other sources are not affected. (In memory per node: a sliding
  window that a restart forgets, which is fine for a throttle.)

An :class:`IdentityProvider` verifies who someone is by other means (OIDC
later): it hands back a :class:`VerifiedIdentity` and
:meth:`SignIn.complete` turns that into a session exactly as a password
sign-in does, so routes and sessions do not change when SSO arrives.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import select

from vaxla.auth import audit
from vaxla.auth.models import User
from vaxla.auth.passwords import PasswordHashing
from vaxla.auth.sessions import SessionStore
from vaxla.auth.users import UserInfo, UserStore
from vaxla.errors import VaxlaError
from vaxla.store.db import Database


class SignInFailed(VaxlaError):
    status = 401
    error_id = "sign-in-failed"


class AccountLocked(VaxlaError):
    status = 423
    error_id = "account-locked"


class TooManyAttempts(VaxlaError):
    status = 429
    error_id = "too-many-attempts"


@dataclass(frozen=True, slots=True)
class VerifiedIdentity:
    """Who an identity provider says the person is."""

    provider: str  # e.g. "oidc:kommun-azure"
    subject: str  # the provider's stable id for the person ("sub")
    username: str | None = None  # used to link a first sign-in to an existing user
    display_name: str | None = None


class IdentityProvider(Protocol):
    """A sign-in by redirect (OIDC authorization code flow and the like)."""

    name: str

    def authorization_url(self, state: str, redirect_uri: str) -> str:
        """Where to send the browser to sign in."""
        ...

    async def finish(
        self, params: Mapping[str, str], state: str, redirect_uri: str
    ) -> VerifiedIdentity:
        """Check the callback (code, state) and return who signed in."""
        ...


class SourceThrottle:
    """Failed sign-ins per source address in a sliding window."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, source: str) -> deque[float]:
        q = self._failures.setdefault(source, deque())
        horizon = self.clock() - self.window
        while q and q[0] <= horizon:
            q.popleft()
        return q

    def blocked(self, source: str) -> bool:
        return len(self._recent(source)) >= self.limit

    def failed(self, source: str) -> None:
        self._recent(source).append(self.clock())
        if len(self._failures) > 10_000:  # forget idle sources
            for key in [k for k, q in self._failures.items() if not q][:5000]:
                del self._failures[key]


@dataclass(frozen=True, slots=True)
class SignedIn:
    user: UserInfo
    token: str


class SignIn:
    def __init__(
        self,
        db: Database,
        users: UserStore,
        sessions: SessionStore,
        hashing: PasswordHashing,
        *,
        lock_after: int = 10,
        lock_for: timedelta = timedelta(minutes=15),
        source_limit: int = 50,
        source_window: float = 600.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        import time

        self.db = db
        self.users = users
        self.sessions = sessions
        self.hashing = hashing
        self.lock_after = lock_after
        self.lock_for = lock_for
        self.clock = clock or time.time
        self.sources = SourceThrottle(source_limit, source_window, self.clock)
        self.providers: dict[str, IdentityProvider] = {}

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    async def with_password(
        self, username: str, password: str, source: str, user_agent: str = ""
    ) -> SignedIn:
        name = username.strip().lower()[:100]
        if self.sources.blocked(source):
            await audit.record_now(
                self.db,
                actor=name or "-",
                action="sign-in-throttled",
                entity="session",
                entity_id=source,
            )
            raise TooManyAttempts(
                "too many failed sign-ins from your address: wait a while", source=source
            )
        now = self.now()
        async with self.db.session() as s:
            user = await s.scalar(select(User).where(User.username == name))
        if user is not None and user.locked_until is not None and user.locked_until > now:
            self.sources.failed(source)
            await audit.record_now(
                self.db, actor=name, action="sign-in-locked", entity="session", entity_id=source
            )
            raise AccountLocked(
                "the account is locked after too many wrong passwords: try again later",
                until=user.locked_until.isoformat(),
            )
        hashed = user.password_hash if user is not None and user.active else None
        ok = await self.hashing.verify(hashed, password)
        if not ok:
            self.sources.failed(source)
            await self._failed(name, user.id if user is not None else None, source)
            raise SignInFailed("wrong username or password")
        assert user is not None
        if hashed is not None and self.hashing.needs_rehash(hashed):
            await self.users.set_password(user.id, password, actor=name)
        return await self._session_for(user.id, source, user_agent, "password")

    async def _failed(self, name: str, user_id: int | None, source: str) -> None:
        now = self.now()
        async with self.db.transaction() as s:
            locked = False
            if user_id is not None:
                user = await s.get(User, user_id, with_for_update=True)
                if user is not None:
                    user.failed_signins += 1
                    if user.failed_signins >= self.lock_after:
                        user.locked_until = now + self.lock_for
                        user.failed_signins = 0
                        locked = True
            audit.record(
                s,
                actor=name or "-",
                action="sign-in-failed",
                entity="session",
                entity_id=source,
                after={"locked": True} if locked else None,
                now=now,
            )
            if locked:
                audit.record(
                    s,
                    actor="system",
                    action="lock",
                    entity="user",
                    entity_id=name,
                    after={"locked_until": (now + self.lock_for).isoformat()},
                    now=now,
                )

    async def complete(
        self, identity: VerifiedIdentity, source: str, user_agent: str = ""
    ) -> SignedIn:
        """Sign in someone an identity provider vouched for."""
        async with self.db.session() as s:
            user = await s.scalar(
                select(User).where(
                    User.identity_provider == identity.provider,
                    User.external_subject == identity.subject,
                )
            )
            if user is None and identity.username:
                user = await s.scalar(select(User).where(User.username == identity.username))
        if user is None or not user.active:
            raise SignInFailed("no active user for this identity", provider=identity.provider)
        return await self._session_for(user.id, source, user_agent, identity.provider)

    async def _session_for(
        self, user_id: int, source: str, user_agent: str, method: str
    ) -> SignedIn:
        now = self.now()
        async with self.db.transaction() as s:
            user = await s.get(User, user_id)
            assert user is not None
            user.failed_signins = 0
            user.locked_until = None
            audit.record(
                s,
                actor=user.username,
                action="sign-in",
                entity="session",
                entity_id=source,
                after={"method": method},
                now=now,
            )
        token = await self.sessions.create(user_id, source, user_agent)
        return SignedIn(await self.users.get(user_id), token)

    async def sign_out(self, token: str, actor: str, source: str) -> None:
        await self.sessions.revoke(token)
        await audit.record_now(
            self.db, actor=actor, action="sign-out", entity="session", entity_id=source
        )
