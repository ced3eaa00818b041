"""RFC 4475 torture messages through parse_message + validate_request."""

from __future__ import annotations

import pytest

from tests.conformance.rfc4475_expectations import CORPUS_DIR, EXPECTATIONS
from vaxla.sip.errors import SipParseError
from vaxla.sip.headers import CSeq
from vaxla.sip.message import Request, Response, error_response, parse_message, validate_request
from vaxla.sip.uri import AbsoluteURI, NameAddr, SipURI


def load(name: str) -> bytes:
    return (CORPUS_DIR / name).read_bytes()


def process(data: bytes) -> Request | Response:
    msg = parse_message(data)
    if isinstance(msg, Request):
        validate_request(msg)
    return msg


def test_table_covers_the_corpus() -> None:
    files = {p.name for p in CORPUS_DIR.glob("*.dat")}
    assert len(files) == 49
    assert set(EXPECTATIONS) == files


@pytest.mark.parametrize("name", sorted(EXPECTATIONS))
def test_outcome(name: str) -> None:
    exp = EXPECTATIONS[name]
    data = load(name)
    if exp.outcome == "valid":
        msg = process(data)
        assert isinstance(msg, Request if exp.kind == "request" else Response)
        return
    with pytest.raises(SipParseError) as info:
        process(data)
    assert info.value.status_hint == exp.status
    assert tuple(n for n, _ in info.value.extra_headers) == exp.extra_headers
    if exp.outcome == "reject":
        answer = error_response(data, info.value, to_tag="abc")
        assert answer is not None
        assert answer.startswith(f"SIP/2.0 {exp.status} ".encode())
        # the reply copies the request's (possibly broken) headers verbatim
        head = answer.split(b"\r\n\r\n")[0].split(b"\r\n")
        assert sum(line.startswith(b"Via: ") for line in head) >= 1
        assert any(line.startswith(b"CSeq: ") for line in head)
        for name in exp.extra_headers:
            assert any(line.startswith(name.encode() + b": ") for line in head)
    else:
        assert exp.kind == "response"


def req(name: str) -> Request:
    msg = process(load(name))
    assert isinstance(msg, Request)
    return msg


def test_wsinv_values_normalised() -> None:
    msg = req("wsinv.dat")
    assert msg.method == "INVITE"
    assert msg.max_forwards == 68
    assert msg.cseq == CSeq(9, "INVITE")
    assert msg.call_id == "wsinv.ndaksdj@192.0.2.1"
    assert msg.to.tag == "1918181833n"
    assert msg.from_.display == 'J Rosenberg \\"'
    assert msg.from_.tag == "98asjd8"
    assert [(v.transport, v.host, v.branch) for v in msg.vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    (contact,) = msg.contacts
    assert contact.display == 'Quoted string ""'
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    assert msg.headers.get("Subject") == ""
    assert msg.headers.get("newfangledheader") == "newfangled value continued newfangled value"
    assert msg.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    (route,) = msg.headers.get_all("Route")
    route_uri = NameAddr.parse(route).uri
    assert isinstance(route_uri, SipURI)
    assert route_uri.params == {"lr": None, "unknownwith": "value", "unknown-no-value": None}
    assert len(msg.body) == 150 and msg.body.startswith(b"v=0\r\n")


def test_esc01_escaped_and_unescaped_uris_equal() -> None:
    msg = req("esc01.dat")
    assert isinstance(msg.uri, SipURI)
    assert (msg.uri.user, msg.uri.host) == ("sips:user@example.com", "example.net")
    to_uri = msg.to.uri
    assert isinstance(to_uri, SipURI) and to_uri.equivalent(SipURI.parse("sip:user@example.com"))
    assert isinstance(msg.from_.uri, SipURI) and msg.from_.uri.user == "I have spaces"
    contact = msg.contacts[0].uri
    assert isinstance(contact, SipURI)
    assert contact.user == "caller"
    assert contact.params == {"lr": None, "name": "value%41"}
    plain = SipURI.parse("sip:caller@HOST5.example.net;LR;Name=VALUE%2541")
    assert contact.equivalent(plain) and plain.equivalent(contact)
    assert not contact.equivalent(SipURI.parse("sip:Caller@host5.example.net;lr;name=value%2541"))


def test_escnull_keeps_nul_octets() -> None:
    msg = req("escnull.dat")
    assert isinstance(msg.to.uri, SipURI) and msg.to.uri.user == "null-\x00-null"
    users = [c.uri.user for c in msg.contacts if isinstance(c.uri, SipURI)]
    assert users == ["\x00", "\x00\x00"]


def test_esc02_percent_that_is_not_an_escape() -> None:
    msg = req("esc02.dat")
    assert msg.method == "RE%47IST%45R" and msg.cseq.method == msg.method
    assert msg.to.display == "%Z%45"
    assert msg.top_via.branch == "z9hG4bK209%fzsnel234"
    hosts = [c.uri.host for c in msg.contacts if isinstance(c.uri, SipURI)]
    assert hosts == ["host1.example.com", "host3.example.com"]
    assert msg.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


def test_intmeth_and_semiuri_user_parts() -> None:
    msg = req("intmeth.dat")
    assert msg.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert isinstance(msg.uri, SipURI)
    assert msg.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert msg.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert msg.to.display == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert msg.from_.display == "token1~` token2'+_ token3*%!.-"
    assert msg.from_.tag == "_token~1'+`*%!-."
    assert msg.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    semi = req("semiuri.dat")
    assert isinstance(semi.uri, SipURI)
    assert (semi.uri.user, semi.uri.host) == ("user;par=u@example.net", "example.com")
    assert len(semi.headers.get_all("Accept")) == 6


def test_lwsdisp_longreq_transports() -> None:
    assert req("lwsdisp.dat").from_.display == "caller"
    long = req("longreq.dat")
    assert len(long.vias) == 34 and long.vias[-1].params["received"] == "192.0.2.5"
    assert long.to.display is not None and long.to.display.startswith("I have a user name")
    assert long.from_.tag is not None and len(long.from_.tag) > 150
    kinds = [v.transport for v in req("transports.dat").vias]
    assert kinds == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]


