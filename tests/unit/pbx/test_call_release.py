"""A call whose event handling fails is released, not left hanging:
500 to a caller still waiting, BYE on both sides of an answered call."""

from __future__ import annotations

from typing import Any

import pytest

from vaxla.metrics import Metrics
from vaxla.pbx.application import PbxApplication
from vaxla.pbx.b2bua import B2BUA, BLeg, Call, CallState, LegState
from vaxla.pbx.cdr import CallOutcome
from vaxla.pbx.dialog import Dialog, LocalAddress
from vaxla.sip.events import Peer, RequestReceived, ResponseReceived
from vaxla.sip.message import Request, Response, make_response, parse_message

PHONE_A = Peer("udp", "127.0.0.1", 5071)
PHONE_B = Peer("udp", "127.0.0.1", 5072)

INVITE = (
    "INVITE sip:1002@127.0.0.1:5060 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bK-a1\r\n"
    "Max-Forwards: 70\r\n"
    "From: <sip:1001@127.0.0.1>;tag=a-tag\r\n"
    "To: <sip:1002@127.0.0.1>\r\n"
    "Call-ID: call-1\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: <sip:1001@127.0.0.1:5071>\r\n"
    "Content-Length: 0\r\n\r\n"
)


class Wire:
    """Stands in for the SIP stack: what would have been sent, and where."""

    host, port = "127.0.0.1", 5060

    def __init__(self) -> None:
        self.requests: list[tuple[Request, Peer]] = []
        self.responses: list[tuple[str, Response]] = []

    def send_request(self, request: Request, peer: Peer) -> str:
        self.requests.append((request, peer))
        return f"client-{len(self.requests)}"

    def send_response(self, txn_id: str, response: Response) -> None:
        self.responses.append((txn_id, response))

    def send_stateless(self, message: Any, peer: Peer) -> None:
        pass


class Records:
    def __init__(self) -> None:
        self.added: list[CallOutcome] = []

    def add(self, outcome: CallOutcome) -> None:
        self.added.append(outcome)


def _node() -> tuple[B2BUA, PbxApplication, Wire, Records]:
    wire, records = Wire(), Records()
    b2bua = B2BUA(
        wire,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        records,  # type: ignore[arg-type]
        Metrics(),
        no_answer_timeout=30,
        trusted_hosts=set(),
        forwarding=object(),  # type: ignore[arg-type]
    )
    return b2bua, PbxApplication(wire, None, b2bua), wire, records  # type: ignore[arg-type]


def _call(b2bua: B2BUA) -> tuple[Call, BLeg]:
    invite = parse_message(INVITE.encode())
    assert isinstance(invite, Request)
    me = LocalAddress("127.0.0.1", 5060)
    a = Dialog(
        "call-1",
        "our-a-tag",
        "a-tag",
        "<sip:1002@127.0.0.1>",
        "<sip:1001@127.0.0.1>",
        "sip:1001@127.0.0.1:5071",
        [],
        0,
        PHONE_A,
    )
    b = Dialog(
        "call-1-b",
        "our-b-tag",
        None,
        "<sip:1001@127.0.0.1>",
        "<sip:1002@127.0.0.1>",
        "sip:1002@127.0.0.1:5072",
        [],
        1,
        PHONE_B,
    )
    b_invite = b.request("INVITE", me, cseq=1)
    leg = BLeg(b_invite, "fork-1", "sip:1002@127.0.0.1:5072", PHONE_B, b, number="1002")
    call = Call("server-1", invite, PHONE_A, a, CallOutcome("call-1", "1001", "1002", 0.0))
    call.forks[leg.txn_id] = leg
    b2bua.adopt(call)
    b2bua.forks[leg.txn_id] = (call, leg)
    b2bua.bind(call, "a", a)
    b2bua.bind(call, "b", b, leg)
    return call, leg


def _broken(*args: object, **kwargs: object) -> None:
    raise RuntimeError("a bug in a handler")


def test_a_ringing_call_whose_answer_cannot_be_handled_gets_500(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    b2bua, app, wire, records = _node()
    call, leg = _call(b2bua)
    call.state, leg.state, leg.got_provisional = CallState.RINGING, LegState.EARLY, True
    leg.dialog.remote_tag = "b-tag"
    monkeypatch.setattr(b2bua, "_fork_answered", _broken)

    ok = make_response(leg.invite, 200, to_tag="b-tag")
    app.handle_event(ResponseReceived("fork-1", ok, PHONE_B))

    assert [(txn, r.status) for txn, r in wire.responses] == [("server-1", 500)]
    assert [r.method for r, _ in wire.requests] == ["CANCEL"]  # the phone stops ringing
    assert call.state is CallState.ENDED
    assert [(o.result, o.sip_status) for o in records.added] == [("failed", 500)]
    assert b2bua.active == 0


def test_an_answered_call_whose_request_cannot_be_handled_is_hung_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    b2bua, app, wire, records = _node()
    call, leg = _call(b2bua)
    leg.dialog.remote_tag, leg.dialog.confirmed, leg.state = "b-tag", True, LegState.CONFIRMED
    call.a_dialog.confirmed, call.state, call.b = True, CallState.ANSWERED, leg
    b2bua.bind(call, "b", leg.dialog, leg)
    monkeypatch.setattr(b2bua, "on_in_dialog", _broken)

    info = call.a_dialog.request("INFO", LocalAddress("127.0.0.1", 5071))
    info.headers.set("To", "<sip:1002@127.0.0.1>;tag=our-a-tag")
    info.headers.set("From", "<sip:1001@127.0.0.1>;tag=a-tag")
    info.invalidate()
    reparsed = parse_message(bytes(info))
    assert isinstance(reparsed, Request)
    app.handle_event(RequestReceived("server-2", reparsed, PHONE_A))

    byes = [(r.method, peer) for r, peer in wire.requests]
    assert byes == [("BYE", PHONE_A), ("BYE", PHONE_B)]
    assert [(o.result, o.hangup_by) for o in records.added] == [("failed", "server")]


def test_an_event_of_no_call_still_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    b2bua, app, _, _ = _node()
    monkeypatch.setattr(b2bua, "on_stray_2xx", _broken)
    invite = parse_message(INVITE.encode())
    assert isinstance(invite, Request)
    with pytest.raises(RuntimeError):  # the stack logs it; there is no call to release
        app.handle_event(ResponseReceived(None, make_response(invite, 200, to_tag="x"), PHONE_B))
