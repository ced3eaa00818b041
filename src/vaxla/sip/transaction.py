"""RFC 3261 §17 transaction layer (with RFC 6026), sans-IO.

:class:`TransactionLayer` takes parsed messages, TU responses and the time, and
hands back events, bytes to send and the next timer deadline, aioquic style::

    events = layer.receive(message, peer, now)
    for data, peer in layer.datagrams_to_send(): transport.send(data, peer)
    deadline = layer.get_timer()          # call handle_timer(now) when it passes

What each transaction does in each state is in :mod:`vaxla.sip.transaction_table`;
this module matches messages to transactions, runs timers and carries out the
table's actions.

Transaction ids: a client transaction's id is the branch of the request's top
Via (``branch + "|CANCEL"`` for a CANCEL, which shares its INVITE's branch). A
server transaction's id is ``"branch|sent-by|method"`` (ACK matches INVITE);
for requests whose branch lacks the ``z9hG4bK`` cookie (RFC 2543 peers) it is
derived from Request-URI, tags, Call-ID, CSeq and the top Via (§17.2.3).

Timers live in one heap of ``(deadline, token, transaction, timer)``; cancelling
a timer only forgets its token, and stale entries are skipped when they reach
the top (or swept when they outnumber the live ones).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable
from dataclasses import dataclass

from vaxla.sip.errors import LocalProtocolError, SipError, SipParseError
from vaxla.sip.events import (
    AckReceived,
    AckTimeout,
    CancelReceived,
    Event,
    Peer,
    RequestReceived,
    ResponseReceived,
    TransactionTerminated,
    TransactionTimeout,
)
from vaxla.sip.headers import Headers
from vaxla.sip.message import Request, Response, make_response, new_tag
from vaxla.sip.transaction_table import (
    INITIAL,
    STATE_TIMERS,
    TABLES,
    TERMINATED,
    TIMER_INPUT,
    Action,
    InviteClientState,
    InviteServerState,
    Kind,
    NonInviteClientState,
    State,
    Timer,
    Transition,
)
from vaxla.sip.transaction_table import Input as In

__all__ = ["MAGIC_COOKIE", "Peer", "TimerConfig", "TransactionLayer"]

MAGIC_COOKIE = "z9hG4bK"
_CANCEL_SUFFIX = "|CANCEL"


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """RFC 3261 timer values in seconds (Table 4).

    ``d`` is Timer D on unreliable transports (0 on reliable ones). ``c`` guards an
    INVITE transaction that never gets a final response: on the client side in
    Proceeding (§16.6 Timer C; restarted by every provisional response but 100,
    cut to 64*T1 once the TU sends a CANCEL, §9.1), on the server side while the
    TU has not answered (restarted by every provisional but 100 the TU sends,
    §13.3.1.1). A non-INVITE server transaction the TU leaves unanswered ends
    after 64*T1. ``trying`` is how long the server waits for the TU before
    sending 100 Trying itself (§17.2.1).
    """

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    d: float = 32.0
    c: float = 180.0
    trying: float = 0.2

    @property
    def b(self) -> float:
        return 64 * self.t1

    @property
    def f(self) -> float:
        return 64 * self.t1

    @property
    def h(self) -> float:
        return 64 * self.t1

    @property
    def j(self) -> float:
        return 64 * self.t1


def _durations(cfg: TimerConfig, reliable: bool) -> dict[Timer, float | None]:
    """Initial value of each timer; None: the timer does not run on this transport."""
    t64 = 64 * cfg.t1
    return {
        Timer.A: None if reliable else cfg.t1,
        Timer.B: t64,
        Timer.C: cfg.c,
        Timer.D: 0.0 if reliable else cfg.d,
        Timer.E: None if reliable else cfg.t1,
        Timer.F: t64,
        Timer.K: 0.0 if reliable else cfg.t4,
        Timer.G: None if reliable else cfg.t1,
        Timer.H: t64,
        Timer.I: 0.0 if reliable else cfg.t4,
        Timer.J: 0.0 if reliable else t64,
        Timer.L: t64,
        Timer.M: t64,
        Timer.TRYING: cfg.trying,
    }


class _Transaction:
    """One transaction's state. Plain slots: thousands of these are alive at once."""

    __slots__ = (
        "ack_bytes",
        "cancelled",
        "data",
        "id",
        "interval",
        "keys",
        "kind",
        "last_response",
        "last_response_bytes",
        "method",
        "peer",
        "reliable",
        "request",
        "rfc2543",
        "state",
        "table",
        "timers",
    )

    def __init__(self, txn_id: str, kind: Kind, request: Request, peer: Peer) -> None:
        self.id = txn_id
        self.kind = kind
        self.table: dict[tuple[State, In], Transition] = TABLES[kind]
        self.state: State = INITIAL[kind]
        self.request = request
        self.method = request.method
        self.peer = peer
        self.reliable = peer.reliable
        self.data = b""  # client: the request as sent
        self.ack_bytes = b""  # INVITE client: ACK for the 3xx-6xx
        self.last_response: Response | None = None  # server
        self.last_response_bytes = b""
        self.interval = 0.0  # current retransmission interval (A, E or G)
        self.timers: dict[Timer, int] = {}  # running timer -> token of its heap entry
        self.keys: list[Hashable] = []  # server: matching keys in the index
        self.cancelled = False  # INVITE client: the TU sent a CANCEL
        self.rfc2543 = False  # server: matched by RFC 2543 rules


