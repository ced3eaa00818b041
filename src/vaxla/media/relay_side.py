"""Växla's sockets facing one phone of an anchored call: the relay path.

:class:`RelaySide` relays in Python on the event loop; :class:`FastRelaySide`
hands its RTP socket to the C relay (:mod:`vaxla.media.fastrelay`) and
keeps only what needs Python. :mod:`vaxla.media.anchor` pairs two of them
per call (docs/dev/fast-relay.md).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Callable
from typing import cast

from vaxla.media.endpoint import Addr
from vaxla.media.fastrelay import HANDOFF_RTCP, FastRelay, StreamInfo
from vaxla.media.rtcp import RtcpReceiverReport, RtcpSenderReport, parse_compound
from vaxla.media.rtp import RtpSourceStats
from vaxla.media.stream import RtpReceiver, StreamStats

log = logging.getLogger("vaxla.media")

_SEQ_TS_SSRC = struct.Struct("!HII")


class _RtcpSocket(asyncio.DatagramProtocol):
    def __init__(self, side: RelaySide) -> None:
        self.side = side

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self.side.rtcp_received(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        pass


class RelaySide(asyncio.DatagramProtocol):
    """Växla's sockets facing one phone of an anchored call."""

    def __init__(self, name: str, loop: asyncio.AbstractEventLoop, relatch_after: float = 1.0):
        self.name = name
        self.loop = loop
        self.relatch_after = relatch_after
        self.port = 0
        self.transport: asyncio.DatagramTransport | None = None
        self.rtcp_transport: asyncio.DatagramTransport | None = None
        self.peer: RelaySide | None = None
        # where to send to this phone: latched source, else its SDP address
        self.sdp_addr: Addr | None = None
        self.sdp_rtcp: Addr | None = None
        self.rtcp_mux = False
        self.addr: Addr | None = None
        self.rtcp_addr: Addr | None = None
        self.target: Addr | None = None
        self.rtcp_target: Addr | None = None
        self.last_seen = 0.0
        self.relatches = 0
        # reception from this phone
        self.ssrc: int | None = None
        self.stats: RtpSourceStats | None = None
        self.sources: dict[int, RtpSourceStats] = {}
        self.source_changes = 0
        self.packets_in = 0
        self.packets_out = 0
        self.invalid = 0
        # relay towards this phone: False while Växla generates its audio
        self.relaying = True
        self.tap: RtpReceiver | None = None
        self.remote_reports: dict[int, tuple[int, int]] = {}  # ssrc -> (fraction, jitter)

    # -- addresses

    def set_sdp_address(self, address: str, port: int, rtcp_port: int, mux: bool) -> None:
        new = (address, port)
        if new != self.sdp_addr:
            self.sdp_addr = new
            self.sdp_rtcp = (address, rtcp_port)
            self.rtcp_mux = mux
            if address in ("0.0.0.0", "::") or port == 0:
                return
            # a different device or port: follow it until its packets arrive
            self.addr = None
            self.rtcp_addr = None
        self._update_targets()

    def _update_targets(self) -> None:
        self.target = self.addr or self.sdp_addr
        if self.rtcp_mux:
            self.rtcp_target = self.target
        elif self.rtcp_addr is not None:
            self.rtcp_target = self.rtcp_addr
        elif self.addr is not None:
            self.rtcp_target = (self.addr[0], self.addr[1] + 1)
        else:
            self.rtcp_target = self.sdp_rtcp

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # uvloop's is no subclass

    def error_received(self, exc: Exception) -> None:
        pass

    # -- the relay path

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        now = self.loop.time()
        if addr[:2] != self.addr:  # IPv6 sources come as (host, port, flow, scope)
            a = (str(addr[0]), int(addr[1]))
            if self.addr is not None and now - self.last_seen < self.relatch_after:
                return  # someone else while the phone is active: ignore
            if self.addr is not None:
                self.relatches += 1
            self.addr = a
            self._update_targets()
        self.last_seen = now
        if len(data) < 12 or data[0] & 0xC0 != 0x80:
            self.invalid += 1
            return
        if self.rtcp_mux and 192 <= data[1] <= 223:
            self.rtcp_received(data, self.addr)
            return
        self.packets_in += 1
        seq, ts, ssrc = _SEQ_TS_SSRC.unpack_from(data, 2)
        if ssrc != self.ssrc:
            self._new_source(ssrc, seq)
        stats = self.stats
        assert stats is not None
        stats.update(seq, ts, now)
        peer = self.peer
        if peer is not None and peer.relaying:
            target = peer.target
            if target is not None and peer.transport is not None:
                peer.transport.sendto(data, target)
                peer.packets_out += 1
        if self.tap is not None:
            self.tap.receive(data, now)

    def _new_source(self, ssrc: int, seq: int) -> None:
        if self.ssrc is not None:
            self.source_changes += 1
        self.ssrc = ssrc
        stats = self.sources.get(ssrc)
        if stats is None:
            stats = self.sources[ssrc] = RtpSourceStats(seq, 8000)
        self.stats = stats

    def rtcp_received(self, data: bytes, addr: Addr) -> None:
        if not self.rtcp_mux:
            self.rtcp_addr = addr
            self._update_targets()
        try:
            for p in parse_compound(data):
                if isinstance(p, RtcpSenderReport | RtcpReceiverReport):
                    for block in p.reports:
                        self.remote_reports[block.ssrc] = (block.fraction_lost, block.jitter)
                if isinstance(p, RtcpSenderReport) and p.ssrc in self.sources:
                    self.sources[p.ssrc].on_sender_report(p.ntp_timestamp, self.loop.time())
        except ValueError:
            return
        peer = self.peer
        if peer is not None and peer.relaying:
            peer.send_rtcp(data)

    def send_rtcp(self, data: bytes) -> None:
        """RTCP from the other phone, on to this one."""
        if self.rtcp_target is None:
            return
        transport = self.transport if self.rtcp_mux else self.rtcp_transport
        if transport is not None:
            transport.sendto(data, self.rtcp_target)

    def send(self, data: bytes) -> None:
        if self.transport is not None and self.target is not None:
            self.transport.sendto(data, self.target)
            self.packets_out += 1

    def quality(self) -> StreamStats:
        received = sum(s.received for s in self.sources.values())
        lost = sum(max(s.lost, 0) for s in self.sources.values())
        jitter = self.stats.jitter if self.stats is not None else 0.0
        return self._stream_stats(received, lost, jitter, self.packets_out, self.source_changes)

    def _stream_stats(
        self, received: int, lost: int, jitter: float, packets_out: int, source_changes: int
    ) -> StreamStats:
        expected = received + lost
        remote = next(reversed(self.remote_reports.values()), None) if self.remote_reports else None
        return StreamStats(
            packets_received=received,
            packets_lost=lost,
            loss_percent=round(100.0 * lost / expected, 2) if expected else 0.0,
            jitter_ms=round(jitter / 8.0, 2),
            packets_sent=packets_out,
            source_changes=source_changes,
            remote_loss_percent=round(remote[0] * 100 / 256, 2) if remote else None,
            remote_jitter_ms=round(remote[1] / 8.0, 2) if remote else None,
        )

    async def open_rtp(self, host: str, port: int) -> None:
        """Bind the RTP socket at ``port`` (OSError when it is taken)."""
        await self.loop.create_datagram_endpoint(_same(self), local_addr=(host, port))

    def close_rtp(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    def close(self) -> None:
        self.close_rtp()
        if self.rtcp_transport is not None:
            self.rtcp_transport.close()


class FastRelaySide(RelaySide):
    """A :class:`RelaySide` whose RTP socket the C relay reads
    (:mod:`vaxla.media.fastrelay`): latching, reception statistics and
    forwarding happen there, so ``addr``, ``target`` and the counters here
    are refreshed from it when needed. RTCP muxed on the RTP port, and
    copies of the phone's packets while taps are attached, come back
    through :meth:`handoff`. The RTCP socket stays on the event loop."""

    def __init__(
        self,
        name: str,
        loop: asyncio.AbstractEventLoop,
        relay: FastRelay,
        relatch_after: float = 1.0,
    ) -> None:
        self.relay = relay
        self.handle: int | None = None
        self.sock: socket.socket | None = None
        self._relaying = True
        self._tap: RtpReceiver | None = None
        self._final: StreamInfo | None = None  # the C figures when the stream closed
        super().__init__(name, loop, relatch_after)

    # what the C relay must know at once: whether to relay, to tap, to hand RTCP back

    @property
    def relaying(self) -> bool:
        return self._relaying

    @relaying.setter
    def relaying(self, value: bool) -> None:
        self._relaying = value
        if self.handle is not None:
            self.relay.set_flags(self.handle, relaying=value)

    @property
    def tap(self) -> RtpReceiver | None:
        return self._tap

    @tap.setter
    def tap(self, value: RtpReceiver | None) -> None:
        self._tap = value
        if self.handle is not None:
            self.relay.set_flags(self.handle, tap=value is not None)

    async def open_rtp(self, host: str, port: int) -> None:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            sock.bind(address)
            self.handle = self.relay.add(sock, self, self.relatch_after)
        except OSError:
            sock.close()
            raise
        self.sock = sock
        self.relay.set_flags(
            self.handle, relaying=self._relaying, tap=self._tap is not None, rtcp_mux=self.rtcp_mux
        )
        if self.sdp_addr is not None:
            self.relay.set_target(self.handle, self.sdp_addr, relatch=self.addr is None)

    def close_rtp(self) -> None:
        if self.handle is not None:
            self._final = self.relay.info(self.handle)
            self.relay.remove(self.handle)
            self.handle = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    # -- addresses

    def set_sdp_address(self, address: str, port: int, rtcp_port: int, mux: bool) -> None:
        moved = (address, port) != self.sdp_addr and address not in ("0.0.0.0", "::") and port
        if moved and self.handle is not None:
            self.relay.set_target(self.handle, (address, port), relatch=True)
        super().set_sdp_address(address, port, rtcp_port, mux)
        if self.handle is not None:
            self.relay.set_flags(self.handle, rtcp_mux=self.rtcp_mux)

    def _update_targets(self) -> None:
        self._refresh_addr()
        super()._update_targets()
        if self.handle is not None and self.sdp_addr is not None:
            self.relay.set_target(self.handle, self.sdp_addr, relatch=False)

    def _refresh_addr(self) -> None:
        if self.handle is not None:
            self.addr = self.relay.info(self.handle).addr

    # -- what the C relay hands back

    def handoff(self, kind: int, data: bytes, addr: Addr, arrival: float) -> None:
        if kind == HANDOFF_RTCP:
            self.rtcp_received(data, addr)
        elif self._tap is not None:
            self._tap.receive(data, arrival)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        raise AssertionError("the C relay reads this side's RTP socket")

    # -- sending

    def send_rtcp(self, data: bytes) -> None:
        self._refresh_addr()
        RelaySide._update_targets(self)
        if self.rtcp_target is None:
            return
        if not self.rtcp_mux:
            if self.rtcp_transport is not None:
                self.rtcp_transport.sendto(data, self.rtcp_target)
        elif self.handle is not None:
            self.relay.send(self.handle, data, self.rtcp_target)

    def send(self, data: bytes) -> None:
        if self.handle is not None:
            self.relay.send(self.handle, data)

    def quality(self) -> StreamStats:
        info = self.relay.info(self.handle) if self.handle is not None else self._final
        if info is None:
            return super().quality()
        received, lost, jitter = info.totals()
        return self._stream_stats(received, lost, jitter, info.packets_out, info.source_changes)


def _same(side: RelaySide) -> Callable[[], RelaySide]:
    return lambda: side


def rtcp_protocol_for(side: RelaySide) -> Callable[[], _RtcpSocket]:
    return lambda: _RtcpSocket(side)
