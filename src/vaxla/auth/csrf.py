"""CSRF protection for everything a browser session can change.

A request that carries the session cookie and changes state (POST, PUT,
PATCH, DELETE) must present the session's CSRF token in ``X-CSRF-Token``;
otherwise it is refused with ``403 csrf-failed`` before any route runs.
Requests with a bearer token do not use the cookie and pass (a browser never
adds an ``Authorization`` header across sites on its own). HTML forms
(sign-in, sign-out) carry the token in a form field and check it themselves;
their paths are listed in ``form_paths``.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from vaxla.api.auth import SESSION_COOKIE

CSRF_HEADER = "x-csrf-token"
CSRF_FORM_FIELD = "csrf_token"
#: The pre-session cookie of the sign-in form (double-submit against login CSRF).
SIGNIN_CSRF_COOKIE = "vaxla_signin"
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


class CsrfMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        check: Callable[[str, str | None], bool],
        form_paths: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.check = check
        self.form_paths = form_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE:
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            cookie = cookie_parser(headers.get("cookie", "")).get(SESSION_COOKIE)
            if (
                cookie
                and "authorization" not in headers
                and scope["path"] not in self.form_paths
                and not self.check(cookie, headers.get(CSRF_HEADER))
            ):
                body = json.dumps(
                    {
                        "error_id": "csrf-failed",
                        "message": "the request lacks this session's CSRF token",
                        "details": {"header": "X-CSRF-Token"},
                    }
                ).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 403,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
