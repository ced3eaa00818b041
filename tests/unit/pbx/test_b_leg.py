"""A ringing leg of a call is cancelled once, after a provisional response
(RFC 3261 §9.1), however many parts of the call ask for it."""

from __future__ import annotations

from typing import Any

from vaxla.pbx.b2bua import BLeg
from vaxla.pbx.dialog import Dialog, LocalAddress
from vaxla.sip.events import Peer
from vaxla.sip.message import Request

PEER = Peer("udp", "127.0.0.1", 5070)


class SentRequests:
    """Stands in for the SIP stack: keeps what would have been sent."""

    def __init__(self) -> None:
        self.sent: list[Request] = []

    def send_request(self, request: Request, peer: Peer) -> str:
        self.sent.append(request)
        return f"txn-{len(self.sent)}"


def _sent() -> Any:  # typed as the stack it stands in for
    return SentRequests()


def _leg() -> BLeg:
    dialog = Dialog("cid@h", "ltag", None, "<sip:1@h>", "<sip:2@h>", "sip:2@h", [], 1, PEER)
    invite = dialog.request("INVITE", LocalAddress("127.0.0.1", 5060), cseq=1)
    return BLeg(invite, "txn-0", "sip:2@h", PEER, dialog)


def test_a_leg_that_has_rung_is_cancelled_once() -> None:
    leg, stack = _leg(), _sent()
    leg.got_provisional = True
    leg.cancel(stack)
    leg.cancel(stack)  # e.g. forwarding, then the target answering
    leg.send_wanted_cancel(stack)  # a late 180
    assert [r.method for r in stack.sent] == ["CANCEL"]
    cancel = stack.sent[0]
    assert cancel.cseq.seq == 1 and cancel.call_id == "cid@h"
    assert cancel.headers.get_all("Via") == leg.invite.headers.get_all("Via")


def test_a_leg_waits_for_its_first_provisional_before_the_cancel() -> None:
    leg, stack = _leg(), _sent()
    leg.cancel(stack)
    leg.cancel(stack)
    assert stack.sent == []
    leg.got_provisional = True
    leg.send_wanted_cancel(stack)
    leg.send_wanted_cancel(stack)  # the 183 after the 180
    assert [r.method for r in stack.sent] == ["CANCEL"]


def test_a_leg_nobody_cancelled_gets_no_cancel() -> None:
    leg, stack = _leg(), _sent()
    leg.got_provisional = True
    leg.send_wanted_cancel(stack)
    assert stack.sent == []
