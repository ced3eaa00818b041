"""RTP data packets and per-source reception statistics (RFC 3550).

Sans-IO: :class:`RtpPacket` converts between bytes and a frozen dataclass;
:class:`RtpSourceStats` is fed ``(sequence, timestamp, arrival)`` triples and
keeps the RFC 3550 Appendix A.1 source state and the A.8 jitter estimate.
Arrival times are plain floats in seconds from any monotonic clock the
caller chooses; nothing here reads a clock.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from vaxla.media.errors import MediaParseError

RTP_VERSION = 2
RTP_SEQ_MOD = 1 << 16
RTP_TS_MOD = 1 << 32

_HEADER = struct.Struct("!BBHII")
_EXT_HEADER = struct.Struct("!HH")


class RtpParseError(MediaParseError):
    """A datagram is not a well-formed RTP packet."""


# -- sequence and timestamp arithmetic ----------------------------------------


def seq_add(seq: int, delta: int) -> int:
    """``seq + delta`` modulo 2**16."""
    return (seq + delta) & 0xFFFF


def seq_diff(a: int, b: int) -> int:
    """Signed distance ``a - b`` between two 16-bit sequence numbers.

    The result lies in [-32768, 32767]: ``seq_diff(0, 65535) == 1``.
    """
    return ((a - b + 0x8000) & 0xFFFF) - 0x8000


def seq_newer(a: int, b: int) -> bool:
    """True when sequence number ``a`` comes after ``b`` (serial arithmetic)."""
    return seq_diff(a, b) > 0


def ts_diff(a: int, b: int) -> int:
    """Signed distance ``a - b`` between two 32-bit RTP timestamps."""
    return ((a - b + 0x8000_0000) & 0xFFFF_FFFF) - 0x8000_0000


# -- packet -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HeaderExtension:
    """RFC 3550 §5.3.1 header extension: a 16-bit profile word and raw data.

    ``data`` is the extension body (its length is a multiple of 4 octets);
    RFC 8285 one/two-byte element parsing belongs to a higher layer.
    """

    profile: int
    data: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.profile <= 0xFFFF:
            raise ValueError(f"extension profile out of range: {self.profile}")
        if len(self.data) % 4 or len(self.data) > 0xFFFF * 4:
            raise ValueError("extension data must be a multiple of 4 octets, at most 262140")


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """An RTP data packet (RFC 3550 §5.1). The version is always 2.

    ``padding`` is the number of padding octets including the final count
    octet (0 means the P bit is clear). Padding octets are serialised as
    zeros, so a parsed packet with non-zero padding filler re-serialises
    with zero filler; everything else round-trips byte-exact.
    """

    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: HeaderExtension | None = None
    padding: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.payload_type <= 127:
            raise ValueError(f"payload type out of range: {self.payload_type}")
        if not 0 <= self.sequence_number <= 0xFFFF:
            raise ValueError(f"sequence number out of range: {self.sequence_number}")
        if not 0 <= self.timestamp <= 0xFFFF_FFFF:
            raise ValueError(f"timestamp out of range: {self.timestamp}")
        if not 0 <= self.ssrc <= 0xFFFF_FFFF:
            raise ValueError(f"SSRC out of range: {self.ssrc}")
        if len(self.csrcs) > 15 or any(not 0 <= c <= 0xFFFF_FFFF for c in self.csrcs):
            raise ValueError("at most 15 CSRCs, each a 32-bit value")
        if not 0 <= self.padding <= 255:
            raise ValueError(f"padding length out of range: {self.padding}")

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Parse one RTP packet; raise :class:`RtpParseError` when malformed."""
        if len(data) < 12:
            raise RtpParseError(f"RTP packet too short: {len(data)} octets, need 12")
        first, second, seq, timestamp, ssrc = _HEADER.unpack_from(data)
        version = first >> 6
        if version != RTP_VERSION:
            raise RtpParseError(f"RTP version {version}, expected 2")
        cc = first & 0x0F
        pos = 12 + 4 * cc
        if len(data) < pos:
            raise RtpParseError(f"RTP packet truncated in CSRC list ({cc} CSRCs)")
        csrcs = struct.unpack_from(f"!{cc}I", data, 12) if cc else ()
        extension = None
        if first & 0x10:
            if len(data) < pos + 4:
                raise RtpParseError("RTP packet truncated in header extension")
            profile, words = _EXT_HEADER.unpack_from(data, pos)
            pos += 4
            end = pos + 4 * words
            if len(data) < end:
                raise RtpParseError("RTP header extension longer than the packet")
            extension = HeaderExtension(profile, bytes(data[pos:end]))
            pos = end
        end = len(data)
        padding = 0
        if first & 0x20:
            padding = data[-1]
            if padding == 0:
                raise RtpParseError("RTP padding bit set but padding count is zero")
            end -= padding
            if end < pos:
                raise RtpParseError("RTP padding longer than the payload")
        return cls(
            payload_type=second & 0x7F,
            sequence_number=seq,
            timestamp=timestamp,
            ssrc=ssrc,
            payload=bytes(data[pos:end]),
            marker=bool(second & 0x80),
            csrcs=tuple(csrcs),
            extension=extension,
            padding=padding,
        )

    def __bytes__(self) -> bytes:
        first = (RTP_VERSION << 6) | len(self.csrcs)
        if self.padding:
            first |= 0x20
        if self.extension is not None:
            first |= 0x10
        second = self.payload_type | (0x80 if self.marker else 0)
        parts = [_HEADER.pack(first, second, self.sequence_number, self.timestamp, self.ssrc)]
        if self.csrcs:
            parts.append(struct.pack(f"!{len(self.csrcs)}I", *self.csrcs))
        if self.extension is not None:
            ext = self.extension
            parts.append(_EXT_HEADER.pack(ext.profile, len(ext.data) // 4))
            parts.append(ext.data)
        parts.append(self.payload)
        if self.padding:
            parts.append(bytes(self.padding - 1) + bytes((self.padding,)))
        return b"".join(parts)


# -- reception statistics (RFC 3550 Appendix A.1, A.3, A.8) --------------------

MAX_DROPOUT = 3000
MAX_MISORDER = 100
MIN_SEQUENTIAL = 2


class RtpSourceStats:
    """Reception state of one synchronisation source (RFC 3550 A.1).

    Create it when the first packet of a new SSRC arrives and call
    :meth:`update` for every packet of that SSRC, the first one included.
    The source is *valid* once ``min_sequential`` packets arrived in
    sequence (probation); as in A.1, packets seen during probation are not
    counted, so ``base_seq`` is the packet that ended probation.

    Unlike the C code of A.1, ``cycles`` counts wraps (not wraps << 16);
    :attr:`extended_max_seq` combines the two.
    """

    def __init__(self, first_seq: int, clock_rate: int, min_sequential: int = MIN_SEQUENTIAL):
        if clock_rate <= 0:
            raise ValueError("clock_rate must be positive")
        self.clock_rate = clock_rate
        self.min_sequential = max(min_sequential, 1)
        self.base_seq = first_seq
        self.max_seq = (first_seq - 1) & 0xFFFF
        self.bad_seq = RTP_SEQ_MOD + 1  # impossible value: no "bad" candidate yet
        self.cycles = 0
        self.received = 0
        self.probation = self.min_sequential
        self.jitter = 0.0
        self._received_prior = 0
        self._expected_prior = 0
        self._last_arrival: float | None = None
        self._last_timestamp = 0
        self._last_sr_middle = 0
        self._last_sr_arrival: float | None = None

    def _restart(self, seq: int) -> None:
        """A.1 ``init_seq``: start counting afresh from ``seq``."""
        self.base_seq = seq
        self.max_seq = seq
        self.bad_seq = RTP_SEQ_MOD + 1
        self.cycles = 0
        self.received = 0
        self._received_prior = 0
        self._expected_prior = 0
        self._last_arrival = None

    def _update_seq(self, seq: int) -> bool:
        udelta = (seq - self.max_seq) & 0xFFFF
        if self.probation:
            if seq == (self.max_seq + 1) & 0xFFFF:
                self.probation -= 1
                self.max_seq = seq
                if self.probation == 0:
                    self._restart(seq)
                    self.received += 1
                    return True
            else:
                self.probation = self.min_sequential - 1
                self.max_seq = seq
                if self.probation == 0:  # min_sequential == 1: any packet validates
                    self._restart(seq)
                    self.received += 1
                    return True
            return False
        if udelta < MAX_DROPOUT:
            # in order, possibly with a gap
            if seq < self.max_seq:
                self.cycles += 1
            self.max_seq = seq
        elif udelta <= RTP_SEQ_MOD - MAX_MISORDER:
            # a very large jump: accept only when the next packet confirms it
            if seq == self.bad_seq:
                self._restart(seq)
            else:
                self.bad_seq = (seq + 1) & 0xFFFF
                return False
        # else: duplicate or reordered packet, counted but max_seq unchanged
        self.received += 1
        return True

    def update(self, seq: int, timestamp: int, arrival: float) -> bool:
        """Account for one received packet; return False if it is not (yet)
        valid (probation, or an unconfirmed sequence jump)."""
        if not self._update_seq(seq):
            return False
        self._update_jitter(timestamp, arrival)
        return True

    def _update_jitter(self, timestamp: int, arrival: float) -> None:
        # A.8: D(i,j) = (Rj - Ri) - (Sj - Si), J += (|D| - J) / 16, in timestamp units
        if self._last_arrival is not None:
            d = (arrival - self._last_arrival) * self.clock_rate - ts_diff(
                timestamp, self._last_timestamp
            )
            self.jitter += (abs(d) - self.jitter) / 16.0
        self._last_arrival = arrival
        self._last_timestamp = timestamp

    @property
    def valid(self) -> bool:
        return self.probation == 0

    @property
    def extended_max_seq(self) -> int:
        """Highest sequence number received, extended with the wrap count."""
        return ((self.cycles << 16) | self.max_seq) & 0xFFFF_FFFF

    @property
    def expected(self) -> int:
        """Packets expected since ``base_seq`` (A.3)."""
        if not self.valid:
            return 0
        return (self.cycles << 16) + self.max_seq - self.base_seq + 1

    @property
    def lost(self) -> int:
        """Cumulative packets lost, clamped to the 24-bit signed RTCP field
        (negative when duplicates outnumber losses)."""
        return max(-0x80_0000, min(self.expected - self.received, 0x7F_FFFF))

    @property
    def jitter_units(self) -> int:
        """Interarrival jitter as reported in RTCP (timestamp units)."""
        return min(int(self.jitter), 0xFFFF_FFFF)

    def take_fraction_lost(self) -> int:
        """Fraction lost since the previous call, as an 8-bit fixed-point
        number (A.3). Advances the interval: call once per report."""
        expected = self.expected
        expected_interval = expected - self._expected_prior
        self._expected_prior = expected
        received_interval = self.received - self._received_prior
        self._received_prior = self.received
        lost_interval = expected_interval - received_interval
        if expected_interval <= 0 or lost_interval <= 0:
            return 0
        return min((lost_interval << 8) // expected_interval, 255)

    def on_sender_report(self, ntp_timestamp: int, arrival: float) -> None:
        """Remember the last SR from this source for LSR/DLSR (§6.4.1)."""
        self._last_sr_middle = (ntp_timestamp >> 16) & 0xFFFF_FFFF
        self._last_sr_arrival = arrival

    @property
    def last_sr(self) -> int:
        """Middle 32 bits of the last SR's NTP timestamp (0 if none yet)."""
        return self._last_sr_middle if self._last_sr_arrival is not None else 0

    def delay_since_last_sr(self, now: float) -> int:
        """DLSR in units of 1/65536 s (0 if no SR has arrived)."""
        if self._last_sr_arrival is None:
            return 0
        return max(0, min(int((now - self._last_sr_arrival) * 65536), 0xFFFF_FFFF))
