"""RTCP packets and compound packets (RFC 3550 §6).

SR, RR, SDES, BYE and APP are dataclasses with ``__bytes__``; any other
packet type (feedback, XR, ...) is kept as :class:`RtcpUnknown` so that a
compound packet survives a parse/serialise round trip. Padding is accepted
on input and never produced on output.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar

from vaxla.media.errors import MediaParseError
from vaxla.media.rtp import RtpSourceStats

RTCP_SR = 200
RTCP_RR = 201
RTCP_SDES = 202
RTCP_BYE = 203
RTCP_APP = 204

SDES_CNAME = 1
SDES_NAME = 2
SDES_EMAIL = 3
SDES_PHONE = 4
SDES_LOC = 5
SDES_TOOL = 6
SDES_NOTE = 7
SDES_PRIV = 8

NTP_UNIX_OFFSET = 2_208_988_800  # seconds from 1900-01-01 to 1970-01-01

_COMMON = struct.Struct("!BBH")
_REPORT_BLOCK = struct.Struct("!IB3sIIII")
_SENDER_INFO = struct.Struct("!IQIII")


class RtcpParseError(MediaParseError):
    """A datagram is not a well-formed RTCP (compound) packet."""


def is_rtcp(data: bytes) -> bool:
    """RFC 5761 §4 demultiplexing: second octet 192..223 means RTCP."""
    return len(data) >= 2 and 192 <= data[1] <= 223


def ntp_from_unix(seconds: float) -> int:
    """64-bit NTP timestamp (32.32 fixed point) for a Unix time in seconds."""
    value = round((seconds + NTP_UNIX_OFFSET) * (1 << 32))
    return value & 0xFFFF_FFFF_FFFF_FFFF


def ntp_middle(ntp_timestamp: int) -> int:
    """The middle 32 bits of an NTP timestamp, as used in LSR."""
    return (ntp_timestamp >> 16) & 0xFFFF_FFFF


def _header(padding: bool, count: int, packet_type: int, body_len: int) -> bytes:
    if body_len % 4:
        raise ValueError("RTCP body must be a multiple of 4 octets")
    first = 0x80 | (0x20 if padding else 0) | count
    return _COMMON.pack(first, packet_type, body_len // 4)


def _pad4(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """One reception report block (§6.4.1), 24 octets."""

    ssrc: int
    fraction_lost: int = 0
    cumulative_lost: int = 0
    highest_sequence: int = 0
    jitter: int = 0
    lsr: int = 0
    dlsr: int = 0

    SIZE: ClassVar[int] = 24

    def __post_init__(self) -> None:
        if not 0 <= self.fraction_lost <= 255:
            raise ValueError("fraction_lost is an 8-bit value")
        if not -0x80_0000 <= self.cumulative_lost <= 0x7F_FFFF:
            raise ValueError("cumulative_lost is a 24-bit signed value")

    @classmethod
    def parse(cls, data: bytes, offset: int = 0) -> ReportBlock:
        ssrc, fraction, lost, highest, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(data, offset)
        return cls(
            ssrc, fraction, int.from_bytes(lost, "big", signed=True), highest, jitter, lsr, dlsr
        )

    def __bytes__(self) -> bytes:
        lost = self.cumulative_lost.to_bytes(3, "big", signed=True)
        return _REPORT_BLOCK.pack(
            self.ssrc,
            self.fraction_lost,
            lost,
            self.highest_sequence,
            self.jitter,
            self.lsr,
            self.dlsr,
        )

    @classmethod
    def from_stats(cls, ssrc: int, stats: RtpSourceStats, now: float) -> ReportBlock:
        """Build the report about source ``ssrc`` from its reception state.

        Advances the stats' report interval (fraction lost is measured since
        the previous call). ``now`` is on the same clock as the arrival times
        fed to ``stats``.
        """
        return cls(
            ssrc=ssrc,
            fraction_lost=stats.take_fraction_lost(),
            cumulative_lost=stats.lost,
            highest_sequence=stats.extended_max_seq,
            jitter=stats.jitter_units,
            lsr=stats.last_sr,
            dlsr=stats.delay_since_last_sr(now),
        )


def _parse_blocks(body: bytes, offset: int, count: int) -> tuple[ReportBlock, ...]:
    end = offset + count * ReportBlock.SIZE
    if end > len(body):
        raise RtcpParseError(f"RTCP report claims {count} blocks but is too short")
    return tuple(ReportBlock.parse(body, offset + i * ReportBlock.SIZE) for i in range(count))


@dataclass(frozen=True, slots=True)
class RtcpSenderReport:
    """SR (§6.4.1): sender info, report blocks and profile extension bytes."""

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""

    packet_type: ClassVar[int] = RTCP_SR

    @classmethod
    def parse_body(cls, count: int, body: bytes) -> RtcpSenderReport:
        if len(body) < 24:
            raise RtcpParseError("RTCP SR shorter than its sender info")
        ssrc, ntp, rtp_ts, packets, octets = _SENDER_INFO.unpack_from(body)
        reports = _parse_blocks(body, 24, count)
        return cls(ssrc, ntp, rtp_ts, packets, octets, reports, bytes(body[24 + 24 * count :]))

    def __bytes__(self) -> bytes:
        if len(self.reports) > 31:
            raise ValueError("at most 31 report blocks per SR")
        body = b"".join(
            [
                _SENDER_INFO.pack(
                    self.ssrc,
                    self.ntp_timestamp,
                    self.rtp_timestamp,
                    self.packet_count,
                    self.octet_count,
                ),
                *(bytes(r) for r in self.reports),
                self.extension,
            ]
        )
        return _header(False, len(self.reports), RTCP_SR, len(body)) + body


@dataclass(frozen=True, slots=True)
class RtcpReceiverReport:
    """RR (§6.4.2): the reporter's SSRC and its report blocks."""

    ssrc: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""

    packet_type: ClassVar[int] = RTCP_RR

    @classmethod
    def parse_body(cls, count: int, body: bytes) -> RtcpReceiverReport:
        if len(body) < 4:
            raise RtcpParseError("RTCP RR shorter than its SSRC")
        (ssrc,) = struct.unpack_from("!I", body)
        reports = _parse_blocks(body, 4, count)
        return cls(ssrc, reports, bytes(body[4 + 24 * count :]))

    def __bytes__(self) -> bytes:
        if len(self.reports) > 31:
            raise ValueError("at most 31 report blocks per RR")
        body = b"".join(
            [struct.pack("!I", self.ssrc), *(bytes(r) for r in self.reports), self.extension]
        )
        return _header(False, len(self.reports), RTCP_RR, len(body)) + body


