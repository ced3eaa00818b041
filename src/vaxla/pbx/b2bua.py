"""The B2BUA: connects a caller's dialog (A leg) to the callee's (B leg).

A caller's INVITE is authenticated (407), the dialled extension looked up
(404 unknown, 480 nobody registered), and a new INVITE sent in parallel to
every registered contact of the callee. The first 2xx wins; the other forks
are cancelled. Provisional responses, the answer, re-INVITEs, INFO and BYE
are passed from one dialog to the other. Each call ends in a call record.

Call forwarding (``vaxla.pbx.forwarding``) decides where a call rings: the
callee's unconditional and not-reachable rules before any phone rings, its
busy and no-answer rules when its phones fail or the no-answer time runs
out. A forwarded INVITE carries a ``Diversion`` header (RFC 5806).
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from vaxla.events import EventBus
from vaxla.metrics import Metrics
from vaxla.net.stack import SipStack
from vaxla.pbx.cdr import CallOutcome, CallRecordWriter
from vaxla.pbx.dialog import ALLOW, Dialog, LocalAddress, build_cancel, remote_target_of
from vaxla.pbx.extensions import ExtensionStore
from vaxla.pbx.forwarding import (
    CallPath,
    ForwardingRule,
    ForwardKind,
    diversion_hops,
    is_external,
    kind_for_failure,
    next_step,
    parse_star_code,
    resolve,
)
from vaxla.pbx.forwarding_codes import ForwardingCodeService
from vaxla.pbx.forwarding_store import ForwardingStore
from vaxla.pbx.location import LocationService
from vaxla.pbx.phone_auth import PhoneAuth
from vaxla.pbx.phone_state import phone_state
from vaxla.pbx.services import (
    CallMedia,
    CallService,
    LiveMediaAnchor,
    MediaAnchor,
    ServiceCall,
)
from vaxla.sip.message import Request, Response, make_response, new_call_id, new_tag
from vaxla.sip.transaction import Peer
from vaxla.sip.uri import NameAddr, SipURI

log = logging.getLogger("vaxla.calls")

# How long a finished call's state is kept for late retransmissions
# (64*T1, the longest a peer retransmits a request or a 2xx).
STATE_LINGER = 32.0

# RFC 3261 §16.7: which final answer to give the caller when every fork failed.
_FAILURE_RANK = {600: 0, 603: 0, 604: 0, 606: 0, 486: 1, 480: 3, 408: 4}

# A feature code matcher: (dialled, from a trusted peer) -> the service that
# carries the code out for the caller, or None when the code is not its own.
CodeMatcher = Callable[[str, bool], CallService | None]


def _rank(status: int) -> int:
    if status in _FAILURE_RANK:
        return _FAILURE_RANK[status]
    return 2 if 400 <= status < 500 else 5


class LegState(enum.Enum):
    CALLING = "calling"
    EARLY = "early"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    ENDED = "ended"


class CallState(enum.Enum):
    ROUTING = "routing"
    RINGING = "ringing"
    ANSWERED = "answered"
    ENDED = "ended"


@dataclass(slots=True)
class BLeg:
    invite: Request
    txn_id: str
    contact_uri: str
    peer: Peer
    dialog: Dialog
    state: LegState = LegState.CALLING
    got_provisional: bool = False
    cancel_wanted: bool = False
    status: int | None = None
    ack: Request | None = None
    number: str = ""  # the extension this leg rings
    # Left behind by call forwarding: its answers no longer decide the call.
    retired: bool = False
    cancel_sent: bool = False

    def cancel(self, stack: SipStack) -> None:
        """Stop this leg ringing.  RFC 3261 §9.1: a CANCEL waits for a
        provisional response; and a leg is cancelled once, however many parts
        of the call (forwarding, another phone answering, the caller hanging
        up) want it stopped."""
        self.cancel_wanted = True
        if self.got_provisional:
            self.send_wanted_cancel(stack)

    def send_wanted_cancel(self, stack: SipStack) -> None:
        """Send the CANCEL :meth:`cancel` asked for, once a provisional came."""
        if self.cancel_wanted and not self.cancel_sent:
            self.cancel_sent = True
            stack.send_request(build_cancel(self.invite), self.peer)
        self.cancel_wanted = False


@dataclass(slots=True)
class Forward:
    """A request passed from one side to the other, waiting for its answer."""

    call: Call
    server_txn: str
    request: Request  # as the sender sent it: the answer is built from it
    from_side: str  # "a" or "b"

    @property
    def method(self) -> str:
        return self.request.method


@dataclass(slots=True)
class Call:
    a_txn: str
    a_invite: Request
    a_peer: Peer
    a_dialog: Dialog
    outcome: CallOutcome
    state: CallState = CallState.ROUTING
    forks: dict[str, BLeg] = field(default_factory=dict)
    b: BLeg | None = None
    no_answer: asyncio.TimerHandle | None = None
    # ACK from A still to be passed to B (delayed offer / re-INVITE answered by B)
    ack_to_b_pending: bool = False
    service: ServiceCall | None = None
    media: CallMedia | None = None
    # Called when the call ends, whoever ends it (call-control features).
    on_finish: Callable[[], None] | None = None
    # A side ("a"/"b") whose BYE must not end the call (its party is being
    # transferred away; the other party stays).
    leaving_side: str | None = None
    # The last SDP each phone sent ("a"/"b"), as it sent it: for re-anchoring.
    last_sdp: dict[str, bytes] = field(default_factory=dict)
    # Where the call has been sent (the number dialled and each forwarding step).
    path: CallPath | None = None

    def side_dialog(self, side: str) -> Dialog | None:
        if side == "a":
            return self.a_dialog
        return self.b.dialog if self.b is not None else None


def _over(call: Call) -> bool:
    return call.state is CallState.ENDED


def _routing(call: Call) -> bool:
    return call.state in (CallState.ROUTING, CallState.RINGING)


def _current_forks_failed(call: Call) -> bool:
    """Every fork of the current callee failed (forks left behind by call
    forwarding do not count; none at all while the next callee is looked up)."""
    current = [f for f in call.forks.values() if not f.retired]
    return bool(current) and all(f.state is LegState.FAILED for f in current)


@dataclass(frozen=True, slots=True)
class ExtensionStatus:
    """What a console shows of an extension: phone state and forwarding (R83)."""

    state: str  # unregistered | free | ringing | busy
    forwarding: tuple[ForwardingRule, ...] = ()


def _without_tag(addr: NameAddr) -> str:
    params = {k: v for k, v in addr.params.items() if k != "tag"}
    return str(NameAddr(addr.uri, addr.display, params))


class B2BUA:
    def __init__(
        self,
        stack: SipStack,
        auth: PhoneAuth,
        extensions: ExtensionStore,
        location: LocationService,
        cdr: CallRecordWriter,
        metrics: Metrics,
        *,
        no_answer_timeout: float,
        trusted_hosts: set[str],
        clock: Callable[[], float] = time.time,
        forwarding: ForwardingStore | None = None,
    ) -> None:
        self.stack = stack
        self.auth = auth
        self.extensions = extensions
        self.location = location
        self.cdr = cdr
        self.metrics = metrics
        # Hands a service's caller to another number (set by the call control).
        self.service_transfer: Callable[[Call, str], asyncio.Future[int]] | None = None
        self.no_answer_timeout = no_answer_timeout
        self.trusted_hosts = trusted_hosts
        self.clock = clock
        self.calls_by_a_txn: dict[str, Call] = {}
        self.forks: dict[str, tuple[Call, BLeg]] = {}
        self.dialogs: dict[tuple[str, str], tuple[Call, str]] = {}
        self.b_call_ids: dict[str, tuple[Call, BLeg]] = {}
        self.forwards: dict[str, Forward] = {}
        # dialog (call-id, our tag) whose ACK we pass on -> (other dialog, CSeq)
        self.awaiting_ack: dict[tuple[str, str], tuple[Dialog, int]] = {}
        self.active = 0
        # Numbers answered by Växla itself (echo test, conference, ...).
        self.services: dict[str, CallService] = {}
        # Feature codes dialled on a phone (``*21*1003#``, ``*23*1#``), asked in order.
        self.code_matchers: list[CodeMatcher] = [self._forwarding_code]
        # Puts Växla in the media path of bridged calls; None: media goes direct.
        self.media_anchor: MediaAnchor | None = None
        # re-INVITEs Växla sends itself (anchoring a live call): client txn -> answer
        self._own: dict[str, asyncio.Future[Response | None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Live calls by id (the caller-side Call-ID), and the event bus that
        # tells the consoles about them.
        self.calls: dict[str, Call] = {}
        # Call forwarding settings (durable; the bus hears of their changes).
        self.forwarding = forwarding if forwarding is not None else ForwardingStore(extensions.db)
        self._bus: EventBus | None = None
        # Client transactions started by call-control features (click-to-call,
        # transfer): txn id -> (on_response, on_timeout).
        self.watchers: dict[str, tuple[Callable[[Response], None], Callable[[], None]]] = {}

    @property
    def me(self) -> LocalAddress:
        return LocalAddress(self.stack.host, self.stack.port)

    @property
    def bus(self) -> EventBus | None:
        return self._bus

    @bus.setter
    def bus(self, bus: EventBus | None) -> None:
        self._bus = bus
        self.forwarding.bus = bus

    # -- the caller's INVITE ---------------------------------------------------

    def dialog_of(self, request: Request) -> tuple[Call, str] | None:
        tag = request.to.tag
        if tag is None:
            return None
        return self.dialogs.get((request.call_id, tag))

    def adopt(self, call: Call, call_id: str | None = None) -> None:
        """Track a new live call (by its id and its caller-side transaction)."""
        self.calls[call_id or call.a_dialog.call_id] = call
        self.calls_by_a_txn[call.a_txn] = call
        self.active += 1
        self.metrics.active_calls.set(self.active)

    def bind(self, call: Call, side: str, dialog: Dialog, leg: BLeg | None = None) -> None:
        """Route in-dialog requests on ``dialog`` to ``call``'s ``side``; a leg we
        invited is also found by Call-ID for re-ACKing retransmitted 2xx."""
        self.dialogs[(dialog.call_id, dialog.local_tag)] = (call, side)
        if leg is not None:
            self.b_call_ids[dialog.call_id] = (call, leg)

    def publish(self, call: Call, state: str) -> None:
        """Tell the consoles (event bus) what happened to a call."""
        if self.bus is None:
            return
        o = call.outcome
        data: dict[str, object] = {
            "call_id": call.a_dialog.call_id,
            "caller": o.caller,
            "callee": o.callee,
            "state": state,
        }
        if state == "ended":
            data["result"] = o.result
        if o.forwarded_from is not None:
            data["forwarded_from"] = o.forwarded_from
            data["forward_kind"] = o.forward_kind
        self.bus.publish("call.state", data)

    def extension_state(self, extension: str, now: float) -> str:
        """unregistered | free | ringing | busy, for presence in the console."""
        live = (
            (call.outcome.caller, call.outcome.callee, call.state is CallState.ANSWERED)
            for call in self.calls.values()
            if call.state is not CallState.ENDED
        )
        return phone_state(extension, live, bool(self.location.lookup(extension, now)))

    def extension_status(self, extension: str, now: float) -> ExtensionStatus:
        """Phone state and the forwarding in force (from the latest snapshot:
        ``await self.forwarding.table()`` first for one at most seconds old)."""
        settings = self.forwarding.cached(extension)
        rules = settings.active() if settings is not None else ()
        return ExtensionStatus(self.extension_state(extension, now), rules)

    def current_call(self, extension: str) -> Call | None:
        """The extension's live call (an answered one first, else a ringing one)."""
        found: Call | None = None
        for call in self.calls.values():
            if call.state is CallState.ENDED:
                continue
            if extension in (call.outcome.caller, call.outcome.callee):
                if call.state is CallState.ANSWERED:
                    return call
                found = call
        return found

    async def on_invite(self, txn_id: str, request: Request, peer: Peer) -> None:
        mf = request.max_forwards
        if mf is not None and mf <= 0:
            self._reply(txn_id, request, 483)
            return
        uri = request.uri
        if not isinstance(uri, SipURI) or not uri.user:
            self._reply(txn_id, request, 404)
            return
        callee = uri.user
        from_uri = request.from_.uri
        caller = from_uri.user if isinstance(from_uri, SipURI) and from_uri.user else "anonymous"
        if peer.host not in self.trusted_hosts:
            outcome = await self.auth.check(request, peer, proxy=True, hint_user=caller)
            if outcome.drop:
                return
            if not outcome.ok:
                self._reply(txn_id, request, outcome.status, headers=outcome.headers)
                return
            assert outcome.username is not None
            caller = outcome.username
        now = self.clock()
        a_tag = new_tag()
        a_dialog = Dialog(
            call_id=request.call_id,
            local_tag=a_tag,
            remote_tag=request.from_.tag,
            local_uri=_without_tag(request.to),
            remote_uri=_without_tag(request.from_),
            remote_target=remote_target_of(request, str(request.from_.uri)),
            route_set=request.headers.get_all("Record-Route"),
            local_cseq=0,
            peer=peer,
        )
        call = Call(
            txn_id, request, peer, a_dialog, CallOutcome(request.call_id, caller, callee, now)
        )
        self.adopt(call)
        if request.body:
            call.last_sdp["a"] = request.body
        service = self.services.get(callee) or self._feature_code(
            callee, trusted=peer.host in self.trusted_hosts
        )
        if service is not None:
            self._start_service(call, service)
            return
        if not await self.extensions.exists(callee):
            self._fail(call, 404, "not-found")
            return
        if call.state is CallState.ENDED:  # cancelled while we looked up
            return
        hops, diverters = diversion_hops(request.headers.get_raw("Diversion"))
        call.path = CallPath(callee, prior_hops=hops, prior_diverters=diverters)
        await self._route(call, now)

    async def _route(self, call: Call, now: float) -> None:
        """Ring the phones of the call's current callee, after following its
        unconditional and not-reachable forwarding; start its no-answer time."""
        assert call.path is not None
        table = await self.forwarding.table()
        if not _routing(call):
            return
        found = resolve(table, call.path, lambda ext: bool(self.location.lookup(ext, now)))
        if found.refused is not None:
            log.info(
                "forwarding stopped",
                extra={
                    "call_id": call.a_dialog.call_id,
                    "reason": found.refused.value,
                    "at": found.target,
                },
            )
        number = found.target
        if found.steps:
            self._diverted(call, found.path)
            service = self.services.get(number)
            if service is not None:
                self._start_service(call, service)
                return
            if is_external(number) or not await self.extensions.exists(number):
                self._fail_forwarding(call, number)
                return
            if not _routing(call):
                return
        contacts = self.location.lookup(number, now)
        if not contacts:
            self._fail(call, 480, "unavailable")
            return
        # No explicit 100 Trying: the callee's 180 usually comes first, and the
        # transaction layer sends 100 itself after 200 ms otherwise.
        a = call.a_invite
        caller = call.outcome.caller
        if self.media_anchor is not None and a.body and call.media is None:
            call.media = await self.media_anchor.prepare(a.call_id, caller, number)
            if _over(call):  # the caller gave up meanwhile
                await self._close_media(call)
                return
        if not _routing(call):
            return
        for contact in contacts:
            self._fork(call, caller, number, contact.uri, contact.peer)
        settings = table.get(number)
        if settings is not None and settings.rule(ForwardKind.NO_ANSWER) is not None:
            timeout = float(settings.no_answer_seconds)
        else:
            timeout = self.no_answer_timeout
        loop = asyncio.get_running_loop()
        call.no_answer = loop.call_later(timeout, self._no_answer, call)

    def register_code(self, matcher: CodeMatcher) -> None:
        """Let a feature answer codes dialled on a phone (e.g. diversion, ``*23*1#``)."""
        self.code_matchers.append(matcher)

    def _feature_code(self, dialled: str, *, trusted: bool) -> CallService | None:
        """The service for a feature code the caller dialled, from the first matcher."""
        if dialled[:1] not in ("*", "#"):
            return None
        for matcher in self.code_matchers:
            service = matcher(dialled, trusted)
            if service is not None:
                return service
        return None

    def _forwarding_code(self, dialled: str, trusted: bool) -> CallService | None:
        """The service for a forwarding code (``*21*1003#``) the caller dialled
        for their own extension; it confirms with a tone from the media engine."""
        if trusted or parse_star_code(dialled) is None:
            return None
        engine = getattr(self.media_anchor, "engine", None)  # the media feature's engine
        if engine is None:
            return None
        return ForwardingCodeService(self.forwarding, self.is_internal, engine)

    async def is_internal(self, number: str) -> bool:
        """A number Växla rings itself: an extension or a service number."""
        return number in self.services or await self.extensions.exists(number)

    def _diverted(self, call: Call, path: CallPath) -> None:
        """The call now goes where ``path`` ends: the record and consoles say so."""
        call.path = path
        o = call.outcome
        if not path.diversions:
            o.callee, o.forwarded_from, o.forward_kind = path.dialled, None, None
            return
        last = path.diversions[-1]
        o.callee = last.target
        o.forwarded_from = path.dialled
        o.forward_kind = last.kind.value
        log.info(
            "call forwarded",
            extra={
                "call_id": call.a_dialog.call_id,
                "from": last.diverter,
                "to": last.target,
                "kind": last.kind.value,
                "hops": path.hops,
            },
        )

    def _divert(self, call: Call, kind: ForwardKind) -> bool:
        """Forward a call that is ringing (or was refused) by the current
        callee's rule of ``kind``; False when no rule applies."""
        path = call.path
        if path is None or not _routing(call):
            return False
        step = next_step(self.forwarding.cached(path.current), kind, path)
        if step.diversion is None:
            if step.refused is not None:
                log.info(
                    "forwarding stopped",
                    extra={
                        "call_id": call.a_dialog.call_id,
                        "reason": step.refused.value,
                        "at": path.current,
                    },
                )
            return False
        for leg in call.forks.values():
            if not leg.retired:
                leg.retired = True
                if leg.state in (LegState.CALLING, LegState.EARLY):
                    leg.cancel(self.stack)
        if call.no_answer is not None:
            call.no_answer.cancel()
            call.no_answer = None
        self._diverted(call, path.then(step.diversion))
        if call.state is CallState.RINGING:
            self.publish(call, "ringing")  # the consoles see who rings now

        async def reroute() -> None:
            try:
                await self._route(call, self.clock())
            except Exception:
                log.exception("forwarding %s failed", call.a_dialog.call_id)
                self._fail(call, 500, "failed")

        task = asyncio.get_running_loop().create_task(reroute())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    def _fail_forwarding(self, call: Call, number: str) -> None:
        """A forwarding target Växla cannot ring: 480 with a Warning saying why."""
        if is_external(number):
            text = f"forwarding to {number} needs an external line (trunk); none is configured"
        else:
            text = f"forwarding target {number} does not exist"
        warning = f'399 {self.me.host} "{text}"'
        self._fail(call, 480, "unavailable", headers=[("Warning", warning)])

    def _fork(self, call: Call, caller: str, callee: str, contact_uri: str, peer: Peer) -> None:
        a = call.a_invite
        me = self.me
        display = a.from_.display
        from_value = f"<sip:{caller}@{me.host}>"
        if display:
            from_value = f'"{display}" {from_value}'
        dialog = Dialog(
            call_id=new_call_id(me.host),
            local_tag=new_tag(),
            remote_tag=None,
            local_uri=from_value,
            remote_uri=f"<sip:{callee}@{me.host}>",
            remote_target=contact_uri,
            route_set=[],
            local_cseq=1,
            peer=peer,
        )
        body = call.media.offer_to_b(a.body) if call.media is not None and a.body else a.body
        invite = dialog.request("INVITE", me, body=body, content_type=a.content_type, cseq=1)
        mf = a.max_forwards
        invite.headers.set("Max-Forwards", str((mf if mf is not None else 70) - 1))
        invite.headers.add("Allow", ALLOW)
        if call.path is not None and call.path.diversions:
            # RFC 5806: the most recent diversion first, then those the call came with.
            for d in reversed(call.path.diversions):
                invite.headers.add("Diversion", d.header(me.host))
            for value in a.headers.get_raw("Diversion"):
                invite.headers.add("Diversion", value)
        invite.invalidate()
        txn_id = self.stack.send_request(invite, peer)
        leg = BLeg(invite, txn_id, contact_uri, peer, dialog, number=callee)
        call.forks[txn_id] = leg
        self.forks[txn_id] = (call, leg)
        self.bind(call, "b", dialog, leg)

    def _reply(
        self,
        txn_id: str,
        request: Request,
        status: int,
        *,
        to_tag: str | None = None,
        headers: tuple[tuple[str, str], ...] | list[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> None:
        response = make_response(
            request,
            status,
            to_tag=to_tag or (new_tag() if status > 100 else None),
            headers=headers,
            body=body,
            content_type=content_type,
        )
        self.stack.send_response(txn_id, response)

    # -- responses from the callee's phones -------------------------------------

    def on_fork_response(self, call: Call, leg: BLeg, response: Response) -> None:
        status = response.status
        if status < 200:
            if status == 100:
                return
            leg.got_provisional = True
            if leg.cancel_wanted:
                leg.send_wanted_cancel(self.stack)
                return
            if leg.retired:
                return
            if response.to.tag:
                leg.state = LegState.EARLY
                leg.dialog.remote_tag = response.to.tag
            if call.state in (CallState.ROUTING, CallState.RINGING):
                if call.state is CallState.ROUTING:
                    self.publish(call, "ringing")
                call.state = CallState.RINGING
                self._reply(
                    call.a_txn,
                    call.a_invite,
                    status if status in (180, 183) else 180,
                    to_tag=call.a_dialog.local_tag,
                    headers=[("Contact", self.me.contact(call.a_peer.transport)), ("Allow", ALLOW)],
                    body=self._answer_to_a(call, response.body),
                    content_type=response.content_type,
                )
            return
        if 200 <= status < 300:
            self._fork_answered(call, leg, response)
            return
        leg.state = LegState.FAILED
        leg.status = status
        self._forget_fork(leg)
        if _routing(call) and _current_forks_failed(call):
            current = [f for f in call.forks.values() if not f.retired]
            best = min((f.status or 500 for f in current), key=_rank)
            kind = kind_for_failure(best)
            if kind is not None and self._divert(call, kind):
                return
            result = {486: "busy", 600: "busy", 603: "rejected", 408: "no-answer", 480: "no-answer"}
            self._fail(call, 480 if best == 408 else best, result.get(best, "rejected"))

    def _fork_answered(self, call: Call, leg: BLeg, response: Response) -> None:
        leg.dialog.remote_tag = response.to.tag
        leg.dialog.remote_target = remote_target_of(response, leg.contact_uri)
        leg.dialog.route_set = list(reversed(response.headers.get_all("Record-Route")))
        leg.dialog.confirmed = True
        if call.state is CallState.ANSWERED or call.state is CallState.ENDED:
            # Another fork won (or the caller gave up): take this answer down.
            self._ack(leg, b"", None)
            self.stack.send_request(leg.dialog.request("BYE", self.me), leg.peer)
            leg.state = LegState.ENDED
            self._forget_fork(leg)
            return
        if leg.retired and call.path is not None:
            # A phone answered just as forwarding moved the call on: it has it.
            keep = call.path.diversions
            for i, d in enumerate(keep):
                if d.diverter == leg.number:
                    keep = keep[:i]
                    break
            self._diverted(call, dataclasses.replace(call.path, diversions=keep))
        leg.state = LegState.CONFIRMED
        call.state = CallState.ANSWERED
        call.b = leg
        if response.body:
            call.last_sdp["b"] = response.body
        call.outcome.answered_at = self.clock()
        if call.no_answer is not None:
            call.no_answer.cancel()
        for other in call.forks.values():
            if other is not leg and other.state in (LegState.CALLING, LegState.EARLY):
                other.cancel(self.stack)
        if call.a_invite.body:
            self._ack(leg, b"", None)
        else:
            call.ack_to_b_pending = True  # delayed offer: A's ACK carries the answer
        self._reply(
            call.a_txn,
            call.a_invite,
            200,
            to_tag=call.a_dialog.local_tag,
            headers=[("Contact", self.me.contact(call.a_peer.transport)), ("Allow", ALLOW)],
            body=self._answer_to_a(call, response.body),
            content_type=response.content_type,
        )
        call.a_dialog.confirmed = True
        self.bind(call, "a", call.a_dialog)
        self.publish(call, "answered")
        log.info(
            "answered",
            extra={
                "call_id": call.a_dialog.call_id,
                "caller": call.outcome.caller,
                "callee": call.outcome.callee,
            },
        )

    @staticmethod
    def _answer_to_a(call: Call, body: bytes) -> bytes:
        if call.media is None or not body:
            return body
        return call.media.answer_to_a(body)

    # -- calls answered by a service --------------------------------------------

    def _start_service(self, call: Call, service: CallService) -> None:
        a = call.a_invite

        def ring() -> None:
            if call.state is CallState.ROUTING:
                call.state = CallState.RINGING
                self._reply(call.a_txn, a, 180, to_tag=call.a_dialog.local_tag)

        def answer(sdp: bytes) -> None:
            if call.state not in (CallState.ROUTING, CallState.RINGING):
                return
            call.state = CallState.ANSWERED
            call.outcome.answered_at = self.clock()
            self._reply(
                call.a_txn,
                a,
                200,
                to_tag=call.a_dialog.local_tag,
                headers=[("Contact", self.me.contact(call.a_peer.transport)), ("Allow", ALLOW)],
                body=sdp,
                content_type="application/sdp",
            )
            call.a_dialog.confirmed = True
            self.bind(call, "a", call.a_dialog)
            self.publish(call, "answered")

        def reject(status: int) -> None:
            self._fail(call, status, "rejected")

        def hangup() -> None:
            if call.state is CallState.ANSWERED:
                self.stack.send_request(call.a_dialog.request("BYE", self.me), call.a_peer)
                self.finish(call, "answered", "callee")
            else:
                self._fail(call, 480, "unavailable")

        sc = ServiceCall(
            call.a_dialog.call_id,
            call.outcome.caller,
            call.outcome.callee,
            a.body,
            a.content_type,
            ring,
            answer,
            reject,
            hangup,
        )
        if self.service_transfer is not None:
            sc._transfer = functools.partial(self.service_transfer, call)
        call.service = sc
        self.stack.send_response(call.a_txn, make_response(a, 100))
        task = asyncio.get_running_loop().create_task(self._run_service(service, sc, call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_service(self, service: CallService, sc: ServiceCall, call: Call) -> None:
        try:
            await service.handle(sc)
        except Exception:
            log.exception("service for %s failed", sc.number)
        finally:
            if call.state is not CallState.ENDED:
                sc.hangup()

    def _service_in_dialog(self, txn_id: str, request: Request, call: Call) -> None:
        sc = call.service
        assert sc is not None
        method = request.method
        if method == "INFO" and sc.on_info_dtmf is not None and request.body:
            from vaxla.media.dtmf import parse_dtmf_relay

            try:
                relay = parse_dtmf_relay(request.body)
            except ValueError:
                self._reply(txn_id, request, 415)
                return
            self._reply(txn_id, request, 200)
            sc.on_info_dtmf(relay.signal, relay.duration_ms or 0)
            return
        if method == "INVITE":
            answer = sc.on_reoffer(request.body) if sc.on_reoffer and request.body else None
            self._reply(
                txn_id,
                request,
                200,
                to_tag=call.a_dialog.local_tag,
                headers=[("Contact", self.me.contact(call.a_peer.transport))],
                body=answer if answer is not None else sc.answer_sdp,
                content_type="application/sdp",
            )
            return
        self._reply(txn_id, request, 200)

    async def _close_media(self, call: Call) -> None:
        media, call.media = call.media, None
        if media is not None:
            try:
                await media.close()
            except Exception:
                log.exception("closing media of %s failed", call.a_dialog.call_id)

    def _ack(self, leg: BLeg, body: bytes, content_type: str | None) -> None:
        ack = leg.dialog.request(
            "ACK", self.me, body=body, content_type=content_type, cseq=leg.invite.cseq.seq
        )
        leg.ack = ack
        self.stack.send_stateless(ack, leg.peer)

    def _forget_fork(self, leg: BLeg) -> None:
        self.forks.pop(leg.txn_id, None)

    def on_stray_2xx(self, response: Response) -> None:
        """A retransmitted 2xx whose client transaction is gone: ACK it again."""
        found = self.b_call_ids.get(response.call_id)
        if found is None:
            return
        call, leg = found
        if leg.ack is not None:
            self.stack.send_stateless(leg.ack, leg.peer)
        elif call.b is not leg:
            self._fork_answered(call, leg, response)

    def on_fork_timeout(self, call: Call, leg: BLeg) -> None:
        if leg.state in (LegState.CALLING, LegState.EARLY):
            resp_status = 408
            leg.state = LegState.FAILED
            leg.status = resp_status
            self._forget_fork(leg)
            if _routing(call) and _current_forks_failed(call):
                if self._divert(call, ForwardKind.NO_ANSWER):
                    return
                self._fail(call, 480, "no-answer")

    # -- call end ---------------------------------------------------------------

    def _no_answer(self, call: Call) -> None:
        if call.state in (CallState.ROUTING, CallState.RINGING):
            if self._divert(call, ForwardKind.NO_ANSWER):
                return
            for leg in call.forks.values():
                if leg.state in (LegState.CALLING, LegState.EARLY) and not leg.retired:
                    leg.cancel(self.stack)
            self._fail(call, 480, "no-answer")

    def on_cancel(self, invite_txn_id: str) -> None:
        call = self.calls_by_a_txn.get(invite_txn_id)
        if call is None or call.state in (CallState.ANSWERED, CallState.ENDED):
            return
        for leg in call.forks.values():
            if leg.state in (LegState.CALLING, LegState.EARLY) and not leg.retired:
                leg.cancel(self.stack)  # retired forks were cancelled when forwarded
        self._fail(call, 487, "cancelled")

    def _fail(
        self,
        call: Call,
        status: int,
        result: str,
        headers: list[tuple[str, str]] | tuple[()] = (),
    ) -> None:
        if call.state is CallState.ENDED:
            return
        self._reply(
            call.a_txn, call.a_invite, status, to_tag=call.a_dialog.local_tag, headers=headers
        )
        call.outcome.sip_status = status
        self.finish(call, result)

    def release_after_error(self, call: Call) -> None:
        """Something failed while handling this call: end it cleanly — 500 to
        a caller still waiting (its phones stop ringing), BYE on both sides of
        an answered call — so nobody hangs on a dead call.  Each step is
        tried on its own; a failing one is logged and the rest still run."""
        if call.state is CallState.ENDED:
            return

        steps: list[Callable[[], object]] = []
        if call.state is CallState.ANSWERED:
            for side in ("a", "b"):
                dialog = call.side_dialog(side)
                if dialog is not None and dialog.confirmed:
                    bye = functools.partial(dialog.request, "BYE", self.me)
                    steps.append(functools.partial(self._send_built, bye, dialog.peer))
            steps.append(functools.partial(self.finish, call, "failed", "server"))
        else:
            for leg in call.forks.values():
                if leg.state in (LegState.CALLING, LegState.EARLY):
                    steps.append(functools.partial(leg.cancel, self.stack))
            steps.append(functools.partial(self._fail, call, 500, "failed"))
            # should the 500 fail, the call still ends
            steps.append(functools.partial(self.finish, call, "failed", "server"))
        for step in steps:
            try:
                step()
            except Exception:
                log.exception("releasing %s", call.a_dialog.call_id)

    def _send_built(self, build: Callable[[], Request], peer: Peer) -> None:
        self.stack.send_request(build(), peer)

    def finish(self, call: Call, result: str, hangup_by: str | None = None) -> None:
        if call.state is CallState.ENDED:
            return
        call.state = CallState.ENDED
        if call.no_answer is not None:
            call.no_answer.cancel()
        call.outcome.result = result
        call.outcome.hangup_by = hangup_by
        call.outcome.ended_at = self.clock()
        if call.outcome.sip_status is None and call.outcome.answered_at is not None:
            call.outcome.sip_status = 200
        self.cdr.add(call.outcome)
        self.publish(call, "ended")
        if call.on_finish is not None:
            call.on_finish()
        if call.service is not None:
            call.service.ended.set()
        if call.media is not None:
            task = asyncio.get_running_loop().create_task(self._close_media(call))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self.active -= 1
        self.metrics.active_calls.set(self.active)
        self.metrics.calls.labels(result).inc()
        log.info(
            "call ended",
            extra={
                "call_id": call.a_dialog.call_id,
                "result": result,
                "caller": call.outcome.caller,
                "callee": call.outcome.callee,
                "hangup_by": hangup_by,
            },
        )
        asyncio.get_running_loop().call_later(STATE_LINGER, self._drop_state, call)

    def _drop_state(self, call: Call) -> None:
        """Forget a finished call once retransmissions can no longer arrive."""
        self.calls_by_a_txn.pop(call.a_txn, None)
        if self.calls.get(call.a_dialog.call_id) is call:
            del self.calls[call.a_dialog.call_id]
        # A dialog may have moved on to another call (transfer): drop only ours.
        key = (call.a_dialog.call_id, call.a_dialog.local_tag)
        if self.dialogs.get(key, (None,))[0] is call:
            del self.dialogs[key]
        for leg in call.forks.values():
            if self.forks.get(leg.txn_id, (None,))[0] is call:
                del self.forks[leg.txn_id]
            if self.b_call_ids.get(leg.dialog.call_id, (None,))[0] is call:
                del self.b_call_ids[leg.dialog.call_id]
            key = (leg.dialog.call_id, leg.dialog.local_tag)
            if self.dialogs.get(key, (None,))[0] is call:
                del self.dialogs[key]

    # -- requests inside a dialog ----------------------------------------------

    def on_in_dialog(self, txn_id: str, request: Request, call: Call, side: str) -> None:
        method = request.method
        other = "b" if side == "a" else "a"
        target = call.side_dialog(other)
        if call.service is not None and method != "BYE":
            self._service_in_dialog(txn_id, request, call)
            return
        if method == "BYE" and call.leaving_side == side:
            self._reply(txn_id, request, 200)  # the transferor left; the other party waits
            return
        if method == "BYE":
            self._reply(txn_id, request, 200)
            if call.state is CallState.ANSWERED and target is not None:
                self.stack.send_request(target.request("BYE", self.me), target.peer)
            self.finish(call, "answered", "caller" if side == "a" else "callee")
            return
        if call.state is not CallState.ANSWERED or target is None:
            self._reply(txn_id, request, 481 if call.state is CallState.ENDED else 491)
            return
        body = request.body
        if method == "INVITE" and body:
            call.last_sdp[side] = body
        if call.media is not None and method == "INVITE" and body:
            body = call.media.offer_from(side, body)
        forwarded = target.request(method, self.me, body=body, content_type=request.content_type)
        for name in ("Event", "Subscription-State", "Refer-To", "Session-Expires"):
            value = request.headers.get(name)
            if value is not None:
                forwarded.headers.add(name, value)
        forwarded.invalidate()
        client_txn = self.stack.send_request(forwarded, target.peer)
        self.forwards[client_txn] = Forward(call, txn_id, request, side)

    def on_forward_response(self, client_txn: str, response: Response) -> None:
        own = self._own.get(client_txn)
        if own is not None:
            if response.status >= 200:
                del self._own[client_txn]
                self.forwards.pop(client_txn, None)
                if not own.done():
                    own.set_result(response)
            return
        fwd = self.forwards.get(client_txn)
        status = response.status
        if fwd is None or status == 100:
            return
        call = fwd.call
        sender_dialog = call.side_dialog(fwd.from_side)
        if sender_dialog is None:
            return
        if status >= 200:
            del self.forwards[client_txn]
        if fwd.method == "INVITE" and 200 <= status < 300:
            target = call.side_dialog("b" if fwd.from_side == "a" else "a")
            assert target is not None
            if fwd.request.body:
                self._ack_dialog(target, response.cseq.seq)
            else:  # the answer to B's offer comes in the sender's ACK
                key = (sender_dialog.call_id, sender_dialog.local_tag)
                self.awaiting_ack[key] = (target, response.cseq.seq)
        headers: list[tuple[str, str]] = []
        if fwd.method == "INVITE":
            headers.append(("Contact", self.me.contact(sender_dialog.peer.transport)))
        body = response.body
        if fwd.method == "INVITE" and body and status < 300:
            call.last_sdp["b" if fwd.from_side == "a" else "a"] = body
        if call.media is not None and fwd.method == "INVITE" and body and status < 300:
            body = call.media.answer_from("b" if fwd.from_side == "a" else "a", body)
        self._reply(
            fwd.server_txn,
            fwd.request,
            status,
            to_tag=sender_dialog.local_tag,
            headers=headers,
            body=body,
            content_type=response.content_type,
        )

    def _ack_dialog(
        self, dialog: Dialog, cseq: int, body: bytes = b"", ctype: str | None = None
    ) -> None:
        ack = dialog.request("ACK", self.me, body=body, content_type=ctype, cseq=cseq)
        self.stack.send_stateless(ack, dialog.peer)

    def on_ack(self, request: Request) -> None:
        found = self.dialog_of(request)
        if found is None:
            return
        call, side = found
        if side == "a" and call.service is not None:
            # a service that offered in its 200 OK (delayed offer) gets the answer
            if call.service.on_ack is not None:
                call.service.on_ack(request.body)
            return
        if side == "a" and call.ack_to_b_pending and call.b is not None:
            call.ack_to_b_pending = False
            self._ack(call.b, request.body, request.content_type)
            return
        key = (request.call_id, request.to.tag or "")
        pending = self.awaiting_ack.pop(key, None)
        if pending is not None:
            dialog, cseq = pending
            self._ack_dialog(dialog, cseq, request.body, request.content_type)

    def on_forward_timeout(self, client_txn: str) -> None:
        own = self._own.pop(client_txn, None)
        if own is not None:
            self.forwards.pop(client_txn, None)
            if not own.done():
                own.set_result(None)
            return
        fwd = self.forwards.pop(client_txn, None)
        if fwd is None:
            return
        self._reply(fwd.server_txn, fwd.request, 408)

    def on_a_ack_timeout(self, txn_id: str) -> None:
        call = self.calls_by_a_txn.get(txn_id)
        if call is None or call.state is not CallState.ANSWERED:
            return
        if call.b is not None:
            self.stack.send_request(call.b.dialog.request("BYE", self.me), call.b.peer)
        self.stack.send_request(call.a_dialog.request("BYE", self.me), call.a_peer)
        self.finish(call, "failed", None)

    # -- moving a live call's media onto Växla and off again ---------------------

    def answered_call(self, call_id: str) -> Call | None:
        """The answered bridged call whose caller dialog has ``call_id``."""
        for call in self.calls_by_a_txn.values():
            if call.a_dialog.call_id == call_id and call.state is CallState.ANSWERED:
                return call if call.b is not None else None
        return None

    async def _reinvite(self, call: Call, side: str, body: bytes) -> Response | None:
        """Send our own re-INVITE with an SDP offer to ``side``; ACK a 2xx."""
        dialog = call.side_dialog(side)
        assert dialog is not None
        invite = dialog.request("INVITE", self.me, body=body, content_type="application/sdp")
        txn = self.stack.send_request(invite, dialog.peer)
        future: asyncio.Future[Response | None] = asyncio.get_running_loop().create_future()
        self._own[txn] = future
        self.forwards[txn] = Forward(call, "", invite, "self")  # routes the responses here
        response = await future
        if response is not None and 200 <= response.status < 300:
            self._ack_dialog(dialog, response.cseq.seq)
            return response
        return None

    async def set_anchored(self, call_id: str, anchored: bool) -> bool:
        """Switch a live call's media to run through Växla (``anchored``) or
        directly between the phones again, by re-INVITEs to both: B first
        with an offer naming Växla (or A's own address), then A with B's
        answer rewritten likewise. Returns False if that was not possible."""
        call = self.answered_call(call_id)
        anchor = self.media_anchor
        if call is None or not isinstance(anchor, LiveMediaAnchor):
            return False
        if "a" not in call.last_sdp or "b" not in call.last_sdp:
            return False
        if anchored == (call.media is not None):
            return True
        if anchored:
            media = await anchor.anchor(call_id, call.outcome.caller, call.outcome.callee)
            b_answer = await self._reinvite(call, "b", media.offer_to_b(call.last_sdp["a"]))
            if b_answer is None or not b_answer.body or _over(call):
                await media.close()
                return False
            call.last_sdp["b"] = b_answer.body
            call.media = media
            a_answer = await self._reinvite(call, "a", media.offer_from("b", b_answer.body))
            if a_answer is not None and a_answer.body:
                call.last_sdp["a"] = a_answer.body
                media.answer_from("a", a_answer.body)
            return a_answer is not None
        current = call.media
        assert current is not None
        b_answer = await self._reinvite(
            call, "b", anchor.direct_sdp(current, "b", call.last_sdp["a"])
        )
        if b_answer is None or not b_answer.body:
            return False
        call.last_sdp["b"] = b_answer.body
        a_answer = await self._reinvite(call, "a", anchor.direct_sdp(current, "a", b_answer.body))
        if a_answer is not None and a_answer.body:
            call.last_sdp["a"] = a_answer.body
        call.media = None
        await current.close()
        return a_answer is not None
