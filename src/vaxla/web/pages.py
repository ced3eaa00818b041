"""HTML pages: sign-in, operator console, self-service ("Mina sidor"), admin.

Pages are rendered on the server with Jinja2 (texts from the one translation
table) and come alive with the ES modules under ``static/``, which talk to
the REST API and the event stream. The sign-in and sign-out forms work
without JavaScript and carry their CSRF token in a form field.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from vaxla import __version__
from vaxla.api.auth import SESSION_COOKIE, Principal
from vaxla.auth.csrf import CSRF_FORM_FIELD, SIGNIN_CSRF_COOKIE
from vaxla.auth.sessions import SessionStore
from vaxla.auth.signin import AccountLocked, SignIn, TooManyAttempts
from vaxla.errors import VaxlaError
from vaxla.i18n import catalogue, language, t

HERE = Path(__file__).parent
CONSOLE_ROLES = ("operator", "supervisor")
ADMIN_ROLES = ("directory-admin",)
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
FORM_PATHS = frozenset({"/logga-in", "/logga-ut"})


def source_of(request: Request) -> str:
    return request.client.host if request.client else "-"


def _safe_next(target: str | None) -> str | None:
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return None


def landing(p: Principal) -> str:
    if p.has(*CONSOLE_ROLES):
        return "/konsol"
    return "/mina-sidor"


class Pages:
    def __init__(
        self,
        sessions: SessionStore,
        signin: SignIn,
        secure_cookies: Callable[[Request], bool],
        session_max_age: int,
    ) -> None:
        self.sessions = sessions
        self.signin = signin
        self.secure_cookies = secure_cookies
        self.session_max_age = session_max_age
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=jinja2.select_autoescape(["html"]),
            undefined=jinja2.StrictUndefined,
        )

    def render(
        self,
        name: str,
        lang: str,
        status: int = 200,
        principal: Principal | None = None,
        csrf: str = "",
        **values: Any,
    ) -> HTMLResponse:
        lang = language(lang)

        def tr(key: str, **params: object) -> str:
            return t(key, lang, **params)

        html = self.env.get_template(name).render(
            t=tr,
            lang=lang,
            principal=principal,
            csrf=csrf,
            version=__version__,
            i18n_json=json.dumps(catalogue(lang), ensure_ascii=False).replace("</", "<\\/"),
            can_console=bool(principal and principal.has(*CONSOLE_ROLES)),
            can_admin=bool(principal and principal.has(*ADMIN_ROLES)),
            **values,
        )
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    async def who(self, request: Request) -> tuple[Principal, str] | None:
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            return None
        p = await self.sessions.principal_for(token)
        return None if p is None else (p, token)

    def to_signin(self, request: Request) -> RedirectResponse:
        target = quote(request.url.path)
        return RedirectResponse(f"/logga-in?next={target}", status_code=303)

    def router(self) -> APIRouter:
        router = APIRouter(include_in_schema=False)

        async def page(request: Request, name: str, *roles: str) -> Response:
            found = await self.who(request)
            if found is None:
                return self.to_signin(request)
            p, token = found
            if roles and not p.has(*roles):
                return self.render(
                    "forbidden.html", p.language, 403, p, self.sessions.csrf_for(token)
                )
            return self.render(name, p.language, 200, p, self.sessions.csrf_for(token))

        @router.get("/")
        async def home(request: Request) -> Response:
            found = await self.who(request)
            if found is None:
                return self.to_signin(request)
            return RedirectResponse(landing(found[0]), status_code=303)

        @router.get("/konsol")
        async def console(request: Request) -> Response:
            return await page(request, "console.html", *CONSOLE_ROLES)

        @router.get("/mina-sidor")
        async def my_pages(request: Request) -> Response:
            return await page(request, "mypages.html")

        @router.get("/admin")
        async def admin(request: Request) -> Response:
            return await page(request, "admin.html", *ADMIN_ROLES)

        def signin_page(
            request: Request, status: int = 200, error: str = "", username: str = ""
        ) -> Response:
            token = request.cookies.get(SIGNIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
            lang = language(request.query_params.get("lang"))
            response = self.render(
                "signin.html",
                lang,
                status,
                None,
                token,
                error=error,
                username=username,
                next=_safe_next(request.query_params.get("next")) or "",
            )
            response.set_cookie(
                SIGNIN_CSRF_COOKIE,
                token,
                httponly=True,
                samesite="strict",
                secure=self.secure_cookies(request),
                path="/logga-in",
            )
            return response

        @router.get("/logga-in")
        async def signin_form(request: Request) -> Response:
            return signin_page(request)

        @router.post("/logga-in")
        async def signin_submit(request: Request) -> Response:
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
            expected = request.cookies.get(SIGNIN_CSRF_COOKIE)
            username = form.get("username", "")[:100]
            if not expected or not secrets.compare_digest(expected, form.get(CSRF_FORM_FIELD, "")):
                return signin_page(request, 403, "signin.error.csrf", username)
            try:
                done = await self.signin.with_password(
                    username,
                    form.get("password", ""),
                    source_of(request),
                    request.headers.get("user-agent", ""),
                )
            except AccountLocked:
                return signin_page(request, 423, "signin.error.locked", username)
            except TooManyAttempts:
                return signin_page(request, 429, "signin.error.throttled", username)
            except VaxlaError:
                return signin_page(request, 401, "signin.error.wrong", username)
            target = _safe_next(form.get("next")) or landing(done.user.principal())
            response = RedirectResponse(target, status_code=303)
            response.set_cookie(
                SESSION_COOKIE,
                done.token,
                max_age=self.session_max_age,
                httponly=True,
                samesite="strict",
                secure=self.secure_cookies(request),
                path="/",
            )
            response.delete_cookie(SIGNIN_CSRF_COOKIE, path="/logga-in")
            return response

        @router.post("/logga-ut")
        async def signout(request: Request) -> Response:
            found = await self.who(request)
            response = RedirectResponse("/logga-in", status_code=303)
            if found is None:
                response.delete_cookie(SESSION_COOKIE, path="/")
                return response
            p, token = found
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
            if not self.sessions.check_csrf(token, form.get(CSRF_FORM_FIELD)):
                return Response(
                    json.dumps({"error_id": "csrf-failed", "message": "bad CSRF token"}),
                    status_code=403,
                    media_type="application/json",
                )
            await self.signin.sign_out(token, p.subject, source_of(request))
            response.delete_cookie(SESSION_COOKIE, path="/")
            return response

        return router
