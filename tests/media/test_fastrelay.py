"""The C relay fast path (vaxla.media._fastrelay) through Python, on real
loopback sockets: forwarding, latching, RFC 3550 statistics, hand-offs,
closing while the thread runs; and anchored calls on it, against the
pure-Python relay and as its fallback."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import struct
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.peers.ports import free_port
from vaxla.config import MediaSettings
from vaxla.media import fastrelay
from vaxla.media.anchor import AnchoredCall
from vaxla.media.engine import MediaEngine
from vaxla.media.fastrelay import HANDOFF_RTCP, HANDOFF_TAP, Addr, FastRelay
from vaxla.media.negotiation import make_answer, make_offer
from vaxla.media.relay_side import FastRelaySide, RelaySide
from vaxla.media.rtp import RtpSourceStats

if fastrelay.load() is None:
    pytest.skip("the C relay is not built", allow_module_level=True)

HOST = "127.0.0.1"
IP_RECVERR = getattr(socket, "IP_RECVERR", 11)  # Linux; named in Python 3.12


def rtp(seq: int, ts: int = 0, ssrc: int = 0x1234, pt: int = 8, size: int = 160) -> bytes:
    return struct.pack("!BBHII", 0x80, pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + bytes(size)


def udp() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((HOST, 0))
    s.setblocking(False)
    return s


def addr_of(s: socket.socket) -> Addr:
    host, port = s.getsockname()
    return (str(host), int(port))


async def receive_all(s: socket.socket, settle: float = 0.05) -> list[tuple[bytes, Addr]]:
    """What arrives on ``s`` until it has been quiet for ``settle`` seconds."""
    out: list[tuple[bytes, Addr]] = []
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < settle:
        try:
            data, addr = s.recvfrom(4096)
        except BlockingIOError:
            await asyncio.sleep(0.005)
            continue
        out.append((data, addr))
        quiet_since = time.monotonic()
    return out


class Receiver:
    def __init__(self) -> None:
        self.got: list[tuple[int, bytes, Addr, float]] = []

    def handoff(self, kind: int, data: bytes, addr: Addr, arrival: float) -> None:
        self.got.append((kind, data, addr, arrival))


class Pair:
    """Two relay sockets linked in the C relay, and a phone facing each."""

    def __init__(self, relay: FastRelay, relatch_after: float = 1.0) -> None:
        self.relay = relay
        self.ra, self.rb = udp(), udp()  # Växla's sockets
        self.pa, self.pb = udp(), udp()  # the phones
        self.recv_a, self.recv_b = Receiver(), Receiver()
        self.ha = relay.add(self.ra, self.recv_a, relatch_after)
        self.hb = relay.add(self.rb, self.recv_b, relatch_after)
        relay.link(self.ha, self.hb)
        relay.set_target(self.ha, addr_of(self.pa), relatch=True)
        relay.set_target(self.hb, addr_of(self.pb), relatch=True)

    def close(self) -> None:
        for h in (self.ha, self.hb):
            self.relay.remove(h)
        for s in (self.ra, self.rb, self.pa, self.pb):
            s.close()


@pytest.fixture
async def relay() -> AsyncIterator[FastRelay]:
    r = FastRelay.create(asyncio.get_running_loop())
    assert r is not None
    yield r
    r.close()


@pytest.fixture
def pair(relay: FastRelay) -> Iterator[Pair]:
    p = Pair(relay)
    yield p
    p.close()


async def test_forwards_both_ways_unchanged(pair: Pair) -> None:
    sent_a = [rtp(100 + i, 160 * i, 0xA) for i in range(20)]
    sent_b = [rtp(7 + i, 160 * i, 0xB, size=80) for i in range(20)]
    for da, db in zip(sent_a, sent_b, strict=True):
        pair.pa.sendto(da, addr_of(pair.ra))
        pair.pb.sendto(db, addr_of(pair.rb))
    at_b = await receive_all(pair.pb)
    at_a = await receive_all(pair.pa)
    assert [d for d, _ in at_b] == sent_a
    assert [d for d, _ in at_a] == sent_b
    # each phone hears from the socket that faces it
    assert {a for _, a in at_b} == {addr_of(pair.rb)}
    assert {a for _, a in at_a} == {addr_of(pair.ra)}
    info_a, info_b = pair.relay.info(pair.ha), pair.relay.info(pair.hb)
    assert (info_a.packets_in, info_a.bytes_in, info_b.packets_out) == (20, 20 * 172, 20)
    assert info_a.addr == addr_of(pair.pa) and info_a.ssrc == 0xA


async def test_latches_to_where_packets_come_from(relay: FastRelay) -> None:
    p = Pair(relay, relatch_after=0.2)
    nat = udp()  # the phone's packets come from another port than its SDP names
    other = udp()
    try:
        p.pb.sendto(rtp(1), addr_of(p.rb))
        assert len(await receive_all(p.pa)) == 1  # before A's first packet: its SDP address
        nat.sendto(rtp(1), addr_of(p.ra))
        await receive_all(p.pb)
        p.pb.sendto(rtp(2), addr_of(p.rb))
        assert len(await receive_all(nat)) == 1  # then where A's packets come from
        assert await receive_all(p.pa) == []
        # another address while A is active is ignored, and not relayed
        other.sendto(rtp(50, ssrc=9), addr_of(p.ra))
        assert await receive_all(p.pb) == []
        info = relay.info(p.ha)
        assert (info.addr, info.ignored, info.relatches) == (addr_of(nat), 1, 0)
        # once A has been quiet for relatch_after, a new address takes over
        await asyncio.sleep(0.25)
        other.sendto(rtp(51, ssrc=9), addr_of(p.ra))
        assert len(await receive_all(p.pb)) == 1
        info = relay.info(p.ha)
        assert (info.addr, info.relatches, info.source_changes) == (addr_of(other), 1, 1)
        # a new SDP address forgets the latch: follow the SDP until packets come
        relay.set_target(p.ha, addr_of(p.pa), relatch=True)
        assert relay.info(p.ha).addr is None
        p.pb.sendto(rtp(3), addr_of(p.rb))
        assert len(await receive_all(p.pa)) == 1
    finally:
        p.close()
        nat.close()
        other.close()


async def test_reception_statistics_match_rfc3550_reference(pair: Pair) -> None:
    """Loss, duplicates and reordering: the same figures as RtpSourceStats."""
    rng = random.Random(5)
    seqs: list[int] = []
    for i in range(65500, 65536 + 400):  # crosses the wrap
        roll = rng.random()
        if roll < 0.05:
            continue  # lost
        seqs.append(i & 0xFFFF)
        if roll > 0.97:
            seqs.append(i & 0xFFFF)  # duplicate
    for k in range(0, len(seqs) - 3, 37):  # some reordering
        seqs[k], seqs[k + 2] = seqs[k + 2], seqs[k]
    reference = RtpSourceStats(seqs[0], 8000)
    for k, seq in enumerate(seqs):
        reference.update(seq, seq * 160, time.monotonic())
        pair.pa.sendto(rtp(seq, seq * 160), addr_of(pair.ra))
        if k % 20 == 0:
            await asyncio.sleep(0.002)  # within the sockets' buffers
    await receive_all(pair.pb)
    info = pair.relay.info(pair.ha)
    (source,) = info.sources
    assert (source.received, source.lost, source.valid) == (
        reference.received,
        reference.lost,
        True,
    )
    assert source.lost > 0
    assert info.totals()[:2] == (reference.received, max(reference.lost, 0))


async def test_jitter_follows_rfc3550_a8(pair: Pair) -> None:
    # paced at 20 ms with 160-sample steps: little jitter; then 40 ms gaps
    # with 160-sample steps: |D| = 160 each time, J converges towards 160
    for i in range(10):
        pair.pa.sendto(rtp(i, 160 * i), addr_of(pair.ra))
        await asyncio.sleep(0.02)
    steady = pair.relay.info(pair.ha).sources[0].jitter
    for i in range(10, 40):
        pair.pa.sendto(rtp(i, 160 * i), addr_of(pair.ra))
        await asyncio.sleep(0.04)
    late = pair.relay.info(pair.ha).sources[0].jitter
    assert steady < 40  # < 5 ms
    assert 100 < late < 200


async def test_source_changes_and_forgotten_sources_keep_totals(pair: Pair) -> None:
    for ssrc in range(1, 12):  # 11 sources: 3 are forgotten, their totals kept
        for i in range(5):
            pair.pa.sendto(rtp(1000 * ssrc + i, ssrc=ssrc), addr_of(pair.ra))
    await receive_all(pair.pb)
    info = pair.relay.info(pair.ha)
    assert info.source_changes == 10
    assert len(info.sources) == 8 and info.ssrc == 11
    assert info.retired_received == 3 * 4
    assert info.totals()[0] == 11 * 4  # the first of each source is probation


async def test_invalid_packets_counted_not_forwarded(pair: Pair) -> None:
    pair.pa.sendto(b"\x80\x08short", addr_of(pair.ra))
    pair.pa.sendto(b"\x40" + bytes(30), addr_of(pair.ra))  # RTP version 1
    pair.pa.sendto(bytes(5000), addr_of(pair.ra))  # larger than the relay reads
    assert await receive_all(pair.pb) == []
    info = pair.relay.info(pair.ha)
    assert (info.invalid, info.packets_in) == (3, 0)


async def test_rtcp_mux_and_taps_are_handed_to_python(pair: Pair) -> None:
    rr = struct.pack("!BBHI", 0x81, 201, 7, 0xA) + bytes(24)  # a receiver report
    pair.pa.sendto(rr, addr_of(pair.ra))
    pair.pa.sendto(rtp(1), addr_of(pair.ra))
    await receive_all(pair.pb)
    assert pair.recv_a.got == []  # without rtcp-mux: RTCP-looking packets are relayed
    pair.relay.set_flags(pair.ha, rtcp_mux=True, tap=True)
    pair.pa.sendto(rr, addr_of(pair.ra))
    pair.pa.sendto(rtp(2), addr_of(pair.ra))
    at_b = await receive_all(pair.pb)
    assert [d for d, _ in at_b] == [rtp(2)]  # RTP still relayed; RTCP not
    kinds = [(kind, data, addr) for kind, data, addr, _ in pair.recv_a.got]
    assert kinds == [(HANDOFF_RTCP, rr, addr_of(pair.pa)), (HANDOFF_TAP, rtp(2), addr_of(pair.pa))]
    arrival = pair.recv_a.got[1][3]
    assert abs(arrival - time.monotonic()) < 1.0  # the loop's clock


async def test_not_relaying_while_python_generates_the_audio(pair: Pair) -> None:
    pair.relay.set_flags(pair.hb, relaying=False)
    pair.pa.sendto(rtp(1), addr_of(pair.ra))
    assert await receive_all(pair.pb) == []
    assert pair.relay.send(pair.hb, b"mixed")  # Växla's own packet to B
    assert [d for d, _ in await receive_all(pair.pb)] == [b"mixed"]
    assert pair.relay.info(pair.hb).packets_out == 1


@pytest.mark.parametrize("recverr", [False, True])
async def test_unreachable_phone_does_not_spin(relay: FastRelay, recverr: bool) -> None:
    p = Pair(relay)
    gone = udp()
    relay.set_target(p.hb, addr_of(gone), relatch=True)
    gone.close()  # ICMP port unreachable for what the relay sends there
    try:
        # with IP_RECVERR, ICMP errors stay in the socket's error queue until read
        p.rb.setsockopt(socket.IPPROTO_IP, IP_RECVERR, int(recverr))
        before = relay.counters()["wakeups"]
        for i in range(20):
            p.pa.sendto(rtp(i), addr_of(p.ra))
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.2)
        # one wakeup per packet, and one per ICMP error when they are queued;
        # a socket left in error would wake the thread every tick (~300 here)
        assert relay.counters()["wakeups"] - before <= (45 if recverr else 25)
        assert relay.info(p.ha).packets_in == 20
    finally:
        p.close()


async def test_remove_while_packets_flow(relay: FastRelay) -> None:
    pairs = [Pair(relay) for _ in range(20)]
    first = pairs[0].ha
    stop = time.monotonic() + 0.5
    seq = 0
    while time.monotonic() < stop:
        for p in pairs:
            p.pa.sendto(rtp(seq), addr_of(p.ra))
            p.pb.sendto(rtp(seq), addr_of(p.rb))
        seq += 1
        if seq % 5 == 0 and pairs:
            pairs.pop().close()  # removed and closed while the thread relays
        await asyncio.sleep(0.002)
    for p in pairs:
        p.close()
    assert relay.counters()["streams"] == 0
    with pytest.raises(KeyError):
        relay.info(first)


# -- anchored calls on the fast path


def _engine(tmp_path: Path, **settings: object) -> MediaEngine:
    low = free_port(span=20) // 2 * 2
    return MediaEngine(MediaSettings(port_min=low, port_max=low + 19, **settings), tmp_path)


async def _anchored(
    engine: MediaEngine, call_id: str, alice: socket.socket, bob: socket.socket
) -> AnchoredCall:
    """An anchored call between 1001 (``alice``'s socket) and 1002 (``bob``'s),
    set up through offer_to_b/answer_to_a as the B2BUA does."""
    call = AnchoredCall(engine, call_id, "1001", "1002")
    await call.open()
    to_bob = call.offer_to_b(bytes(make_offer(HOST, addr_of(alice)[1], session_id="1")))
    answer, _ = make_answer(to_bob, HOST, addr_of(bob)[1], session_id="2")
    call.answer_to_a(bytes(answer))
    return call


async def _call_traffic(engine: MediaEngine) -> tuple[AnchoredCall, dict[str, int]]:
    alice, bob = udp(), udp()
    call = await _anchored(engine, "fast-1", alice, bob)
    for i in range(50):
        if i % 10 != 3:  # alice loses a packet now and then
            alice.sendto(rtp(500 + i, 160 * i, 0xA11CE), (HOST, call.a.port))
        bob.sendto(rtp(9000 + i, 160 * i, 0xB0B), (HOST, call.b.port))
        await asyncio.sleep(0.004)
    heard = {
        "bob": len(await receive_all(bob)),
        "alice": len(await receive_all(alice)),
    }
    alice.close()
    bob.close()
    return call, heard


async def test_anchored_call_quality_same_on_both_paths(tmp_path: Path) -> None:
    results: dict[bool, tuple[dict[str, int], dict[str, dict[str, Any]]]] = {}
    for fast in (True, False):
        engine = _engine(tmp_path / str(fast), fast_relay=fast)
        call, heard = await _call_traffic(engine)
        assert isinstance(call.a, FastRelaySide) is fast
        stats = call.quality()
        await call.close()
        await engine.close()
        results[fast] = (heard, {k: v.as_dict() | {"jitter_ms": None} for k, v in stats.items()})
    assert results[True] == results[False]
    heard, quality = results[True]
    assert heard == {"bob": 45, "alice": 50}
    assert quality["a"]["packets_lost"] == 5 and quality["b"]["packets_sent"] == 45


async def test_recording_taps_on_the_fast_path(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    alice, bob = udp(), udp()
    call = await _anchored(engine, "fast-2", alice, bob)
    rec_id = await call.start_recording("stereo")
    assert call.a.tap is not None
    for i in range(50):
        alice.sendto(rtp(i, 160 * i, 1, size=160), (HOST, call.a.port))
        bob.sendto(rtp(i, 160 * i, 2, size=160), (HOST, call.b.port))
        await asyncio.sleep(0.02)
    await call.stop_recording(rec_id)
    assert call.a.tap is None and call.b.tap is None
    tap_packets = engine.fast_relay().counters()["handoffs"]
    assert tap_packets >= 90  # both phones' packets reached the recorder
    assert len(await receive_all(bob)) == 50  # and were still relayed
    await call.close()
    await engine.close()
    alice.close()
    bob.close()
    assert next((tmp_path / "recordings").rglob(f"{rec_id}.wav")).stat().st_size > 44


async def test_falls_back_to_python_when_not_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import builtins

    real_import = builtins.__import__

    def no_c(name: str, *args: object, **kw: object) -> object:
        if name == "vaxla.media" and args[2] and "_fastrelay" in args[2]:  # type: ignore[operator]
            raise ImportError("no _fastrelay")
        return real_import(name, *args, **kw)  # type: ignore[arg-type]

    fastrelay.load.cache_clear()
    monkeypatch.setattr(builtins, "__import__", no_c)
    try:
        with caplog.at_level(logging.WARNING, "vaxla.media"):
            engine = _engine(tmp_path)
            call, heard = await _call_traffic(engine)
            call2 = AnchoredCall(engine, "fast-3", "1003", "1004")
        assert type(call.a) is RelaySide and type(call2.a) is RelaySide
        assert heard == {"bob": 45, "alice": 50}
        warnings = [r for r in caplog.records if "not built" in r.getMessage()]
        assert len(warnings) == 1
        await call.close()
        await engine.close()
    finally:
        monkeypatch.undo()
        fastrelay.load.cache_clear()


async def test_whisper_packets_follow_the_calls_ptime(tmp_path: Path) -> None:
    """A call at ptime 30: the whispered-to phone gets 30 ms packets (240 samples)."""
    from types import SimpleNamespace

    import numpy as np

    engine = _engine(tmp_path)
    alice, bob = udp(), udp()
    call = AnchoredCall(engine, "fast-4", "1001", "1002")
    await call.open()
    offer = make_offer(HOST, addr_of(alice)[1], session_id="1", ptime=30)
    to_bob = call.offer_to_b(bytes(offer))
    answer, _ = make_answer(to_bob, HOST, addr_of(bob)[1], session_id="2")
    call.answer_to_a(bytes(answer))
    assert call.params is not None and call.params.ptime == 30
    leg = SimpleNamespace(ptime=20, player=SimpleNamespace(idle=None), listeners=[])
    detach = call.add_whisper(leg, "b")  # type: ignore[arg-type]
    try:
        got: list[bytes] = []
        until = time.monotonic() + 0.6  # the engine's clock sends them: read for a while
        while time.monotonic() < until:
            for push in leg.listeners:
                push(np.full(160, 1000, np.int16))
            await asyncio.sleep(0.02)
            while True:
                try:
                    got.append(bob.recv(4096))
                except BlockingIOError:
                    break
        assert len(got) >= 12  # about 20 in 0.6 s
        assert {len(p) - 12 for p in got} == {240}  # 30 ms each (G.711: a byte a sample)
    finally:
        detach()
        await call.close()
        await engine.close()
        alice.close()
        bob.close()
