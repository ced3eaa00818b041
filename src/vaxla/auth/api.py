"""REST routes of users, roles and self-service (``/api/v1/users``, ``/api/v1/me``).

Each route declares the roles it needs: ``admin`` manages users; every
signed-in person (or token) reads and changes only their own settings under
``/api/v1/me``. Everything that changes state is audited.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from vaxla.api.auth import ROLE_ORDER, Principal, require_roles
from vaxla.auth import audit
from vaxla.auth.models import VoicemailPin
from vaxla.auth.passwords import PasswordHashing
from vaxla.auth.sessions import SessionStore
from vaxla.auth.users import UserInfo, UserStore
from vaxla.errors import InvalidInput, VaxlaError
from vaxla.i18n import t
from vaxla.pbx.extensions import ExtensionStore
from vaxla.store.db import Database
from vaxla.web.presence import PhoneStates


class NoExtension(VaxlaError):
    status = 409
    error_id = "no-extension"


class WrongPassword(VaxlaError):
    status = 403
    error_id = "wrong-password"


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str
    roles: list[str]
    extension: str | None
    person_id: int | None
    language: str
    active: bool
    locked_until: datetime | None
    identity_provider: str
    created_at: datetime


class UserIn(BaseModel):
    username: str = Field(min_length=2, max_length=100, examples=["telefonist"])
    display_name: str = Field("", max_length=200)
    password: str | None = Field(None, min_length=8, max_length=200)
    roles: list[str] = Field(min_length=1, examples=[["operator"]])
    extension: str | None = Field(None, pattern=r"^[0-9]{2,15}$")
    person_id: int | None = None
    language: Literal["sv", "en"] = "sv"


class UserPatch(BaseModel):
    display_name: str | None = Field(None, max_length=200)
    roles: list[str] | None = None
    extension: str | None = Field(None, pattern=r"^([0-9]{2,15})?$")
    person_id: int | None = None
    language: Literal["sv", "en"] | None = None
    active: bool | None = None
    unlock: bool = False


class PasswordIn(BaseModel):
    password: str = Field(min_length=8, max_length=200)


class OwnPasswordIn(BaseModel):
    current: str = Field(max_length=200)
    password: str = Field(min_length=8, max_length=200)


class MePatch(BaseModel):
    language: Literal["sv", "en"] | None = None
    display_name: str | None = Field(None, min_length=1, max_length=200)


class MeOut(BaseModel):
    subject: str
    via: str
    roles: list[str]
    display_name: str
    extension: str | None
    person_id: int | None
    language: str


class SipPasswordIn(BaseModel):
    password: str = Field(min_length=8, max_length=128)


class PinIn(BaseModel):
    pin: str = Field(pattern=r"^[0-9]{4,8}$")


class RoleOut(BaseModel):
    role: str
    label: str


def _user_out(u: UserInfo) -> UserOut:
    return UserOut.model_validate(u.public())


def build_router(
    *,
    db: Database,
    users: UserStore,
    sessions: SessionStore,
    hashing: PasswordHashing,
    extensions: ExtensionStore,
    presence: PhoneStates,
    principal: Callable[..., Awaitable[Principal]],
    person_of: Callable[[str], Awaitable[int | None]],
) -> APIRouter:
    router = APIRouter()
    anyone = Depends(principal)
    admin = Depends(require_roles(principal, "admin"))

    # ------------------------------------------------------------ users (admin)

    @router.get("/api/v1/roles", response_model=list[RoleOut], tags=["users"])
    async def list_roles(p: Principal = anyone) -> list[RoleOut]:
        return [RoleOut(role=r, label=t(f"role.{r}", p.language)) for r in ROLE_ORDER]

    @router.get("/api/v1/users", response_model=list[UserOut], tags=["users"])
    async def list_users(_: Principal = admin) -> list[UserOut]:
        return [_user_out(u) for u in await users.list()]

    @router.post("/api/v1/users", response_model=UserOut, status_code=201, tags=["users"])
    async def add_user(body: UserIn, p: Principal = admin) -> UserOut:
        info = await users.add(
            body.username,
            password=body.password,
            roles=body.roles,
            display_name=body.display_name,
            extension=body.extension,
            person_id=body.person_id,
            language=body.language,
            actor=p.subject,
        )
        return _user_out(info)

    @router.get("/api/v1/users/{user_id}", response_model=UserOut, tags=["users"])
    async def get_user(user_id: int, _: Principal = admin) -> UserOut:
        return _user_out(await users.get(user_id))

    @router.patch("/api/v1/users/{user_id}", response_model=UserOut, tags=["users"])
    async def change_user(user_id: int, body: UserPatch, p: Principal = admin) -> UserOut:
        """Roles take effect at the user's next request; deactivating ends their sessions."""
        info = await users.update(user_id, body.model_dump(exclude_unset=True), p.subject)
        if not info.active:
            await sessions.revoke_user(user_id)
        return _user_out(info)

    @router.put("/api/v1/users/{user_id}/password", status_code=204, tags=["users"])
    async def set_user_password(user_id: int, body: PasswordIn, p: Principal = admin) -> Response:
        await users.set_password(user_id, body.password, p.subject)
        await sessions.revoke_user(user_id)
        return Response(status_code=204)

    @router.delete("/api/v1/users/{user_id}", status_code=204, tags=["users"])
    async def remove_user(user_id: int, p: Principal = admin) -> Response:
        await sessions.revoke_user(user_id)
        await users.remove(user_id, p.subject)
        return Response(status_code=204)

    # ------------------------------------------------------------ self-service

    async def _me(p: Principal) -> MeOut:
        info = await users.get(p.user_id) if p.user_id is not None else None
        person_id = info.person_id if info and info.person_id else await person_of(p.subject)
        return MeOut(
            subject=p.subject,
            via=p.via,
            roles=sorted(p.roles, key=ROLE_ORDER.index),
            display_name=info.display_name if info else p.subject,
            extension=p.extension,
            person_id=person_id,
            language=p.language,
        )

    def _own_extension(p: Principal) -> str:
        if not p.extension:
            raise NoExtension("you have no extension of your own")
        return p.extension

    @router.get("/api/v1/me", response_model=MeOut, tags=["self-service"])
    async def me(p: Principal = anyone) -> MeOut:
        return await _me(p)

    @router.patch("/api/v1/me", response_model=MeOut, tags=["self-service"])
    async def change_me(body: MePatch, p: Principal = anyone) -> MeOut:
        if p.user_id is None:
            raise InvalidInput("API tokens have no personal settings")
        await users.update(p.user_id, body.model_dump(exclude_unset=True), p.subject)
        fresh = (await users.get(p.user_id)).principal(p.via)
        return await _me(fresh)

    @router.put("/api/v1/me/password", status_code=204, tags=["self-service"])
    async def change_own_password(body: OwnPasswordIn, p: Principal = anyone) -> Response:
        """Other sessions of the user end; this one stays."""
        if p.user_id is None:
            raise InvalidInput("API tokens have no password")
        info = await users.get(p.user_id)
        from vaxla.auth.models import User

        async with db.session() as s:
            hashed = await s.scalar(select(User.password_hash).where(User.id == info.id))
        if not await hashing.verify(hashed, body.current):
            raise WrongPassword("the current password is wrong")
        await users.set_password(info.id, body.password, p.subject)
        await sessions.revoke_user(info.id)
        return Response(status_code=204)

    @router.put("/api/v1/me/sip-password", status_code=204, tags=["self-service"])
    async def change_sip_password(body: SipPasswordIn, p: Principal = anyone) -> Response:
        """The password your phone registers with (its digest HA1s are stored)."""
        ext = _own_extension(p)
        await extensions.set_password(ext, body.password)
        await audit.record_now(
            db, actor=p.subject, action="set-sip-password", entity="extension", entity_id=ext
        )
        return Response(status_code=204)

    @router.put("/api/v1/me/voicemail-pin", status_code=204, tags=["self-service"])
    async def change_voicemail_pin(body: PinIn, p: Principal = anyone) -> Response:
        ext = _own_extension(p)
        hashed = await hashing.hash(body.pin)
        async with db.transaction() as s:
            row = await s.get(VoicemailPin, ext)
            now = users.now()
            if row is None:
                s.add(VoicemailPin(extension=ext, pin_hash=hashed, updated_at=now))
            else:
                row.pin_hash, row.updated_at = hashed, now
            audit.record(
                s,
                actor=p.subject,
                action="set-voicemail-pin",
                entity="extension",
                entity_id=ext,
                now=now,
            )
        return Response(status_code=204)

    # Call forwarding of the own extension (``/api/v1/me/forwarding``) is served
    # by ``vaxla.pbx.forwarding_api`` through the PBX's forwarding store.

    # ------------------------------------------------------------ phone state

    @router.get("/api/v1/phone-states", tags=["calls"])
    async def phone_states(
        extensions: str = Query("", description="Comma-separated extensions"),
        _: Principal = anyone,
    ) -> dict[str, Any]:
        """free | ringing | busy | unregistered per extension (R83)."""
        wanted = [e for e in extensions.split(",") if e.strip()][:500]
        return {"states": presence.snapshot(e.strip() for e in wanted)}

    @router.get("/api/v1/me/calls", tags=["calls"])
    async def my_calls(p: Principal = anyone) -> list[dict[str, str]]:
        """Calls at your own extension now (to hang up or transfer)."""
        return presence.calls_of(p.extension) if p.extension else []

    return router