@dataclass(frozen=True, slots=True)
class SdesItem:
    """One SDES item; ``value`` is raw octets (UTF-8 text for CNAME etc.)."""

    type: int
    value: bytes

    def __post_init__(self) -> None:
        if not 1 <= self.type <= 255:
            raise ValueError("SDES item type must be 1..255 (0 ends a chunk)")
        if len(self.value) > 255:
            raise ValueError("SDES item value is at most 255 octets")


@dataclass(frozen=True, slots=True)
class SdesChunk:
    ssrc: int
    items: tuple[SdesItem, ...] = ()

    @property
    def cname(self) -> str | None:
        for item in self.items:
            if item.type == SDES_CNAME:
                return item.value.decode("utf-8", "replace")
        return None

    def __bytes__(self) -> bytes:
        data = struct.pack("!I", self.ssrc) + b"".join(
            bytes((i.type, len(i.value))) + i.value for i in self.items
        )
        # a null item ends the chunk; 1..4 zero octets reach a 32-bit boundary
        return data + bytes(4 - len(data) % 4)


@dataclass(frozen=True, slots=True)
class RtcpSourceDescription:
    """SDES (§6.5): one chunk per source."""

    chunks: tuple[SdesChunk, ...]

    packet_type: ClassVar[int] = RTCP_SDES

    @classmethod
    def cname(cls, ssrc: int, cname: str) -> RtcpSourceDescription:
        return cls((SdesChunk(ssrc, (SdesItem(SDES_CNAME, cname.encode()),)),))

    @classmethod
    def parse_body(cls, count: int, body: bytes) -> RtcpSourceDescription:
        chunks = []
        pos = 0
        for _ in range(count):
            if pos + 4 > len(body):
                raise RtcpParseError("RTCP SDES truncated before a chunk's SSRC")
            (ssrc,) = struct.unpack_from("!I", body, pos)
            pos += 4
            items = []
            while True:
                if pos >= len(body):
                    raise RtcpParseError("RTCP SDES chunk without a terminating null item")
                item_type = body[pos]
                if item_type == 0:
                    pos = (pos + 4) & ~3  # skip the null octet(s) to the boundary
                    break
                if pos + 2 > len(body) or pos + 2 + body[pos + 1] > len(body):
                    raise RtcpParseError("RTCP SDES item longer than the packet")
                length = body[pos + 1]
                items.append(SdesItem(item_type, bytes(body[pos + 2 : pos + 2 + length])))
                pos += 2 + length
            chunks.append(SdesChunk(ssrc, tuple(items)))
        return cls(tuple(chunks))

    def __bytes__(self) -> bytes:
        if len(self.chunks) > 31:
            raise ValueError("at most 31 chunks per SDES packet")
        body = b"".join(bytes(c) for c in self.chunks)
        return _header(False, len(self.chunks), RTCP_SDES, len(body)) + body


