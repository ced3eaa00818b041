"""A media leg a service talks through: RTP endpoint + player + digit events.

On every media clock tick the leg runs the endpoint's timers; every 20 ms
it reads 160 samples of received audio from the playout buffer, runs the
in-band DTMF detector on them and hands them to its listeners (echo,
conference, recorder); every ptime it sends one packet of what the player
gives (prompts, tones, or the idle source: comfort noise by default).

Digits reach the service as :class:`DigitReceived` on one queue, whatever
way they came: RFC 4733 events, in-band tones, or SIP INFO.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from vaxla.media.clock import MediaClock
from vaxla.media.dtmf import DigitEvent
from vaxla.media.dtmf_inband import DtmfDetector
from vaxla.media.endpoint import RtpEndpoint
from vaxla.media.player import AudioSource, PcmSource, Player

log = logging.getLogger("vaxla.media")

Pcm = npt.NDArray[np.int16]
FRAME = 160  # 20 ms at 8 kHz


@dataclass(frozen=True, slots=True)
class DigitReceived:
    """A digit as the service sees it.

    ``start`` is seconds since the leg started (when the key was pressed),
    ``duration_ms`` how long it was held, ``source`` one of ``"rfc4733"``,
    ``"inband"``, ``"info"``.
    """

    digit: str
    source: str
    start: float
    duration_ms: int


class MediaLeg:
    def __init__(
        self,
        endpoint: RtpEndpoint,
        clock: MediaClock,
        *,
        call_id: str = "",
        inband_dtmf: bool = True,
        on_digit: Callable[[str, DigitReceived], None] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.clock = clock
        self.call_id = call_id
        self.player = Player()
        self.listeners: list[Callable[[Pcm], None]] = []
        self.digits: asyncio.Queue[DigitReceived] = asyncio.Queue()
        self.digit_log: list[DigitReceived] = []
        self._on_digit = on_digit
        self._detector = DtmfDetector() if inband_dtmf else None
        self._loop = asyncio.get_running_loop()
        self._started = self._loop.time()
        self._last_oob = -10.0
        self._sub: int | None = None
        self._tick0 = 0
        self.frames_in = 0
        endpoint.on_digit = self._rfc4733

    @property
    def ptime(self) -> int:
        params = self.endpoint.params
        return params.ptime if params is not None else 20

    def start(self) -> None:
        self._started = self._loop.time()
        self._tick0 = self.clock.tick
        self._sub = self.clock.subscribe(self._tick)

    def _tick(self, tick: int, now: float) -> None:
        self.endpoint.poll()
        rel = tick - self._tick0
        if rel % 2 == 0:
            frame = self.endpoint.read(FRAME)
            self.frames_in += 1
            if self._detector is not None:
                for event in self._detector.process(frame):
                    self._inband(event, now)
            for listener in self.listeners:
                listener(frame)
        step = self.ptime // 10
        if rel % step == 0:
            self.endpoint.send_audio(self.player.read(self.ptime * 8))

    # -- digits

    def _emit(self, received: DigitReceived) -> None:
        self.digit_log.append(received)
        self.digits.put_nowait(received)
        log.info(
            "dtmf",
            extra={
                "call_id": self.call_id,
                "digit": received.digit,
                "dtmf_source": received.source,
                "start": round(received.start, 3),
                "duration_ms": received.duration_ms,
            },
        )
        if self._on_digit is not None:
            self._on_digit(self.call_id, received)

    def _rfc4733(self, event: DigitEvent, now: float) -> None:
        duration_ms = event.duration // 8
        self._last_oob = now
        start = max(0.0, now - self._started - duration_ms / 1000)
        self._emit(DigitReceived(event.digit, "rfc4733", start, duration_ms))

    def _inband(self, event: DigitEvent, now: float) -> None:
        if now - self._last_oob < 1.0:
            return  # the phone sends both: the RFC 4733 event already counted
        # detector positions are samples since the leg's first frame
        self._emit(
            DigitReceived(event.digit, "inband", event.start_timestamp / 8000, event.duration // 8)
        )

    def info_digit(self, digit: str, duration_ms: int) -> None:
        """A digit from SIP INFO application/dtmf-relay."""
        now = self._loop.time()
        self._last_oob = now
        start = max(0.0, now - self._started - duration_ms / 1000)
        self._emit(DigitReceived(digit, "info", start, duration_ms))

    # -- playing

    def play(self, source: AudioSource) -> asyncio.Future[None]:
        """Queue ``source``; the future is done when it has been played."""
        done: asyncio.Future[None] = self._loop.create_future()

        def finished() -> None:
            if not done.done():
                done.set_result(None)

        self.player.enqueue(source, finished)
        return done

    def play_pcm(self, pcm: Pcm) -> asyncio.Future[None]:
        return self.play(PcmSource(pcm))

    def close(self) -> None:
        if self._sub is not None:
            self.clock.unsubscribe(self._sub)
            self._sub = None
        self.player.stop()
        self.endpoint.close()
