"""One RTP audio stream, both directions, sans-IO.

:class:`RtpReceiver` takes datagrams with their arrival time and keeps, per
synchronisation source, the RFC 3550 reception state; it decodes G.711 into
a :class:`~vaxla.media.jitter.JitterBuffer` and turns RFC 4733 packets into
digits. When the source changes (new SSRC: the phone restarted its stream,
or another device took over the call) the playout buffer restarts on the
new source's timeline and its statistics are kept apart.

:class:`RtpSender` owns Växla's outgoing SSRC, sequence number and
timestamp: whatever Växla plays (prompts, echo, a mix, several sources one
after the other) leaves as one continuous stream, and digits are sent as
RFC 4733 events on the same sequence/timestamp line.

Both produce and read RTCP: sender reports while Växla sends, receiver
report blocks about every source heard, and the peer's reports kept as
the far end's view of loss and jitter.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from vaxla.media.dtmf import DigitEvent, ScheduledPacket, TelephoneEventReceiver
from vaxla.media.dtmf import TelephoneEventSender as _TeSender
from vaxla.media.g711 import G711Codec
from vaxla.media.jitter import JitterBuffer
from vaxla.media.negotiation import StreamParams
from vaxla.media.rtcp import (
    ReportBlock,
    RtcpPacket,
    RtcpReceiverReport,
    RtcpSenderReport,
    RtcpSourceDescription,
    ntp_from_unix,
    parse_compound,
    serialize_compound,
)
from vaxla.media.rtp import RtpPacket, RtpParseError, RtpSourceStats

Pcm = npt.NDArray[np.int16]
_CODECS_BY_NAME = {"PCMA": G711Codec.PCMA, "PCMU": G711Codec.PCMU}


@dataclass(frozen=True, slots=True)
class StreamStats:
    """Figures of one leg for the call record (what Växla saw, and what the
    peer reported in RTCP about Växla's stream)."""

    packets_received: int = 0
    packets_lost: int = 0
    loss_percent: float = 0.0
    jitter_ms: float = 0.0
    packets_sent: int = 0
    source_changes: int = 0
    remote_loss_percent: float | None = None
    remote_jitter_ms: float | None = None

    def as_dict(self) -> dict[str, float | int | None]:
        return {name: getattr(self, name) for name in self.__slots__}


class RtpReceiver:
    """Reception side of a stream: stats, playout buffer, RFC 4733 digits."""

    def __init__(self, params: StreamParams | None = None, *, delay: int = 320) -> None:
        self.jitter = JitterBuffer(delay=delay)
        self.sources: dict[int, RtpSourceStats] = {}
        self.current_ssrc: int | None = None
        self.source_changes = 0
        self.params = params
        self._decoders: dict[int, G711Codec] = {0: G711Codec.PCMU, 8: G711Codec.PCMA}
        self._te: TelephoneEventReceiver | None = None
        self.configure(params)
        self.packets = 0
        self.invalid = 0

    def configure(self, params: StreamParams | None) -> None:
        self.params = params
        if params is None:
            return
        codec = params.codec
        self._decoders[codec.payload_type] = _CODECS_BY_NAME[codec.name]
        te = params.telephone_event_pt
        if te is not None and (self._te is None or self._te.payload_type != te):
            self._te = TelephoneEventReceiver(te)

    def receive(self, data: bytes, now: float) -> list[DigitEvent]:
        """Feed one RTP datagram; returns digits that ended with it."""
        try:
            packet = RtpPacket.parse(data)
        except RtpParseError:
            self.invalid += 1
            return []
        return self.receive_packet(packet, now)

    def receive_packet(self, packet: RtpPacket, now: float) -> list[DigitEvent]:
        self.packets += 1
        ssrc = packet.ssrc
        stats = self.sources.get(ssrc)
        if stats is None:
            stats = self.sources[ssrc] = RtpSourceStats(packet.sequence_number, 8000)
            if len(self.sources) > 8:  # keep the newest few sources only
                oldest = next(iter(self.sources))
                del self.sources[oldest]
        if ssrc != self.current_ssrc:
            if self.current_ssrc is not None:
                self.source_changes += 1
            self.current_ssrc = ssrc
            self.jitter.reset()
        stats.update(packet.sequence_number, packet.timestamp, now)
        te = self._te
        if te is not None and packet.payload_type == te.payload_type:
            return te.receive(packet, now)
        decoder = self._decoders.get(packet.payload_type)
        if decoder is not None and packet.payload:
            self.jitter.put(packet.timestamp, decoder.decode(packet.payload))
        return []

    def get_timer(self) -> float | None:
        return self._te.get_timer() if self._te is not None else None

    def handle_timer(self, now: float) -> list[DigitEvent]:
        return self._te.handle_timer(now) if self._te is not None else []

    def read(self, n: int) -> Pcm:
        return self.jitter.read(n)

    def report_blocks(self, now: float) -> tuple[ReportBlock, ...]:
        return tuple(
            ReportBlock.from_stats(ssrc, st, now)
            for ssrc, st in list(self.sources.items())[-31:]
            if st.valid
        )

    def on_sender_report(self, report: RtcpSenderReport, now: float) -> None:
        stats = self.sources.get(report.ssrc)
        if stats is not None:
            stats.on_sender_report(report.ntp_timestamp, now)

    def totals(self) -> tuple[int, int, float]:
        """(received, lost, jitter in ms) over every source."""
        received = sum(s.received for s in self.sources.values())
        lost = sum(max(s.lost, 0) for s in self.sources.values())
        current = self.sources.get(self.current_ssrc) if self.current_ssrc is not None else None
        jitter_ms = current.jitter / 8.0 if current is not None else 0.0
        return received, lost, jitter_ms


class RtpSender:
    """Sending side: one SSRC, continuous sequence numbers and timestamps."""

    def __init__(self, params: StreamParams, *, rng: random.Random | None = None) -> None:
        rnd = rng or random.Random()
        self.ssrc = rnd.getrandbits(32)
        self.sequence = rnd.getrandbits(16)
        self.timestamp = rnd.getrandbits(32)
        self.packets_sent = 0
        self.octets_sent = 0
        self.cname = f"vaxla-{self.ssrc:08x}"
        self._marker = True  # first packet of a talk spurt
        self.params = params
        self.configure(params)

    def configure(self, params: StreamParams) -> None:
        self.params = params
        self.codec = _CODECS_BY_NAME[params.codec.name]
        self.payload_type = params.codec.payload_type

    @property
    def samples_per_packet(self) -> int:
        return 8 * self.params.ptime

    def audio(self, pcm: Pcm) -> bytes:
        """One packet carrying ``pcm`` (any length, usually one ptime)."""
        payload = self.codec.encode(pcm)
        packet = RtpPacket(
            self.payload_type,
            self.sequence,
            self.timestamp,
            self.ssrc,
            payload,
            marker=self._marker,
        )
        self._marker = False
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.timestamp = (self.timestamp + len(pcm)) & 0xFFFF_FFFF
        self.packets_sent += 1
        self.octets_sent += len(payload)
        return bytes(packet)

    def skip(self, samples: int) -> None:
        """Time passes without audio being sent (e.g. while a digit is sent)."""
        self.timestamp = (self.timestamp + samples) & 0xFFFF_FFFF

    def digit(self, digit: str, duration_ms: int = 100) -> list[ScheduledPacket]:
        """RFC 4733 packets for ``digit`` starting now on this stream.

        The caller sends each packet ``offset`` seconds from now and
        suppresses audio meanwhile (:meth:`skip` the samples)."""
        te = self.params.telephone_event_pt
        if te is None:
            raise ValueError("telephone-event was not negotiated")
        sender = _TeSender(te, self.ssrc, ptime_ms=self.params.ptime)
        packets = sender.packets_for_digit(digit, self.timestamp, self.sequence, duration_ms)
        self.sequence = sender.next_sequence
        self.packets_sent += len(packets)
        self.octets_sent += 4 * len(packets)
        self._marker = True
        return packets

    def sender_report(self, now_unix: float, blocks: tuple[ReportBlock, ...]) -> RtcpSenderReport:
        return RtcpSenderReport(
            self.ssrc,
            ntp_from_unix(now_unix),
            self.timestamp,
            self.packets_sent & 0xFFFF_FFFF,
            self.octets_sent & 0xFFFF_FFFF,
            blocks[:31],
        )


class RtcpState:
    """RTCP of one leg: builds our reports, keeps the peer's view of us."""

    def __init__(self, receiver: RtpReceiver, sender: RtpSender | None, ssrc: int) -> None:
        self.receiver = receiver
        self.sender = sender
        self.ssrc = ssrc
        self.remote_blocks: dict[int, ReportBlock] = {}
        self.reports_received = 0

    def build(self, now: float, now_unix: float) -> bytes:
        blocks = self.receiver.report_blocks(now)
        first: RtcpPacket
        if self.sender is not None and self.sender.packets_sent:
            first = self.sender.sender_report(now_unix, blocks)
        else:
            first = RtcpReceiverReport(self.ssrc, blocks[:31])
        cname = self.sender.cname if self.sender is not None else f"vaxla-{self.ssrc:08x}"
        return serialize_compound([first, RtcpSourceDescription.cname(self.ssrc, cname)])

    def receive(self, data: bytes, now: float) -> None:
        try:
            packets = parse_compound(data)
        except ValueError:
            return
        self.reports_received += 1
        for p in packets:
            if isinstance(p, RtcpSenderReport):
                self.receiver.on_sender_report(p, now)
            if isinstance(p, RtcpSenderReport | RtcpReceiverReport):
                for block in p.reports:
                    self.remote_blocks[block.ssrc] = block

    def stats(self) -> StreamStats:
        received, lost, jitter_ms = self.receiver.totals()
        expected = received + lost
        remote = self.remote_blocks.get(self.sender.ssrc) if self.sender is not None else None
        if remote is None and self.remote_blocks:
            remote = next(reversed(self.remote_blocks.values()))
        return StreamStats(
            packets_received=received,
            packets_lost=lost,
            loss_percent=round(100.0 * lost / expected, 2) if expected else 0.0,
            jitter_ms=round(jitter_ms, 2),
            packets_sent=self.sender.packets_sent if self.sender is not None else 0,
            source_changes=self.receiver.source_changes,
            remote_loss_percent=(
                round(remote.fraction_lost * 100 / 256, 2) if remote is not None else None
            ),
            remote_jitter_ms=round(remote.jitter / 8.0, 2) if remote is not None else None,
        )
