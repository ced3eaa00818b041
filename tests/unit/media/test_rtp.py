"""RTP packets (RFC 3550 §5.1) and reception statistics (Appendix A.1/A.3/A.8)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vaxla.media.rtp import (
    HeaderExtension,
    RtpPacket,
    RtpParseError,
    RtpSourceStats,
    seq_add,
    seq_diff,
    seq_newer,
    ts_diff,
)

# V=2 P=0 X=0 CC=0 | M=0 PT=8 | seq 0x1234 | ts 0x000000a0 | ssrc 0xdeadbeef | 4 payload octets
PCMA_PACKET = bytes.fromhex("80081234000000a0deadbeefd5d5d5d5")

# V=2 P=1 X=1 CC=2 | M=1 PT=101 | seq 65535 | ts 0xffffffff | ssrc 1
# CSRC 2, CSRC 3 | ext profile 0xbede, 1 word: 10 aa 00 00 | payload 01 02 | padding 3
FULL_PACKET = bytes.fromhex("b2e5ffffffffffff000000010000000200000003bede000110aa00000102000003")


def test_parse_simple_pcma_packet() -> None:
    p = RtpPacket.parse(PCMA_PACKET)
    assert p == RtpPacket(
        payload_type=8, sequence_number=0x1234, timestamp=160, ssrc=0xDEADBEEF, payload=b"\xd5" * 4
    )
    assert not p.marker and p.csrcs == () and p.extension is None and p.padding == 0
    assert bytes(p) == PCMA_PACKET


def test_parse_packet_with_every_header_field() -> None:
    p = RtpPacket.parse(FULL_PACKET)
    assert p.marker
    assert p.payload_type == 101
    assert p.sequence_number == 65535
    assert p.timestamp == 0xFFFFFFFF
    assert p.ssrc == 1
    assert p.csrcs == (2, 3)
    assert p.extension == HeaderExtension(0xBEDE, bytes.fromhex("10aa0000"))
    assert p.payload == b"\x01\x02"
    assert p.padding == 3
    assert bytes(p) == FULL_PACKET


def test_serialise_from_fields() -> None:
    p = RtpPacket(0, 1, 2, 3, b"\xff", marker=True)
    assert bytes(p) == bytes.fromhex("808000010000000200000003ff")


def test_empty_extension_and_payload() -> None:
    data = bytes.fromhex("90000000000000000000000000010000")
    p = RtpPacket.parse(data)
    assert p.extension == HeaderExtension(1, b"")
    assert p.payload == b""
    assert bytes(p) == data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "too short"),
        (PCMA_PACKET[:11], "too short"),
        (bytes.fromhex("40081234000000a0deadbeef"), "version 1"),
        (bytes.fromhex("00081234000000a0deadbeef"), "version 0"),
        (bytes.fromhex("82081234000000a0deadbeef00000001"), "CSRC"),
        (bytes.fromhex("90081234000000a0deadbeef0001"), "extension"),
        (bytes.fromhex("90081234000000a0deadbeef00010002aaaaaaaa"), "extension"),
        (bytes.fromhex("a0081234000000a0deadbeef0000"), "zero"),
        (bytes.fromhex("a0081234000000a0deadbeef0005"), "padding longer"),
    ],
)
def test_malformed_packets_raise(data: bytes, message: str) -> None:
    with pytest.raises(RtpParseError, match=message):
        RtpPacket.parse(data)


def test_parse_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        RtpPacket.parse(b"\x80")


def test_field_ranges_checked() -> None:
    with pytest.raises(ValueError):
        RtpPacket(128, 0, 0, 0)
    with pytest.raises(ValueError):
        RtpPacket(0, 65536, 0, 0)
    with pytest.raises(ValueError):
        RtpPacket(0, 0, 0, 0, csrcs=tuple(range(16)))
    with pytest.raises(ValueError):
        HeaderExtension(0, b"abc")


u32 = st.integers(0, 0xFFFFFFFF)
packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127),
    sequence_number=st.integers(0, 0xFFFF),
    timestamp=u32,
    ssrc=u32,
    payload=st.binary(max_size=200),
    marker=st.booleans(),
    csrcs=st.lists(u32, max_size=15).map(tuple),
    extension=st.none()
    | st.builds(
        HeaderExtension,
        profile=st.integers(0, 0xFFFF),
        data=st.integers(0, 8).flatmap(lambda n: st.binary(min_size=4 * n, max_size=4 * n)),
    ),
    padding=st.integers(0, 255),
)


@given(packets)
def test_round_trip(p: RtpPacket) -> None:
    assert RtpPacket.parse(bytes(p)) == p


@given(st.binary(max_size=64))
def test_parse_never_fails_other_than_with_parse_error(data: bytes) -> None:
    try:
        p = RtpPacket.parse(data)
    except RtpParseError:
        return
    assert RtpPacket.parse(bytes(p)) == p


# -- sequence arithmetic --------------------------------------------------------


def test_sequence_helpers_wrap() -> None:
    assert seq_add(65535, 1) == 0
    assert seq_add(0, -1) == 65535
    assert seq_diff(0, 65535) == 1
    assert seq_diff(65535, 0) == -1
    assert seq_diff(100, 100) == 0
    assert seq_diff(32767, 0) == 32767
    assert seq_diff(32768, 0) == -32768
    assert seq_newer(2, 65530)
    assert not seq_newer(65530, 2)
    assert ts_diff(5, 0xFFFFFFFB) == 10
    assert ts_diff(0xFFFFFFFB, 5) == -10


@given(st.integers(0, 0xFFFF), st.integers(-32768, 32767))
def test_seq_diff_inverts_seq_add(seq: int, delta: int) -> None:
    assert seq_diff(seq_add(seq, delta), seq) == delta


# -- reception statistics -------------------------------------------------------


def feed(stats: RtpSourceStats, seqs: list[int], ptime: float = 0.02) -> list[bool]:
    """Packets sent every ptime, arriving exactly on time unless reordered."""
    results = []
    base = seqs[0]
    for seq in seqs:
        n = seq_diff(seq, base)
        results.append(stats.update(seq, (1000 + 160 * n) & 0xFFFFFFFF, 10.0 + n * ptime))
    return results


def test_probation_then_counting() -> None:
    s = RtpSourceStats(100, 8000)
    assert not s.valid
    assert feed(s, [100, 101]) == [False, True]
    assert s.valid and s.base_seq == 101 and s.received == 1 and s.expected == 1


def test_probation_restarts_on_a_gap() -> None:
    s = RtpSourceStats(100, 8000)
    assert [s.update(q, 0, 0.0) for q in (100, 105, 106)] == [False, False, True]
    assert s.base_seq == 106


def test_min_sequential_one_accepts_first_packet() -> None:
    s = RtpSourceStats(7, 8000, min_sequential=1)
    assert s.update(7, 0, 0.0)
    assert s.received == 1 and s.base_seq == 7


def test_loss_duplicates_reordering_and_wrap() -> None:
    # 65530..65535, 0..9 with 3 lost, 1 duplicated and two pairs swapped
    order = [65530, 65531, 65532, 65534, 65533, 65535, 0, 1, 1, 3, 2, 5, 6, 8, 9]
    # lost: 4 and 7; duplicate: 1
    s = RtpSourceStats(65530, 8000)
    results = feed(s, order)
    assert results[0] is False and all(results[1:])
    assert s.base_seq == 65531
    assert s.cycles == 1 and s.max_seq == 9
    assert s.extended_max_seq == (1 << 16) | 9
    assert s.expected == 15  # 65531..65535 and 0..9
    assert s.received == 14  # counted after probation, the duplicate included
    assert s.lost == 1  # 2 lost, 1 duplicate (RFC 3550 counts duplicates as received)
    assert s.take_fraction_lost() == (1 << 8) // 15
    # next interval: 10..19 with 10, 11, 12 lost
    for q in range(13, 20):
        assert s.update(q, 1000 + 160 * (q + 6), 10.0 + (q + 6) * 0.02)
    assert s.expected == 25 and s.received == 21 and s.lost == 4
    assert s.take_fraction_lost() == (3 << 8) // 10
    assert s.take_fraction_lost() == 0  # nothing new


def test_large_jump_needs_confirmation_then_resyncs() -> None:
    s = RtpSourceStats(10, 8000, min_sequential=1)
    feed(s, [10, 11, 12])
    assert not s.update(20000, 0, 1.0)  # a jump: held back
    assert s.max_seq == 12
    assert s.update(20001, 160, 1.02)  # confirmed: restart from here
    assert s.base_seq == 20001 and s.received == 1 and s.expected == 1


def test_old_packet_within_misorder_window_counted_not_advancing() -> None:
    s = RtpSourceStats(1000, 8000, min_sequential=1)
    feed(s, [1000, 1001, 1002])
    assert s.update(950, 0, 0.0)
    assert s.max_seq == 1002 and s.received == 4


def test_cumulative_lost_is_clamped_to_24_bits() -> None:
    s = RtpSourceStats(0, 8000, min_sequential=1)
    s.update(0, 0, 0.0)
    for k in range(1, 3000):  # jumps of 2999 keep every packet "in order"
        s.update((k * 2999) & 0xFFFF, 0, 0.0)
    assert s.expected - s.received > 0x7FFFFF
    assert s.lost == 0x7FFFFF


def test_jitter_zero_for_perfect_timing() -> None:
    s = RtpSourceStats(0, 8000, min_sequential=1)
    feed(s, list(range(50)))
    assert s.jitter == pytest.approx(0.0, abs=1e-6)


def test_jitter_converges_per_rfc3550_a8() -> None:
    s = RtpSourceStats(0, 8000, min_sequential=1)
    # arrivals alternately 0 and 10 ms late: |D| = 80 units every packet
    for n in range(400):
        s.update(n, (160 * n) & 0xFFFFFFFF, n * 0.02 + (0.01 if n % 2 else 0.0))
    assert s.jitter == pytest.approx(80.0, rel=1e-3)
    assert s.jitter_units == 79 or s.jitter_units == 80


def test_jitter_across_timestamp_wrap() -> None:
    s = RtpSourceStats(0, 8000, min_sequential=1)
    for n in range(20):
        s.update(n, (0xFFFFFF00 + 160 * n) & 0xFFFFFFFF, n * 0.02)
    assert s.jitter == pytest.approx(0.0, abs=1e-6)


def test_last_sender_report_figures() -> None:
    s = RtpSourceStats(0, 8000)
    assert s.last_sr == 0 and s.delay_since_last_sr(5.0) == 0
    s.on_sender_report(0x0123456789ABCDEF, arrival=10.0)
    assert s.last_sr == 0x456789AB
    assert s.delay_since_last_sr(11.5) == 98304
