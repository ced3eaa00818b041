"""Delayed offer to the media services: SIPp sends an INVITE without SDP.

Växla must put its offer in the 200 OK and take the answer from the ACK
(RFC 3261 §13.2.1, RFC 3264 §5). SIPp does the signalling
(``uac_delayed_offer.xml``: the ACK answers PCMU and names a port of this
test); the test exchanges RTP on that port with a plain UDP socket.
"""

from __future__ import annotations

import asyncio
import re
import struct
from pathlib import Path
from typing import cast

import numpy as np
import pytest

from tests.media.conftest import speechlike_wav
from tests.peers.audio import best_alignment, read_wav
from tests.peers.ports import LOOPBACK, free_port
from tests.peers.sipp import SippProcess, start_scenario
from tests.support.server import VaxlaProcess
from vaxla.media.g711 import G711Codec

pytestmark = [pytest.mark.slow, pytest.mark.peers]

CALL_MS = 4000  # SIPp's pause between ACK and BYE


class RtpSocket(asyncio.DatagramProtocol):
    """The media end of the SIPp caller: keeps every RTP packet and its source."""

    def __init__(self) -> None:
        self.packets: list[tuple[bytes, tuple[str, int]]] = []
        self.first = asyncio.Event()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.packets.append((data, addr))
        self.first.set()

    def payload_types(self) -> set[int]:
        return {data[1] & 0x7F for data, _ in self.packets}

    def audio(self, payload_type: int, codec: G711Codec) -> np.ndarray:  # type: ignore[type-arg]
        """The received audio in sequence order, as floats in [-1, 1]."""
        ordered = sorted(
            (struct.unpack_from("!H", data, 2)[0], data[12:])
            for data, _ in self.packets
            if data[1] & 0x7F == payload_type
        )
        pcm = np.concatenate([codec.decode(payload) for _, payload in ordered])
        return pcm.astype(np.float64) / 32768.0


async def _send_audio(
    sock: RtpSocket,
    to: tuple[str, int],
    samples: np.ndarray,  # type: ignore[type-arg]
) -> None:
    """Send ``samples`` as PCMU, one 20 ms packet at a time, paced by the loop clock."""
    assert sock.transport is not None
    loop = asyncio.get_running_loop()
    pcm = np.clip(np.rint(samples * 32767), -32768, 32767).astype(np.int16)
    start = loop.time()
    for k in range(len(pcm) // 160):
        header = struct.pack("!BBHII", 0x80, (0x80 if k == 0 else 0) | 0, k, 160 * k, 0x5151)
        sock.transport.sendto(header + G711Codec.PCMU.encode(pcm[160 * k : 160 * (k + 1)]), to)
        await asyncio.sleep(max(0.0, start + (k + 1) * 0.02 - loop.time()))


@pytest.mark.parametrize("number", ["9000", "9001", "9002", "9003"])
async def test_service_answers_a_delayed_offer(
    node: VaxlaProcess, tmp_path: Path, number: str
) -> None:
    node.add_extension("2001", "pw-2001")
    if number == "9003":  # listen-in is for supervisors only
        r = node.api(
            "POST",
            "/api/v1/users",
            json={
                "username": "chef",
                "password": "chef-password",
                "roles": ["supervisor"],
                "extension": "2001",
            },
        )
        assert r.status_code == 201, r.text
    loop = asyncio.get_running_loop()
    transport, sock = await loop.create_datagram_endpoint(RtpSocket, local_addr=(LOOPBACK, 0))
    port = transport.get_extra_info("sockname")[1]
    sipp: SippProcess | None = None
    try:
        sipp = await start_scenario(
            "uac_delayed_offer",
            node.sip_addr,
            users=[("2001", "pw-2001")],
            service=number,
            keys={"rtp_port": str(port)},
            duration_ms=CALL_MS,
            timeout=20,
            extra_args=["-cp", str(free_port())],
        )
        # Växla sends to the address in the ACK's answer before hearing anything
        await asyncio.wait_for(sock.first.wait(), 5.0)
        vaxla_addr = sock.packets[0][1]
        sent = None
        if number == "9000":
            sent, _ = read_wav(speechlike_wav(tmp_path / "speech.wav", 3.0, seed=5))
            await _send_audio(sock, vaxla_addr, sent)
        result = await sipp.wait()
    finally:
        transport.close()
        if sipp is not None:
            await sipp.stop()
    assert result.ok, result.describe()

    # the 200 OK carried Växla's offer (PCMA first) on the port the RTP came from
    ok = next(
        m for m in re.split(r"-{10,}", result.messages) if "SIP/2.0 200 OK" in m and "INVITE" in m
    )
    offered = re.search(r"m=audio (\d+) RTP/AVP 8 0 101", ok)
    assert offered is not None, ok
    assert vaxla_addr == (LOOPBACK, int(offered.group(1)))
    # ... and the answer in the ACK was taken: PCMU only, to this test's port
    assert sock.payload_types() == {0}, sock.payload_types()
    assert len(sock.packets) > (CALL_MS - 1000) / 20
    assert {addr for _, addr in sock.packets} == {vaxla_addr}
    if sent is not None:  # the echo returns what was sent
        heard = sock.audio(0, G711Codec.PCMU)
        match = best_alignment((sent[4000:16000], 8000), (heard, 8000))
        assert match.coefficient > 0.8, match
    calls = node.wait_for_calls(1)
    assert (calls[0]["callee"], calls[0]["result"]) == (number, "answered"), calls


@pytest.mark.parametrize("code", ["#21#", "#23#"])
async def test_a_feature_code_answers_a_delayed_offer(node: VaxlaProcess, code: str) -> None:
    """A code dialled on a phone that sends no SDP (#21# clears call
    forwarding, confirmed by beeps; #23# on an extension with no person in
    the directory is refused in speech): Växla offers in the 200 OK, plays to
    the answer in the ACK, and hangs up."""
    node.add_extension("2002", "pw-2002")
    loop = asyncio.get_running_loop()
    transport, sock = await loop.create_datagram_endpoint(RtpSocket, local_addr=(LOOPBACK, 0))
    port = transport.get_extra_info("sockname")[1]
    try:
        result = await (
            await start_scenario(
                "uac_delayed_offer_hungup",
                node.sip_addr,
                users=[("2002", "pw-2002")],
                service=code.replace("#", "%23"),
                keys={"rtp_port": str(port)},
                timeout=20,
                extra_args=["-cp", str(free_port())],
            )
        ).wait()
    finally:
        transport.close()
    assert result.ok, result.describe()  # Växla's BYE came after the ACK
    ok = next(
        m for m in re.split(r"-{10,}", result.messages) if "SIP/2.0 200 OK" in m and "INVITE" in m
    )
    offered = re.search(r"m=audio (\d+) RTP/AVP 8 0 101", ok)
    assert offered is not None, ok
    assert {addr for _, addr in sock.packets} == {(LOOPBACK, int(offered.group(1)))}
    assert sock.payload_types() == {0}, sock.payload_types()
    assert len(sock.packets) > 500 / 20  # the beeps, or the tone and the words
    heard = sock.audio(0, G711Codec.PCMU)
    assert float(np.sqrt(np.mean(heard**2))) > 0.01, "only silence was sent"
    deadline = loop.time() + 5
    while not (calls := [c for c in node.calls() if (c["caller"], c["callee"]) == ("2002", code)]):
        assert loop.time() < deadline, node.calls()
        await asyncio.sleep(0.1)
    assert [(c["result"], c["hangup_by"]) for c in calls] == [("answered", "callee")], calls
