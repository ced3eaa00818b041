"""Numbers answered by Växla's media engine: echo test, read-back, conference,
listen-in and whisper.

Each is a ``CallService`` (see :mod:`vaxla.pbx.services`): it answers the
caller's offer with a :class:`~vaxla.media.leg.MediaLeg` and plays, listens
and mixes until the caller hangs up. An INVITE without SDP (delayed offer)
is answered with Växla's own offer in the 200 OK; the caller's answer comes
in the ACK.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from vaxla.i18n import t
from vaxla.media.engine import MediaEngine
from vaxla.media.leg import MediaLeg
from vaxla.media.mixer import FRAME, ConferenceMixer
from vaxla.media.negotiation import NegotiationError, accept_answer, make_offer
from vaxla.media.numbers_sv import digits_words
from vaxla.media.player import FifoSource, ToneSource
from vaxla.media.tones import swedish_tone
from vaxla.media.tts import PromptError
from vaxla.pbx.services import ServiceCall
from vaxla.sip.errors import SipParseError

if TYPE_CHECKING:
    from vaxla.media.anchor import AnchoredCall

log = logging.getLogger("vaxla.media")

DIGIT_NAMES = {
    **{d: w for d, w in zip("0123456789", digits_words("0123456789").split(), strict=True)},
    "*": "stjärna",
    "#": "fyrkant",
    "A": "A",
    "B": "B",
    "C": "C",
    "D": "D",
}


#: How long a 200 OK with Växla's offer waits for the ACK carrying the
#: answer: 64 × T1, as long as the 2xx is retransmitted (RFC 3261 §13.3.1.4).
ACK_WAIT = 32.0


async def answer_call(engine: MediaEngine, call: ServiceCall) -> MediaLeg | None:
    """A leg answering ``call``: to its offer, or (delayed offer) with Växla's
    offer. None when the call could not be set up (it is then rejected or
    hung up)."""
    if not call.offer:
        return await _answer_delayed_offer(engine, call)
    try:
        return await engine.answer_service(call)
    except (NegotiationError, SipParseError, ValueError):
        call.reject(488)
        return None


async def _answer_delayed_offer(engine: MediaEngine, call: ServiceCall) -> MediaLeg | None:
    """The INVITE had no SDP (RFC 3261 §13.2.1): Växla offers G.711 and
    telephone-event in the 200 OK and takes the answer from the ACK
    (RFC 3264 §5). A missing or unusable answer ends the call with BYE."""
    ep = engine.endpoint()
    await ep.open()
    session_id = str(secrets.randbelow(10**12))
    offer = make_offer(
        engine.advertise, ep.port, session_id=session_id, ptime=engine.settings.ptime
    )
    acked: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
    applied = [b""]

    def on_ack(sdp: bytes) -> None:
        if not acked.done():
            acked.set_result(sdp)
        elif sdp and sdp != applied[0]:
            # the answer in the ACK of a re-INVITE that came without SDP: the
            # 200 repeated Växla's offer (RFC 3261 §14.2)
            with contextlib.suppress(NegotiationError, SipParseError, ValueError):
                ep.start(accept_answer(offer, sdp, ptime=engine.settings.ptime))
                applied[0] = sdp

    call.on_ack = on_ack
    call.answer(bytes(offer))
    ended = asyncio.ensure_future(call.ended.wait())
    waiting: list[asyncio.Future[Any]] = [acked, ended]
    try:
        await asyncio.wait(waiting, timeout=ACK_WAIT, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        ep.close()
        raise
    finally:
        ended.cancel()
    params = None
    if not acked.done():  # the caller hung up, or no ACK came
        acked.cancel()
    elif not acked.result():
        log.warning("ACK without the answer to Växla's offer", extra={"call_id": call.call_id})
    else:
        try:
            params = accept_answer(offer, acked.result(), ptime=engine.settings.ptime)
        except (NegotiationError, SipParseError, ValueError) as exc:
            log.warning(
                "no usable answer in the ACK", extra={"call_id": call.call_id, "error": str(exc)}
            )
    if params is None:
        ep.close()
        call.hangup()
        return None
    applied[0] = acked.result()
    ep.start(params)
    return engine.service_leg(call, ep, session_id)


async def next_digit(leg: MediaLeg, call: ServiceCall, timeout: float | None = None) -> str | None:
    """The next key the caller presses; None when they hang up first, or
    when none comes within ``timeout`` seconds."""
    get = asyncio.ensure_future(leg.digits.get())
    ended = asyncio.ensure_future(call.ended.wait())
    try:
        done, _ = await asyncio.wait(
            [get, ended], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        ended.cancel()
    if get not in done:
        get.cancel()
        return None
    return get.result().digit


async def keyed_number(
    leg: MediaLeg, call: ServiceCall, timeout: float, *, star_restarts: bool = False
) -> str | None:
    """The digits keyed up to ``#`` (with ``star_restarts``, ``*`` starts
    again); None when the caller hung up or stayed quiet ``timeout`` seconds."""
    digits = ""
    while (key := await next_digit(leg, call, timeout)) is not None:
        if key == "#":
            return digits
        digits = "" if star_restarts and key == "*" else digits + key
    return None


class EchoService:
    """What the caller sends comes back (after the playout delay)."""

    def __init__(self, engine: MediaEngine) -> None:
        self.engine = engine

    async def handle(self, call: ServiceCall) -> None:
        leg = await answer_call(self.engine, call)
        if leg is None:
            return
        fifo = FifoSource(prebuffer=leg.ptime * 8)
        leg.listeners.append(fifo.push)
        leg.player.idle = fifo
        try:
            await call.ended.wait()
        finally:
            self.engine.close_leg(leg, call.call_id)


class ReadbackService:
    """Reads back the caller's extension in Swedish, then every digit pressed.

    ``*`` repeats the announcement. Between announcements the caller hears
    comfort noise, never silence (R98)."""

    def __init__(self, engine: MediaEngine) -> None:
        self.engine = engine

    def announcement(self, caller: str) -> str:
        if caller.isdigit():
            return t("readback.extension", "sv", number=digits_words(caller))
        return t("readback.unknown", "sv")

    async def _say(self, leg: MediaLeg, text: str) -> None:
        try:
            pcm = await self.engine.prompts.render(text)
        except PromptError:
            log.exception("prompt failed")
            pcm = swedish_tone("special_information").read(8000)
        await leg.play_pcm(pcm)

    async def handle(self, call: ServiceCall) -> None:
        leg = await answer_call(self.engine, call)
        if leg is None:
            return
        text = self.announcement(call.caller)
        ended = asyncio.ensure_future(call.ended.wait())
        try:
            await asyncio.wait(
                [asyncio.ensure_future(self._say(leg, text)), ended],
                return_when=asyncio.FIRST_COMPLETED,
            )
            while (digit := await next_digit(leg, call)) is not None:
                if digit == "*":
                    await self._say(leg, text)
                else:
                    name = DIGIT_NAMES.get(digit, digit)
                    await self._say(leg, t("readback.pressed", "sv", digit=name))
        finally:
            ended.cancel()
            self.engine.close_leg(leg, call.call_id)


class ConferenceRoom:
    """One room: everyone hears everyone else, with join/leave tones."""

    def __init__(self, engine: MediaEngine, number: str) -> None:
        self.engine = engine
        self.number = number
        self.mixer = ConferenceMixer()
        self.inputs: dict[MediaLeg, FifoSource] = {}
        self.outputs: dict[MediaLeg, FifoSource] = {}
        self._sub: int | None = None

    def join(self, leg: MediaLeg) -> None:
        source = FifoSource(prebuffer=FRAME)
        out = FifoSource(prebuffer=leg.ptime * 8 + FRAME)
        leg.listeners.append(source.push)
        leg.player.idle = out
        self.inputs[leg] = source
        self.outputs[leg] = out
        self.mixer.add(leg)
        if self._sub is None:
            self._sub = self.engine.clock.subscribe(self._tick)

    def leave(self, leg: MediaLeg) -> None:
        self.inputs.pop(leg, None)
        self.outputs.pop(leg, None)
        self.mixer.remove(leg)
        if not self.inputs and self._sub is not None:
            self.engine.clock.unsubscribe(self._sub)
            self._sub = None

    def _tick(self, tick: int, now: float) -> None:
        if tick % 2:
            return
        frames = {leg: src.read(FRAME) for leg, src in self.inputs.items()}
        for leg, pcm in self.mixer.mix(frames).items():  # type: ignore[arg-type]
            out = self.outputs.get(leg)  # type: ignore[call-overload]
            if out is not None:
                out.push(pcm)

    @property
    def size(self) -> int:
        return len(self.inputs)


class ConferenceService:
    def __init__(self, engine: MediaEngine) -> None:
        self.engine = engine
        self.rooms: dict[str, ConferenceRoom] = {}

    async def handle(self, call: ServiceCall) -> None:
        leg = await answer_call(self.engine, call)
        if leg is None:
            return
        room = self.rooms.get(call.number)
        if room is None:
            room = self.rooms[call.number] = ConferenceRoom(self.engine, call.number)
        room.join(leg)
        log.info(
            "conference join",
            extra={"call_id": call.call_id, "room": call.number, "size": room.size},
        )
        try:
            await call.ended.wait()
        finally:
            room.leave(leg)
            if not room.size:
                self.rooms.pop(call.number, None)
            self.engine.close_leg(leg, call.call_id)


class MonitorPolicy(Protocol):
    """Who may listen in and whisper, and where their use is audited."""

    async def authorise(self, extension: str) -> str | None:
        """The user allowed to listen in and whisper from ``extension`` (named
        in the audit log), or None when nobody is."""
        ...

    async def audit(
        self, *, actor: str, action: str, entity: str, entity_id: str, after: dict[str, Any]
    ) -> None:
        """Write one audit row; raises when it could not be written."""
        ...


class MonitorService:
    """Listen-in (``whisper=False``) or whisper on an anchored call.

    Only extensions for which the policy names a user may use it (in a
    node: users with the supervisor or operator role whose own extension it
    is); anyone else gets 403 Forbidden. The caller keys the extension whose
    call to join, then ``#``. Listen-in hears both parties and is not heard;
    whisper is heard by that extension's party only (the other party hears
    nothing of it). A call whose media runs directly between the phones is
    anchored first (by re-INVITE, through ``anchor``), so any answered call
    can be joined; no call, or one that cannot be anchored, gets the busy
    tone, and so does the supervisor when the call ends first.

    Monitoring a call is intrusive: every attempt is written to the audit log
    (refused, started with both parties, ended with its duration), logged,
    and published as a ``media.monitor`` event. The start row is written
    before the supervisor is connected; if it cannot be written, nobody is.
    """

    DIGIT_TIMEOUT = 20.0
    POLL = 0.2

    def __init__(
        self,
        engine: MediaEngine,
        *,
        whisper: bool,
        policy: MonitorPolicy,
        anchor: Callable[[str], Awaitable[bool]] | None = None,
        release: Callable[[str], Awaitable[bool]] | None = None,
    ) -> None:
        self.engine = engine
        self.whisper = whisper
        self.policy = policy
        # Puts an extension's answered call's media through Växla; False if it has none.
        self.anchor = anchor
        # Sends it directly between the phones again.
        self.release = release

    @property
    def mode(self) -> str:
        return "whisper" if self.whisper else "listen-in"

    def _event(self, state: str, **data: Any) -> None:
        log.info(f"monitor {state}", extra={"mode": self.mode, **data})
        if self.engine.publish is not None:
            self.engine.publish("media.monitor", {"state": state, "mode": self.mode, **data})

    async def _busy(self, leg: MediaLeg, call: ServiceCall) -> None:
        ended = asyncio.ensure_future(call.ended.wait())
        tone = leg.play(ToneSource(swedish_tone("busy"), 3000))
        waiting: list[asyncio.Future[Any]] = [tone, ended]
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
            tone.cancel()

    async def handle(self, call: ServiceCall) -> None:
        user = await self.policy.authorise(call.caller)
        if user is None:
            self._event("refused", by=call.caller, monitor_call_id=call.call_id)
            with contextlib.suppress(Exception):
                await self.policy.audit(
                    actor=f"extension:{call.caller}",
                    action=f"{self.mode}-refused",
                    entity="extension",
                    entity_id=call.caller,
                    after={"monitor_call_id": call.call_id},
                )
            call.reject(403)
            return
        leg = await answer_call(self.engine, call)
        if leg is None:
            return
        try:
            extension = await keyed_number(leg, call, self.DIGIT_TIMEOUT)
            if extension is None:
                return
            anchored = self._anchored(extension)
            anchored_here = False
            if anchored is None and self.anchor is not None and await self.anchor(extension):
                anchored, anchored_here = self._anchored(extension), True
            if anchored is None:
                self._event("no-call", by=call.caller, target=extension)
                await self._busy(leg, call)
                return
            try:
                await self._attach(leg, call, user, extension, anchored)
            finally:
                if anchored_here:
                    await self._release(anchored, extension)
        finally:
            self.engine.close_leg(leg, call.call_id)

    async def _release(self, anchored: AnchoredCall, extension: str) -> None:
        """Media anchored for this supervisor goes direct again once nobody uses it
        (no other listener, whisper or recording): relaying costs the server."""
        if self.release is None or anchored.closed:
            return
        if anchored.listeners or anchored.whispers or anchored.recorders:
            return
        if await self.release(extension):
            log.info("monitor: call media direct again", extra={"call_id": anchored.call_id})

    def _anchored(self, extension: str) -> AnchoredCall | None:
        anchored = self.engine.anchored.get(self.engine.by_extension.get(extension, ""))
        return None if anchored is None or anchored.closed else anchored

    async def _attach(
        self, leg: MediaLeg, call: ServiceCall, user: str, extension: str, anchored: AnchoredCall
    ) -> None:
        who = {
            "call_id": anchored.call_id,
            "by": call.caller,
            "user": user,
            "target": extension,
            "monitor_call_id": call.call_id,
        }
        parties = {"caller": anchored.caller, "callee": anchored.callee}
        try:
            await self.policy.audit(
                actor=user,
                action=f"{self.mode}-start",
                entity="call",
                entity_id=anchored.call_id,
                after={**who, **parties},
            )
        except Exception:
            log.exception("monitor not connected: the audit row could not be written")
            await self._busy(leg, call)
            return
        side = "a" if anchored.caller == extension else "b"
        detach = anchored.add_whisper(leg, side) if self.whisper else anchored.add_listener(leg)
        loop = asyncio.get_running_loop()
        started = loop.time()
        self._event("started", **who, **parties)
        try:
            while not call.ended.is_set() and not anchored.closed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(call.ended.wait(), self.POLL)
        finally:
            detach()
            seconds = round(loop.time() - started, 1)
            self._event("ended", **who, seconds=seconds)
            with contextlib.suppress(Exception):
                await self.policy.audit(
                    actor=user,
                    action=f"{self.mode}-end",
                    entity="call",
                    entity_id=anchored.call_id,
                    after={**who, "seconds": seconds},
                )
        if not call.ended.is_set():  # the monitored call ended first
            await self._busy(leg, call)
