"""The web platform of a node: users, sessions, sign-in, live phone state, pages.

Built by :class:`vaxla.server.VaxlaNode` before the API app; it supplies the
session side of the principal dependency and installs its middleware
(CSRF, request audit), routes and static files on the app.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from vaxla.api.auth import SESSION_COOKIE, Principal
from vaxla.api.tokens import TokenStore
from vaxla.auth import api as auth_api
from vaxla.auth.audit import RequestAudit
from vaxla.auth.csrf import CsrfMiddleware
from vaxla.auth.passwords import PasswordHashing
from vaxla.auth.sessions import SessionStore
from vaxla.auth.signin import SignIn
from vaxla.auth.users import UserStore
from vaxla.config import Settings
from vaxla.events import EventBus
from vaxla.pbx.extensions import ExtensionStore
from vaxla.store.db import Database
from vaxla.web.pages import FORM_PATHS, HERE, Pages
from vaxla.web.presence import PhoneStates, Registrations

#: API paths whose routes write their own detailed audit rows.
SELF_AUDITED = (
    "/api/v1/directory",
    "/api/v1/diversions",
    "/api/v1/users",
    "/api/v1/me",
    "/api/v1/extensions",
)


class WebPlatform:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        bus: EventBus,
        tokens: TokenStore,
        extensions: ExtensionStore,
        location: Registrations | None,
        secret: bytes,
        clock: Callable[[], float],
        hashing: PasswordHashing | None = None,
    ) -> None:
        http = settings.http
        self.settings = settings
        self.db = db
        self.tokens = tokens
        self.extensions = extensions
        self.hashing = hashing or PasswordHashing()
        self.users = UserStore(db, self.hashing, clock)
        self.sessions = SessionStore(
            db,
            secret,
            idle=timedelta(minutes=http.session_idle_minutes),
            lifetime=timedelta(hours=http.session_hours),
            clock=clock,
        )
        self.signin = SignIn(
            db,
            self.users,
            self.sessions,
            self.hashing,
            lock_after=http.signin_lock_after,
            lock_for=timedelta(minutes=http.signin_lock_minutes),
            source_limit=http.signin_source_limit,
            source_window=float(http.signin_source_window),
            clock=clock,
        )
        self.presence = PhoneStates(bus, location, clock)
        self.pages = Pages(
            self.sessions,
            self.signin,
            self.secure_cookies,
            session_max_age=http.session_hours * 3600,
        )
        self.person_of: Callable[[str], Awaitable[int | None]] = _no_person

    def secure_cookies(self, request: Request) -> bool:
        configured = self.settings.http.cookie_secure
        if configured is not None:
            return configured
        return self.settings.http.tls or request.url.scheme == "https"

    def use_directory(self, directory: Any) -> None:
        """Link users to directory people by username (self-service diversion)."""
        if directory is not None and hasattr(directory, "person_ids_for_username"):
            self.person_of = directory.person_ids_for_username

    async def authenticate_socket(self, ws: WebSocket) -> Principal | None:
        auth = ws.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            info = await self.tokens.lookup(auth[7:].strip())
            return None if info is None else Principal(info.name, info.role)
        cookie = ws.cookies.get(SESSION_COOKIE)
        return await self.sessions.principal_for(cookie) if cookie else None

    def routers(self, principal: Callable[..., Awaitable[Principal]]) -> list[APIRouter]:
        async def person_of(username: str) -> int | None:
            return await self.person_of(username)

        return [
            auth_api.build_router(
                db=self.db,
                users=self.users,
                sessions=self.sessions,
                hashing=self.hashing,
                extensions=self.extensions,
                presence=self.presence,
                principal=principal,
                person_of=person_of,
            ),
            self.pages.router(),
        ]

    def install(self, app: FastAPI) -> None:
        app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
        app.add_middleware(RequestAudit, db=lambda: self.db, self_audited=SELF_AUDITED)
        app.add_middleware(CsrfMiddleware, check=self.sessions.check_csrf, form_paths=FORM_PATHS)

    def start(self) -> None:
        self.presence.start()

    async def stop(self) -> None:
        await self.presence.stop()


async def _no_person(_: str) -> int | None:
    return None
