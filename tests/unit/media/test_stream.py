"""RTP stream core: continuity across sources, RTCP figures, RFC 4733 both ways."""

from __future__ import annotations

import random

import numpy as np

from vaxla.media.g711 import G711Codec
from vaxla.media.negotiation import PCMA, StreamParams
from vaxla.media.rtcp import RtcpReceiverReport, RtcpSenderReport, parse_compound
from vaxla.media.rtp import RtpPacket
from vaxla.media.stream import RtcpState, RtpReceiver, RtpSender

PARAMS = StreamParams("127.0.0.1", 4000, 4001, PCMA, 101, 20)


def _pkt(ssrc: int, seq: int, ts: int, value: int) -> bytes:
    payload = G711Codec.PCMA.encode(np.full(160, value, dtype=np.int16))
    return bytes(RtpPacket(8, seq & 0xFFFF, ts & 0xFFFF_FFFF, ssrc, payload))


def test_sender_is_one_continuous_stream_with_digits() -> None:
    sender = RtpSender(PARAMS, rng=random.Random(1))
    a = RtpPacket.parse(sender.audio(np.zeros(160, np.int16)))
    b = RtpPacket.parse(sender.audio(np.zeros(240, np.int16)))
    assert a.marker and not b.marker
    assert b.sequence_number == (a.sequence_number + 1) & 0xFFFF
    assert b.timestamp == (a.timestamp + 160) & 0xFFFF_FFFF
    digit = sender.digit("5", 100)
    assert digit[0].packet.sequence_number == (b.sequence_number + 1) & 0xFFFF
    assert digit[0].packet.timestamp == (b.timestamp + 240) & 0xFFFF_FFFF
    assert {p.packet.ssrc for p in digit} == {a.ssrc}
    c = RtpPacket.parse(sender.audio(np.zeros(160, np.int16)))
    assert c.sequence_number == (digit[-1].packet.sequence_number + 1) & 0xFFFF
    assert c.marker


def test_receiver_source_change_restarts_playout_and_keeps_stats_apart() -> None:
    rx = RtpReceiver(PARAMS, delay=0)
    for k in range(5):
        rx.receive(_pkt(1, 100 + k, 1000 + 160 * k, 1000), k * 0.02)
    first = rx.read(800)
    assert abs(int(first[0]) - 1000) < 40
    for k in range(5):  # another device takes over: new SSRC, unrelated seq/ts
        rx.receive(_pkt(2, 9000 + k, 777_777 + 160 * k, -2000), 0.1 + k * 0.02)
    assert rx.source_changes == 1 and set(rx.sources) == {1, 2}
    second = rx.read(800)
    assert abs(int(second[0]) + 2000) < 80
    received, lost, _ = rx.totals()
    assert lost == 0 and received >= 8


def test_rtcp_reports_loss_and_jitter_and_reads_peer_reports() -> None:
    rx = RtpReceiver(PARAMS)
    for k in range(50):
        if k % 10 == 3:
            continue  # 10 % loss
        rx.receive(_pkt(7, k, 160 * k, 0), k * 0.02 + (0.005 if k % 2 else 0))
    sender = RtpSender(PARAMS, rng=random.Random(2))
    sender.audio(np.zeros(160, np.int16))
    state = RtcpState(rx, sender, sender.ssrc)
    packets = parse_compound(state.build(1.0, 1_700_000_000.0))
    sr = packets[0]
    assert isinstance(sr, RtcpSenderReport) and sr.packet_count == 1
    block = sr.reports[0]
    assert block.ssrc == 7 and block.cumulative_lost == 5
    assert 20 <= block.fraction_lost <= 30  # ~10 % of 256
    assert block.jitter > 0
    # the peer's report about our stream is kept as its view of loss/jitter
    peer = RtpReceiver(PARAMS)
    peer_sender = RtpSender(PARAMS, rng=random.Random(3))
    for k in range(20):
        packet = sender.audio(np.zeros(160, np.int16))
        if k != 5:  # one lost on the way
            peer.receive(packet, k * 0.02)
    their = RtcpState(peer, peer_sender, peer_sender.ssrc).build(1.0, 1.0)
    assert isinstance(parse_compound(their)[0], RtcpReceiverReport | RtcpSenderReport)
    state.receive(their, 1.1)
    stats = state.stats()
    assert stats.remote_loss_percent is not None and stats.remote_loss_percent > 0
    assert stats.packets_lost == 5 and 9.0 < stats.loss_percent < 11.0


def test_rfc4733_digits_received_once() -> None:
    sender = RtpSender(PARAMS, rng=random.Random(4))
    rx = RtpReceiver(PARAMS)
    events = []
    for sched in sender.digit("#", 120):
        events += rx.receive(bytes(sched.packet), sched.offset)
    assert [(e.digit, e.duration) for e in events] == [("#", 960)]
