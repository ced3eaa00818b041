"""Who is calling the API: a principal with roles, from a bearer token or a session.

The roles follow the municipality's organisation (R87–R90). API clients use
bearer tokens (``Authorization: Bearer vx_...``); people in a browser sign
in and carry an HttpOnly session cookie. Both produce the same
``Principal``, so a route declares what it needs once (``require_roles``)
and does not care how the caller proved who they are.

Cookie-borne requests that change state must also carry the session's CSRF
token; that check is the middleware in ``vaxla.auth.csrf`` (bearer tokens are
not sent by browsers on their own, so token calls need no CSRF token).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from vaxla.api.tokens import ROLES, TokenStore
from vaxla.errors import VaxlaError

__all__ = [
    "ROLES",
    "ROLE_ORDER",
    "SESSION_COOKIE",
    "Forbidden",
    "Principal",
    "SessionResolver",
    "Unauthorized",
    "principal_dependency",
    "require_roles",
]

#: Roles from the most to the least privileged; a person's ``role`` (the
#: primary one, used where one role is expected) is the first they hold.
ROLE_ORDER = (
    "admin",
    "directory-admin",
    "directory-editor",
    "supervisor",
    "operator",
    "agent",
    "employee",
)
assert set(ROLE_ORDER) == set(ROLES)

SESSION_COOKIE = "vaxla_session"


def primary_role(roles: frozenset[str] | set[str]) -> str:
    for role in ROLE_ORDER:
        if role in roles:
            return role
    return "employee"


@dataclass(frozen=True, slots=True)
class Principal:
    """A caller: a token name or a signed-in user, and what they may do.

    ``role`` is the most privileged of ``roles``; code that knows only one
    role (the directory's access levels) uses it, everything else ``has``.
    """

    subject: str  # the token's name or the user's username
    role: str
    roles: frozenset[str] = field(default_factory=frozenset)
    user_id: int | None = None
    extension: str | None = None  # the user's own phone, when linked
    language: str = "sv"
    via: str = "token"  # token | session

    def __post_init__(self) -> None:
        if not self.roles:
            object.__setattr__(self, "roles", frozenset({self.role}))

    @classmethod
    def of(
        cls,
        subject: str,
        roles: frozenset[str] | set[str],
        *,
        user_id: int | None = None,
        extension: str | None = None,
        language: str = "sv",
        via: str = "session",
    ) -> Principal:
        held = frozenset(roles) or frozenset({"employee"})
        return cls(subject, primary_role(held), held, user_id, extension, language, via)

    def has(self, *roles: str) -> bool:
        return "admin" in self.roles or any(r in self.roles for r in roles)


class Unauthorized(VaxlaError):
    status = 401
    error_id = "unauthorized"


class Forbidden(VaxlaError):
    status = 403
    error_id = "forbidden"


class SessionResolver(Protocol):
    """Turns a session cookie into a principal (``vaxla.auth.sessions``)."""

    async def principal_for(self, token: str) -> Principal | None: ...


def principal_dependency(
    tokens: TokenStore, sessions: SessionResolver | None = None
) -> Callable[..., Awaitable[Principal]]:
    bearer = HTTPBearer(auto_error=False)

    async def principal(
        request: Request,
        creds: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
    ) -> Principal:
        found: Principal | None = None
        if creds is not None:
            info = await tokens.lookup(creds.credentials)
            if info is None:
                raise Unauthorized("the API token is unknown or expired")
            found = Principal(subject=info.name, role=info.role)
        elif sessions is not None and (cookie := request.cookies.get(SESSION_COOKIE)):
            found = await sessions.principal_for(cookie)
            if found is None:
                raise Unauthorized("the session has ended: sign in again")
        if found is None:
            raise Unauthorized("an API token is needed: Authorization: Bearer <token>")
        request.state.principal = found  # the audit middleware names the actor
        return found

    return principal


def require_roles(
    principal: Callable[..., Awaitable[Principal]], *roles: str
) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets through only the given roles (admin always)."""

    async def check(p: Principal = Depends(principal)) -> Principal:  # noqa: B008
        if not p.has(*roles):
            raise Forbidden(f"the role {p.role!r} may not do this", needed=list(roles))
        return p

    return check
