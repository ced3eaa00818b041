"""Thin asyncio transports for SIP: UDP datagrams and TCP streams.

They only move bytes: every datagram or framed stream message goes to
``SipStack.message_received`` with the ``Peer`` it came from, and the stack
hands bytes back through ``send``. TLS and WebSocket (RFC 7118) plug in the
same way: a transport that frames messages and knows its connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable
from typing import cast

from vaxla.sip.errors import SipParseError
from vaxla.sip.message import StreamFramer
from vaxla.sip.transaction import Peer

log = logging.getLogger("vaxla.net")

Receiver = Callable[[bytes, Peer], None]

MAX_STREAM_BUFFER = 256 * 1024


class UdpTransport(asyncio.DatagramProtocol):
    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.transport: asyncio.DatagramTransport | None = None
        self.local: tuple[str, int] = ("", 0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        sock = transport.get_extra_info("sockname")
        self.local = (sock[0], sock[1])

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        host = addr[0]
        assert isinstance(host, str)
        self.receiver(data, Peer("udp", host, addr[1]))

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: the transaction layer times out.
        log.debug("udp error: %s", exc)

    def send(self, data: bytes, peer: Peer) -> None:
        if self.transport is not None:
            self.transport.sendto(data, (peer.host, peer.port))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class _TcpConnection(asyncio.Protocol):
    def __init__(self, owner: TcpTransport, conn_id: int) -> None:
        self.owner = owner
        self.conn_id = conn_id
        self.framer = StreamFramer()
        self.transport: asyncio.Transport | None = None
        self.peer: Peer | None = None
        self.connected = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: cast, do not assert.
        self.transport = cast(asyncio.Transport, transport)
        host, port = transport.get_extra_info("peername")[:2]
        self.peer = Peer("tcp", host, port, self.conn_id)
        self.owner.connections[self.conn_id] = self
        self.owner.by_address[(host, port)] = self.conn_id
        if not self.connected.done():
            self.connected.set_result(None)

    def data_received(self, data: bytes) -> None:
        assert self.peer is not None and self.transport is not None
        try:
            messages = self.framer.feed(data)
        except SipParseError as exc:
            log.info("closing tcp connection from %s:%s: %s", self.peer.host, self.peer.port, exc)
            self.transport.close()
            return
        for message in messages:
            self.owner.receiver(message, self.peer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.connections.pop(self.conn_id, None)
        if self.peer is not None:
            key = (self.peer.host, self.peer.port)
            if self.owner.by_address.get(key) == self.conn_id:
                del self.owner.by_address[key]
            self.owner.on_lost(self.peer)
        if not self.connected.done():
            self.connected.set_exception(exc or ConnectionError("closed"))


class TcpTransport:
    """SIP over TCP: accepts connections and reuses them for requests back."""

    _ids = itertools.count(1)

    def __init__(self, receiver: Receiver, on_lost: Callable[[Peer], None]) -> None:
        self.receiver = receiver
        self.on_lost = on_lost
        self.server: asyncio.Server | None = None
        self.connections: dict[int, _TcpConnection] = {}
        self.by_address: dict[tuple[str, int], int] = {}
        self._pending: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: _TcpConnection(self, next(self._ids)), host, port, reuse_address=True
        )

    def send(self, data: bytes, peer: Peer) -> None:
        conn_id = peer.connection_id
        if conn_id is None or conn_id not in self.connections:
            conn_id = self.by_address.get((peer.host, peer.port))
        conn = self.connections.get(conn_id) if conn_id is not None else None
        if conn is not None and conn.transport is not None:
            conn.transport.write(data)
            return
        task = asyncio.get_running_loop().create_task(self._connect_and_send(data, peer))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _connect_and_send(self, data: bytes, peer: Peer) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, proto = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _TcpConnection(self, next(self._ids)), peer.host, peer.port
                ),
                timeout=5.0,
            )
        except (OSError, TimeoutError) as exc:
            log.info("tcp connect to %s:%s failed: %s", peer.host, peer.port, exc)
            self.on_lost(peer)
            return
        assert proto.transport is not None
        proto.transport.write(data)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for conn in list(self.connections.values()):
            if conn.transport is not None:
                conn.transport.close()
        for task in list(self._pending):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.server is not None:
            await self.server.wait_closed()
