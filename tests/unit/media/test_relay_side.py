"""The Python relay's latching with the address shapes asyncio hands it."""

from __future__ import annotations

import asyncio
import struct

from vaxla.media.anchor import RelaySide


def rtp(seq: int) -> bytes:
    return struct.pack("!BBHII", 0x80, 8, seq, seq * 160, 0x1234) + bytes(160)


async def test_an_ipv6_phone_stays_latched() -> None:
    """IPv6 sources arrive as (host, port, flowinfo, scope): the same phone, every packet."""
    side = RelaySide("a", asyncio.get_running_loop())
    for seq in range(1, 6):
        side.datagram_received(rtp(seq), ("::1", 40000, 0, 0))  # type: ignore[arg-type]
    assert side.addr == ("::1", 40000)
    assert side.packets_in == 5 and side.relatches == 0
    side.datagram_received(rtp(6), ("::1", 40002, 0, 0))  # type: ignore[arg-type]
    assert side.packets_in == 5  # another source while the phone talks: ignored
