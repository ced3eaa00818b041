"""DTMF out of band: RFC 4733 telephone-events and SIP INFO dtmf-relay.

* :class:`TelephoneEvent` is the 4-octet RFC 4733 §2.3 payload.
* :class:`TelephoneEventSender` produces the RTP packets for one digit:
  the first with the marker bit, updates every packetisation interval, and
  the end packet sent three times with the same timestamp and duration
  (§2.5.1). Each packet comes with the offset in seconds at which to send it.
* :class:`TelephoneEventReceiver` turns received packets (duplicated, lost,
  reordered) into exactly one :class:`DigitEvent` per digit. Sans-IO: it
  takes ``now`` and exposes ``get_timer()``/``handle_timer(now)`` for the
  case where every end packet is lost.
* :func:`parse_dtmf_relay` reads ``application/dtmf-relay`` SIP INFO bodies.

Timestamps and durations are in RTP clock units (samples at 8 kHz).
In-band (Goertzel) detection lives in :mod:`vaxla.media.dtmf_inband`.
"""

from __future__ import annotations

import re
import struct
from collections import deque
from dataclasses import dataclass

from vaxla.media.errors import MediaParseError
from vaxla.media.rtp import RtpPacket, seq_add, ts_diff

#: RFC 4733 §3.2 event codes 0..15 in order, plus 16 = hook flash.
EVENT_DIGITS = "0123456789*#ABCD!"
_DIGIT_EVENTS = {d: i for i, d in enumerate(EVENT_DIGITS)}

_EVENT = struct.Struct("!BBH")


class DtmfParseError(MediaParseError):
    """A telephone-event payload or dtmf-relay body is malformed."""


def digit_to_event(digit: str) -> int:
    """Event code of a DTMF digit ("0"-"9", "*", "#", "A"-"D", "!" flash)."""
    try:
        return _DIGIT_EVENTS[digit.upper()]
    except KeyError:
        raise ValueError(f"not a DTMF digit: {digit!r}") from None


def event_to_digit(event: int) -> str | None:
    """The digit for an event code, or None for non-DTMF events."""
    return EVENT_DIGITS[event] if 0 <= event < len(EVENT_DIGITS) else None


@dataclass(frozen=True, slots=True)
class DigitEvent:
    """A digit, reported once: when it started and how long it lasted.

    Both in RTP clock units for RFC 4733 (the event's RTP timestamp), and in
    samples since the detector's start for in-band detection.
    """

    digit: str
    start_timestamp: int
    duration: int


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """RFC 4733 §2.3 event payload: event, E bit, volume (-dBm0), duration."""

    event: int
    end: bool = False
    volume: int = 10
    duration: int = 0

    SIZE = 4

    def __post_init__(self) -> None:
        if not 0 <= self.event <= 255:
            raise ValueError("event code is 8 bits")
        if not 0 <= self.volume <= 63:
            raise ValueError("volume is 0..63 (-dBm0)")
        if not 0 <= self.duration <= 0xFFFF:
            raise ValueError("duration is 16 bits")

    @property
    def digit(self) -> str | None:
        return event_to_digit(self.event)

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        """Parse the first (usually only) event in a payload."""
        return cls.parse_all(payload)[0]

    @classmethod
    def parse_all(cls, payload: bytes) -> list[TelephoneEvent]:
        """Parse every 4-octet event block of a payload (§2.5.1.5)."""
        if not payload or len(payload) % 4:
            raise DtmfParseError(f"telephone-event payload of {len(payload)} octets")
        events = []
        for offset in range(0, len(payload), 4):
            event, flags, duration = _EVENT.unpack_from(payload, offset)
            events.append(cls(event, bool(flags & 0x80), flags & 0x3F, duration))
        return events

    def __bytes__(self) -> bytes:
        return _EVENT.pack(self.event, (0x80 if self.end else 0) | self.volume, self.duration)


@dataclass(frozen=True, slots=True)
class ScheduledPacket:
    """An RTP packet and when to send it, relative to the digit's start."""

    offset: float
    packet: RtpPacket


