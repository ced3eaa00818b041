"""The relay fast path of anchored calls, seen from Python.

``vaxla.media._fastrelay`` (C, ``_fastrelay.c``) runs one thread per media
engine that reads the RTP sockets of anchored calls with epoll, without the
GIL, latches each phone's address, keeps RFC 3550 reception statistics per
SSRC and forwards every packet to the other phone — what
:meth:`RelaySide.datagram_received` does in Python, at a fraction of the
cost. What it does not handle it hands back here, on the event loop:
RTCP multiplexed on the RTP port, and copies of the phones' packets while a
call has taps (recording, listen-in, whisper).

:class:`FastRelay` wraps one C relay: it starts the thread, watches the
relay's eventfd with ``loop.add_reader`` and gives each hand-off to the
:class:`HandoffReceiver` registered for its socket. :func:`load` imports
the extension once; when it is not built (no compiler, no Python headers)
it logs that once and returns None, and anchored calls relay in Python.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol

log = logging.getLogger("vaxla.media")

HANDOFF_RTCP = 1  # RTCP that arrived on the RTP socket (rtcp-mux)
HANDOFF_TAP = 2  # a copy of an RTP packet for the call's taps

Addr = tuple[str, int]


class HandoffReceiver(Protocol):
    def handoff(self, kind: int, data: bytes, addr: Addr, arrival: float) -> None:
        """A datagram from the phone the C relay did not handle alone;
        ``arrival`` is the kernel's receive time on the monotonic clock."""


@dataclass(frozen=True, slots=True)
class SourceInfo:
    ssrc: int
    received: int
    lost: int  # RFC 3550 A.3 cumulative loss (negative with duplicates)
    jitter: float  # A.8, timestamp units
    valid: bool  # out of probation


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """A snapshot of one stream in the C relay (what one phone sent)."""

    packets_in: int
    bytes_in: int
    packets_out: int  # sent towards this phone
    invalid: int
    relatches: int
    ignored: int  # from another address while the latched one was active
    source_changes: int
    send_errors: int
    addr: Addr | None  # latched source address
    sdp_addr: Addr | None
    ssrc: int | None  # current source
    last_seen: float
    sources: tuple[SourceInfo, ...]
    retired_received: int  # totals of sources forgotten (more than 8 SSRCs)
    retired_lost: int

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StreamInfo:
        return cls(**{**d, "sources": tuple(SourceInfo(*s) for s in d["sources"])})

    def totals(self) -> tuple[int, int, float]:
        """(received, lost, jitter of the current source in timestamp
        units) over every source, as :meth:`RelaySide.quality` counts."""
        received = self.retired_received + sum(s.received for s in self.sources)
        lost = self.retired_lost + sum(max(s.lost, 0) for s in self.sources)
        jitter = next((s.jitter for s in self.sources if s.ssrc == self.ssrc), 0.0)
        return received, lost, jitter


@functools.cache
def load() -> ModuleType | None:
    """The C extension, or None (logged once) when it is not built."""
    try:
        from vaxla.media import _fastrelay
    except ImportError as exc:
        log.warning("media.fast_relay: the C relay is not built (%s); relaying in Python", exc)
        return None
    return _fastrelay


class FastRelay:
    """One C relay thread and its hand-offs, delivered on ``loop``."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, module: ModuleType, *, tick: float = 0.001
    ) -> None:
        self.loop = loop
        self._relay = module.Relay(tick=tick)
        self._receivers: dict[int, HandoffReceiver] = {}
        self._relay.start()
        self._fd: int = self._relay.notify_fd
        loop.add_reader(self._fd, self._drain)
        self.closed = False

    @classmethod
    def create(cls, loop: asyncio.AbstractEventLoop, *, tick: float = 0.001) -> FastRelay | None:
        module = load()
        return None if module is None else cls(loop, module, tick=tick)

    # -- streams

    def add(self, sock: socket.socket, receiver: HandoffReceiver, relatch_after: float) -> int:
        """Relay what arrives on ``sock`` (bound, non-blocking UDP); the
        caller keeps the socket and closes it after :meth:`remove`."""
        handle: int = self._relay.add(sock.fileno(), relatch_after)
        self._receivers[handle] = receiver
        return handle

    def remove(self, handle: int) -> None:
        self._relay.remove(handle)
        self._receivers.pop(handle, None)

    def link(self, a: int, b: int) -> None:
        """Packets from ``a``'s phone go out of ``b``'s socket, and back."""
        self._relay.link(a, b)

    def set_target(self, handle: int, addr: Addr | None, relatch: bool) -> None:
        """The phone's SDP address; ``relatch`` forgets the latched one."""
        try:
            self._relay.set_target(handle, addr, relatch)
        except ValueError:  # a host name in SDP: resolve it once
            assert addr is not None
            try:
                info = socket.getaddrinfo(addr[0], addr[1], type=socket.SOCK_DGRAM)
                resolved: Addr | None = (str(info[0][4][0]), addr[1])
            except OSError:
                log.warning("cannot resolve the SDP address %s", addr[0])
                resolved = None
            self._relay.set_target(handle, resolved, relatch)

    def set_flags(
        self,
        handle: int,
        *,
        relaying: bool | None = None,
        tap: bool | None = None,
        rtcp_mux: bool | None = None,
    ) -> None:
        flags = {"relaying": relaying, "tap": tap, "rtcp_mux": rtcp_mux}
        self._relay.set_flags(handle, **{k: v for k, v in flags.items() if v is not None})

    def send(self, handle: int, data: bytes, addr: Addr | None = None) -> bool:
        """Send from the stream's socket to ``addr``, or to its phone."""
        try:
            sent: bool = self._relay.send(handle, data, addr)
        except ValueError:  # not a numeric address
            return False
        return sent

    def info(self, handle: int) -> StreamInfo:
        return StreamInfo.from_dict(self._relay.info(handle))

    def counters(self) -> dict[str, int]:
        counters: dict[str, int] = self._relay.counters()
        return counters

    # -- hand-offs

    def _drain(self) -> None:
        for handle, kind, data, addr, arrival in self._relay.drain():
            receiver = self._receivers.get(handle)
            if receiver is not None:
                receiver.handoff(kind, data, addr, arrival)

    def close(self) -> None:
        """Stop the thread (streams still registered stop being relayed)."""
        if self.closed:
            return
        self.closed = True
        self.loop.remove_reader(self._fd)
        self._relay.close()
        self._receivers.clear()
