"""The REST API (``/api/v1``), OpenAPI at ``/api/openapi.json``, and ``/metrics``.

Errors are JSON ``{"error_id": ..., "message": ..., "details": {...}}`` with
a stable ``error_id`` per kind of refusal.
"""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from starlette.exceptions import HTTPException as StarletteHTTPException

from vaxla import __version__
from vaxla.api.auth import Principal, require_roles
from vaxla.api.tokens import TokenStore
from vaxla.auth.audit import record_now
from vaxla.errors import VaxlaError
from vaxla.events import EventBus
from vaxla.metrics import Metrics
from vaxla.pbx.extensions import ExtensionInfo, ExtensionStore
from vaxla.pbx.forwarding_store import serving as forwarding_serving
from vaxla.pbx.location import LocationService
from vaxla.store.db import Database
from vaxla.store.models import CallRecord
from vaxla.web.events import serve_events


@dataclass
class ApiContext:
    db: Database
    extensions: ExtensionStore
    location: LocationService
    tokens: TokenStore
    metrics: Metrics
    clock: Any
    principal: Callable[..., Awaitable[Principal]]
    bus: EventBus
    # Who opens the event WebSocket (session cookie or bearer header).
    authenticate_socket: Callable[[WebSocket], Awaitable[Principal | None]] | None = None


class ApiError(BaseModel):
    error_id: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ExtensionIn(BaseModel):
    number: str = Field(pattern=r"^[0-9]{2,15}$", examples=["1000"])
    name: str = Field(min_length=1, max_length=200, examples=["Anna Karlsson"])
    password: str = Field(min_length=6, max_length=128)
    digest_algorithms: list[str] | None = Field(
        None, description="Digest algorithms offered to this phone (MD5, SHA-256)."
    )


class ExtensionOut(BaseModel):
    number: str
    name: str
    digest_algorithms: list[str]
    enabled: bool
    created_at: datetime
    registered_contacts: int


class RegistrationOut(BaseModel):
    extension: str
    contact: str
    expires_in: int
    transport: str
    source: str
    user_agent: str


class CallRecordOut(BaseModel):
    call_id: str
    caller: str
    callee: str
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    result: str
    sip_status: int | None
    hangup_by: str | None
    forwarded_from: str | None = Field(
        None, description="The number dialled, when call forwarding sent the call to callee"
    )
    forward_kind: str | None = Field(
        None,
        description="The kind of the last forwarding step: always | busy | no-answer | unreachable",
    )


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ApiError, "description": "Missing or invalid API token"},
    404: {"model": ApiError},
    409: {"model": ApiError},
    422: {"model": ApiError},
}


def create_app(ctx: ApiContext, routers: Sequence[APIRouter] = ()) -> FastAPI:
    app = FastAPI(
        title="Växla API",
        version=__version__,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )

    @app.exception_handler(VaxlaError)
    async def _vaxla_error(_: Request, exc: VaxlaError) -> JSONResponse:
        body = ApiError(error_id=exc.error_id, message=exc.message, details=exc.details)
        return JSONResponse(body.model_dump(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e.get("loc", ())[1:]), "problem": e.get("msg")}
            for e in exc.errors()
        ]
        body = ApiError(
            error_id="invalid-input", message="the request is not valid", details={"errors": errors}
        )
        return JSONResponse(body.model_dump(), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        ids = {401: "unauthorized", 403: "forbidden", 404: "not-found", 405: "method-not-allowed"}
        body = ApiError(error_id=ids.get(exc.status_code, "http-error"), message=str(exc.detail))
        return JSONResponse(body.model_dump(), status_code=exc.status_code)

    auth = Depends(require_roles(ctx.principal, "admin"))

    def _out(info: ExtensionInfo) -> ExtensionOut:
        return ExtensionOut(
            number=info.number,
            name=info.display_name,
            digest_algorithms=list(info.digest_algorithms),
            enabled=info.enabled,
            created_at=info.created_at,
            registered_contacts=len(ctx.location.lookup(info.number, ctx.clock())),
        )

    @app.get(
        "/api/v1/extensions",
        response_model=list[ExtensionOut],
        responses=ERRORS,
        tags=["extensions"],
    )
    async def list_extensions(_: Principal = auth) -> list[ExtensionOut]:
        return [_out(e) for e in await ctx.extensions.list()]

    @app.post(
        "/api/v1/extensions",
        response_model=ExtensionOut,
        status_code=201,
        responses=ERRORS,
        tags=["extensions"],
    )
    async def add_extension(body: ExtensionIn, p: Principal = auth) -> ExtensionOut:
        info = await ctx.extensions.add(
            body.number, body.name, body.password, body.digest_algorithms
        )
        await record_now(
            ctx.db,
            actor=p.subject,
            action="create",
            entity="extension",
            entity_id=info.number,
            after={"name": info.display_name, "digest": list(info.digest_algorithms)},
        )
        return _out(info)

    @app.get(
        "/api/v1/extensions/{number}",
        response_model=ExtensionOut,
        responses=ERRORS,
        tags=["extensions"],
    )
    async def get_extension(number: str, _: Principal = auth) -> ExtensionOut:
        return _out(await ctx.extensions.get(number))

    @app.delete(
        "/api/v1/extensions/{number}", status_code=204, responses=ERRORS, tags=["extensions"]
    )
    async def remove_extension(number: str, p: Principal = auth) -> Response:
        await ctx.extensions.remove(number)
        ctx.location.forget_aor(number)
        # Its call forwarding goes too, and others' forwarding to it (see there).
        await forwarding_serving(ctx.db, ctx.bus).forget_extension(number, actor=p.subject)
        await record_now(
            ctx.db, actor=p.subject, action="delete", entity="extension", entity_id=number
        )
        return Response(status_code=204)

    @app.get(
        "/api/v1/registrations",
        response_model=list[RegistrationOut],
        responses=ERRORS,
        tags=["registrations"],
    )
    async def list_registrations(_: Principal = auth) -> list[RegistrationOut]:
        now = ctx.clock()
        return [
            RegistrationOut(
                extension=c.aor,
                contact=c.uri,
                expires_in=c.remaining(now),
                transport=c.peer.transport,
                source=f"{c.peer.host}:{c.peer.port}",
                user_agent=c.user_agent,
            )
            for c in sorted(ctx.location.all(now), key=lambda c: (c.aor, c.uri))
        ]

    @app.get("/api/v1/calls", response_model=list[CallRecordOut], responses=ERRORS, tags=["calls"])
    async def list_calls(_: Principal = auth, limit: int = 100) -> list[CallRecordOut]:
        limit = max(1, min(limit, 1000))
        async with ctx.db.session() as s:
            rows = await s.scalars(select(CallRecord).order_by(CallRecord.id.desc()).limit(limit))
            return [CallRecordOut.model_validate(r, from_attributes=True) for r in rows]

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        ctx.metrics.registrations.set(ctx.location.count())
        return Response(ctx.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.websocket("/api/v1/events")
    async def events(ws: WebSocket) -> None:
        """Live events (registration, call, diversion, phone state), filtered by role;
        ``?after=N`` resumes after position N (see ``vaxla.web.events``)."""

        async def by_token(sock: WebSocket) -> Principal | None:
            auth = sock.headers.get("authorization", "")
            if not auth.lower().startswith("bearer "):
                return None
            info = await ctx.tokens.lookup(auth[7:].strip())
            return None if info is None else Principal(info.name, info.role)

        await serve_events(ws, ctx.bus, ctx.authenticate_socket or by_token)

    for router in routers:
        app.include_router(router)
    return app
