"""REST routes of call forwarding: ``/api/v1/extensions/{number}/forwarding``.

The extension's owner (a signed-in user whose extension it is), operators
(R65: see and remove) and administrators may read and change it; supervisors
may read it; anyone else gets 403 ``forbidden``. Every change is stored and
audited before the answer, and published as ``forwarding.changed``.

Errors: ``forwarding-to-self`` (400), ``forwarding-target-invalid`` and
``forwarding-target-unknown`` (422), ``extension-not-found`` (404),
``forwarding-not-set`` (409, enabling a rule that has no target).

``/api/v1/me/forwarding`` (the first self-service form: a bare list of rules
for the caller's own extension) is kept for existing clients as a thin wrapper
over the same store and checks; *Mina sidor* uses the routes above.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from vaxla.api.auth import Forbidden, Principal
from vaxla.auth.api import NoExtension
from vaxla.errors import Conflict, ExtensionNotFound, InvalidInput
from vaxla.pbx.forwarding import (
    DEFAULT_NO_ANSWER_SECONDS,
    MAX_NO_ANSWER_SECONDS,
    MIN_NO_ANSWER_SECONDS,
    ForwardingRule,
    ForwardKind,
    is_external,
    normalise_target,
)
from vaxla.pbx.forwarding_store import ForwardingStore, StoredForwarding

#: Roles that may change any extension's forwarding (admin always may).
MANAGE_ROLES = ("operator",)
#: Roles that may also read it.
READ_ROLES = ("operator", "supervisor")
#: Roles that see external forwarding numbers of others in status views.
SEE_EXTERNAL_ROLES = ("operator", "supervisor", "agent")


class ForwardingNotSet(Conflict):
    error_id = "forwarding-not-set"


class RuleIn(BaseModel):
    kind: ForwardKind = Field(examples=["always"])
    target: str = Field(
        min_length=2,
        max_length=40,
        examples=["1003"],
        description="An extension, or an external number (E.164 or Swedish national form)",
    )
    enabled: bool = True


class ForwardingIn(BaseModel):
    rules: list[RuleIn] = Field(max_length=4)
    no_answer_seconds: int = Field(
        DEFAULT_NO_ANSWER_SECONDS,
        ge=MIN_NO_ANSWER_SECONDS,
        le=MAX_NO_ANSWER_SECONDS,
        description="How long the phones ring before the no-answer rule takes the call",
    )


class OwnRule(BaseModel):
    """One rule in the ``/api/v1/me/forwarding`` form."""

    kind: ForwardKind = Field(examples=["busy"])
    target: str = Field(
        min_length=2,
        max_length=40,
        examples=["+46701234567"],
        description="An extension, or an external number (stored in E.164)",
    )
    enabled: bool = True


class OneRuleIn(BaseModel):
    target: str | None = Field(
        None, min_length=2, max_length=40, description="Default: keep the stored target"
    )
    enabled: bool = True


class RuleOut(BaseModel):
    kind: ForwardKind
    target: str
    enabled: bool
    external: bool = Field(description="An external number (E.164)")
    routable: bool = Field(
        description="Växla can ring it now (external numbers need a trunk, none is configured)"
    )


class ForwardingOut(BaseModel):
    extension: str
    rules: list[RuleOut]
    no_answer_seconds: int
    updated_at: datetime | None
    updated_by: str | None


class ActiveForwarding(BaseModel):
    """One forwarding in force, as an extension's status shows it (R83)."""

    kind: ForwardKind
    target: str | None = Field(description="None: an external number you may not see")
    external: bool


def may_manage(p: Principal, extension: str) -> bool:
    return p.extension == extension or p.has(*MANAGE_ROLES)


def may_read(p: Principal, extension: str) -> bool:
    return p.extension == extension or p.has(*READ_ROLES)


def shown_status(p: Principal, extension: str, rules: Any) -> list[dict[str, Any]]:
    """Status entries of ``rules`` (ForwardingRule objects or status dicts) as
    ``p`` may see them: external numbers only for their owner and call handlers."""
    see_external = p.extension == extension or p.has(*SEE_EXTERNAL_ROLES)
    out = []
    for r in rules:
        item = (
            {"kind": r.kind.value, "target": r.target, "external": r.external}
            if isinstance(r, ForwardingRule)
            else dict(r)
        )
        if item["external"] and not see_external:
            item["target"] = None
        out.append(item)
    return out


