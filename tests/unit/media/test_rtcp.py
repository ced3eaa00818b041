"""RTCP packets and compound packets (RFC 3550 §6), byte-exact."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vaxla.media.rtcp import (
    SDES_CNAME,
    SDES_TOOL,
    ReportBlock,
    RtcpApp,
    RtcpBye,
    RtcpPacket,
    RtcpParseError,
    RtcpReceiverReport,
    RtcpSenderReport,
    RtcpSourceDescription,
    RtcpUnknown,
    SdesChunk,
    SdesItem,
    is_rtcp,
    ntp_from_unix,
    ntp_middle,
    parse_compound,
    receiver_report,
    serialize_compound,
)
from vaxla.media.rtp import RtpSourceStats

BLOCK = ReportBlock(
    ssrc=0x55667788,
    fraction_lost=0x19,
    cumulative_lost=3,
    highest_sequence=0x00010009,
    jitter=80,
    lsr=0xC5D68000,
    dlsr=0x00018000,
)
BLOCK_BYTES = bytes.fromhex("55667788190000030001000900000050c5d6800000018000")

SR_BYTES = (
    bytes.fromhex(
        "81c8000c"  # V=2, RC=1, PT=200, length 12 words
        "11223344"  # sender SSRC
        "e7b4c5d680000000"  # NTP timestamp
        "000003e8"  # RTP timestamp
        "0000000a"  # packet count
        "00000640"  # octet count
    )
    + BLOCK_BYTES
)
SR = RtcpSenderReport(0x11223344, 0xE7B4C5D680000000, 1000, 10, 1600, (BLOCK,))

RR_EMPTY_BYTES = bytes.fromhex("80c9000111223344")
SDES_BYTES = bytes.fromhex("81ca0004112233440109") + b"user@host" + b"\x00"
BYE_BYTES = bytes.fromhex("81cb00021122334403") + b"bye"


def test_report_block_byte_exact() -> None:
    assert bytes(BLOCK) == BLOCK_BYTES
    assert ReportBlock.parse(BLOCK_BYTES) == BLOCK


def test_negative_cumulative_lost_is_24_bit_twos_complement() -> None:
    block = ReportBlock(1, cumulative_lost=-2)
    assert bytes(block)[5:8] == b"\xff\xff\xfe"
    assert ReportBlock.parse(bytes(block)).cumulative_lost == -2


def test_sender_report_byte_exact() -> None:
    assert bytes(SR) == SR_BYTES
    assert parse_compound(SR_BYTES) == [SR]


def test_receiver_report_byte_exact() -> None:
    assert bytes(RtcpReceiverReport(0x11223344)) == RR_EMPTY_BYTES
    rr = RtcpReceiverReport(0x11223344, (BLOCK,))
    data = bytes.fromhex("81c9000711223344") + BLOCK_BYTES
    assert bytes(rr) == data
    assert parse_compound(data) == [rr]


def test_sdes_cname_byte_exact() -> None:
    sdes = RtcpSourceDescription.cname(0x11223344, "user@host")
    assert bytes(sdes) == SDES_BYTES
    (parsed,) = parse_compound(SDES_BYTES)
    assert parsed == sdes
    assert isinstance(parsed, RtcpSourceDescription)
    assert parsed.chunks[0].cname == "user@host"


def test_sdes_chunk_on_a_boundary_gets_four_null_octets() -> None:
    chunk = SdesChunk(1, (SdesItem(SDES_CNAME, b"0123456789"),))
    assert bytes(chunk) == bytes.fromhex("00000001010a") + b"0123456789" + bytes(4)


def test_sdes_several_chunks_and_items() -> None:
    sdes = RtcpSourceDescription(
        (
            SdesChunk(1, (SdesItem(SDES_CNAME, b"a@b"), SdesItem(SDES_TOOL, b"vaxla"))),
            SdesChunk(2, ()),
        )
    )
    assert parse_compound(bytes(sdes)) == [sdes]
    assert sdes.chunks[1].cname is None


def test_bye_byte_exact() -> None:
    bye = RtcpBye((0x11223344,), b"bye")
    assert bytes(bye) == BYE_BYTES
    assert parse_compound(BYE_BYTES) == [bye]
    assert bytes(RtcpBye((1, 2))) == bytes.fromhex("82cb00020000000100000002")


def test_app_and_unknown_types_round_trip() -> None:
    app = RtcpApp(3, 9, b"VXLA", b"\x00\x01\x02\x03")
    assert bytes(app) == bytes.fromhex("83cc000300000009") + b"VXLA" + b"\x00\x01\x02\x03"
    nack = bytes.fromhex("81cd0003000000010000000200100000")  # RFC 4585 generic NACK
    assert parse_compound(bytes(app) + nack) == [app, RtcpUnknown(205, 1, nack[4:])]
    assert serialize_compound(parse_compound(nack)) == nack


def test_compound_packet_round_trip() -> None:
    sdes = RtcpSourceDescription.cname(0x11223344, "user@host")
    data = SR_BYTES + SDES_BYTES + BYE_BYTES
    packets = parse_compound(data)
    assert packets == [SR, sdes, RtcpBye((0x11223344,), b"bye")]
    assert serialize_compound(packets) == data
    assert is_rtcp(data)


def test_padding_on_last_packet_is_removed() -> None:
    data = bytes.fromhex("a0c900021122334400000004")
    assert parse_compound(data) == [RtcpReceiverReport(0x11223344)]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x80\xc9", "too short"),
        (bytes.fromhex("40c9000111223344"), "version"),
        (bytes.fromhex("80c9000211223344"), "exceeds"),
        (bytes.fromhex("81c9000111223344"), "blocks"),
        (bytes.fromhex("80c8000111223344"), "sender info"),
        (bytes.fromhex("a0c900021122334400000004") + RR_EMPTY_BYTES, "not the last"),
        (bytes.fromhex("a0c900021122334400000000"), "padding"),
        (bytes.fromhex("80c900011122334480"), "trailing"),
        (bytes.fromhex("81ca0002112233440109aaaa"), "longer"),
        (bytes.fromhex("81ca00021122334401020304"), "terminating"),
        (bytes.fromhex("81cb00021122334405aabbcc"), "BYE reason"),
        (bytes.fromhex("8063000111223344"), "not an RTCP"),
    ],
)
def test_malformed_compound_packets_raise(data: bytes, message: str) -> None:
    with pytest.raises(RtcpParseError, match=message):
        parse_compound(data)


def test_is_rtcp_demultiplexes_from_rtp() -> None:
    assert not is_rtcp(bytes.fromhex("80081234000000a0deadbeef"))
    assert not is_rtcp(bytes.fromhex("80e51234000000a0deadbeef"))  # marker + PT 101
    assert is_rtcp(RR_EMPTY_BYTES)


def test_ntp_conversion() -> None:
    assert ntp_from_unix(0.0) == 2_208_988_800 << 32
    assert ntp_from_unix(0.5) & 0xFFFFFFFF == 0x80000000
    assert ntp_middle(0xE7B4C5D680000000) == 0xC5D68000


u32 = st.integers(0, 0xFFFFFFFF)
blocks = st.builds(
    ReportBlock,
    ssrc=u32,
    fraction_lost=st.integers(0, 255),
    cumulative_lost=st.integers(-0x800000, 0x7FFFFF),
    highest_sequence=u32,
    jitter=u32,
    lsr=u32,
    dlsr=u32,
)
words = st.integers(0, 4).flatmap(lambda n: st.binary(min_size=4 * n, max_size=4 * n))
rtcp_packets: st.SearchStrategy[RtcpPacket] = st.one_of(
    st.builds(
        RtcpSenderReport,
        u32,
        st.integers(0, 2**64 - 1),
        u32,
        u32,
        u32,
        st.lists(blocks, max_size=3).map(tuple),
        words,
    ),
    st.builds(RtcpReceiverReport, u32, st.lists(blocks, max_size=3).map(tuple), words),
    st.builds(
        RtcpSourceDescription,
        st.lists(
            st.builds(
                SdesChunk,
                u32,
                st.lists(
                    st.builds(SdesItem, st.integers(1, 255), st.binary(max_size=40)), max_size=3
                ).map(tuple),
            ),
            max_size=3,
        ).map(tuple),
    ),
    st.builds(RtcpBye, st.lists(u32, max_size=4).map(tuple), st.binary(max_size=30)),
    st.builds(RtcpApp, st.integers(0, 31), u32, st.binary(min_size=4, max_size=4), words),
)


@given(st.lists(rtcp_packets, min_size=1, max_size=4))
def test_compound_round_trip(packets: list[RtcpPacket]) -> None:
    data = serialize_compound(packets)
    assert parse_compound(data) == packets
    assert serialize_compound(parse_compound(data)) == data


@given(st.binary(max_size=80))
def test_garbage_raises_only_parse_errors(data: bytes) -> None:
    try:
        packets = parse_compound(data)
    except RtcpParseError:
        return
    assert parse_compound(serialize_compound(packets)) == packets


def test_receiver_report_from_stats_with_loss_and_reordering() -> None:
    stats = RtpSourceStats(0xFFF0, 8000)
    order = [0xFFF0, 0xFFF1, 0xFFF3, 0xFFF2, 0xFFF5, *range(0xFFF7, 0x10000), 0, 1, 1, 2, 5]
    # lost: 0xFFF4, 0xFFF6, 3, 4; duplicated: 1
    for i, seq in enumerate(order):
        stats.update(seq, (160 * i) & 0xFFFFFFFF, 100.0 + 0.02 * i + (0.005 if i % 3 else 0))
    stats.on_sender_report(ntp_from_unix(1_700_000_000.25), arrival=100.2)
    rr = receiver_report(0xAAAA, [(0xBBBB, stats)], now=100.7)
    (block,) = rr.reports
    expected = (0x10000 - 0xFFF1) + 6  # 0xFFF1..0xFFFF and 0..5
    assert stats.expected == expected == 21
    assert stats.received == 18  # after probation; the duplicate counts
    assert block.ssrc == 0xBBBB
    assert block.cumulative_lost == 3
    assert block.fraction_lost == (3 << 8) // 21
    assert block.highest_sequence == 0x10005
    assert block.jitter == stats.jitter_units > 0
    assert block.lsr == ntp_middle(ntp_from_unix(1_700_000_000.25))
    assert block.dlsr == 32768  # 0.5 s in 1/65536 s
    assert parse_compound(bytes(rr)) == [rr]
    # a second report covers only the new interval
    assert ReportBlock.from_stats(0xBBBB, stats, now=101.0).fraction_lost == 0
