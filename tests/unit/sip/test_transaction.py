"""RFC 3261 §17 transaction layer (with RFC 6026): timers, matching, absorption,
ACK generation, CANCEL, 100 Trying, transport errors; property tests over the
state tables and random drives of each machine; a lossy two-layer run."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.sip.harness import Harness, LossyNetwork, Node
from vaxla.sip.errors import LocalProtocolError
from vaxla.sip.events import (
    AckReceived,
    AckTimeout,
    CancelReceived,
    Event,
    RequestReceived,
    ResponseReceived,
    TransactionTerminated,
    TransactionTimeout,
)
from vaxla.sip.message import Request, Response, make_response, parse_message
from vaxla.sip.transaction import Peer, TimerConfig, TransactionLayer
from vaxla.sip.transaction_table import (
    INITIAL,
    STATE_TIMERS,
    STATES,
    TABLES,
    TERMINATED,
    TIMER_INPUT,
    Input,
    InviteClientState,
    InviteServerState,
    Kind,
    NonInviteClientState,
    NonInviteServerState,
    State,
)

UDP = Peer("udp", "192.0.2.10", 5060)
TCP = Peer("tcp", "192.0.2.10", 5060, connection_id=7)
OTHER = Peer("udp", "198.51.100.20", 5060)

T1, T2, T4 = 0.5, 4.0, 5.0


# ---------------------------------------------------------------- builders


def request(
    method: str = "INVITE",
    *,
    branch: str | None = "z9hG4bKbranch1",
    via_host: str = "192.0.2.10",
    via_port: int | None = 5060,
    transport: str = "UDP",
    call_id: str = "call-1@192.0.2.10",
    cseq: int = 1,
    cseq_method: str | None = None,
    from_tag: str = "fromtag1",
    to_tag: str | None = None,
    uri: str = "sip:bob@example.com",
    routes: Sequence[str] = (),
    extra_vias: Sequence[str] = (),
) -> Request:
    sent_by = via_host if via_port is None else f"{via_host}:{via_port}"
    via = f"SIP/2.0/{transport} {sent_by}" + (f";branch={branch}" if branch else "")
    lines = [f"{method} {uri} SIP/2.0", f"Via: {via}"]
    lines += [f"Via: {v}" for v in extra_vias]
    lines += [f"Route: {r}" for r in routes]
    lines += [
        "Max-Forwards: 70",
        f"From: <sip:alice@example.com>;tag={from_tag}",
        "To: <sip:bob@example.com>" + (f";tag={to_tag}" if to_tag else ""),
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {cseq_method or method}",
        "Content-Length: 0",
        "",
        "",
    ]
    msg = parse_message("\r\n".join(lines).encode())
    assert isinstance(msg, Request)
    return msg


def response(req: Request, status: int, to_tag: str | None = "totag1") -> Response:
    """A response as the remote UAS would send it (through bytes and back)."""
    resp = make_response(req, status, to_tag=to_tag if status > 100 else None)
    msg = parse_message(bytes(resp))
    assert isinstance(msg, Response)
    return msg


def ack_for_2xx(req: Request, to_tag: str = "totag1", branch: str = "z9hG4bKack1") -> Request:
    return request(
        "ACK",
        branch=branch,
        call_id=req.call_id,
        cseq=req.cseq.seq,
        to_tag=to_tag,
        from_tag=req.from_.tag or "",
    )


def sent(layer: TransactionLayer) -> list[bytes]:
    return [data for data, _ in layer.datagrams_to_send()]


def start_lines(datagrams: list[bytes]) -> list[str]:
    return [d.split(b"\r\n", 1)[0].decode() for d in datagrams]


class Clock:
    """Fake time: advance() runs every timer that fell due, in order."""

    def __init__(self, layer: TransactionLayer) -> None:
        self.layer = layer
        self.now = 0.0
        self.events: list[Event] = []
        self.sent_at: list[tuple[float, bytes]] = []

    def advance(self, dt: float) -> list[Event]:
        end = self.now + dt
        out: list[Event] = []
        while True:
            deadline = self.layer.get_timer()
            if deadline is None or deadline > end:
                break
            self.now = max(self.now, deadline)
            out += self.layer.handle_timer(self.now)
            self.sent_at += [(self.now, d) for d, _ in self.layer.datagrams_to_send()]
        self.now = end
        self.events += out
        return out


def kinds(events: list[Event]) -> list[str]:
    return [type(e).__name__ for e in events]


# ------------------------------------------------------------ basics


def test_peer_reliability() -> None:
    assert not UDP.reliable
    assert TCP.reliable
    assert Peer("tls", "h", 5061).reliable
    assert Peer("WSS", "h", 443).reliable


def test_timer_config_derived_values() -> None:
    cfg = TimerConfig()
    assert (cfg.t1, cfg.t2, cfg.t4, cfg.d) == (0.5, 4.0, 5.0, 32.0)
    assert cfg.b == cfg.f == cfg.h == cfg.j == 32.0
    assert TimerConfig(t1=0.1).b == pytest.approx(6.4)


# ------------------------------------------------- INVITE client §17.1.1


def test_invite_client_udp_timer_a_doubles_and_timer_b_times_out() -> None:
    layer = TransactionLayer()
    txn = layer.send_request(request(), UDP, 0.0)
    assert txn == "z9hG4bKbranch1"
    first = sent(layer)
    assert start_lines(first) == ["INVITE sip:bob@example.com SIP/2.0"]
    clock = Clock(layer)
    clock.advance(31.9)
    # Timer A: T1, 2T1, 4T1, ... without a cap (§17.1.1.2): 0.5, 1.5, 3.5, 7.5, 15.5, 31.5
    assert [t for t, _ in clock.sent_at] == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert all(d == first[0] for _, d in clock.sent_at)  # the same bytes, serialised once
    assert clock.events == []
    events = clock.advance(0.2)  # Timer B = 64*T1 = 32 s
    assert events == [TransactionTimeout(txn), TransactionTerminated(txn)]
    assert len(layer) == 0
    assert layer.get_timer() is None


def test_invite_client_tcp_no_retransmission_timer_b_still_runs() -> None:
    layer = TransactionLayer()
    txn = layer.send_request(request(transport="TCP"), TCP, 0.0)
    assert len(sent(layer)) == 1
    assert layer.get_timer() == 32.0
    clock = Clock(layer)
    assert clock.advance(40) == [TransactionTimeout(txn), TransactionTerminated(txn)]
    assert clock.sent_at == []


def test_invite_client_provisional_stops_retransmission_and_timer_c_guards() -> None:
    layer = TransactionLayer()
    req = request()
    txn = layer.send_request(req, UDP, 0.0)
    sent(layer)
    clock = Clock(layer)
    clock.advance(0.6)  # one retransmission at 0.5
    assert len(clock.sent_at) == 1
    r180 = response(req, 180)
    assert layer.receive(r180, UDP, clock.now) == [ResponseReceived(txn, r180, UDP)]
    clock.advance(100)
    assert len(clock.sent_at) == 1  # Proceeding: no more retransmission, no Timer B
    clock.advance(70)
    assert layer.receive(response(req, 183), UDP, clock.now)  # restarts Timer C (180 s)
    assert clock.advance(179) == []
    assert clock.advance(2) == [TransactionTimeout(txn), TransactionTerminated(txn)]


def test_invite_client_100_does_not_restart_timer_c() -> None:
    layer = TransactionLayer()
    req = request()
    txn = layer.send_request(req, UDP, 0.0)
    layer.receive(response(req, 100), UDP, 0.1)
    clock = Clock(layer)
    clock.now = 0.1
    clock.advance(170)
    layer.receive(response(req, 100), UDP, clock.now)
    assert clock.advance(10.01) == [TransactionTimeout(txn), TransactionTerminated(txn)]


def test_invite_client_failure_acks_absorbs_and_timer_d() -> None:
    layer = TransactionLayer()
    req = request(routes=["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"])
    txn = layer.send_request(req, UDP, 0.0)
    sent(layer)
    r486 = response(req, 486)
    assert layer.receive(r486, UDP, 1.0) == [ResponseReceived(txn, r486, UDP)]
    [ack_bytes] = sent(layer)
    ack = parse_message(ack_bytes)
    assert isinstance(ack, Request)
    # §17.1.1.3
    assert ack.method == "ACK"
    assert str(ack.uri) == "sip:bob@example.com"
    assert [str(v) for v in ack.vias] == [str(req.top_via)]
    assert ack.top_via.branch == "z9hG4bKbranch1"
    assert ack.call_id == req.call_id
    assert ack.from_.tag == "fromtag1"
    assert ack.to.tag == "totag1"
    assert (ack.cseq.seq, ack.cseq.method) == (1, "ACK")
    assert ack.headers.get_all("Route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert ack.body == b""
    # a retransmitted 486 is absorbed; the same ACK goes out again
    assert layer.receive(r486, UDP, 2.0) == []
    assert sent(layer) == [ack_bytes]
    clock = Clock(layer)
    clock.now = 1.0
    assert clock.advance(31.9) == []
    assert clock.sent_at == []  # no request retransmission in Completed
    assert clock.advance(0.2) == [TransactionTerminated(txn)]  # Timer D = 32 s


def test_invite_client_failure_on_tcp_terminates_at_once() -> None:
    layer = TransactionLayer()
    req = request(transport="TCP")
    txn = layer.send_request(req, TCP, 0.0)
    layer.receive(response(req, 503), TCP, 1.0)
    assert len(sent(layer)) == 2  # INVITE, ACK
    assert layer.get_timer() == 1.0  # Timer D = 0
    assert layer.handle_timer(1.0) == [TransactionTerminated(txn)]


def test_invite_client_accepted_passes_2xx_retransmissions_then_timer_m() -> None:
    layer = TransactionLayer()
    req = request()
    txn = layer.send_request(req, UDP, 0.0)
    sent(layer)
    r200 = response(req, 200)
    assert layer.receive(r200, UDP, 1.0) == [ResponseReceived(txn, r200, UDP)]
    assert sent(layer) == []  # the ACK for a 2xx is the TU's
    assert layer.receive(r200, UDP, 2.0) == [ResponseReceived(txn, r200, UDP)]
    assert layer.receive(response(req, 180), UDP, 2.0) == []
    clock = Clock(layer)
    clock.now = 1.0
    assert clock.advance(31.9) == []
    assert clock.sent_at == []
    assert clock.advance(0.2) == [TransactionTerminated(txn)]  # Timer M = 64*T1
    # after the transaction is gone a stray 2xx still reaches the TU, without an id
    assert layer.receive(r200, UDP, 40.0) == [ResponseReceived(None, r200, UDP)]
    assert layer.receive(response(req, 486), UDP, 40.0) == []


def test_invite_client_accepted_on_tcp_timer_m_still_runs() -> None:
    layer = TransactionLayer()
    req = request(transport="TCP")
    txn = layer.send_request(req, TCP, 0.0)
    layer.receive(response(req, 200), TCP, 1.0)
    assert layer.get_timer() == 33.0  # Timer M = 64*T1 on any transport (RFC 6026)
    assert layer.handle_timer(33.0) == [TransactionTerminated(txn)]


def test_invite_client_2xx_after_failure_from_another_fork_reaches_tu() -> None:
    layer = TransactionLayer()
    req = request()
    txn = layer.send_request(req, UDP, 0.0)
    layer.receive(response(req, 486, to_tag="fork1"), UDP, 1.0)
    r200 = response(req, 200, to_tag="fork2")
    assert layer.receive(r200, UDP, 1.5) == [ResponseReceived(txn, r200, UDP)]


# --------------------------------------------- non-INVITE client §17.1.2


def test_non_invite_client_timer_e_capped_at_t2_and_timer_f() -> None:
    layer = TransactionLayer()
    txn = layer.send_request(request("OPTIONS"), UDP, 0.0)
    sent(layer)
    clock = Clock(layer)
    clock.advance(31.99)
    times = [t for t, _ in clock.sent_at]
    # intervals 0.5, 1, 2, 4, 4, 4, ...
    assert times == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert clock.advance(0.02) == [TransactionTimeout(txn), TransactionTerminated(txn)]
    assert len(layer) == 0


def test_non_invite_client_proceeding_retransmits_every_t2() -> None:
    layer = TransactionLayer()
    req = request("REGISTER")
    txn = layer.send_request(req, UDP, 0.0)
    sent(layer)
    clock = Clock(layer)
    clock.advance(0.6)  # retransmission at 0.5, next due at 1.5
    r100 = response(req, 100)
    assert layer.receive(r100, UDP, clock.now) == [ResponseReceived(txn, r100, UDP)]
    clock.advance(12)
    # Timer E keeps its pending deadline (1.5) and then fires every T2
    assert [t for t, _ in clock.sent_at] == [0.5, 1.5, 5.5, 9.5]
    r200 = response(req, 200)
    assert layer.receive(r200, UDP, clock.now) == [ResponseReceived(txn, r200, UDP)]
    assert layer.receive(r200, UDP, clock.now) == []  # Completed absorbs
    completed_at = clock.now
    assert clock.advance(T4 - 0.01) == []
    assert clock.advance(0.02) == [TransactionTerminated(txn)]  # Timer K = T4
    assert clock.now - completed_at < T4 + 0.02
    assert [t for t, _ in clock.sent_at] == [0.5, 1.5, 5.5, 9.5]


def test_non_invite_client_tcp_no_timer_e_timer_k_zero() -> None:
    layer = TransactionLayer()
    req = request("OPTIONS", transport="TCP")
    txn = layer.send_request(req, TCP, 0.0)
    sent(layer)
    clock = Clock(layer)
    clock.advance(10)
    assert clock.sent_at == []
    layer.receive(response(req, 200), TCP, clock.now)
    assert layer.get_timer() == clock.now
    assert layer.handle_timer(clock.now) == [TransactionTerminated(txn)]


def test_non_invite_client_tcp_timer_f() -> None:
    layer = TransactionLayer()
    txn = layer.send_request(request("OPTIONS", transport="TCP"), TCP, 0.0)
    assert Clock(layer).advance(33) == [TransactionTimeout(txn), TransactionTerminated(txn)]


def test_client_matching_needs_branch_and_cseq_method() -> None:
    layer = TransactionLayer()
    req = request("OPTIONS")
    layer.send_request(req, UDP, 0.0)
    other_branch = response(request("OPTIONS", branch="z9hG4bKother"), 200)
    assert layer.receive(other_branch, UDP, 0.1) == []
    wrong_method = response(request("INFO"), 200)  # same branch, CSeq method INFO
    assert layer.receive(wrong_method, UDP, 0.1) == []
    assert len(layer) == 1


def test_client_cancel_has_its_own_transaction_and_shortens_timer_c() -> None:
    layer = TransactionLayer()
    invite = request()
    invite_id = layer.send_request(invite, UDP, 0.0)
    layer.receive(response(invite, 180), UDP, 0.1)
    cancel = request("CANCEL")
    cancel_id = layer.send_request(cancel, UDP, 1.0)
    assert cancel_id == "z9hG4bKbranch1|CANCEL"
    r200 = response(cancel, 200)
    assert layer.receive(r200, UDP, 1.1) == [ResponseReceived(cancel_id, r200, UDP)]
    r487 = response(invite, 487)
    assert layer.receive(r487, UDP, 1.2) == [ResponseReceived(invite_id, r487, UDP)]
    assert start_lines(sent(layer))[-1].startswith("ACK ")

    # without a final response the cancelled INVITE gives up after 64*T1 (§9.1)
    layer = TransactionLayer()
    invite_id = layer.send_request(invite, UDP, 0.0)
    layer.receive(response(invite, 180), UDP, 0.1)
    layer.send_request(cancel, UDP, 1.0)
    clock = Clock(layer)
    clock.now = 1.0
    layer.receive(response(invite, 183), UDP, 2.0)  # does not restart Timer C any more
    events = clock.advance(32.1)
    assert TransactionTimeout(invite_id) in events
    assert TransactionTerminated(invite_id) in events


def test_send_request_rejects_what_cannot_be_a_transaction() -> None:
    layer = TransactionLayer()
    with pytest.raises(LocalProtocolError):
        layer.send_request(request(branch=None), UDP, 0.0)
    with pytest.raises(LocalProtocolError):
        layer.send_request(request("ACK"), UDP, 0.0)
    with pytest.raises(LocalProtocolError):
        layer.send_request(request("INVITE", cseq_method="OPTIONS"), UDP, 0.0)
    no_via = Request("OPTIONS", "sip:bob@example.com", [("CSeq", "1 OPTIONS")])
    with pytest.raises(LocalProtocolError):
        layer.send_request(no_via, UDP, 0.0)
    layer.send_request(request(), UDP, 0.0)
    with pytest.raises(LocalProtocolError):
        layer.send_request(request(), UDP, 0.0)  # branch already in use
    assert len(layer) == 1


def test_send_stateless() -> None:
    layer = TransactionLayer()
    ack = ack_for_2xx(request())
    layer.send_stateless(ack, UDP)
    assert layer.datagrams_to_send() == [(bytes(ack), UDP)]
    assert layer.datagrams_to_send() == []
    assert len(layer) == 0


# ------------------------------------------------- INVITE server §17.2.1


def server_invite(
    layer: TransactionLayer,
    peer: Peer = UDP,
    now: float = 0.0,
    *,
    branch: str | None = "z9hG4bKbranch1",
    call_id: str = "call-1@192.0.2.10",
) -> tuple[str, Request]:
    transport = "TCP" if peer.reliable else "UDP"
    req = request(transport=transport, branch=branch, call_id=call_id)
    events = layer.receive(req, peer, now)
    assert len(events) == 1 and isinstance(events[0], RequestReceived)
    assert events[0].request is req and events[0].peer == peer
    return events[0].txn_id, req


def test_server_transaction_id() -> None:
    layer = TransactionLayer()
    txn, _ = server_invite(layer)
    # branch, Via sent-by, and (on UDP) the source address
    assert txn == f"z9hG4bKbranch1|192.0.2.10:5060|{UDP.host}:{UDP.port}|INVITE"


def test_same_branch_from_another_source_is_a_new_transaction() -> None:
    layer = TransactionLayer()
    txn, req = server_invite(layer)
    other = Peer("udp", UDP.host, UDP.port + 1)
    events = layer.receive(req, other, 0.1)
    assert len(events) == 1 and isinstance(events[0], RequestReceived)
    assert events[0].txn_id != txn


def test_invite_server_sends_100_trying_after_200ms() -> None:
    layer = TransactionLayer()
    txn, req = server_invite(layer)
    assert layer.get_timer() == pytest.approx(0.2)
    assert layer.handle_timer(0.19) == []
    assert sent(layer) == []
    assert layer.handle_timer(0.2) == []
    [trying] = sent(layer)
    msg = parse_message(trying)
    assert isinstance(msg, Response) and msg.status == 100
    assert msg.to.tag is None and msg.top_via.branch == "z9hG4bKbranch1"
    # a retransmitted INVITE gets the 100 again (absorbed, not passed to the TU)
    assert layer.receive(req, UDP, 0.5) == []
    assert sent(layer) == [trying]
    assert len(layer) == 1 and txn


def test_invite_server_no_100_when_tu_answers_first() -> None:
    layer = TransactionLayer()
    txn, req = server_invite(layer)
    layer.send_response(txn, make_response(req, 180, to_tag="x"), 0.1)
    assert start_lines(sent(layer)) == ["SIP/2.0 180 Ringing"]
    clock = Clock(layer)
    clock.now = 0.1
    clock.advance(10)
    assert clock.sent_at == []


def test_invite_server_tcp_also_sends_100() -> None:
    layer = TransactionLayer()
    server_invite(layer, TCP)
    layer.handle_timer(0.2)
    assert start_lines(sent(layer)) == ["SIP/2.0 100 Trying"]


def test_invite_server_failure_timer_g_until_timer_h() -> None:
    layer = TransactionLayer()
    txn, req = server_invite(layer)
    layer.send_response(txn, make_response(req, 486, to_tag="t"), 0.0)
    [busy] = sent(layer)
    clock = Clock(layer)
    clock.advance(31.99)
    times = [t for t, _ in clock.sent_at]
    # Timer G: T1, then doubling capped at T2
    assert times == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert {d for _, d in clock.sent_at} == {busy}
    assert clock.events == []
    assert clock.advance(0.02) == [AckTimeout(txn), TransactionTerminated(txn)]  # Timer H


def test_invite_server_ack_confirms_and_timer_i() -> None:
    layer = TransactionLayer()
    txn, req = server_invite(layer)
    layer.send_response(txn, make_response(req, 404, to_tag="t"), 0.0)
    sent(layer)
    clock = Clock(layer)
    clock.advance(0.6)  # one retransmission
    ack = request("ACK", to_tag="t")  # same branch as the INVITE (§17.1.1.3)
    assert layer.receive(ack, UDP, clock.now) == []  # not passed to the TU
    assert layer.receive(ack, UDP, clock.now) == []  # Confirmed absorbs ACKs
    assert layer.receive(req, UDP, clock.now) == []  # and INVITE retransmissions
    assert sent(layer) == []
    assert clock.advance(T4 - 0.01) == []
    assert len(clock.sent_at) == 1
    assert clock.advance(0.02) == [TransactionTerminated(txn)]  # Timer I = T4


def test_invite_server_failure_tcp_no_timer_g_timer_i_zero() -> None:
    layer = TransactionLayer()
    txn, req = server_invite(layer, TCP)
    layer.send_response(txn, make_response(req, 486, to_tag="t"), 0.0)
    sent(layer)
    clock = Clock(layer)
    clock.advance(5)
    assert clock.sent_at == []
    layer.receive(request("ACK", to_tag="t", transport="TCP"), TCP, 5.0)
    assert layer.get_timer() == 5.0
    assert layer.handle_timer(5.0) == [TransactionTerminated(txn)]


def test_invite_server_tcp_timer_h() -> None:
    layer = TransactionLayer()
    txn, req = server_invite(layer, TCP)
    layer.send_response(txn, make_response(req, 486, to_tag="t"), 0.0)
    assert Clock(layer).advance(32.1) == [AckTimeout(txn), TransactionTerminated(txn)]


def test_invite_server_accepted_retransmits_2xx_until_ack() -> None:
    layer = TransactionLayer()
    txn, req = server_invite(layer)
    layer.send_response(txn, make_response(req, 180, to_tag="t"), 0.0)
    layer.send_response(txn, make_response(req, 200, to_tag="t"), 0.05)
    _ringing, ok = sent(layer)
    clock = Clock(layer)
    clock.now = 0.05
    clock.advance(4)
    assert [round(t, 2) for t, _ in clock.sent_at] == [0.55, 1.55, 3.55]
    assert {d for _, d in clock.sent_at} == {ok}
    # a retransmitted INVITE gets the 2xx again
    assert layer.receive(req, UDP, clock.now) == []
    assert sent(layer) == [ok]
    # the ACK has its own branch; it matches by Call-ID and CSeq and is reported once
    ack = ack_for_2xx(req, to_tag="t")
    assert layer.receive(ack, UDP, clock.now) == [AckReceived(ack, UDP)]
    assert layer.receive(ack, UDP, clock.now) == []
    assert layer.receive(req, UDP, clock.now) == []  # absorbed, no more 2xx
    clock.advance(27.9)  # to 31.95
    assert len(clock.sent_at) == 3
    assert clock.events == []
    # Timer L (64*T1 after the 2xx) ends the transaction without AckTimeout
    assert clock.advance(0.2) == [TransactionTerminated(txn)]
    # a late ACK is then the dialog's business
    assert layer.receive(ack, UDP, clock.now) == [AckReceived(ack, UDP)]


def test_invite_server_accepted_ack_timeout() -> None:
    layer = TransactionLayer()
    txn, req = server_invite(layer)
    layer.send_response(txn, make_response(req, 200, to_tag="t"), 0.0)
    assert start_lines(sent(layer)) == ["SIP/2.0 200 OK"]
    clock = Clock(layer)
    assert clock.advance(31.99) == []
    assert [t for t, _ in clock.sent_at] == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert clock.advance(0.02) == [AckTimeout(txn), TransactionTerminated(txn)]  # Timer L


def test_invite_server_accepted_tcp_no_retransmission_but_ack_timeout() -> None:
    layer = TransactionLayer()
    txn, req = server_invite(layer, TCP)
    layer.send_response(txn, make_response(req, 200, to_tag="t"), 0.0)
    sent(layer)
    clock = Clock(layer)
    assert clock.advance(32.1) == [AckTimeout(txn), TransactionTerminated(txn)]
    assert clock.sent_at == []


def test_invite_server_ack_with_the_invite_branch_in_accepted() -> None:
    layer = TransactionLayer()
    txn, req = server_invite(layer)
    layer.send_response(txn, make_response(req, 200, to_tag="t"), 0.0)
    ack = request("ACK", to_tag="t")
    assert layer.receive(ack, UDP, 0.1) == [AckReceived(ack, UDP)]
    clock = Clock(layer)
    clock.now = 0.1
    clock.advance(10)
    assert clock.sent_at == []


def test_invite_server_tu_response_rules() -> None:
    layer = TransactionLayer()
    txn, req = server_invite(layer)
    with pytest.raises(LocalProtocolError):
        layer.send_response("no-such-transaction", make_response(req, 200), 0.0)
    with pytest.raises(LocalProtocolError):
        layer.send_response(txn, Response(99), 0.0)
    layer.send_response(txn, make_response(req, 200, to_tag="t"), 0.0)
    with pytest.raises(LocalProtocolError):
        layer.send_response(txn, make_response(req, 180, to_tag="t"), 0.0)
    with pytest.raises(LocalProtocolError):
        layer.send_response(txn, make_response(req, 486, to_tag="t"), 0.0)
    # another 2xx in Accepted is sent and becomes the one retransmitted
    layer.send_response(txn, make_response(req, 200, reason="Fine", to_tag="t"), 0.1)
    assert start_lines(sent(layer)) == ["SIP/2.0 200 OK", "SIP/2.0 200 Fine"]
    layer.handle_timer(0.5)  # Timer G retransmits the latest 2xx
    assert start_lines(sent(layer)) == ["SIP/2.0 200 Fine"]
    # after a failure, further final responses are discarded (§17.2.1)
    txn2, req2 = server_invite(layer, call_id="call-2", branch="z9hG4bKb2")
    layer.send_response(txn2, make_response(req2, 486, to_tag="t"), 1.0)
    layer.send_response(txn2, make_response(req2, 200, to_tag="t"), 1.0)
    assert start_lines(sent(layer)) == ["SIP/2.0 486 Busy Here"]


# --------------------------------------------- non-INVITE server §17.2.2


def test_non_invite_server_absorbs_and_timer_j() -> None:
    layer = TransactionLayer()
    req = request("OPTIONS")
    [event] = layer.receive(req, UDP, 0.0)
    assert isinstance(event, RequestReceived)
    txn = event.txn_id
    assert txn == "z9hG4bKbranch1|192.0.2.10:5060|192.0.2.10:5060|OPTIONS"
    assert layer.receive(req, UDP, 0.5) == []  # Trying: nothing to resend
    assert sent(layer) == []
    clock = Clock(layer)
    clock.advance(1)
    assert clock.sent_at == []  # no 100 Trying for non-INVITE
    layer.send_response(txn, make_response(req, 100), 1.0)
    assert layer.receive(req, UDP, 1.5) == []
    assert start_lines(sent(layer)) == ["SIP/2.0 100 Trying", "SIP/2.0 100 Trying"]
    layer.send_response(txn, make_response(req, 200, to_tag="t"), 2.0)
    [ok] = sent(layer)
    assert layer.receive(req, UDP, 2.5) == []
    assert sent(layer) == [ok]
    layer.send_response(txn, make_response(req, 500, to_tag="t"), 2.5)  # discarded
    assert sent(layer) == []
    clock.now = 2.0
    assert clock.advance(31.99) == []
    assert clock.sent_at == []  # no response retransmission for non-INVITE
    assert clock.advance(0.02) == [TransactionTerminated(txn)]  # Timer J = 64*T1
    # a retransmission after J starts a new transaction
    assert kinds(layer.receive(req, UDP, clock.now)) == ["RequestReceived"]


def test_non_invite_server_left_unanswered_ends_after_64_t1() -> None:
    layer = TransactionLayer()
    req = request("OPTIONS")
    [event] = layer.receive(req, UDP, 0.0)
    assert isinstance(event, RequestReceived)
    layer.send_response(event.txn_id, make_response(req, 100), 1.0)  # does not restart it
    assert start_lines(sent(layer)) == ["SIP/2.0 100 Trying"]
    clock = Clock(layer)
    assert clock.advance(31.9) == []
    timeout = [TransactionTimeout(event.txn_id), TransactionTerminated(event.txn_id)]
    assert clock.advance(0.2) == timeout
    assert clock.sent_at == []  # dropped silently: the client gave up at Timer F
    with pytest.raises(LocalProtocolError):
        layer.send_response(event.txn_id, make_response(req, 200, to_tag="t"), clock.now)


def test_invite_server_left_unanswered_guard() -> None:
    layer = TransactionLayer()
    txn, req = server_invite(layer)
    clock = Clock(layer)
    clock.advance(100)  # 100 Trying at 0.2 (sent by the layer: no restart)
    layer.send_response(txn, make_response(req, 180, to_tag="t"), clock.now)  # restarts
    assert clock.advance(179.9) == []
    assert clock.advance(0.2) == [TransactionTimeout(txn), TransactionTerminated(txn)]
    assert start_lines([d for _, d in clock.sent_at]) == [
        "SIP/2.0 100 Trying",
        "SIP/2.0 180 Ringing",
    ]


def test_non_invite_server_tcp_timer_j_zero() -> None:
    layer = TransactionLayer()
    req = request("REGISTER", transport="TCP")
    [event] = layer.receive(req, TCP, 0.0)
    assert isinstance(event, RequestReceived)
    layer.send_response(event.txn_id, make_response(req, 200, to_tag="t"), 1.0)
    assert sent(layer)[0].startswith(b"SIP/2.0 200 OK")
    assert layer.handle_timer(1.0) == [TransactionTerminated(event.txn_id)]


def test_server_matching_uses_sent_by_and_method() -> None:
    layer = TransactionLayer()
    layer.receive(request("OPTIONS"), UDP, 0.0)
    # same branch, other sent-by: another transaction
    assert kinds(layer.receive(request("OPTIONS", via_port=5070), UDP, 0.0)) == ["RequestReceived"]
    assert kinds(layer.receive(request("OPTIONS", via_port=None), UDP, 0.0)) == ["RequestReceived"]
    # same branch and sent-by, other method: another transaction
    assert kinds(layer.receive(request("INFO"), UDP, 0.0)) == ["RequestReceived"]
    assert len(layer) == 4


# ---------------------------------------------------------- CANCEL §9.2


def test_cancel_matching_invite_is_answered_200() -> None:
    layer = TransactionLayer()
    txn, req = server_invite(layer)
    layer.send_response(txn, make_response(req, 180, to_tag="ringtag"), 0.0)
    sent(layer)
    cancel = request("CANCEL")
    [event] = layer.receive(cancel, UDP, 1.0)
    assert isinstance(event, CancelReceived)
    assert event.invite_txn_id == txn
    assert event.txn_id == "z9hG4bKbranch1|192.0.2.10:5060|192.0.2.10:5060|CANCEL"
    [ok] = sent(layer)
    msg = parse_message(ok)
    assert isinstance(msg, Response)
    assert (msg.status, msg.cseq.method) == (200, "CANCEL")
    assert msg.to.tag == "ringtag"  # same To tag as the INVITE's responses (§9.2)
    # the INVITE is untouched: the TU sends the 487
    layer.send_response(txn, make_response(req, 487, to_tag="ringtag"), 1.1)
    assert start_lines(sent(layer)) == ["SIP/2.0 487 Request Terminated"]
    # a retransmitted CANCEL gets the same 200, no new event
    assert layer.receive(cancel, UDP, 1.5) == []
    assert sent(layer) == [ok]


def test_cancel_without_transaction_is_answered_481() -> None:
    layer = TransactionLayer()
    cancel = request("CANCEL", branch="z9hG4bKunknown")
    [event] = layer.receive(cancel, UDP, 0.0)
    assert isinstance(event, CancelReceived) and event.invite_txn_id is None
    [answer] = sent(layer)
    msg = parse_message(answer)
    assert isinstance(msg, Response) and msg.status == 481 and msg.to.tag
    # the CANCEL's own transaction lives on for Timer J
    assert len(layer) == 1
    assert Clock(layer).advance(33) == [TransactionTerminated(event.txn_id)]


def test_cancel_before_tu_answered_gets_a_tag() -> None:
    layer = TransactionLayer()
    txn, _ = server_invite(layer)
    layer.handle_timer(0.2)  # 100 Trying has no To tag
    sent(layer)
    [event] = layer.receive(request("CANCEL"), UDP, 0.3)
    assert isinstance(event, CancelReceived) and event.invite_txn_id == txn
    msg = parse_message(sent(layer)[0])
    assert isinstance(msg, Response) and msg.status == 200 and msg.to.tag


# ------------------------------------------------------------ RFC 2543


def test_rfc2543_matching_without_magic_cookie() -> None:
    layer = TransactionLayer()
    txn, req = server_invite(layer, branch=None)
    assert txn.startswith("rfc2543|")
    assert layer.receive(request(branch=None), UDP, 0.5) == []  # retransmission absorbed
    # a different CSeq is a different transaction
    assert kinds(layer.receive(request(cseq=2, branch=None), UDP, 0.5)) == ["RequestReceived"]
    # a branch without the cookie is matched the 2543 way too
    txn3, _ = server_invite(layer, call_id="legacy", branch="1234abcd")
    assert layer.receive(request(call_id="legacy", branch="1234abcd"), UDP, 0.6) == []
    layer.send_response(txn, make_response(req, 486, to_tag="t"), 1.0)
    [busy] = sent(layer)
    assert layer.receive(request(branch=None), UDP, 1.1) == []
    assert sent(layer) == [busy]
    # the ACK matches with the To tag of our response (§17.2.3) and is absorbed
    assert layer.receive(request("ACK", to_tag="t", branch=None), UDP, 1.2) == []
    clock = Clock(layer)
    clock.now = 1.2
    clock.advance(T4 + 0.1)
    assert TransactionTerminated(txn) in clock.events  # Timer I: it was confirmed
    assert all(d != busy for _, d in clock.sent_at)  # no 486 retransmission after ACK
    # a CANCEL finds the 2543 INVITE transaction
    cancel = request("CANCEL", call_id="legacy", branch="1234abcd")
    [event] = layer.receive(cancel, UDP, clock.now)
    assert isinstance(event, CancelReceived) and event.invite_txn_id == txn3


def test_rfc2543_ack_with_other_to_tag_does_not_match() -> None:
    layer = TransactionLayer()
    txn, req = server_invite(layer, branch=None)
    layer.send_response(txn, make_response(req, 486, to_tag="t"), 0.0)
    ack = request("ACK", to_tag="someone-else", branch=None)
    assert layer.receive(ack, UDP, 0.1) == [AckReceived(ack, UDP)]  # not ours
    assert Clock(layer).advance(33) == [AckTimeout(txn), TransactionTerminated(txn)]


# ------------------------------------------------------ transport errors


def test_transport_error_fails_transactions_to_that_peer() -> None:
    layer = TransactionLayer()
    tcp_invite = request(transport="TCP")
    client_txn = layer.send_request(tcp_invite, TCP, 0.0)
    other_txn = layer.send_request(request("OPTIONS", branch="z9hG4bKother"), OTHER, 0.0)
    server_txn, req = server_invite(layer, TCP, branch="z9hG4bKsrv")
    layer.send_response(server_txn, make_response(req, 200, to_tag="t"), 0.0)
    completed_txn = layer.send_request(request("INFO", branch="z9hG4bKinfo"), TCP, 0.0)
    layer.receive(response(request("INFO", branch="z9hG4bKinfo"), 200), TCP, 0.1)
    # the adapter may not know which connection: connection_id None matches any
    events = layer.transport_error(Peer("tcp", "192.0.2.10", 5060), 1.0)
    assert events == [
        TransactionTimeout(client_txn),
        TransactionTerminated(client_txn),
        TransactionTerminated(completed_txn),
        AckTimeout(server_txn),
        TransactionTerminated(server_txn),
    ]
    assert len(layer) == 1  # the OPTIONS to the other peer is untouched
    assert layer.transport_error(Peer("udp", "192.0.2.10", 5060), 1.0) == []
    assert layer.transport_error(Peer("udp", "198.51.100.20", 5060, 3), 1.0) == [
        TransactionTimeout(other_txn),
        TransactionTerminated(other_txn),
    ]


def test_transport_error_other_connection_id_does_not_match() -> None:
    layer = TransactionLayer()
    layer.send_request(request(transport="TCP"), TCP, 0.0)
    assert layer.transport_error(Peer("tcp", "192.0.2.10", 5060, 8), 1.0) == []
    assert len(layer) == 1


# ------------------------------------------------------------ scale


def test_many_transactions_timer_heap_stays_consistent() -> None:
    layer = TransactionLayer()
    ids = []
    for i in range(3000):
        req = request("OPTIONS", branch=f"z9hG4bK{i}", call_id=f"c{i}")
        ids.append((layer.send_request(req, UDP, i * 0.001), req))
    # answer two thirds: their Timer E/F entries become stale in the heap
    for i, (_, req) in enumerate(ids):
        if i % 3:
            layer.receive(response(req, 200), UDP, 3.0)
    clock = Clock(layer)
    clock.now = 3.0
    events = clock.advance(40)
    timeouts = {e.txn_id for e in events if isinstance(e, TransactionTimeout)}
    assert timeouts == {txn for i, (txn, _) in enumerate(ids) if i % 3 == 0}
    assert sum(isinstance(e, TransactionTerminated) for e in events) == 3000
    assert len(layer) == 0 and layer.get_timer() is None
    assert len(layer._heap) == 0


# ----------------------------------------------------- table properties


def test_tables_are_consistent() -> None:
    for kind, table in TABLES.items():
        states: list[State] = list(STATES[kind])
        assert INITIAL[kind] in states
        for (state, inp), (_, target) in table.items():
            assert state in states and target in states
            assert state not in TERMINATED
            assert isinstance(inp, Input)
            side = CLIENT_INPUTS if kind in CLIENT_KINDS else SERVER_INPUTS
            assert inp in side or inp.name.startswith("TIMER_"), (kind, state, inp)
        for state in states:
            # every timer a state starts has a transition for when it fires there
            for timer in STATE_TIMERS[state]:
                assert (state, TIMER_INPUT[timer]) in table, (kind, state, timer)
            if state not in TERMINATED:
                assert (state, Input.TRANSPORT_ERROR) in table, (kind, state)
        # every state is reachable from the initial one
        seen = {INITIAL[kind]}
        frontier = [INITIAL[kind]]
        while frontier:
            current = frontier.pop()
            for (src, _), (_, dst) in table.items():
                if src is current and dst not in seen:
                    seen.add(dst)
                    frontier.append(dst)
        assert seen == set(states)


CLIENT_KINDS = {Kind.INVITE_CLIENT, Kind.NON_INVITE_CLIENT}
CLIENT_INPUTS = {Input.RECV_1XX, Input.RECV_2XX, Input.RECV_FAILURE, Input.TRANSPORT_ERROR}
SERVER_INPUTS = {
    Input.RECV_REQUEST,
    Input.RECV_ACK,
    Input.SEND_1XX,
    Input.SEND_2XX,
    Input.SEND_FAILURE,
    Input.TRANSPORT_ERROR,
}

# how to bring a fresh transaction of each kind into each state, through the public API
PATHS: dict[State, list[Input]] = {
    InviteClientState.CALLING: [],
    InviteClientState.PROCEEDING: [Input.RECV_1XX],
    InviteClientState.ACCEPTED: [Input.RECV_2XX],
    InviteClientState.COMPLETED: [Input.RECV_FAILURE],
    NonInviteClientState.TRYING: [],
    NonInviteClientState.PROCEEDING: [Input.RECV_1XX],
    NonInviteClientState.COMPLETED: [Input.RECV_2XX],
    InviteServerState.PROCEEDING: [],
    InviteServerState.COMPLETED: [Input.SEND_FAILURE],
    InviteServerState.CONFIRMED: [Input.SEND_FAILURE, Input.RECV_ACK],
    InviteServerState.ACCEPTED: [Input.SEND_2XX],
    InviteServerState.ACKED: [Input.SEND_2XX, Input.RECV_ACK],
    NonInviteServerState.TRYING: [],
    NonInviteServerState.PROCEEDING: [Input.SEND_1XX],
    NonInviteServerState.COMPLETED: [Input.SEND_2XX],
}
STATUS = {
    Input.RECV_1XX: 180,
    Input.RECV_2XX: 200,
    Input.RECV_FAILURE: 486,
    Input.SEND_1XX: 180,
    Input.SEND_2XX: 200,
    Input.SEND_FAILURE: 486,
}


class Driver:
    """One transaction of a given kind, fed inputs through the layer."""

    def __init__(self, kind: Kind, peer: Peer) -> None:
        self.layer = TransactionLayer()
        self.peer = peer
        self.now = 0.0
        method = "INVITE" if kind in (Kind.INVITE_CLIENT, Kind.INVITE_SERVER) else "OPTIONS"
        self.req = request(method, transport=peer.transport.upper())
        if kind in CLIENT_KINDS:
            self.txn_id = self.layer.send_request(self.req, peer, 0.0)
            self.txn = self.layer._clients[self.txn_id]
        else:
            [event] = self.layer.receive(self.req, peer, 0.0)
            assert isinstance(event, RequestReceived)
            self.txn_id = event.txn_id
            self.txn = self.layer._servers[self.txn_id]
        self.layer.datagrams_to_send()

    def apply(self, inp: Input) -> list[Event]:
        self.now += 0.01
        layer, peer = self.layer, self.peer
        if inp in (Input.RECV_1XX, Input.RECV_2XX, Input.RECV_FAILURE):
            return layer.receive(response(self.req, STATUS[inp]), peer, self.now)
        if inp is Input.RECV_REQUEST:
            return layer.receive(self.req, peer, self.now)
        if inp is Input.RECV_ACK:
            ack = request("ACK", transport=peer.transport.upper(), to_tag="t")
            return layer.receive(ack, peer, self.now)
        if inp in (Input.SEND_1XX, Input.SEND_2XX, Input.SEND_FAILURE):
            resp = make_response(self.req, STATUS[inp], to_tag="t")
            layer.send_response(self.txn_id, resp, self.now)
            return []
        if inp is Input.TRANSPORT_ERROR:
            return layer.transport_error(peer, self.now)
        # a timer: fire exactly this one (white box), as handle_timer() would
        timer = next(t for t, i in TIMER_INPUT.items() if i is inp)
        del self.txn.timers[timer]
        events: list[Event] = []
        layer._step(self.txn, inp, self.now, events, None, None)
        return events


@pytest.mark.parametrize("peer", [UDP, TCP], ids=["udp", "tcp"])
@pytest.mark.parametrize(
    ("kind", "state"),
    [(k, s) for k in Kind for s in STATES[k] if s not in TERMINATED],
    ids=lambda v: getattr(v, "name", str(v)),
)
def test_every_state_input_pair(kind: Kind, state: State, peer: Peer) -> None:
    """Drive a real transaction into ``state`` and feed it each input in turn:
    the layer does what the table says, and nothing for a missing pair."""
    table = TABLES[kind]
    side = CLIENT_INPUTS if kind in CLIENT_KINDS else SERVER_INPUTS
    for inp in Input:
        driver = Driver(kind, peer)
        for step in PATHS[state]:
            driver.apply(step)
        driver.layer.datagrams_to_send()
        assert driver.txn.state is state
        if inp.name.startswith("TIMER_"):
            timer = next(t for t, i in TIMER_INPUT.items() if i is inp)
            if timer not in driver.txn.timers:
                continue  # this timer cannot fire in this state on this transport
        elif inp not in side:
            continue
        entry = table.get((state, inp))
        if entry is None and inp in (Input.SEND_1XX, Input.SEND_2XX, Input.SEND_FAILURE):
            with pytest.raises(LocalProtocolError):
                driver.apply(inp)
            assert driver.txn.state is state
            continue
        events = driver.apply(inp)
        target = state if entry is None else entry[1]
        assert driver.txn.state is target, (kind, state, inp)
        if target in TERMINATED:
            assert TransactionTerminated(driver.txn_id) in events
            assert len(driver.layer) == 0
        else:
            assert len(driver.layer) == 1
            assert not any(isinstance(e, TransactionTerminated) for e in events)
        if entry is None:
            # absorbed: nothing reaches the TU about this transaction, nothing is sent
            assert not any(getattr(e, "txn_id", None) == driver.txn_id for e in events)
            assert driver.layer.datagrams_to_send() == []


# ------------------------------------------- random drives of each machine


class Checker:
    """Drives a layer through random steps, checking invariants after each one."""

    def __init__(self, peer: Peer) -> None:
        self.layer = TransactionLayer()
        self.peer = peer
        self.now = 0.0
        self.terminated: set[str] = set()
        self.live: set[str] = set()

    def check(self, events: list[Event], after_timer: bool = False) -> list[bytes]:
        for event in events:
            txn_id = getattr(event, "txn_id", None)
            if isinstance(event, RequestReceived | CancelReceived):
                assert event.txn_id not in self.live
                self.terminated.discard(event.txn_id)
                self.live.add(event.txn_id)
            elif txn_id is not None:
                assert txn_id not in self.terminated, f"{event} after termination"
            if isinstance(event, TransactionTerminated):
                self.terminated.add(event.txn_id)
                self.live.discard(event.txn_id)
        deadline = self.layer.get_timer()
        if deadline is not None:
            assert deadline > self.now if after_timer else deadline >= self.now
        assert len(self.layer) == len(self.live)
        return [data for data, _ in self.layer.datagrams_to_send()]

    def advance(self, dt: float) -> None:
        self.now += dt
        was_live = bool(self.live)
        datagrams = self.check(self.layer.handle_timer(self.now), after_timer=True)
        if not was_live:
            assert datagrams == []  # nothing is sent once every transaction is gone

    def drain(self) -> None:
        """Let time pass until every transaction is gone."""
        for _ in range(100):
            deadline = self.layer.get_timer()
            if deadline is None:
                break
            self.advance(deadline - self.now + 0.001)
        assert self.layer.get_timer() is None
        assert len(self.layer) == 0 and not self.live


advances = st.floats(min_value=0.0, max_value=40.0, allow_nan=False)
statuses = st.sampled_from([100, 180, 183, 200, 202, 302, 404, 486, 503, 603])


@settings(max_examples=200, deadline=None)
@given(
    method=st.sampled_from(["INVITE", "OPTIONS"]),
    reliable=st.booleans(),
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("response"), statuses),
            st.tuples(st.just("advance"), advances),
            st.tuples(st.just("cancel"), st.just(0)),
            st.tuples(st.just("transport_error"), st.just(0)),
        ),
        max_size=25,
    ),
)
def test_client_machines_random_drive(
    method: str, reliable: bool, steps: list[tuple[str, object]]
) -> None:
    peer = TCP if reliable else UDP
    checker = Checker(peer)
    layer = checker.layer
    req = request(method, transport=peer.transport.upper())
    txn = layer.send_request(req, peer, 0.0)
    checker.live.add(txn)
    cancelled = False
    for op, arg in steps:
        if op == "response":
            assert isinstance(arg, int)
            checker.check(layer.receive(response(req, arg), peer, checker.now))
        elif op == "advance":
            assert isinstance(arg, float)
            checker.advance(arg)
        elif op == "cancel" and method == "INVITE" and not cancelled:
            cancelled = True
            cancel_id = layer.send_request(request("CANCEL", transport="UDP"), peer, checker.now)
            checker.live.add(cancel_id)
        elif op == "transport_error":
            checker.check(layer.transport_error(peer, checker.now))
    checker.drain()


@settings(max_examples=200, deadline=None)
@given(
    method=st.sampled_from(["INVITE", "OPTIONS"]),
    reliable=st.booleans(),
    rfc2543=st.booleans(),
    tu_answers_at_end=st.booleans(),
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("respond"), statuses),
            st.tuples(st.just("advance"), advances),
            st.tuples(st.just("retransmit"), st.just(0)),
            st.tuples(st.just("ack"), st.just(0)),
            st.tuples(st.just("ack_2xx"), st.just(0)),
            st.tuples(st.just("cancel"), st.just(0)),
            st.tuples(st.just("transport_error"), st.just(0)),
        ),
        max_size=25,
    ),
)
def test_server_machines_random_drive(
    method: str,
    reliable: bool,
    rfc2543: bool,
    tu_answers_at_end: bool,
    steps: list[tuple[str, object]],
) -> None:
    peer = TCP if reliable else UDP
    checker = Checker(peer)
    layer = checker.layer
    branch = None if rfc2543 else "z9hG4bKsrv"
    transport = peer.transport.upper()
    req = request(method, branch=branch, transport=transport)
    txn: str | None = None

    def deliver(message: Request) -> None:
        nonlocal txn
        events = layer.receive(message, peer, checker.now)
        checker.check(events)
        for event in events:
            if isinstance(event, RequestReceived):
                txn = event.txn_id

    deliver(req)
    assert txn is not None
    for op, arg in steps:
        if op == "respond":
            assert isinstance(arg, int)
            if txn is None or txn not in checker.live:
                continue
            try:
                layer.send_response(txn, make_response(req, arg, to_tag="t"), checker.now)
            except LocalProtocolError:
                # only a non-2xx after a 2xx is refused; other late responses are discarded
                state = layer._servers[txn].state
                assert state in (InviteServerState.ACCEPTED, InviteServerState.ACKED)
                assert not 200 <= arg < 300
            checker.check([])
        elif op == "advance":
            assert isinstance(arg, float)
            checker.advance(arg)
        elif op == "retransmit":
            deliver(req)
        elif op == "ack":
            deliver(request("ACK", branch=branch, transport=transport, to_tag="t"))
        elif op == "ack_2xx":
            deliver(ack_for_2xx(req, to_tag="t"))
        elif op == "cancel":
            deliver(request("CANCEL", branch=branch, transport=transport))
        elif op == "transport_error":
            checker.check(layer.transport_error(peer, checker.now))
    # the TU answers whatever is still open (or leaves it to the guard), then time passes
    for live in list(checker.live) if tu_answers_at_end else []:
        server = layer._servers[live]
        last = server.last_response
        if last is None or last.status < 200:
            layer.send_response(live, make_response(server.request, 486, to_tag="t"), checker.now)
    checker.check([])
    checker.drain()


# ----------------------------------------------------- lossy two-layer run


ALICE = Peer("udp", "192.0.2.1", 5060)
BOB = Peer("udp", "192.0.2.2", 5060)


def alice_request(method: str, branch: str) -> Request:
    return request(method, branch=branch, via_host="192.0.2.1", call_id=f"{branch}@alice")


def uas(node: Node, event: Event, now: float) -> None:
    """Bob: rings and answers every INVITE at once, 200 to everything else."""
    if isinstance(event, RequestReceived):
        req = event.request
        if req.method == "INVITE":
            node.layer.send_response(event.txn_id, make_response(req, 180, to_tag="bob"), now)
        node.layer.send_response(event.txn_id, make_response(req, 200, to_tag="bob"), now)


def make_uac(acked: list[str]) -> Callable[[Node, Event, float], None]:
    def uac(node: Node, event: Event, now: float) -> None:
        """Alice: ACKs every 2xx to INVITE (also the retransmissions) outside the transaction."""
        if isinstance(event, ResponseReceived) and event.response.cseq.method == "INVITE":
            resp = event.response
            if 200 <= resp.status < 300:
                ack = request(
                    "ACK",
                    branch="z9hG4bK2xxack",
                    via_host="192.0.2.1",
                    call_id=resp.call_id,
                    cseq=resp.cseq.seq,
                    to_tag=resp.to.tag,
                )
                node.layer.send_stateless(ack, event.peer)
                acked.append(resp.call_id)

    return uac


@pytest.mark.parametrize("method", ["INVITE", "OPTIONS"])
@pytest.mark.parametrize("seed", range(30))
def test_request_completes_over_lossy_network(method: str, seed: int) -> None:
    network = LossyNetwork(random.Random(seed), loss=0.3, duplicate=0.1)
    harness = Harness(network)
    acked: list[str] = []
    alice = harness.add_node(ALICE, make_uac(acked))
    bob = harness.add_node(BOB, uas)
    txn = alice.layer.send_request(alice_request(method, f"z9hG4bK{seed}"), BOB, 0.0)

    def finals() -> list[ResponseReceived]:
        return [
            e
            for e in alice.events
            if isinstance(e, ResponseReceived) and e.txn_id == txn and e.response.status >= 200
        ]

    def done() -> bool:
        if not finals():
            return False
        return method != "INVITE" or any(isinstance(e, AckReceived) for e in bob.events)

    harness.run(until=done, limit=64)
    assert done(), f"seed {seed}: sent {network.sent}, dropped {network.dropped}"
    assert finals()[0].response.status == 200
    assert not any(
        isinstance(e, TransactionTimeout | AckTimeout) for e in alice.events + bob.events
    )
    assert sum(isinstance(e, RequestReceived) for e in bob.events) == 1  # duplicates absorbed
    harness.run(limit=200)  # everything winds down
    assert len(alice.layer) == 0 and len(bob.layer) == 0
    assert alice.layer.get_timer() is None and bob.layer.get_timer() is None


def test_lossy_network_really_loses() -> None:
    network = LossyNetwork(random.Random(1), loss=0.3, duplicate=0.1)
    for _ in range(1000):
        network.send(b"x", ALICE, BOB, 0.0)
    assert 250 < network.dropped < 400