@dataclass(frozen=True, slots=True)
class RtcpBye:
    """BYE (§6.6): the sources leaving and an optional reason."""

    sources: tuple[int, ...]
    reason: bytes = b""

    packet_type: ClassVar[int] = RTCP_BYE

    @classmethod
    def parse_body(cls, count: int, body: bytes) -> RtcpBye:
        if len(body) < 4 * count:
            raise RtcpParseError("RTCP BYE shorter than its SSRC list")
        sources = struct.unpack_from(f"!{count}I", body)
        pos = 4 * count
        reason = b""
        if pos < len(body):
            length = body[pos]
            if pos + 1 + length > len(body):
                raise RtcpParseError("RTCP BYE reason longer than the packet")
            reason = bytes(body[pos + 1 : pos + 1 + length])
        return cls(tuple(sources), reason)

    def __bytes__(self) -> bytes:
        if len(self.sources) > 31:
            raise ValueError("at most 31 sources per BYE")
        if len(self.reason) > 255:
            raise ValueError("BYE reason is at most 255 octets")
        body = struct.pack(f"!{len(self.sources)}I", *self.sources)
        if self.reason:
            body += _pad4(bytes((len(self.reason),)) + self.reason)
        return _header(False, len(self.sources), RTCP_BYE, len(body)) + body


@dataclass(frozen=True, slots=True)
class RtcpApp:
    """APP (§6.7): application-defined packet."""

    subtype: int
    ssrc: int
    name: bytes
    data: bytes = b""

    packet_type: ClassVar[int] = RTCP_APP

    @classmethod
    def parse_body(cls, count: int, body: bytes) -> RtcpApp:
        if len(body) < 8:
            raise RtcpParseError("RTCP APP shorter than SSRC and name")
        (ssrc,) = struct.unpack_from("!I", body)
        return cls(count, ssrc, bytes(body[4:8]), bytes(body[8:]))

    def __bytes__(self) -> bytes:
        if len(self.name) != 4 or len(self.data) % 4 or not 0 <= self.subtype <= 31:
            raise ValueError("APP needs a 4-octet name, 32-bit aligned data, subtype 0..31")
        body = struct.pack("!I", self.ssrc) + self.name + self.data
        return _header(False, self.subtype, RTCP_APP, len(body)) + body


@dataclass(frozen=True, slots=True)
class RtcpUnknown:
    """Any other RTCP packet (RTPFB, PSFB, XR...), kept as raw body octets."""

    packet_type: int  # instance field, a ClassVar on the others
    count: int
    body: bytes

    def __bytes__(self) -> bytes:
        return _header(False, self.count, self.packet_type, len(self.body)) + self.body


RtcpPacket = (
    RtcpSenderReport | RtcpReceiverReport | RtcpSourceDescription | RtcpBye | RtcpApp | RtcpUnknown
)

_PARSERS: dict[int, Callable[[int, bytes], RtcpPacket]] = {
    RTCP_SR: RtcpSenderReport.parse_body,
    RTCP_RR: RtcpReceiverReport.parse_body,
    RTCP_SDES: RtcpSourceDescription.parse_body,
    RTCP_BYE: RtcpBye.parse_body,
    RTCP_APP: RtcpApp.parse_body,
}


def parse_compound(data: bytes) -> list[RtcpPacket]:
    """Parse a compound RTCP packet (§6.1) into its packets.

    Checks the validity rules of Appendix A.2 that do not depend on the
    profile: version 2, lengths that add up to the datagram, padding only
    on the last packet. The first packet may be any type (RFC 5506
    reduced-size RTCP).
    """
    packets: list[RtcpPacket] = []
    pos = 0
    if len(data) < 4:
        raise RtcpParseError(f"RTCP packet too short: {len(data)} octets")
    while pos < len(data):
        if pos + 4 > len(data):
            raise RtcpParseError("trailing octets after the last RTCP packet")
        first, packet_type, words = _COMMON.unpack_from(data, pos)
        if first >> 6 != 2:
            raise RtcpParseError(f"RTCP version {first >> 6}, expected 2")
        end = pos + 4 + 4 * words
        if end > len(data):
            raise RtcpParseError("RTCP length field exceeds the datagram")
        body = bytes(data[pos + 4 : end])
        if first & 0x20:
            if end != len(data):
                raise RtcpParseError("RTCP padding on a packet that is not the last")
            pad = body[-1] if body else 0
            if pad == 0 or pad > len(body):
                raise RtcpParseError("RTCP padding count is zero or too large")
            body = body[:-pad]
        count = first & 0x1F
        parser = _PARSERS.get(packet_type)
        if parser is not None:
            packets.append(parser(count, body))
        elif 192 <= packet_type <= 223:
            packets.append(RtcpUnknown(packet_type, count, body))
        else:
            raise RtcpParseError(f"not an RTCP packet type: {packet_type}")
        pos = end
    return packets


def serialize_compound(packets: Iterable[RtcpPacket]) -> bytes:
    """Concatenate packets into one compound packet (no padding)."""
    return b"".join(bytes(p) for p in packets)


def receiver_report(
    reporter_ssrc: int, sources: Iterable[tuple[int, RtpSourceStats]], now: float
) -> RtcpReceiverReport:
    """An RR about each ``(ssrc, stats)`` pair (at most 31)."""
    blocks = tuple(ReportBlock.from_stats(ssrc, stats, now) for ssrc, stats in sources)
    return RtcpReceiverReport(reporter_ssrc, blocks[:31])
