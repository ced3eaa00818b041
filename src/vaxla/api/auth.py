"""Who is calling the API: a principal with a role, from a bearer token.

The roles follow the municipality's organisation (R87–R90). Sessions and
sign-in for people arrive with the web platform; they will produce the same
``Principal`` so routes need not change.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from vaxla.api.tokens import ROLES, TokenStore
from vaxla.errors import VaxlaError

__all__ = ["ROLES", "Forbidden", "Principal", "Unauthorized", "principal_dependency"]


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str  # token name now; user name once people sign in
    role: str

    def has(self, *roles: str) -> bool:
        return self.role == "admin" or self.role in roles


class Unauthorized(VaxlaError):
    status = 401
    error_id = "unauthorized"


class Forbidden(VaxlaError):
    status = 403
    error_id = "forbidden"


def principal_dependency(tokens: TokenStore) -> Callable[..., Awaitable[Principal]]:
    bearer = HTTPBearer(auto_error=False)

    async def principal(
        creds: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
    ) -> Principal:
        if creds is None:
            raise Unauthorized("an API token is needed: Authorization: Bearer <token>")
        found = await tokens.lookup(creds.credentials)
        if found is None:
            raise Unauthorized("the API token is unknown or expired")
        return Principal(subject=found.name, role=found.role)

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