_HeapEntry = tuple[float, int, _Transaction, Timer]


def _same_peer(a: Peer, b: Peer) -> bool:
    return (
        a.host == b.host
        and a.port == b.port
        and a.transport.lower() == b.transport.lower()
        and (
            a.connection_id is None or b.connection_id is None or a.connection_id == b.connection_id
        )
    )


class TransactionLayer:
    """All client and server transactions of one SIP endpoint."""

    def __init__(self, timers: TimerConfig = TimerConfig()) -> None:
        self._cfg = timers
        self._durations = {False: _durations(timers, False), True: _durations(timers, True)}
        self._clients: dict[str, _Transaction] = {}
        self._servers: dict[str, _Transaction] = {}
        self._index: dict[Hashable, _Transaction] = {}  # server matching keys
        self._accepted: dict[tuple[str, int], _Transaction] = {}  # (Call-ID, CSeq) -> Accepted
        self._heap: list[_HeapEntry] = []
        self._stale = 0  # heap entries whose timer was cancelled or re-armed
        self._tokens = itertools.count()
        self._out: list[tuple[bytes, Peer]] = []

    def __len__(self) -> int:
        """Number of live transactions."""
        return len(self._clients) + len(self._servers)

    # ------------------------------------------------------------------ API

    def receive(self, message: Request | Response, peer: Peer, now: float) -> list[Event]:
        """Feed one parsed message from the network."""
        try:
            if isinstance(message, Response):
                return self._receive_response(message, peer, now)
            return self._receive_request(message, peer, now)
        except SipParseError:
            # parse_message() checked what matching needs; anything still broken
            # (e.g. a hand-built message) cannot be matched or answered: drop it
            return []

    def send_request(self, request: Request, peer: Peer, now: float) -> str:
        """Start a client transaction; the request is sent (and retransmitted) by the layer."""
        method = request.method
        if method == "ACK":
            raise LocalProtocolError("ACK is not a transaction: use send_stateless()")
        try:
            via = request.top_via
            cseq = request.cseq
        except SipError as exc:
            raise LocalProtocolError(f"request cannot start a transaction: {exc}") from exc
        branch = via.branch
        if not branch:
            raise LocalProtocolError("the top Via of the request needs a branch parameter")
        if cseq.method != method:
            raise LocalProtocolError(f"CSeq method {cseq.method} differs from {method}")
        txn_id = branch + _CANCEL_SUFFIX if method == "CANCEL" else branch
        if txn_id in self._clients:
            raise LocalProtocolError(f"a client transaction with branch {branch} exists")
        kind = Kind.INVITE_CLIENT if method == "INVITE" else Kind.NON_INVITE_CLIENT
        txn = _Transaction(txn_id, kind, request, peer)
        txn.data = bytes(request)
        self._clients[txn_id] = txn
        self._out.append((txn.data, peer))
        self._start_timers(txn, now)
        if method == "CANCEL":
            invite = self._clients.get(branch)
            if invite is not None and invite.kind is Kind.INVITE_CLIENT:
                invite.cancelled = True
                if invite.state is InviteClientState.PROCEEDING:
                    self._arm(invite, Timer.C, now + min(64 * self._cfg.t1, self._cfg.c))
        return txn_id

    def send_response(self, txn_id: str, response: Response, now: float) -> None:
        """Send the TU's response on a server transaction."""
        txn = self._servers.get(txn_id)
        if txn is None:
            raise LocalProtocolError(f"no server transaction {txn_id!r}")
        status = response.status
        if status < 200:
            if status < 100:
                raise LocalProtocolError(f"status {status} is not a SIP response code")
            inp = In.SEND_1XX
        elif status < 300:
            inp = In.SEND_2XX
        elif status < 700:
            inp = In.SEND_FAILURE
        else:
            raise LocalProtocolError(f"status {status} is not a SIP response code")
        events: list[Event] = []
        self._step(txn, inp, now, events, response, txn.peer)

    def send_stateless(self, message: Request | Response, peer: Peer) -> None:
        """Send a message outside any transaction (e.g. the ACK for a 2xx)."""
        self._out.append((bytes(message), peer))

    def datagrams_to_send(self) -> list[tuple[bytes, Peer]]:
        """Drain everything that must go out now, oldest first."""
        out = self._out
        self._out = []
        return out

    def get_timer(self) -> float | None:
        """The earliest deadline at which handle_timer() must be called, or None."""
        heap = self._heap
        while heap:
            _, token, txn, timer = heap[0]
            if txn.timers.get(timer) == token:
                return heap[0][0]
            heapq.heappop(heap)
            self._stale -= 1
        return None

    def handle_timer(self, now: float) -> list[Event]:
        """Run every timer whose deadline is at or before ``now``."""
        events: list[Event] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, token, txn, timer = heapq.heappop(heap)
            if txn.timers.get(timer) != token:
                self._stale -= 1
                continue
            del txn.timers[timer]
            self._step(txn, TIMER_INPUT[timer], now, events, None, None)
        return events

    def transport_error(self, peer: Peer, now: float) -> list[Event]:
        """The transport cannot reach ``peer`` (connection lost, ICMP unreachable):
        fail every transaction that sends to it."""
        events: list[Event] = []
        hit = [t for t in self._clients.values() if _same_peer(t.peer, peer)]
        hit += [t for t in self._servers.values() if _same_peer(t.peer, peer)]
        for txn in hit:
            self._step(txn, In.TRANSPORT_ERROR, now, events, None, None)
        return events

    # ------------------------------------------------------------ matching

    def _receive_response(self, response: Response, peer: Peer, now: float) -> list[Event]:
        branch = response.top_via.branch
        if not branch:
            return []
        method = response.cseq.method
        txn = self._clients.get(branch + _CANCEL_SUFFIX if method == "CANCEL" else branch)
        status = response.status
        if txn is None or txn.method != method:  # §17.1.3: branch and CSeq method
            if 200 <= status < 300 and method == "INVITE":
                return [ResponseReceived(None, response, peer)]
            return []  # stray response: nobody asked for it
        if status < 200:
            inp = In.RECV_1XX
        elif status < 300:
            inp = In.RECV_2XX
        else:
            inp = In.RECV_FAILURE
        events: list[Event] = []
        self._step(txn, inp, now, events, response, peer)
        return events

    def _receive_request(self, request: Request, peer: Peer, now: float) -> list[Event]:
        method = request.method
        via = request.top_via
        branch = via.branch
        match_method = "INVITE" if method == "ACK" else method
        key: Hashable
        rfc2543 = branch is None or not branch.startswith(MAGIC_COOKIE)
        if not rfc2543:
            prefix = f"{branch}|{via.host}:{via.port}|" if via.port else f"{branch}|{via.host}|"
            if not peer.reliable:
                # The source is part of the key too: a request from elsewhere that
                # reuses a branch (RFC 4475 messages do) is not a retransmission,
                # and cannot hijack another client's transaction.
                prefix += f"{peer.host}:{peer.port}|"
            key = txn_id = prefix + match_method
        else:
            parts = _rfc2543_key(request, match_method, request.to.tag)
            key = parts
            txn_id = "rfc2543|" + "|".join(map(str, parts))
        events: list[Event] = []
        txn = self._index.get(key)
        if method == "ACK":
            if txn is None or txn.kind is not Kind.INVITE_SERVER:
                # an ACK for a 2xx has its own branch: match it by Call-ID and CSeq
                txn = self._accepted.get((request.call_id, request.cseq.seq))
                if txn is None:
                    return [AckReceived(request, peer)]
            self._step(txn, In.RECV_ACK, now, events, request, peer)
            return events
        if txn is not None:  # a retransmission: absorbed
            self._step(txn, In.RECV_REQUEST, now, events, request, peer)
            return events
        kind = Kind.INVITE_SERVER if method == "INVITE" else Kind.NON_INVITE_SERVER
        txn = _Transaction(txn_id, kind, request, peer)
        txn.rfc2543 = rfc2543
        txn.keys.append(key)
        self._index[key] = txn
        self._servers[txn_id] = txn
        self._start_timers(txn, now)
        if method != "CANCEL":
            events.append(RequestReceived(txn_id, request, peer))
            return events
        # §9.2: the CANCEL is answered here; the TU decides what happens to the INVITE.
        # It matches the INVITE as if its method were INVITE.
        if rfc2543:
            invite = self._index.get(_rfc2543_key(request, "INVITE", request.to.tag))
        else:
            invite = self._index.get(prefix + "INVITE")
        if invite is not None and invite.kind is not Kind.INVITE_SERVER:
            invite = None
        if invite is None:
            status, to_tag = 481, new_tag()
        else:
            last = invite.last_response
            tag = last.to.tag if last is not None and last.status > 100 else None
            status, to_tag = 200, tag or new_tag()
        answer = make_response(request, status, to_tag=to_tag)
        self._step(
            txn, In.SEND_2XX if status == 200 else In.SEND_FAILURE, now, events, answer, peer
        )
        events.append(
            CancelReceived(txn_id, request, peer, invite.id if invite is not None else None)
        )
        return events

    # ------------------------------------------------------ state machine

    def _step(
        self,
        txn: _Transaction,
        inp: In,
        now: float,
        events: list[Event],
        message: Request | Response | None,
        peer: Peer | None,
    ) -> None:
        entry = txn.table.get((txn.state, inp))
        if entry is None:
            if inp is In.SEND_1XX or inp is In.SEND_2XX or inp is In.SEND_FAILURE:
                raise LocalProtocolError(
                    f"cannot send a {inp.name[5:]} response in state {txn.state.name}"
                )
            return  # received message absorbed, or a timer of no consequence
        actions, new_state = entry
        for action in actions:
            self._do(action, txn, now, events, message, peer)
        if new_state is not txn.state:
            self._enter(txn, new_state, now, events)

    def _do(
        self,
        action: Action,
        txn: _Transaction,
        now: float,
        events: list[Event],
        message: Request | Response | None,
        peer: Peer | None,
    ) -> None:
        out = self._out
        if action is Action.PASS_RESPONSE:
            assert isinstance(message, Response) and peer is not None
            events.append(ResponseReceived(txn.id, message, peer))
        elif action is Action.SEND_RESPONSE:
            assert isinstance(message, Response)
            txn.last_response = message
            txn.last_response_bytes = data = bytes(message)
            out.append((data, txn.peer))
        elif action is Action.RESEND_RESPONSE:
            if txn.last_response_bytes:
                out.append((txn.last_response_bytes, txn.peer))
        elif action is Action.RETRANSMIT_REQUEST:
            out.append((txn.data, txn.peer))
            t2 = self._cfg.t2
            if txn.kind is Kind.INVITE_CLIENT:
                txn.interval *= 2  # §17.1.1.2: Timer A doubles without a cap
                self._arm(txn, Timer.A, now + txn.interval)
            else:
                # §17.1.2.2: doubles up to T2 in Trying, T2 flat in Proceeding
                if txn.state is NonInviteClientState.PROCEEDING:
                    txn.interval = t2
                else:
                    txn.interval = min(2 * txn.interval, t2)
                self._arm(txn, Timer.E, now + txn.interval)
        elif action is Action.RETRANSMIT_RESPONSE:
            out.append((txn.last_response_bytes, txn.peer))
            txn.interval = min(2 * txn.interval, self._cfg.t2)
            self._arm(txn, Timer.G, now + txn.interval)
        elif action is Action.SEND_ACK:
            assert isinstance(message, Response)
            txn.ack_bytes = bytes(_ack_for(txn.request, message))
            out.append((txn.ack_bytes, txn.peer))
        elif action is Action.RESEND_ACK:
            out.append((txn.ack_bytes, txn.peer))
        elif action is Action.RESTART_C:
            assert isinstance(message, Response)
            if message.status > 100 and not txn.cancelled:
                self._arm(txn, Timer.C, now + self._cfg.c)
        elif action is Action.EMIT_TIMEOUT:
            events.append(TransactionTimeout(txn.id))
        elif action is Action.SEND_TRYING:
            trying = make_response(txn.request, 100)
            txn.last_response = trying
            txn.last_response_bytes = data = bytes(trying)
            out.append((data, txn.peer))
        elif action is Action.CANCEL_TRYING:
            self._cancel(txn, Timer.TRYING)
        elif action is Action.EMIT_ACK_RECEIVED:
            assert isinstance(message, Request) and peer is not None
            events.append(AckReceived(message, peer))
        elif action is Action.EMIT_ACK_TIMEOUT:
            events.append(AckTimeout(txn.id))
        else:  # pragma: no cover - every Action is handled above
            raise AssertionError(action)

    def _enter(self, txn: _Transaction, state: State, now: float, events: list[Event]) -> None:
        keep = STATE_TIMERS[state]
        timers = txn.timers
        for timer in [t for t in timers if t not in keep]:
            del timers[timer]
            self._stale += 1
        txn.state = state
        if state in TERMINATED:
            self._forget(txn)
            events.append(TransactionTerminated(txn.id))
            return
        if state is InviteServerState.ACCEPTED:
            request = txn.request
            self._accepted[(request.call_id, request.cseq.seq)] = txn
        if txn.rfc2543 and state in (InviteServerState.COMPLETED, InviteServerState.ACCEPTED):
            # the ACK carries the To tag of our final response (§17.2.3)
            last = txn.last_response
            assert last is not None
            alias = _rfc2543_key(txn.request, "INVITE", last.to.tag)
            if alias not in self._index:
                self._index[alias] = txn
                txn.keys.append(alias)
        self._start_timers(txn, now)

    def _forget(self, txn: _Transaction) -> None:
        if txn.kind is Kind.INVITE_CLIENT or txn.kind is Kind.NON_INVITE_CLIENT:
            del self._clients[txn.id]
            return
        del self._servers[txn.id]
        index = self._index
        for key in txn.keys:
            if index.get(key) is txn:
                del index[key]
        if txn.kind is Kind.INVITE_SERVER and txn.last_response is not None:
            request = txn.request
            accepted_key = (request.call_id, request.cseq.seq)
            if self._accepted.get(accepted_key) is txn:
                del self._accepted[accepted_key]

    # -------------------------------------------------------------- timers

    def _start_timers(self, txn: _Transaction, now: float) -> None:
        durations = self._durations[txn.reliable]
        for timer in STATE_TIMERS[txn.state]:
            if timer in txn.timers:
                continue  # kept running from the previous state
            duration = durations[timer]
            if duration is None:
                continue  # retransmission timer on a reliable transport
            if timer is Timer.C and (txn.cancelled or txn.kind is Kind.NON_INVITE_SERVER):
                duration = min(duration, 64 * self._cfg.t1)
            if timer is Timer.A or timer is Timer.E or timer is Timer.G:
                txn.interval = duration
            self._arm(txn, timer, now + duration)

    def _arm(self, txn: _Transaction, timer: Timer, deadline: float) -> None:
        token = next(self._tokens)
        if timer in txn.timers:
            self._stale += 1
        txn.timers[timer] = token
        heap = self._heap
        heapq.heappush(heap, (deadline, token, txn, timer))
        if self._stale > 4096 and 2 * self._stale > len(heap):
            self._heap = [e for e in heap if e[2].timers.get(e[3]) == e[1]]
            heapq.heapify(self._heap)
            self._stale = 0

    def _cancel(self, txn: _Transaction, timer: Timer) -> None:
        if txn.timers.pop(timer, None) is not None:
            self._stale += 1


def _rfc2543_key(request: Request, method: str, to_tag: str | None) -> tuple[object, ...]:
    """§17.2.3 matching for requests without the magic cookie: Request-URI, To tag,
    From tag, Call-ID, CSeq and top Via (the method is INVITE for an ACK, whose To
    tag is then the one of our final response)."""
    return (
        method,
        str(request.uri),
        to_tag,
        request.from_.tag,
        request.call_id,
        request.cseq.seq,
        str(request.top_via),
    )


def _ack_for(invite: Request, response: Response) -> Request:
    """§17.1.1.3: the ACK for a 3xx-6xx, sent inside the INVITE client transaction."""
    headers = Headers()
    headers.add("Via", invite.headers.get_all("Via")[0])  # only the top Via
    for route in invite.headers.get_all("Route"):
        headers.add("Route", route)
    headers.add("Max-Forwards", "70")
    headers.add("From", invite.headers.get("From") or "")
    headers.add("To", response.headers.get("To") or "")
    headers.add("Call-ID", invite.call_id)
    headers.add("CSeq", f"{invite.cseq.seq} ACK")
    return Request("ACK", invite.uri, headers)
