"""Numbers answered by Växla's media engine: echo test, read-back, conference,
listen-in and whisper.

Each is a ``CallService`` (see :mod:`vaxla.pbx.services`): it answers the
caller's offer with a :class:`~vaxla.media.leg.MediaLeg` and plays, listens
and mixes until the caller hangs up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from vaxla.media.engine import MediaEngine
from vaxla.media.leg import MediaLeg
from vaxla.media.mixer import FRAME, ConferenceMixer
from vaxla.media.negotiation import NegotiationError
from vaxla.media.numbers_sv import digits_words
from vaxla.media.player import FifoSource, ToneSource
from vaxla.media.tones import swedish_tone
from vaxla.media.tts import PromptError
from vaxla.pbx.services import ServiceCall

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


async def _answer(engine: MediaEngine, call: ServiceCall) -> MediaLeg | None:
    try:
        return await engine.answer_service(call)
    except (NegotiationError, ValueError):
        call.reject(488)
        return None


class EchoService:
    """What the caller sends comes back (after the playout delay)."""

    def __init__(self, engine: MediaEngine) -> None:
        self.engine = engine

    async def handle(self, call: ServiceCall) -> None:
        leg = await _answer(self.engine, call)
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
            number = digits_words(caller)
            return f"Hej! Ditt anknytningsnummer är {number}. Jag upprepar: {number}."
        return "Hej! Ditt nummer är okänt."

    async def _say(self, leg: MediaLeg, text: str) -> None:
        try:
            pcm = await self.engine.prompts.render(text)
        except PromptError:
            log.exception("prompt failed")
            pcm = swedish_tone("special_information").read(8000)
        await leg.play_pcm(pcm)

    async def handle(self, call: ServiceCall) -> None:
        leg = await _answer(self.engine, call)
        if leg is None:
            return
        text = self.announcement(call.caller)
        ended = asyncio.ensure_future(call.ended.wait())
        try:
            await asyncio.wait(
                [asyncio.ensure_future(self._say(leg, text)), ended],
                return_when=asyncio.FIRST_COMPLETED,
            )
            while not call.ended.is_set():
                get = asyncio.ensure_future(leg.digits.get())
                done, _ = await asyncio.wait([get, ended], return_when=asyncio.FIRST_COMPLETED)
                if get not in done:
                    get.cancel()
                    break
                digit = get.result().digit
                if digit == "*":
                    await self._say(leg, text)
                else:
                    await self._say(leg, f"Du tryckte {DIGIT_NAMES.get(digit, digit)}.")
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
        leg = await _answer(self.engine, call)
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


class MonitorService:
    """Listen-in (``whisper=False``) or whisper on an anchored call.

    The caller keys the extension whose call to join, then ``#``. Listen-in
    hears both parties and is not heard; whisper is heard by that
    extension's party only. Unknown or unanchored calls get the busy tone.
    """

    def __init__(self, engine: MediaEngine, *, whisper: bool) -> None:
        self.engine = engine
        self.whisper = whisper

    async def _read_number(self, leg: MediaLeg, call: ServiceCall) -> str:
        digits = ""
        while not call.ended.is_set():
            received = await asyncio.wait_for(leg.digits.get(), 20.0)
            if received.digit == "#":
                break
            digits += received.digit
        return digits

    async def handle(self, call: ServiceCall) -> None:
        leg = await _answer(self.engine, call)
        if leg is None:
            return
        detach = None
        try:
            with contextlib.suppress(TimeoutError):
                extension = await self._read_number(leg, call)
                anchored = self.engine.anchored.get(self.engine.by_extension.get(extension, ""))
                if anchored is None:
                    await leg.play(ToneSource(swedish_tone("busy"), 3000))
                    return
                side = "a" if anchored.caller == extension else "b"
                detach = (
                    anchored.add_whisper(leg, side) if self.whisper else anchored.add_listener(leg)
                )
                log.info(
                    "monitor attached",
                    extra={"call_id": anchored.call_id, "by": call.caller, "whisper": self.whisper},
                )
                await call.ended.wait()
        finally:
            if detach is not None:
                detach()
            self.engine.close_leg(leg, call.call_id)