def build_router(
    store: ForwardingStore,
    is_internal: Callable[[str], Awaitable[bool]],
    principal: Callable[..., Awaitable[Principal]],
) -> APIRouter:
    """``is_internal(number)``: an extension (or a number Växla answers itself)."""
    router = APIRouter(tags=["call forwarding"])
    who = Depends(principal)
    path = "/extensions/{number}/forwarding"

    async def _extension(number: str) -> None:
        if not await is_internal(number):
            raise ExtensionNotFound(f"no extension {number}", number=number)

    def _check(p: Principal, number: str, *, change: bool) -> None:
        ok = may_manage(p, number) if change else may_read(p, number)
        if not ok:
            raise Forbidden(
                "only the extension's owner, operators and administrators may do this",
                needed=list(MANAGE_ROLES if change else READ_ROLES),
            )

    async def _target(raw: str) -> str:
        known: dict[str, bool] = {}
        digits = re.sub(r"[\s\-().]", "", raw)
        if digits.isdigit():
            known[digits] = await is_internal(digits)
        return normalise_target(raw, lambda n: known.get(n, False))

    def _out(number: str, stored: StoredForwarding) -> ForwardingOut:
        return ForwardingOut(
            extension=number,
            rules=[
                RuleOut(
                    kind=r.kind,
                    target=r.target,
                    enabled=r.enabled,
                    external=r.external,
                    routable=not is_external(r.target),
                )
                for r in stored.settings.rules
            ],
            no_answer_seconds=stored.settings.no_answer_seconds,
            updated_at=stored.updated_at,
            updated_by=stored.updated_by,
        )

    @router.get(path, response_model=ForwardingOut)
    async def get_forwarding(number: str, p: Principal = who) -> ForwardingOut:
        """Every forwarding rule of the extension, enabled or not."""
        _check(p, number, change=False)
        await _extension(number)
        return _out(number, await store.get(number))

    @router.put(path, response_model=ForwardingOut)
    async def set_forwarding(number: str, body: ForwardingIn, p: Principal = who) -> ForwardingOut:
        """Replace every rule (vidarekoppling): ``always`` (CFU), ``busy`` (CFB),
        ``no-answer`` (CFNA, after ``no_answer_seconds``), ``unreachable`` (CFNR)."""
        _check(p, number, change=True)
        await _extension(number)
        rules = [ForwardingRule(r.kind, await _target(r.target), r.enabled) for r in body.rules]
        stored = await store.replace(number, rules, body.no_answer_seconds, actor=p.subject)
        return _out(number, stored)

    @router.delete(path, status_code=204)
    async def clear_forwarding(number: str, p: Principal = who) -> Response:
        """Remove every forwarding of the extension (R65)."""
        _check(p, number, change=True)
        await _extension(number)
        await store.remove_rule(number, None, actor=p.subject)
        return Response(status_code=204)

    # ---------------------------------------------------------------- /me (compatibility)

    def _own(p: Principal) -> str:
        if not p.extension:
            raise NoExtension("you have no extension of your own")
        return p.extension

    def _own_out(stored: StoredForwarding) -> list[OwnRule]:
        return [
            OwnRule(kind=r.kind, target=r.target, enabled=r.enabled) for r in stored.settings.rules
        ]

    @router.get("/me/forwarding", response_model=list[OwnRule], tags=["self-service"])
    async def get_own(p: Principal = who) -> list[OwnRule]:
        """Your own extension's rules (the same as ``GET /extensions/{number}/forwarding``)."""
        number = _own(p)
        await _extension(number)
        return _own_out(await store.get(number))

    @router.put("/me/forwarding", response_model=list[OwnRule], tags=["self-service"])
    async def set_own(body: list[OwnRule], p: Principal = who) -> list[OwnRule]:
        """Replace your own extension's rules; the ring time is kept. Checked,
        stored, audited and published exactly as ``PUT /extensions/{number}/forwarding``."""
        number = _own(p)
        await _extension(number)
        if len(body) > len(ForwardKind):
            raise InvalidInput("one rule per kind", field="kind")
        rules = [ForwardingRule(r.kind, await _target(r.target), r.enabled) for r in body]
        return _own_out(await store.replace(number, rules, None, actor=p.subject, via="me"))

    @router.put(path + "/{kind}", response_model=ForwardingOut)
    async def set_one(
        number: str, kind: ForwardKind, body: OneRuleIn, p: Principal = who
    ) -> ForwardingOut:
        """Set one rule; without ``target`` the stored one is switched on or off."""
        _check(p, number, change=True)
        await _extension(number)
        target = await _target(body.target) if body.target is not None else None
        try:
            stored = await store.set_rule(
                number, kind, target=target, enabled=body.enabled, actor=p.subject
            )
        except LookupError:
            raise ForwardingNotSet(
                f"{number} has no {kind.value} forwarding to switch", kind=kind.value
            ) from None
        return _out(number, stored)

    @router.delete(path + "/{kind}", response_model=ForwardingOut)
    async def clear_one(number: str, kind: ForwardKind, p: Principal = who) -> ForwardingOut:
        _check(p, number, change=True)
        await _extension(number)
        return _out(number, await store.remove_rule(number, kind, actor=p.subject))

    return router
