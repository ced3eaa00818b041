"""An RTP leg on asyncio UDP sockets: the thin adapter around :mod:`stream`.

One :class:`RtpEndpoint` owns an even RTP port from the node's
:class:`~vaxla.media.ports.PortAllocator` and, unless ``rtcp-mux`` was
negotiated, the RTCP port above it. It

* sends to the address the SDP gave until packets arrive, then *latches*
  to the address they really come from (symmetric RTP, RFC 4961 — phones
  behind NAT); a later change of address is followed only once the
  latched one has been quiet for ``relatch_after`` seconds, so a stray
  sender cannot hijack a running stream;
* hands received datagrams to :class:`~vaxla.media.stream.RtpReceiver`
  (stats, playout buffer, RFC 4733 digits) and sends audio and digits
  through :class:`~vaxla.media.stream.RtpSender`;
* sends RTCP SR/RR every ``rtcp_interval`` seconds (randomised ±50 %,
  RFC 3550 §6.2) and keeps the peer's reports.

Time is the event loop's clock; nothing here sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from typing import cast

import numpy as np
import numpy.typing as npt

from vaxla.media.dtmf import DigitEvent
from vaxla.media.negotiation import StreamParams
from vaxla.media.ports import PortAllocator
from vaxla.media.rtcp import is_rtcp
from vaxla.media.stream import RtcpState, RtpReceiver, RtpSender, StreamStats

Pcm = npt.NDArray[np.int16]
Addr = tuple[str, int]
DigitCallback = Callable[[DigitEvent, float], None]


class Latch:
    """Symmetric RTP: which source address a stream currently comes from."""

    def __init__(self, relatch_after: float = 1.0) -> None:
        self.relatch_after = relatch_after
        self.addr: Addr | None = None
        self.last = 0.0
        self.changes = 0
        self.rejected = 0

    def accept(self, addr: Addr, now: float) -> bool:
        if addr == self.addr:
            self.last = now
            return True
        if self.addr is None or now - self.last >= self.relatch_after:
            if self.addr is not None:
                self.changes += 1
            self.addr = addr
            self.last = now
            return True
        self.rejected += 1
        return False


class _Socket(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, Addr], None]) -> None:
        self.on_datagram = on_datagram
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # uvloop's is no subclass

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self.on_datagram(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable etc.
        pass


async def bind_pair(
    host: str,
    allocator: PortAllocator,
    on_rtp: Callable[[bytes, Addr], None],
    on_rtcp: Callable[[bytes, Addr], None],
    attempts: int = 20,
) -> tuple[int, asyncio.DatagramTransport, asyncio.DatagramTransport]:
    """Bind RTP on an even port and RTCP on the next one."""
    loop = asyncio.get_running_loop()
    last: OSError | None = None
    for _ in range(attempts):
        port = allocator.allocate()
        rtp_t: asyncio.DatagramTransport | None = None
        try:
            rtp_t, _ = await loop.create_datagram_endpoint(
                lambda: _Socket(on_rtp), local_addr=(host, port)
            )
            rtcp_t, _ = await loop.create_datagram_endpoint(
                lambda: _Socket(on_rtcp), local_addr=(host, port + 1)
            )
            return port, rtp_t, rtcp_t
        except OSError as exc:  # held by another program: try the next pair
            last = exc
            if rtp_t is not None:
                rtp_t.close()
            allocator.release(port)
    raise OSError(f"no free RTP port pair after {attempts} attempts: {last}")


class RtpEndpoint:
    """Växla's end of one RTP audio stream (a service leg, a relay tap)."""

    def __init__(
        self,
        host: str,
        allocator: PortAllocator,
        *,
        delay: int = 320,
        rtcp_interval: float = 5.0,
        relatch_after: float = 1.0,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.host = host
        self.allocator = allocator
        self.port = 0
        self.rtcp_interval = rtcp_interval
        self.wall = wall
        self._rng = rng or random.Random()
        self.receiver = RtpReceiver(delay=delay)
        self.sender: RtpSender | None = None
        self.params: StreamParams | None = None
        self.rtp_latch = Latch(relatch_after)
        self.rtcp_latch = Latch(relatch_after)
        self._rtp: asyncio.DatagramTransport | None = None
        self._rtcp: asyncio.DatagramTransport | None = None
        self._rtcp_state: RtcpState | None = None
        self._rtcp_timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._digit_sending_until = 0.0
        self.on_digit: DigitCallback | None = None
        self.on_datagram: Callable[[bytes, Addr], None] | None = None
        self.closed = False

    async def open(self) -> int:
        self._loop = asyncio.get_running_loop()
        self.port, self._rtp, self._rtcp = await bind_pair(
            self.host, self.allocator, self._on_rtp, self._on_rtcp
        )
        return self.port

    def start(self, params: StreamParams) -> None:
        """Begin (or, after a re-INVITE, change) the stream."""
        self.params = params
        self.receiver.configure(params)
        if self.sender is None:
            self.sender = RtpSender(params, rng=self._rng)
        else:
            self.sender.configure(params)
        if self._rtcp_state is None:
            self._rtcp_state = RtcpState(self.receiver, self.sender, self.sender.ssrc)
            self._schedule_rtcp()

    # -- addresses

    @property
    def remote_rtp(self) -> Addr | None:
        if self.rtp_latch.addr is not None:
            return self.rtp_latch.addr
        p = self.params
        return (p.remote_address, p.remote_port) if p is not None and p.remote_port else None

    @property
    def remote_rtcp(self) -> Addr | None:
        p = self.params
        if p is not None and p.rtcp_mux:
            return self.remote_rtp
        if self.rtcp_latch.addr is not None:
            return self.rtcp_latch.addr
        if self.rtp_latch.addr is not None:
            host, port = self.rtp_latch.addr
            return host, port + 1
        return (p.remote_address, p.remote_rtcp_port) if p is not None and p.remote_port else None

    # -- receiving

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _on_rtp(self, data: bytes, addr: Addr) -> None:
        now = self._now()
        if self.params is not None and self.params.rtcp_mux and is_rtcp(data):
            self._on_rtcp(data, addr)
            return
        if not self.rtp_latch.accept(addr, now):
            return
        if self.on_datagram is not None:
            self.on_datagram(data, addr)
        for event in self.receiver.receive(data, now):
            self._digit(event, now)

    def _on_rtcp(self, data: bytes, addr: Addr) -> None:
        now = self._now()
        latch = self.rtp_latch if self.params is not None and self.params.rtcp_mux else None
        if latch is None and not self.rtcp_latch.accept(addr, now):
            return
        if self._rtcp_state is not None:
            self._rtcp_state.receive(data, now)

    def _digit(self, event: DigitEvent, now: float) -> None:
        if self.on_digit is not None:
            self.on_digit(event, now)

    def poll(self) -> None:
        """Run timers of the sans-IO parts (an RFC 4733 digit whose end was lost)."""
        if self._loop is None:
            return
        now = self._now()
        timer = self.receiver.get_timer()
        if timer is not None and now >= timer:
            for event in self.receiver.handle_timer(now):
                self._digit(event, now)

    def read(self, n: int) -> Pcm:
        """The next ``n`` samples of received audio (playout)."""
        return self.receiver.read(n)

    # -- sending

    def send_audio(self, pcm: Pcm) -> None:
        sender, target, transport = self.sender, self.remote_rtp, self._rtp
        if sender is None or transport is None:
            return
        if self._loop is not None and self._now() < self._digit_sending_until:
            sender.skip(len(pcm))
            return
        if target is None or self.params is None or not self.params.sends:
            sender.skip(len(pcm))
            return
        transport.sendto(sender.audio(pcm), target)

    def send_digit(self, digit: str, duration_ms: int = 100) -> bool:
        """Send ``digit`` as RFC 4733 events; False when not negotiated."""
        sender, loop = self.sender, self._loop
        if sender is None or loop is None or self.params is None:
            return False
        if self.params.telephone_event_pt is None:
            return False
        packets = sender.digit(digit, duration_ms)
        for scheduled in packets:
            data = bytes(scheduled.packet)
            loop.call_later(scheduled.offset, self._send_raw, data)
        self._digit_sending_until = self._now() + packets[-1].offset + 0.001
        return True

    def _send_raw(self, data: bytes) -> None:
        target = self.remote_rtp
        if self._rtp is not None and target is not None and not self.closed:
            self._rtp.sendto(data, target)

    def send_datagram(self, data: bytes) -> None:
        """Send an already built RTP packet (relay use)."""
        self._send_raw(data)

    # -- RTCP

    def _schedule_rtcp(self) -> None:
        if self._loop is None or self.closed:
            return
        delay = self.rtcp_interval * (0.5 + self._rng.random())
        self._rtcp_timer = self._loop.call_later(delay, self._send_rtcp)

    def _send_rtcp(self) -> None:
        state, target = self._rtcp_state, self.remote_rtcp
        if state is not None and target is not None and not self.closed:
            data = state.build(self._now(), self.wall())
            transport = (
                self._rtp if self.params is not None and self.params.rtcp_mux else self._rtcp
            )
            if transport is not None:
                transport.sendto(data, target)
        self._schedule_rtcp()

    def stats(self) -> StreamStats:
        if self._rtcp_state is None:
            received, lost, jitter = self.receiver.totals()
            return StreamStats(received, lost, 0.0, jitter)
        return self._rtcp_state.stats()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._rtcp_timer is not None:
            self._rtcp_timer.cancel()
        if self._rtcp_state is not None and self._rtcp is not None:
            with contextlib.suppress(Exception):
                self._send_rtcp_bye()
        for t in (self._rtp, self._rtcp):
            if t is not None:
                t.close()
        if self.port:
            self.allocator.release(self.port)

    def _send_rtcp_bye(self) -> None:
        from vaxla.media.rtcp import RtcpBye, serialize_compound

        state, target = self._rtcp_state, self.remote_rtcp
        if state is None or target is None:
            return
        data = state.build(self._now(), self.wall()) + serialize_compound([RtcpBye((state.ssrc,))])
        transport = self._rtp if self.params is not None and self.params.rtcp_mux else self._rtcp
        if transport is not None:
            transport.sendto(data, target)
