"""The asyncio adapter around the sans-IO SIP core.

Receive bytes -> parse -> feed the transaction layer -> hand its events to
the application -> transmit what the layer queued -> re-arm the one timer.
Nothing here decides SIP behaviour beyond the RFC 3261 §18 transport duties
(stateless error answers to broken requests, RFC 3581 ``rport``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from prometheus_client import Counter

from vaxla.metrics import Metrics
from vaxla.net.transports import TcpTransport, UdpTransport
from vaxla.sip.errors import SipParseError
from vaxla.sip.events import Event
from vaxla.sip.message import (
    Request,
    Response,
    error_response,
    make_response,
    new_tag,
    parse_message,
    validate_request,
)
from vaxla.sip.transaction import Peer, TimerConfig, TransactionLayer

log = logging.getLogger("vaxla.sip")


class Application(Protocol):
    def handle_event(self, event: Event) -> None: ...


class SipStack:
    def __init__(
        self,
        metrics: Metrics,
        timers: TimerConfig | None = None,
    ) -> None:
        self.layer = TransactionLayer(timers or TimerConfig())
        self.metrics = metrics
        self.app: Application | None = None
        self.udp: UdpTransport | None = None
        self.tcp: TcpTransport | None = None
        self.host = "127.0.0.1"
        self.port = 5060
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.unrouteable: Callable[[Peer], bool] = _unrouteable
        self._in: dict[tuple[str, str], Counter] = {}
        self._out: dict[tuple[str, str], Counter] = {}

    # -- metrics (labelled children cached: labels() is costly per message) ---

    def _count_in(self, method: str, status: str) -> None:
        key = (method, status)
        child = self._in.get(key)
        if child is None:
            child = self._in[key] = self.metrics.messages_in.labels(method, status)
        child.inc()

    def _count_out(self, method: str, status: str) -> None:
        key = (method, status)
        child = self._out.get(key)
        if child is None:
            child = self._out[key] = self.metrics.messages_out.labels(method, status)
        child.inc()

    # -- lifecycle -----------------------------------------------------------

    async def start(self, host: str, port: int, advertise: str | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        udp = UdpTransport(self.message_received)
        await self._loop.create_datagram_endpoint(lambda: udp, local_addr=(host, port))
        self.udp = udp
        bound_port = self.udp.local[1]
        self.tcp = TcpTransport(self.message_received, self._connection_lost)
        await self.tcp.start(host, bound_port)
        self.host = advertise or (host if host not in ("0.0.0.0", "::") else "127.0.0.1")
        self.port = bound_port

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.udp is not None:
            self.udp.close()
        if self.tcp is not None:
            await self.tcp.close()

    def now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    # -- receiving -----------------------------------------------------------

    def message_received(self, data: bytes, peer: Peer) -> None:
        if len(data) <= 4 and not data.strip():
            return  # keep-alive (RFC 5626 CRLF ping)
        try:
            message = parse_message(data)
        except SipParseError as exc:
            self.metrics.parse_errors.inc()
            log.info(
                "parse error",
                extra={
                    "peer": f"{peer.host}:{peer.port}",
                    "reason": exc.message,
                    "status": exc.status_hint,
                },
            )
            # Answer a broken request where its Via survived (sent back to where
            # it came from); broken responses and hopeless requests are dropped.
            answer = error_response(data, exc, new_tag())
            if answer is not None and not self.unrouteable(peer):
                self._send_bytes(answer, peer)
            return
        if isinstance(message, Request):
            self._count_in(message.method, "")
            if message.method != "ACK":
                try:
                    validate_request(message)
                except SipParseError as exc:
                    self.metrics.parse_errors.inc()
                    self._reject(message, peer, exc)
                    return
            self._fix_via(message, peer)
        else:
            method = message.cseq.method
            self.metrics.messages_in.labels(method, str(message.status)).inc()
            if not self._response_is_ours(message):
                return
            if message.status >= 200 and log.isEnabledFor(logging.INFO):
                self._log_outcome("client", method, message.status, message.call_id, peer)
        events = self.layer.receive(message, peer, self.now())
        self._dispatch(events)
        self.flush()

    def _response_is_ours(self, response: Response) -> bool:
        # RFC 3261 §18.1.2: the top Via must be ours, else discard.
        top = response.top_via
        return top.host == self.host and (top.port or 5060) == self.port

    def _fix_via(self, request: Request, peer: Peer) -> None:
        """RFC 3261 §18.2.1 received= and RFC 3581 rport=: answers go where the
        request really came from (phones behind NAT)."""
        via = request.top_via
        params = via.params
        changed = False
        if via.host != peer.host:
            params["received"] = peer.host
            changed = True
        if "rport" in params:
            params["rport"] = str(peer.port)
            params.setdefault("received", peer.host)
            changed = True
        if changed:
            # The cached top Via is the object just changed: no re-parse needed.
            request.headers.replace_first("Via", str(via))

    def _reject(self, request: Request, peer: Peer, exc: SipParseError) -> None:
        status = exc.status_hint
        if status is None:
            return
        self._fix_via(request, peer)
        response = make_response(request, status, to_tag=new_tag(), headers=exc.extra_headers)
        self.send_stateless(response, peer)
        log.info(
            "rejected",
            extra={
                "call_id": request.call_id,
                "method": request.method,
                "status": status,
                "reason": exc.message,
                "peer": f"{peer.host}:{peer.port}",
            },
        )

    def _connection_lost(self, peer: Peer) -> None:
        if self._loop is None or self._loop.is_closed():
            return
        self._dispatch(self.layer.transport_error(peer, self.now()))
        self.flush()

    # -- sending -------------------------------------------------------------

    def send_request(self, request: Request, peer: Peer) -> str:
        txn_id = self.layer.send_request(request, peer, self.now())
        self._count_out(request.method, "")
        self.flush()
        return txn_id

    def send_response(self, txn_id: str, response: Response) -> None:
        self.layer.send_response(txn_id, response, self.now())
        method = response.cseq.method
        self.metrics.messages_out.labels(method, str(response.status)).inc()
        self.flush()
        if response.status >= 200 and log.isEnabledFor(logging.INFO):
            self._log_outcome("server", method, response.status, response.call_id, None)

    @staticmethod
    def _log_outcome(side: str, method: str, status: int, call_id: str, peer: Peer | None) -> None:
        """One line per transaction outcome (server: what we answered; client:
        what we were answered)."""
        extra: dict[str, object] = {
            "side": side,
            "method": method,
            "status": status,
            "call_id": call_id,
        }
        if peer is not None:
            extra["peer"] = f"{peer.host}:{peer.port}/{peer.transport}"
        log.info("transaction", extra=extra)

    def send_stateless(self, message: Request | Response, peer: Peer) -> None:
        self.layer.send_stateless(message, peer)
        if isinstance(message, Request):
            self._count_out(message.method, "")
        else:
            self.metrics.messages_out.labels(message.cseq.method, str(message.status)).inc()
        self.flush()

    def flush(self) -> None:
        for data, peer in self.layer.datagrams_to_send():
            if not self.unrouteable(peer):
                self._send_bytes(data, peer)
        self._arm_timer()

    def _send_bytes(self, data: bytes, peer: Peer) -> None:
        if peer.transport == "udp":
            if self.udp is not None:
                self.udp.send(data, peer)
        elif self.tcp is not None:
            self.tcp.send(data, peer)

    # -- timers and events ---------------------------------------------------

    def _arm_timer(self) -> None:
        when = self.layer.get_timer()
        if when == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = when
        if when is not None and self._loop is not None:
            self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        events = self.layer.handle_timer(self.now())
        self._dispatch(events)
        self.flush()

    def _dispatch(self, events: list[Event]) -> None:
        if self.app is None:
            return
        for event in events:
            try:
                self.app.handle_event(event)
            except Exception:
                log.exception("application failed on %s", type(event).__name__)


def _unrouteable(peer: Peer) -> bool:
    """Never send to broadcast or wildcard addresses (RFC 4475 bcast)."""
    host = peer.host
    return host in ("0.0.0.0", "255.255.255.255", "::") or peer.port == 0
