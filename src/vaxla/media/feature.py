"""The media feature: plugs the engine into a node.

Registers the service numbers (echo, read-back, conference, listen-in,
whisper) with the B2BUA, installs the relay anchor, and serves the media
API: anchored calls and their quality, recordings (start/stop mid-call,
list, MP3 export).

Listen-in and whisper are for supervisors and operators only (the setting
``media.monitor_roles``): the calling extension must be the own extension
of an active user holding one of those roles. Every use is written to the
node's audit log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse
from pydantic import BaseModel
from sqlalchemy import select

from vaxla.api.auth import require_roles
from vaxla.auth.audit import record_now
from vaxla.auth.models import User, UserRole
from vaxla.errors import NotFound, VaxlaError
from vaxla.features import NodeContext
from vaxla.media.anchor import RelayAnchor
from vaxla.media.engine import MediaEngine
from vaxla.media.recorder import export_mp3
from vaxla.media.services import (
    ConferenceService,
    EchoService,
    MonitorService,
    ReadbackService,
)
from vaxla.store.db import Database


class RoleMonitorPolicy:
    """Who may listen in and whisper (by the user table), and their audit rows."""

    def __init__(self, db: Database, roles: Sequence[str]) -> None:
        self.db = db
        self.roles = tuple(roles)

    async def authorise(self, extension: str) -> str | None:
        """The user name of an active user with a monitoring role whose own
        extension ``extension`` is, or None."""
        async with self.db.session() as s:
            name = await s.scalar(
                select(User.username)
                .join(UserRole, UserRole.user_id == User.id)
                .where(
                    User.extension == extension,
                    User.active.is_(True),
                    UserRole.role.in_(self.roles),
                )
                .order_by(User.id)
                .limit(1)
            )
        return name

    async def audit(
        self, *, actor: str, action: str, entity: str, entity_id: str, after: dict[str, Any]
    ) -> None:
        await record_now(
            self.db, actor=actor, action=action, entity=entity, entity_id=entity_id, after=after
        )


class RecordingRequest(BaseModel):
    mode: str = "stereo"


class AnchorRequest(BaseModel):
    anchored: bool = True


class NotAnchored(VaxlaError):
    status = 409
    error_id = "media-not-anchored"


class MediaFeature:
    name = "media"

    def __init__(self) -> None:
        self.engine: MediaEngine | None = None
        self.anchor: RelayAnchor | None = None
        self._ctx: NodeContext | None = None
        self._numbers: list[str] = []

    async def start(self, ctx: NodeContext) -> None:
        self._ctx = ctx
        s = ctx.settings.media
        engine = self.engine = MediaEngine(
            s, Path(ctx.settings.data_dir), ctx.db, publish=ctx.bus.publish
        )
        b2bua = ctx.services["b2bua"]
        policy = RoleMonitorPolicy(ctx.db, s.monitor_roles)

        async def anchor_call_of(extension: str) -> bool:
            """Anchor the extension's answered call (listen-in needs its media)."""
            call = b2bua.current_call(extension)
            if call is None:
                return False
            return bool(await b2bua.set_anchored(call.a_dialog.call_id, True))

        async def direct_call_of(extension: str) -> bool:
            call = b2bua.current_call(extension)
            if call is None:
                return False
            return bool(await b2bua.set_anchored(call.a_dialog.call_id, False))

        def monitor(whisper: bool) -> MonitorService:
            return MonitorService(
                engine,
                whisper=whisper,
                policy=policy,
                anchor=anchor_call_of,
                release=direct_call_of,
            )

        services: list[tuple[str | None, Any]] = [
            (s.echo_number, EchoService(engine)),
            (s.readback_number, ReadbackService(engine)),
            (s.conference_number, ConferenceService(engine)),
            (s.listen_number, monitor(False)),
            (s.whisper_number, monitor(True)),
        ]
        for number, service in services:
            if number:
                b2bua.services[number] = service
                self._numbers.append(number)
        self.anchor = RelayAnchor(engine, s.anchor)
        b2bua.media_anchor = self.anchor
        ctx.services["media"] = engine

    def routers(self) -> list[APIRouter]:
        assert self._ctx is not None
        router = APIRouter(prefix="/api/v1/media", tags=["media"])
        auth = Depends(require_roles(self._ctx.principal, "operator", "supervisor"))

        def engine() -> MediaEngine:
            assert self.engine is not None
            return self.engine

        @router.get("/calls", dependencies=[auth])
        async def anchored_calls() -> list[dict[str, Any]]:
            return [
                {
                    "call_id": c.call_id,
                    "caller": c.caller,
                    "callee": c.callee,
                    "recordings": list(c.recorders),
                    "quality": {k: v.as_dict() for k, v in c.quality().items()},
                }
                for c in engine().anchored.values()
            ]

        @router.put("/calls/{call_id}/anchor", dependencies=[auth])
        async def set_anchor(call_id: str, body: AnchorRequest) -> dict[str, bool]:
            """Move a live call's media through Växla (or back to direct) by re-INVITE."""
            assert self._ctx is not None
            b2bua = self._ctx.services["b2bua"]
            if b2bua.answered_call(call_id) is None:
                raise NotFound(f"no answered call {call_id}")
            if not await b2bua.set_anchored(call_id, body.anchored):
                raise VaxlaError("the phones did not accept the media change")
            return {"anchored": call_id in engine().anchored}

        @router.post("/calls/{call_id}/recordings", dependencies=[auth], status_code=201)
        async def start_recording(call_id: str, body: RecordingRequest) -> dict[str, str]:
            call = engine().anchored.get(call_id)
            if call is None:
                raise NotAnchored(f"call {call_id} is not anchored through Växla")
            if body.mode not in ("stereo", "mono"):
                raise VaxlaError("mode is stereo or mono")
            return {"id": await call.start_recording(body.mode)}

        @router.delete("/calls/{call_id}/recordings", dependencies=[auth])
        async def stop_recording(call_id: str) -> dict[str, list[str]]:
            call = engine().anchored.get(call_id)
            if call is None:
                raise NotAnchored(f"call {call_id} is not anchored through Växla")
            return {"stopped": await call.stop_recording()}

        @router.get("/recordings", dependencies=[auth])
        async def recordings(call_id: str | None = None) -> list[dict[str, Any]]:
            return [
                {
                    "id": r.id,
                    "call_id": r.call_id,
                    "caller": r.caller,
                    "callee": r.callee,
                    "mode": r.mode,
                    "started_at": r.started_at,
                    "ended_at": r.ended_at,
                    "duration_s": r.duration_s,
                }
                for r in await engine().recordings(call_id)
            ]

        @router.get("/recordings/{rec_id}/wav", dependencies=[auth])
        async def recording_wav(rec_id: str) -> FileResponse:
            row = await engine().recording(rec_id)
            if row is None or row.ended_at is None:
                raise NotFound(f"no finished recording {rec_id}")
            return FileResponse(row.path, media_type="audio/wav")

        @router.get("/recordings/{rec_id}/mp3", dependencies=[auth])
        async def recording_mp3(rec_id: str) -> FileResponse:
            row = await engine().recording(rec_id)
            if row is None or row.ended_at is None:
                raise NotFound(f"no finished recording {rec_id}")
            mp3 = await asyncio.to_thread(export_mp3, Path(row.path))
            return FileResponse(mp3, media_type="audio/mpeg")

        @router.get("/quality/{call_id}", dependencies=[auth])
        async def quality(call_id: str) -> list[dict[str, Any]]:
            return [
                {
                    "leg": q.leg,
                    "packets_received": q.packets_received,
                    "packets_lost": q.packets_lost,
                    "loss_percent": q.loss_percent,
                    "jitter_ms": q.jitter_ms,
                    "packets_sent": q.packets_sent,
                    "remote_loss_percent": q.remote_loss_percent,
                    "remote_jitter_ms": q.remote_jitter_ms,
                }
                for q in await engine().quality(call_id)
            ]

        return [router]

    async def stop(self) -> None:
        if self._ctx is not None:
            b2bua = self._ctx.services["b2bua"]
            for number in self._numbers:
                b2bua.services.pop(number, None)
            if b2bua.media_anchor is self.anchor:
                b2bua.media_anchor = None
        if self.engine is not None:
            await self.engine.close()
