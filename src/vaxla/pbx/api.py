"""Call control, presence and call forwarding for consoles: /api/v1/calls/...,
/api/v1/presence, /api/v1/extensions/{number}/forwarding."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from vaxla.api.auth import Principal, require_roles
from vaxla.pbx import forwarding_api
from vaxla.pbx.b2bua import B2BUA, CallState
from vaxla.pbx.call_control import CallControl
from vaxla.pbx.forwarding_api import ActiveForwarding, shown_status

CONTROL_ROLES = ("operator", "supervisor", "agent")


class ClickToCallIn(BaseModel):
    from_: str = Field(alias="from", pattern=r"^[0-9]{2,15}$", examples=["1001"])
    to: str = Field(pattern=r"^[0-9]{2,15}$", examples=["1002"])


class TransferIn(BaseModel):
    to: str = Field(pattern=r"^[0-9]{2,15}$", examples=["1003"])
    transferor: str | None = Field(
        None, description="The extension that leaves the call (default: the callee)."
    )


class CallRef(BaseModel):
    call_id: str


class PresenceDetail(BaseModel):
    state: str = Field(description="free | ringing | busy | unregistered")
    forwarding: list[ActiveForwarding] = Field(
        default_factory=list, description="Call forwarding in force, unconditional first"
    )


class LiveCall(BaseModel):
    call_id: str
    caller: str
    callee: str
    state: str


def build_router(
    b2bua: B2BUA,
    control: CallControl,
    principal: Callable[..., Awaitable[Principal]],
    clock: Callable[[], float],
) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["call control"])
    operator = Depends(require_roles(principal, *CONTROL_ROLES))
    anyone = Depends(principal)

    @router.post("/calls/click-to-call", response_model=CallRef, status_code=202)
    async def click_to_call(body: ClickToCallIn, _: Principal = operator) -> CallRef:
        """Ring the ``from`` extension's phone; when it answers, call ``to``."""
        return CallRef(call_id=await control.click_to_call(body.from_, body.to))

    @router.post("/calls/{call_id}/hangup", status_code=204)
    async def hangup(call_id: str, _: Principal = operator) -> Response:
        control.hangup(call_id)
        return Response(status_code=204)

    @router.post("/calls/{call_id}/transfer", status_code=202)
    async def transfer(call_id: str, body: TransferIn, _: Principal = operator) -> CallRef:
        """Blind transfer: ``transferor`` leaves, ``to`` takes its place (or
        whoever ``to``'s unconditional forwarding names)."""
        await control.transfer(call_id, body.to, body.transferor)
        return CallRef(call_id=call_id)

    @router.get("/calls/live", response_model=list[LiveCall])
    async def live_calls(_: Principal = operator) -> list[LiveCall]:
        return [
            LiveCall(
                call_id=cid,
                caller=c.outcome.caller,
                callee=c.outcome.callee,
                state=c.state.value,
            )
            for cid, c in b2bua.calls.items()
            if c.state is not CallState.ENDED
        ]

    @router.get("/presence", response_model=dict[str, str] | dict[str, PresenceDetail])
    async def presence(
        extensions: str = Query(..., description="Comma-separated extensions", max_length=4000),
        detail: bool = Query(
            False, description="Also the call forwarding in force: {state, forwarding} (R83)"
        ),
        p: Principal = anyone,
    ) -> dict[str, str] | dict[str, PresenceDetail]:
        """free | ringing | busy | unregistered for each extension; with
        ``detail=true`` each also with its call forwarding."""
        now = clock()
        wanted = [e.strip() for e in extensions.split(",") if e.strip()][:500]
        if not detail:
            return {e: b2bua.extension_state(e, now) for e in wanted}
        await b2bua.forwarding.table()
        out: dict[str, PresenceDetail] = {}
        for e in wanted:
            status = b2bua.extension_status(e, now)
            out[e] = PresenceDetail(
                state=status.state,
                forwarding=[
                    ActiveForwarding.model_validate(f)
                    for f in shown_status(p, e, status.forwarding)
                ],
            )
        return out

    routes = APIRouter()
    routes.include_router(router)
    routes.include_router(
        forwarding_api.build_router(b2bua.forwarding, b2bua.is_internal, principal),
        prefix="/api/v1",
    )
    return routes