def test_dblreq_ignores_the_second_message() -> None:
    msg = req("dblreq.dat")
    assert msg.method == "REGISTER" and msg.body == b""
    assert msg.call_id == "dblreq.0ha0isndaksdj99sdfafnl3lk233412"


def test_bodies_and_responses() -> None:
    mpart = req("mpart01.dat")
    assert len(mpart.body) == 553 and mpart.media_type == "multipart/mixed"
    unreason = process(load("unreason.dat"))
    assert isinstance(unreason, Response) and unreason.status == 200
    assert unreason.reason.startswith("= 2**3 * 5**2 но") and unreason.reason.endswith("- простое")
    noreason = process(load("noreason.dat"))
    assert isinstance(noreason, Response) and (noreason.status, noreason.reason) == (100, "")
    bcast = process(load("bcast.dat"))
    assert isinstance(bcast, Response) and bcast.vias[1].host == "255.255.255.255"


def test_application_layer_values() -> None:
    assert req("badbranch.dat").top_via.branch == "z9hG4bK"
    unksm2 = req("unksm2.dat")
    assert unksm2.to.uri == AbsoluteURI("isbn", "isbn:2983792873")
    assert unksm2.from_.uri == AbsoluteURI("http", "http://www.example.com")
    assert [str(c.uri) for c in unksm2.contacts] == ["name:John_Smith"]
    c1 = req("cparam01.dat").contacts[0]
    assert (
        isinstance(c1.uri, SipURI) and c1.uri.params == {} and c1.params == {"unknownparam": None}
    )
    c2 = req("cparam02.dat").contacts[0]
    assert (
        isinstance(c2.uri, SipURI) and c2.uri.params == {"unknownparam": None} and c2.params == {}
    )
    reg = req("regescrt.dat").contacts[0].uri
    assert isinstance(reg, SipURI) and reg.headers == {"Route": "<sip:sip.example.com>"}
    assert req("zeromf.dat").max_forwards == 0
    old = req("inv2543.dat")
    assert old.top_via.branch is None and old.from_.tag is None and old.max_forwards is None
    assert req("baddate.dat").headers.get("Date") == "Fri, 01 Jan 2010 16:00:00 EST"
    bext = load("bext01.dat")
    with pytest.raises(SipParseError) as info:
        process(bext)
    unsupported = dict(info.value.extra_headers)["Unsupported"].split(", ")
    assert "nothingSupportsThis" in unsupported and "noProxiesSupportThis" in unsupported


def test_scalar02_overlarge_values() -> None:
    data = load("scalar02.dat").replace(b"36893488147419103232", b"1")
    msg = parse_message(data)
    assert msg.expires == 3600  # overlarge Expires: treated as the default
    with pytest.raises(SipParseError):
        msg.max_forwards  # noqa: B018  (300 > 255)