class TelephoneEventSender:
    """Builds the RFC 4733 packet train for digits on one RTP stream.

    The sender owns the sequence numbers of the stream while it sends
    events: pass the next free one in and read :attr:`next_sequence` after.
    """

    def __init__(
        self,
        payload_type: int,
        ssrc: int,
        *,
        clock_rate: int = 8000,
        ptime_ms: int = 20,
        volume: int = 10,
        end_repeats: int = 3,
    ) -> None:
        if ptime_ms <= 0 or clock_rate <= 0 or end_repeats < 1:
            raise ValueError("ptime, clock rate and end repeats must be positive")
        self.payload_type = payload_type
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self.ptime_ms = ptime_ms
        self.volume = volume
        self.end_repeats = end_repeats
        self.next_sequence = 0

    def packets_for_digit(
        self, digit: str, timestamp: int, sequence: int, duration_ms: int = 100
    ) -> list[ScheduledPacket]:
        """Packets for ``digit`` starting at RTP ``timestamp``.

        Packet *k* (from 1) is sent ``k`` intervals after the start and
        reports the duration so far; the last reports the whole duration
        with the E bit, three times. The first packet carries the marker.
        """
        event = digit_to_event(digit)
        step = self.clock_rate * self.ptime_ms // 1000
        total = self.clock_rate * duration_ms // 1000
        if total <= 0 or total > 0xFFFF:
            raise ValueError("duration must fit the 16-bit field (1..65535 samples)")
        interval = self.ptime_ms / 1000
        # (offset, duration so far, end bit) for each packet of the train
        plan = [(k * interval, k * step, False) for k in range(1, -(-total // step))]
        end_at = total / self.clock_rate
        plan += [(end_at + r * interval, total, True) for r in range(self.end_repeats)]
        out: list[ScheduledPacket] = []
        for i, (offset, duration, end) in enumerate(plan):
            payload = bytes(TelephoneEvent(event, end, self.volume, duration))
            packet = RtpPacket(
                self.payload_type, sequence, timestamp, self.ssrc, payload, marker=i == 0
            )
            out.append(ScheduledPacket(offset, packet))
            sequence = seq_add(sequence, 1)
        self.next_sequence = sequence
        return out


class TelephoneEventReceiver:
    """Reports each RFC 4733 digit once, at its end, with its duration.

    Only the first event block of a payload is read: payloads that carry
    several events (RFC 4733 multi-event packets) are not interpreted yet.

    An event is identified by its RTP timestamp (§2.5.2). It ends when an
    E-bit packet arrives, when a packet with a newer timestamp arrives, or
    ``end_timeout`` seconds after its last packet (all end packets lost).
    Packets of events already reported, and stale packets older than the
    newest event, are ignored.
    """

    def __init__(self, payload_type: int, *, end_timeout: float = 0.3, memory: int = 64):
        self.payload_type = payload_type
        self.end_timeout = end_timeout
        self._finished: deque[int] = deque(maxlen=memory)
        self._current: tuple[int, str] | None = None  # (timestamp, digit)
        self._current_duration = 0
        self._last_packet_at = 0.0
        self._newest: int | None = None

    def receive(self, packet: RtpPacket, now: float) -> list[DigitEvent]:
        """Feed one RTP packet of the telephone-event payload type."""
        if packet.payload_type != self.payload_type:
            return []
        try:
            event = TelephoneEvent.parse(packet.payload)
        except DtmfParseError:
            return []
        digit = event.digit
        ts = packet.timestamp
        if digit is None or ts in self._finished:
            return []
        out: list[DigitEvent] = []
        if self._current is not None and self._current[0] != ts:
            if ts_diff(ts, self._current[0]) < 0:
                return []  # a late packet of an older, unreported event
            out.extend(self._finish())
        elif self._current is None and self._newest is not None and ts_diff(ts, self._newest) < 0:
            return []
        if self._current is None:
            self._current = (ts, digit)
            self._current_duration = 0
            self._newest = ts
        self._current_duration = max(self._current_duration, event.duration)
        self._last_packet_at = now
        if event.end:
            out.extend(self._finish())
        return out

    def _finish(self) -> list[DigitEvent]:
        if self._current is None:
            return []
        ts, digit = self._current
        self._current = None
        self._finished.append(ts)
        return [DigitEvent(digit, ts, self._current_duration)]

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` should run next, or None."""
        if self._current is None:
            return None
        return self._last_packet_at + self.end_timeout

    def handle_timer(self, now: float) -> list[DigitEvent]:
        timer = self.get_timer()
        if timer is not None and now >= timer:
            return self._finish()
        return []


# -- SIP INFO application/dtmf-relay -------------------------------------------

_RELAY_LINE = re.compile(r"^\s*([A-Za-z-]+)\s*=\s*(\S*)\s*$")


@dataclass(frozen=True, slots=True)
class DtmfRelay:
    """An ``application/dtmf-relay`` body: ``Signal=5`` / ``Duration=160`` (ms)."""

    signal: str
    duration_ms: int | None = None

    def __bytes__(self) -> bytes:
        text = f"Signal={self.signal}\r\n"
        if self.duration_ms is not None:
            text += f"Duration={self.duration_ms}\r\n"
        return text.encode("ascii")


def parse_dtmf_relay(body: bytes | str) -> DtmfRelay:
    """Parse a SIP INFO dtmf-relay body (keys case-insensitive, CRLF or LF).

    The signal may be a digit, ``*``, ``#``, ``A``-``D``, ``!`` (flash) or
    a numeric event code ("10" for ``*``, "11" for ``#``, "16" for flash).
    """
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        match = _RELAY_LINE.match(line)
        if match is None:
            raise DtmfParseError(f"malformed dtmf-relay line: {line!r}")
        fields[match.group(1).lower()] = match.group(2)
    raw = fields.get("signal")
    if not raw:
        raise DtmfParseError("dtmf-relay body without a Signal")
    if raw.isdigit() and len(raw) > 1:
        signal = event_to_digit(int(raw))
        if signal is None:
            raise DtmfParseError(f"dtmf-relay Signal out of range: {raw}")
    elif raw.upper() in _DIGIT_EVENTS:
        signal = raw.upper()
    else:
        raise DtmfParseError(f"dtmf-relay Signal is not a DTMF digit: {raw!r}")
    duration = None
    if "duration" in fields:
        value = fields["duration"]
        if not value.isdigit():
            raise DtmfParseError(f"dtmf-relay Duration is not a number: {value!r}")
        duration = int(value)
    return DtmfRelay(signal, duration)
