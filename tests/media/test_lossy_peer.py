"""A test peer that drops 5 % of its RTP and reorders it: playback (the echo
service) and recording (an anchored call) keep going, in time, with the
right audio. Runs the media engine in-process on loopback sockets."""

from __future__ import annotations

import asyncio
import itertools
import random
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.peers.audio import tone_snr_db
from tests.peers.ports import free_port
from vaxla.config import MediaSettings
from vaxla.media.anchor import AnchoredCall
from vaxla.media.engine import MediaEngine
from vaxla.media.g711 import G711Codec
from vaxla.media.negotiation import make_answer, make_offer
from vaxla.media.rtp import RtpPacket
from vaxla.media.services import EchoService
from vaxla.media.tones import sine
from vaxla.pbx.services import ServiceCall

pytestmark = [pytest.mark.slow]


class LossyPeer(asyncio.DatagramProtocol):
    """Sends a PCMA tone at 20 ms, dropping ``loss`` of the packets and
    holding back ``reorder`` of them by 50 ms (so they arrive after later
    ones); keeps every packet it receives."""

    def __init__(self, hz: float, *, loss: float = 0.05, reorder: float = 0.1, seed: int = 7):
        self.hz = hz
        self.loss = loss
        self.reorder = reorder
        self.rng = random.Random(seed)
        self.received: list[RtpPacket] = []
        self.sent = self.dropped = self.reordered = 0
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0
        self.target: tuple[str, int] | None = None

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if data[1] < 192 or data[1] > 223:  # RTP, not RTCP
            self.received.append(RtpPacket.parse(data))

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self.port = free_port(span=2)
        transport, _ = await loop.create_datagram_endpoint(
            lambda: self, local_addr=("127.0.0.1", self.port)
        )
        self.transport = transport  # type: ignore[assignment]

    async def send_for(self, seconds: float) -> None:
        assert self.transport is not None and self.target is not None
        loop = asyncio.get_running_loop()
        pcm = sine((self.hz,), int(seconds * 1000), -12.0)
        seq, ts, start = 1000, 50_000, loop.time()
        for k in range(len(pcm) // 160):
            payload = G711Codec.PCMA.encode(pcm[k * 160 : (k + 1) * 160])
            data = bytes(RtpPacket(8, seq, ts, 0x1234, payload))
            seq, ts = (seq + 1) & 0xFFFF, ts + 160
            self.sent += 1
            roll = self.rng.random()
            if roll < self.loss:
                self.dropped += 1
            elif roll < self.loss + self.reorder:
                self.reordered += 1
                loop.call_later(0.05, self.transport.sendto, data, self.target)
            else:
                self.transport.sendto(data, self.target)
            await asyncio.sleep(max(0.0, start + (k + 1) * 0.02 - loop.time()))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def audio(self) -> np.ndarray:  # type: ignore[type-arg]
        return np.concatenate([G711Codec.PCMA.decode(p.payload) for p in self.received])


def _engine(tmp_path: Path) -> MediaEngine:
    low = free_port(span=40) // 2 * 2
    return MediaEngine(MediaSettings(port_min=low, port_max=low + 39), tmp_path)


def _service_call(offer: bytes) -> tuple[ServiceCall, list[bytes]]:
    answers: list[bytes] = []
    noop: Callable[[], None] = lambda: None  # noqa: E731
    call = ServiceCall(
        "lossy-1", "1001", "9000", offer, "application/sdp",
        noop, answers.append, lambda status: None, noop,
    )  # fmt: skip
    return call, answers


async def test_echo_playback_survives_loss_and_reordering(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    peer = LossyPeer(700.0)
    await peer.open()
    offer = make_offer("127.0.0.1", peer.port, session_id="1")
    call, answers = _service_call(bytes(offer))
    task = asyncio.create_task(EchoService(engine).handle(call))
    while not answers:
        await asyncio.sleep(0.01)
    _, params = make_answer(answers[0], "127.0.0.1", 1, session_id="2")
    peer.target = (params.remote_address, params.remote_port)
    await peer.send_for(3.0)
    await asyncio.sleep(0.3)
    call.ended.set()
    await task
    await engine.close()
    peer.close()

    assert peer.dropped > 0 and peer.reordered > 0
    got = peer.received
    # Växla's stream stays continuous: consecutive sequence numbers, 160-sample steps
    seqs = [p.sequence_number for p in got]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
    assert all(p.timestamp - q.timestamp == 160 for q, p in itertools.pairwise(got))
    assert len({p.ssrc for p in got}) == 1
    assert 3.0 <= len(got) * 0.02 <= 3.6
    echoed = peer.audio() / 32768.0
    assert tone_snr_db((echoed, 8000), 700.0) > 10


async def test_anchored_recording_survives_loss_and_reordering(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    alice, bob = LossyPeer(500.0, seed=1), LossyPeer(1200.0, seed=2)
    await alice.open()
    await bob.open()
    call = AnchoredCall(engine, "lossy-2", "1001", "1002")
    await call.open()
    to_bob = call.offer_to_b(bytes(make_offer("127.0.0.1", alice.port, session_id="1")))
    answer, _ = make_answer(to_bob, "127.0.0.1", bob.port, session_id="2")
    to_alice = call.answer_to_a(bytes(answer))
    _, a_params = make_answer(to_alice, "127.0.0.1", 1, session_id="3")
    alice.target = ("127.0.0.1", call.a.port)
    bob.target = ("127.0.0.1", call.b.port)
    assert a_params.remote_port == call.a.port  # Alice is told to send to Växla
    rec_id = await call.start_recording("stereo")
    await asyncio.gather(alice.send_for(3.0), bob.send_for(3.0))
    await asyncio.sleep(0.2)
    await call.stop_recording(rec_id)
    quality = call.quality()
    await call.close()
    await engine.close()
    alice.close()
    bob.close()

    # relayed: each got what the other sent and did not lose
    assert len(bob.received) == alice.sent - alice.dropped
    assert len(alice.received) == bob.sent - bob.dropped
    # RFC 3550 A.3 cannot see a loss after the last packet received
    assert alice.dropped - 2 <= quality["a"].packets_lost <= alice.dropped
    assert 2.0 < quality["a"].loss_percent < 12.0
    path = next((tmp_path / "recordings").rglob(f"{rec_id}.wav"))
    with wave.open(str(path), "rb") as w:
        frames = w.getnframes()
        data = np.frombuffer(w.readframes(frames), dtype="<i2").reshape(-1, 2) / 32768.0
    assert 3.0 <= frames / 8000 <= 3.4
    assert tone_snr_db((data[:, 0], 8000), 500.0) > 10
    assert tone_snr_db((data[:, 1], 8000), 1200.0) > 10
    assert tone_snr_db((data[:, 0], 8000), 1200.0) < -20
