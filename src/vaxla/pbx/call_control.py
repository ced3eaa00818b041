"""Third-party call control for consoles: click-to-call, hang up, blind transfer.

Click-to-call follows RFC 3725 flow I: the operator's phone is invited
without SDP, answers with an offer, which goes to the called number; the
called phone's answer comes back to the operator's phone in the ACK. The
no-answer timeout stays below 32 s, the time a phone retransmits its 200 OK
waiting for that ACK.

Blind transfer replaces one party of an answered call by a new one: the new
phone is invited without SDP, its offer is sent to the party who stays in a
re-INVITE, and that answer completes the new phone's ACK. The party who
leaves is released once the new phone answers; until then the call goes on.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable

from vaxla.errors import Conflict, NotFound
from vaxla.pbx.b2bua import B2BUA, BLeg, Call, CallState, LegState
from vaxla.pbx.cdr import CallOutcome
from vaxla.pbx.dialog import ALLOW, Dialog, remote_target_of
from vaxla.pbx.forwarding import CallPath, Resolution, resolve
from vaxla.pbx.location import Contact
from vaxla.sip.message import Response, new_call_id, new_tag

log = logging.getLogger("vaxla.callcontrol")

# RFC 3725 §5: a phone retransmits its 2xx for 32 s waiting for the ACK.
MAX_3PCC_RING = 30.0

INACTIVE_ANSWER = (
    b"v=0\r\no=vaxla 0 0 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
    b"m=audio 0 RTP/AVP 0\r\n"
)


class ExtensionUnavailable(Conflict):
    error_id = "extension-unavailable"


class NumberNotFound(NotFound):
    error_id = "number-not-found"


class CallNotFound(NotFound):
    error_id = "call-not-found"


class CallNotAnswered(Conflict):
    error_id = "call-not-answered"


class Originator:
    """INVITEs without SDP to every contact of an extension; first 2xx wins."""

    def __init__(
        self,
        b2bua: B2BUA,
        contacts: list[Contact],
        *,
        from_user: str,
        from_display: str | None,
        to_user: str,
        on_ringing: Callable[[], None],
        on_answer: Callable[[BLeg, Response], None],
        on_fail: Callable[[int], None],
        timeout: float,
        offer: bytes = b"",
        content_type: str | None = None,
    ) -> None:
        self.b2bua = b2bua
        self.on_ringing = on_ringing
        self.on_answer = on_answer
        self.on_fail = on_fail
        self.legs: dict[str, BLeg] = {}
        self.winner: BLeg | None = None
        self.done = False
        self.statuses: list[int] = []
        me = b2bua.me
        from_value = f"<sip:{from_user}@{me.host}>"
        if from_display:
            from_value = f'"{from_display}" {from_value}'
        for contact in contacts:
            dialog = Dialog(
                call_id=new_call_id(me.host),
                local_tag=new_tag(),
                remote_tag=None,
                local_uri=from_value,
                remote_uri=f"<sip:{to_user}@{me.host}>",
                remote_target=contact.uri,
                route_set=[],
                local_cseq=1,
                peer=contact.peer,
            )
            invite = dialog.request(
                "INVITE",
                me,
                body=offer,
                cseq=1,
                content_type=(content_type or "application/sdp") if offer else None,
            )
            invite.headers.add("Allow", ALLOW)
            invite.invalidate()
            txn = b2bua.stack.send_request(invite, contact.peer)
            leg = BLeg(invite, txn, contact.uri, contact.peer, dialog)
            self.legs[txn] = leg
            b2bua.watchers[txn] = (
                functools.partial(self._response, leg),
                functools.partial(self._failed, leg, 408),
            )
        self._timer = asyncio.get_running_loop().call_later(timeout, self._timeout)

    def _response(self, leg: BLeg, response: Response) -> None:
        status = response.status
        if status < 200:
            if status != 100:
                leg.got_provisional = True
                if leg.cancel_wanted:
                    leg.send_wanted_cancel(self.b2bua.stack)
                elif not self.done:
                    self.on_ringing()
            return
        if status < 300:
            leg.dialog.remote_tag = response.to.tag
            leg.dialog.remote_target = remote_target_of(response, leg.contact_uri)
            leg.dialog.route_set = list(reversed(response.headers.get_all("Record-Route")))
            leg.dialog.confirmed = True
            if self.done:  # a late second answer: take it down
                self.ack(leg, b"" if not response.body else INACTIVE_ANSWER)
                self.b2bua.stack.send_request(leg.dialog.request("BYE", self.b2bua.me), leg.peer)
                return
            self.done = True
            self.winner = leg
            leg.state = LegState.CONFIRMED
            self._timer.cancel()
            self.cancel(except_leg=leg)
            self.on_answer(leg, response)
            return
        self._failed(leg, status)

    def _failed(self, leg: BLeg, status: int) -> None:
        leg.state = LegState.FAILED
        leg.status = status
        self.statuses.append(status)
        if not self.done and all(x.state is LegState.FAILED for x in self.legs.values()):
            self.done = True
            self._timer.cancel()
            self.on_fail(486 if 486 in self.statuses else min(self.statuses))

    def _timeout(self) -> None:
        if not self.done:
            self.done = True
            self.cancel()
            self.on_fail(480)

    def cancel(self, except_leg: BLeg | None = None) -> None:
        for leg in self.legs.values():
            if leg is except_leg or leg.state in (LegState.FAILED, LegState.CONFIRMED):
                continue
            leg.cancel(self.b2bua.stack)

    def abort(self) -> None:
        """The call ended elsewhere: stop ringing."""
        if not self.done:
            self.done = True
            self._timer.cancel()
            self.cancel()

    def ack(self, leg: BLeg, body: bytes) -> None:
        ack = leg.dialog.request(
            "ACK",
            self.b2bua.me,
            body=body,
            content_type="application/sdp" if body else None,
            cseq=leg.invite.cseq.seq,
        )
        leg.ack = ack
        self.b2bua.stack.send_stateless(ack, leg.peer)


class CallControl:
    def __init__(self, b2bua: B2BUA, clock: Callable[[], float]) -> None:
        self.b2bua = b2bua
        self.clock = clock
        b2bua.service_transfer = self.transfer_service_call

    def _contacts(self, extension: str) -> list[Contact]:
        contacts = self.b2bua.location.lookup(extension, self.clock())
        if not contacts:
            raise ExtensionUnavailable(f"{extension} has no registered phone", extension=extension)
        return contacts

    async def click_to_call(self, from_ext: str, to_number: str) -> str:
        """Ring ``from_ext``'s phone; when answered, call ``to_number``."""
        b2bua = self.b2bua
        if not await b2bua.extensions.exists(from_ext):
            raise NumberNotFound(f"no extension {from_ext}", number=from_ext)
        if not await b2bua.extensions.exists(to_number):
            raise NumberNotFound(f"no extension {to_number}", number=to_number)
        a_contacts = self._contacts(from_ext)
        self._contacts(to_number)  # fail early: nobody to call
        timeout = min(b2bua.no_answer_timeout, MAX_3PCC_RING)
        outcome = CallOutcome("", from_ext, to_number, self.clock())
        state: dict[str, Originator | None] = {"b": None}
        call_box: dict[str, Call] = {}

        def a_answered(a_leg: BLeg, response: Response) -> None:
            call = Call(
                a_txn=f"3pcc:{a_leg.dialog.call_id}",
                a_invite=a_leg.invite,
                a_peer=a_leg.peer,
                a_dialog=a_leg.dialog,
                outcome=outcome,
                state=CallState.RINGING,
            )
            outcome.call_id = a_leg.dialog.call_id
            call_box["call"] = call
            call.forks[a_leg.txn_id] = a_leg
            b2bua.adopt(call)
            b2bua.bind(call, "a", a_leg.dialog, a_leg)
            b2bua.publish(call, "ringing")
            offer = response.body
            try:
                b_contacts = self._contacts(to_number)
            except ExtensionUnavailable:
                b_failed(480)
                return
            state["b"] = Originator(
                b2bua,
                b_contacts,
                from_user=from_ext,
                from_display=None,
                to_user=to_number,
                on_ringing=lambda: None,
                on_answer=b_answered,
                on_fail=b_failed,
                timeout=timeout,
                offer=offer,
                content_type=response.content_type,
            )

            def on_finish() -> None:
                orig = state["b"]
                if orig is not None:
                    orig.abort()

            call.on_finish = on_finish

        def a_failed(status: int) -> None:
            outcome.call_id = outcome.call_id or "3pcc-unanswered"
            outcome.result = "no-answer" if status in (408, 480) else "failed"
            outcome.sip_status = status
            outcome.ended_at = self.clock()
            b2bua.cdr.add(outcome)

        def b_answered(b_leg: BLeg, response: Response) -> None:
            call = call_box["call"]
            if call.state is CallState.ENDED:
                return
            a_leg = call.forks[next(iter(call.forks))]
            # ACK the called phone, then complete the operator's phone's ACK
            # with the called phone's answer.
            state_b = state["b"]
            assert state_b is not None
            state_b.ack(b_leg, b"")
            a_orig.ack(a_leg, response.body)
            call.b = b_leg
            call.forks[b_leg.txn_id] = b_leg
            call.state = CallState.ANSWERED
            outcome.answered_at = self.clock()
            b2bua.bind(call, "b", b_leg.dialog, b_leg)
            b2bua.publish(call, "answered")

        def b_failed(status: int) -> None:
            call = call_box["call"]
            if call.state is CallState.ENDED:
                return
            a_leg = call.forks[next(iter(call.forks))]
            a_orig.ack(a_leg, INACTIVE_ANSWER)
            b2bua.stack.send_request(a_leg.dialog.request("BYE", b2bua.me), a_leg.peer)
            call.outcome.sip_status = status
            result = {486: "busy", 480: "no-answer", 408: "no-answer"}.get(status, "rejected")
            b2bua.finish(call, result, None)

        a_orig = Originator(
            b2bua,
            a_contacts,
            from_user=to_number,
            from_display=f"Växla → {to_number}",
            to_user=from_ext,
            on_ringing=lambda: None,
            on_answer=a_answered,
            on_fail=a_failed,
            timeout=timeout,
        )
        first = next(iter(a_orig.legs.values()))
        log.info(
            "click-to-call",
            extra={"from": from_ext, "to": to_number, "call_id": first.dialog.call_id},
        )
        return first.dialog.call_id

    def find(self, call_id: str) -> Call:
        call = self.b2bua.calls.get(call_id)
        if call is None or call.state is CallState.ENDED:
            # a click-to-call is known by its first INVITE's Call-ID until answered
            raise CallNotFound(f"no live call {call_id}", call_id=call_id)
        return call

    def hangup(self, call_id: str) -> None:
        b2bua = self.b2bua
        call = self.find(call_id)
        if call.state is CallState.ANSWERED:
            for side in ("a", "b"):
                dialog = call.side_dialog(side)
                if dialog is not None:
                    b2bua.stack.send_request(dialog.request("BYE", b2bua.me), dialog.peer)
            b2bua.finish(call, "answered", "console")
        elif call.a_txn.startswith("3pcc:"):
            a_leg = call.forks[next(iter(call.forks))]
            b2bua.stack.send_request(a_leg.dialog.request("BYE", b2bua.me), a_leg.peer)
            b2bua.finish(call, "cancelled", "console")
        else:
            b2bua.on_cancel(call.a_txn)

    async def transfer(self, call_id: str, to_number: str, transferor: str | None = None) -> None:
        """Blind transfer: the party ``transferor`` (an extension; default the
        callee) leaves, ``to_number`` (after its call forwarding) takes its place."""
        call = self.find(call_id)
        if call.state is not CallState.ANSWERED or call.b is None:
            raise CallNotAnswered(f"call {call_id} is not answered", call_id=call_id)
        leaving = "b"
        if transferor is not None and transferor == call.outcome.caller:
            leaving = "a"
        found = await self._destination(to_number)
        contacts = self._contacts(found.target)
        if call.state is not CallState.ANSWERED:  # it ended while the forwarding was read
            raise CallNotAnswered(f"call {call_id} is not answered", call_id=call_id)

        def failed(status: int) -> None:
            self.b2bua.bus and self.b2bua.bus.publish(
                "call.state",
                {
                    "call_id": call_id,
                    "caller": call.outcome.caller,
                    "callee": call.outcome.callee,
                    "state": "transfer-failed",
                    "status": status,
                },
            )

        self._replace(call, leaving, found, contacts, failed)

    def transfer_service_call(self, call: Call, to_number: str) -> asyncio.Future[int]:
        """A service (e.g. the keypad directory) hands its caller to
        ``to_number`` (after its call forwarding): 200 once they talk, else
        the failure status (480 when no phone is registered); the service
        goes on meanwhile (ringback)."""
        return asyncio.get_running_loop().create_task(self._transfer_service_call(call, to_number))

    async def _transfer_service_call(self, call: Call, to_number: str) -> int:
        if call.state is not CallState.ANSWERED or call.service is None:
            return 481
        found = await self._destination(to_number)
        contacts = self.b2bua.location.lookup(found.target, self.clock())
        if not contacts:
            return 480
        if call.state is not CallState.ANSWERED:
            return 487
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def settle(status: int) -> None:
            if not done.done():
                done.set_result(status)

        self._replace(call, "b", found, contacts, settle, on_done=lambda: settle(200))
        return await done

    async def _destination(self, number: str) -> Resolution:
        """Where a call to ``number`` rings after its unconditional forwarding
        (and its not-reachable forwarding when no phone is registered), as
        for a call dialled to it."""
        table = await self.b2bua.forwarding.table()
        now = self.clock()
        return resolve(
            table, CallPath(number), lambda ext: bool(self.b2bua.location.lookup(ext, now))
        )

    def _replace(
        self,
        call: Call,
        leaving: str,
        found: Resolution,
        contacts: list[Contact],
        failed: Callable[[int], None],
        on_done: Callable[[], None] | None = None,
    ) -> None:
        """Invite ``to_number`` without SDP; its offer goes to the party who
        stays in a re-INVITE, and that answer completes the new phone's ACK.
        The ``leaving`` side (a phone, or the service that answered) is
        released once the new phone answers; until then the call goes on."""
        b2bua = self.b2bua
        to_number = found.target
        staying = "a" if leaving == "b" else "b"
        stay_dialog = call.side_dialog(staying)
        assert stay_dialog is not None
        staying_party = call.outcome.caller if staying == "a" else call.outcome.callee
        call.leaving_side = leaving

        def answered(t_leg: BLeg, response: Response) -> None:
            if call.state is CallState.ENDED:
                orig.ack(t_leg, INACTIVE_ANSWER)
                b2bua.stack.send_request(t_leg.dialog.request("BYE", b2bua.me), t_leg.peer)
                failed(487)
                return
            offer = response.body
            reinvite = stay_dialog.request(
                "INVITE", b2bua.me, body=offer, content_type="application/sdp"
            )
            txn = b2bua.stack.send_request(reinvite, stay_dialog.peer)

            def refused(status: int) -> None:  # the party who stays kept its media
                orig.ack(t_leg, INACTIVE_ANSWER)
                b2bua.stack.send_request(t_leg.dialog.request("BYE", b2bua.me), t_leg.peer)
                call.leaving_side = None
                failed(status)

            def reanswered(r: Response) -> None:
                if r.status < 200:
                    return
                if r.status >= 300:
                    refused(r.status)
                    return
                ack = stay_dialog.request("ACK", b2bua.me, cseq=reinvite.cseq.seq)
                b2bua.stack.send_stateless(ack, stay_dialog.peer)
                orig.ack(t_leg, r.body)
                self._complete_transfer(call, staying, leaving, t_leg, staying_party, found)
                if on_done is not None:
                    on_done()

            b2bua.watchers[txn] = (reanswered, lambda: refused(408))

        def not_answered(status: int) -> None:
            call.leaving_side = None  # the call stays as it was
            failed(status)

        orig = Originator(
            b2bua,
            contacts,
            from_user=staying_party,
            from_display=None,
            to_user=to_number,
            on_ringing=lambda: None,
            on_answer=answered,
            on_fail=not_answered,
            timeout=min(b2bua.no_answer_timeout, MAX_3PCC_RING),
        )
        previous = call.on_finish

        def call_ended() -> None:  # e.g. the caller hung up: the new phone stops ringing
            if previous is not None:
                previous()
            if not orig.done:
                orig.abort()
                failed(487)

        call.on_finish = call_ended
        who = {"call_id": call.a_dialog.call_id, "to": to_number, "leaving": leaving}
        log.info("transfer", extra=who)

    def _complete_transfer(
        self,
        old: Call,
        staying: str,
        leaving: str,
        t_leg: BLeg,
        staying_party: str,
        found: Resolution,
    ) -> None:
        b2bua = self.b2bua
        leave_dialog = old.side_dialog(leaving)  # None: a service answered the call
        stay_dialog = old.side_dialog(staying)
        assert stay_dialog is not None
        if old.leaving_side == leaving and leave_dialog is not None:
            b2bua.stack.send_request(leave_dialog.request("BYE", b2bua.me), leave_dialog.peer)
        old.leaving_side = None
        b2bua.finish(old, "transferred", old.outcome.callee if leaving == "b" else "caller")
        # The party who stays now talks with the new one: a new call record.
        now = self.clock()
        outcome = CallOutcome(
            stay_dialog.call_id + ";transfer", staying_party, found.target, now, now
        )
        if found.steps:  # the record says who was asked for, as for a forwarded call
            outcome.forwarded_from = found.path.dialled
            outcome.forward_kind = found.steps[-1].kind.value
        new = Call(
            a_txn=f"xfer:{t_leg.dialog.call_id}",
            a_invite=t_leg.invite,
            a_peer=stay_dialog.peer,
            a_dialog=stay_dialog,
            outcome=outcome,
            state=CallState.ANSWERED,
        )
        new.b = t_leg
        new.forks[t_leg.txn_id] = t_leg
        b2bua.adopt(new, outcome.call_id)
        b2bua.bind(new, "a", stay_dialog)
        b2bua.bind(new, "b", t_leg.dialog, t_leg)
        b2bua.publish(new, "answered")
