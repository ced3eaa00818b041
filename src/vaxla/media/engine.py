"""The media engine of a node: ports, clock, prompts, recordings, quality.

One :class:`MediaEngine` per node. Services ask it for a :class:`MediaLeg`
answering a caller's offer; the relay anchor asks it for sockets; both
report their RTP figures here, which go to the ``media_quality`` table
next to the call record, and recordings get their row in
``media_recordings`` the moment they start. With ``media.fast_relay`` the
RTP of anchored calls is relayed by one C thread (:mod:`fastrelay`), which
the engine starts with the first anchored call and stops on close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from vaxla.config import MediaSettings
from vaxla.media.clock import MediaClock
from vaxla.media.endpoint import RtpEndpoint
from vaxla.media.fastrelay import FastRelay
from vaxla.media.leg import DigitReceived, MediaLeg
from vaxla.media.models import MediaQuality, Recording
from vaxla.media.negotiation import NegotiationError, make_answer
from vaxla.media.ports import PortAllocator
from vaxla.media.recorder import WavRecorder
from vaxla.media.stream import StreamStats
from vaxla.media.tts import PromptCache
from vaxla.pbx.services import ServiceCall
from vaxla.store.db import Database

if TYPE_CHECKING:
    from vaxla.media.anchor import AnchoredCall

log = logging.getLogger("vaxla.media")


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class MediaEngine:
    def __init__(
        self,
        settings: MediaSettings,
        data_dir: Path,
        db: Database | None = None,
        *,
        publish: Callable[[str, dict[str, Any]], object] | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.host = settings.address
        self.advertise = settings.advertise or settings.address
        self.ports = PortAllocator(settings.port_min, settings.port_max)
        self.clock = MediaClock()
        self.prompts = PromptCache(data_dir / "prompts", settings.voice)
        self.recordings_dir = data_dir / "recordings"
        self.db = db
        self.publish = publish
        self.wall = wall
        self.anchored: dict[str, AnchoredCall] = {}
        self.by_extension: dict[str, str] = {}  # extension -> call id of its anchored call
        self._tasks: set[asyncio.Task[None]] = set()
        self._fast: FastRelay | None = None

    def fast_relay(self) -> FastRelay | None:
        """The C relay for anchored calls; None when ``media.fast_relay`` is
        off or the extension is not built (then they relay in Python)."""
        if not self.settings.fast_relay:
            return None
        if self._fast is None:
            self._fast = FastRelay.create(asyncio.get_running_loop())
        return self._fast

    # -- endpoints and legs

    def endpoint(self) -> RtpEndpoint:
        return RtpEndpoint(
            self.host,
            self.ports,
            delay=self.settings.jitter_delay_ms * 8,
            rtcp_interval=self.settings.rtcp_interval,
            wall=self.wall,
        )

    async def answer_service(self, call: ServiceCall, *, inband_dtmf: bool = True) -> MediaLeg:
        """Answer ``call`` with a Växla leg (RFC 3264 answer to its offer).

        Raises :class:`NegotiationError` (the caller should then reject the
        call with 488) when the offer has no G.711 audio or no offer came."""
        if not call.offer:
            raise NegotiationError("no offer (a delayed offer is answered by services._answer)")
        ep = self.endpoint()
        await ep.open()
        session_id = str(secrets.randbelow(10**12))
        try:
            answer, params = make_answer(
                call.offer,
                self.advertise,
                ep.port,
                session_id=session_id,
                ptime=self.settings.ptime,
            )
        except (NegotiationError, ValueError):
            ep.close()
            raise
        ep.start(params)
        leg = self.service_leg(call, ep, session_id, inband_dtmf=inband_dtmf)
        call.answer(bytes(answer))
        return leg

    def service_leg(
        self,
        call: ServiceCall,
        ep: RtpEndpoint,
        session_id: str,
        *,
        version: int = 1,
        inband_dtmf: bool = True,
    ) -> MediaLeg:
        """The leg of a service call whose media runs on ``ep`` (started): its
        digits are published, SIP INFO digits reach it, and a re-INVITE's offer
        is answered on ``ep`` with the session's o= version going on."""
        leg = MediaLeg(
            ep,
            self.clock,
            call_id=call.call_id,
            inband_dtmf=inband_dtmf,
            on_digit=self._digit_event,
        )
        call.on_info_dtmf = leg.info_digit
        versions = [version]

        def reoffer(sdp: bytes) -> bytes:
            versions[0] += 1
            new_answer, new_params = make_answer(
                sdp,
                self.advertise,
                ep.port,
                session_id=session_id,
                version=versions[0],
                ptime=self.settings.ptime,
            )
            ep.start(new_params)
            return bytes(new_answer)

        call.on_reoffer = reoffer
        leg.start()
        return leg

    def close_leg(self, leg: MediaLeg, call_id: str, name: str = "service") -> None:
        stats = leg.endpoint.stats()
        leg.close()
        self.save_quality(call_id, name, stats)

    def _digit_event(self, call_id: str, digit: DigitReceived) -> None:
        if self.publish is not None:
            self.publish(
                "media.dtmf",
                {
                    "call_id": call_id,
                    "digit": digit.digit,
                    "source": digit.source,
                    "start": digit.start,
                    "duration_ms": digit.duration_ms,
                },
            )

    # -- persistence

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def save_quality(self, call_id: str, leg: str, stats: StreamStats) -> None:
        log.info("media quality", extra={"call_id": call_id, "leg": leg, **stats.as_dict()})
        if self.db is None:
            return
        row = MediaQuality(
            call_id=call_id,
            leg=leg,
            packets_received=stats.packets_received,
            packets_lost=stats.packets_lost,
            loss_percent=stats.loss_percent,
            jitter_ms=stats.jitter_ms,
            packets_sent=stats.packets_sent,
            remote_loss_percent=stats.remote_loss_percent,
            remote_jitter_ms=stats.remote_jitter_ms,
            recorded_at=_utc(self.wall()),
        )
        self._spawn(self._insert(row))

    async def _insert(self, row: Any) -> None:
        assert self.db is not None
        try:
            async with self.db.transaction() as s:
                s.add(row)
        except Exception:
            log.exception("storing media row failed")

    async def start_recording(
        self, call_id: str, caller: str, callee: str, mode: str = "stereo"
    ) -> tuple[str, WavRecorder]:
        rec_id = uuid.uuid4().hex
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        path = self.recordings_dir / day / f"{rec_id}.wav"
        recorder = await asyncio.to_thread(WavRecorder, path, mode)
        if self.db is not None:
            async with self.db.transaction() as s:
                s.add(
                    Recording(
                        id=rec_id,
                        call_id=call_id,
                        caller=caller,
                        callee=callee,
                        mode=mode,
                        path=str(path),
                        started_at=_utc(self.wall()),
                    )
                )
        return rec_id, recorder

    async def finish_recording(self, rec_id: str, recorder: WavRecorder) -> None:
        duration = await asyncio.to_thread(recorder.close)
        if self.db is None:
            return
        async with self.db.transaction() as s:
            row = await s.get(Recording, rec_id)
            if row is not None:
                row.ended_at = _utc(self.wall())
                row.duration_s = duration

    async def recordings(self, call_id: str | None = None) -> list[Recording]:
        if self.db is None:
            return []
        async with self.db.session() as s:
            q = select(Recording).order_by(Recording.started_at)
            if call_id is not None:
                q = q.where(Recording.call_id == call_id)
            return list((await s.execute(q)).scalars())

    async def recording(self, rec_id: str) -> Recording | None:
        if self.db is None:
            return None
        async with self.db.session() as s:
            return await s.get(Recording, rec_id)

    async def quality(self, call_id: str) -> list[MediaQuality]:
        if self.db is None:
            return []
        async with self.db.session() as s:
            q = select(MediaQuality).where(MediaQuality.call_id == call_id)
            return list((await s.execute(q)).scalars())

    async def close(self) -> None:
        for call in list(self.anchored.values()):
            await call.close()
        if self._fast is not None:
            self._fast.close()
            self._fast = None
        self.clock.close()
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                await task
