"""Requests and responses: parsing, serialising, checks, framing, building responses."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conformance.rfc4475_expectations import CORPUS_DIR
from tests.unit.sip.test_uri import name_addrs, sip_uris
from vaxla.sip.errors import SipParseError
from vaxla.sip.headers import CSeq, Headers, Via
from vaxla.sip.message import (
    REASONS,
    Request,
    Response,
    StreamFramer,
    make_response,
    new_branch,
    new_call_id,
    new_tag,
    parse_message,
    validate_request,
)
from vaxla.sip.uri import NameAddr, SipURI

SDP = (
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n"
    b"c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
)

INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n"
    b"v: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp1, SIP/2.0/TCP edge.example.com\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b'From: "Alice" <sip:alice@atlanta.example.com>;tag=1928301774\r\n'
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@pc33.atlanta.example.com>\r\n"
    b"Subject: lunch\r\n  tomorrow?\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP
)
CL = b"Content-Length: " + str(len(SDP)).encode()


def parse_request(data: bytes) -> Request:
    msg = parse_message(data)
    assert isinstance(msg, Request)
    return msg


def test_parse_invite() -> None:
    msg = parse_request(INVITE)
    assert (msg.method, str(msg.uri), msg.version) == (
        "INVITE",
        "sip:bob@biloxi.example.com",
        "SIP/2.0",
    )
    assert msg.body == SDP and msg.content_type == "application/sdp"
    assert msg.call_id == "a84b4c76e66710@pc33.atlanta.example.com"
    assert msg.cseq == CSeq(314159, "INVITE")
    assert msg.top_via.branch == "z9hG4bK776asdhds"
    assert [v.host for v in msg.vias] == [
        "pc33.atlanta.example.com",
        "proxy.example.com",
        "edge.example.com",
    ]
    assert msg.from_.tag == "1928301774" and msg.to.tag is None and msg.to.display == "Bob"
    assert [str(c.uri) for c in msg.contacts] == ["sip:alice@pc33.atlanta.example.com"]
    assert msg.headers.get("Subject") == "lunch tomorrow?"
    assert msg.max_forwards == 70 and msg.expires is None
    validate_request(msg)


def test_serialise_writes_content_length_from_body() -> None:
    msg = parse_request(INVITE)
    msg.body = b"x=1\r\n"
    out = bytes(msg)
    assert out.endswith(b"\r\nContent-Length: 5\r\n\r\nx=1\r\n")
    assert out.count(b"Content-Length") == 1
    again = parse_request(out)
    assert again == msg and again.body == b"x=1\r\n"
    assert again.headers.get("v") == msg.headers.get("Via")


def test_tolerated_framing_variants() -> None:
    head, _, body = INVITE.partition(b"\r\n\r\n")
    lf_only = head.replace(b"\r\n", b"\n") + b"\n\n" + body
    assert parse_request(lf_only).headers.get("Subject") == "lunch tomorrow?"
    assert parse_request(b"\r\n\r\n" + INVITE).method == "INVITE"  # §7.5 leading CRLFs
    head = head.replace(CL, b"Content-Length: 0")
    no_blank = head.replace(b"Content-Type: application/sdp\r\n", b"") + b"\r\n"
    assert parse_request(no_blank).body == b""
    without_length = INVITE.replace(CL + b"\r\n", b"")
    assert parse_request(without_length + b"tail").body == SDP + b"tail"  # datagram: to the end


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"Via: SIP/2.0/UDP pc33", b"Via: SIP/2.0/UDP pc 33"),
        (b"CSeq: 314159 INVITE", b"CSeq: INVITE"),
        (b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com", b"Call-ID: has space"),
        (b"From: ", b"X-From: "),
        (b"To: Bob <sip:bob@biloxi.example.com>", b"To: Bob <sip:bob@biloxi.example.com"),
        (CL, CL + b"1"),
        (CL, b"Content-Length: 0x5a"),
        (b"Max-Forwards: 70\r\n", b"Max-Forwards: 70\r\nl: 90\r\n"),
        (b"INVITE sip:bob@biloxi.example.com SIP/2.0", b"INVITE sip:bob@biloxi.example.com"),
        (b"Max-Forwards: 70\r\n", b"Max-Forwards: 70\r\nBroken header\r\n"),
        (b"Max-Forwards: 70\r\n", b"Max-Forwards: 70\rX: 1\r\n"),
    ],
)
def test_malformed_requests_raise_400(old: bytes, new: bytes) -> None:
    data = INVITE.replace(old, new)
    assert data != INVITE
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert info.value.status_hint == 400


def test_malformed_responses_are_dropped() -> None:
    ok = parse_message(bytes(make_response(parse_request(INVITE), 180, to_tag="t1")))
    assert isinstance(ok, Response) and ok.status == 180 and ok.reason == "Ringing"
    for bad in (b"SIP/2.0 99 Odd\r\n", b"SIP/2.0 700 Odd\r\n", b"SIP/2.0 20 Odd\r\n"):
        data = bytes(ok).replace(b"SIP/2.0 180 Ringing\r\n", bad)
        with pytest.raises(SipParseError) as info:
            parse_message(data)
        assert info.value.status_hint is None
    with pytest.raises(SipParseError) as info:
        parse_message(bytes(ok).replace(b"CSeq: 314159 INVITE", b"CSeq: x"))
    assert info.value.status_hint is None
    with pytest.raises(SipParseError) as info:
        parse_message(b"\r\n\r\n")
    assert info.value.status_hint is None


def test_lazy_headers_raise_on_access() -> None:
    msg = parse_request(INVITE.replace(b"Contact: <sip:alice", b"Contact: <sip: alice"))
    with pytest.raises(SipParseError):
        msg.contacts  # noqa: B018
    with pytest.raises(SipParseError):
        validate_request(msg)


def test_setters_and_invalidate() -> None:
    msg = parse_request(INVITE)
    msg.to = NameAddr(SipURI.parse("sip:carol@chicago.com"), "Carol", {"tag": "x"})
    assert msg.headers.get("To") == '"Carol" <sip:carol@chicago.com>;tag=x' and msg.to.tag == "x"
    msg.cseq = CSeq(2, "INVITE")
    msg.call_id = "new@host"
    msg.max_forwards = 69
    msg.expires = 30
    msg.vias = [Via("TCP", "a.example", 5060, {"branch": "z9hG4bK1"})]
    msg.contacts = []
    reparsed = parse_request(bytes(msg))
    assert reparsed.to.display == "Carol" and reparsed.cseq == CSeq(2, "INVITE")
    assert (reparsed.call_id, reparsed.max_forwards, reparsed.expires) == ("new@host", 69, 30)
    assert [str(v) for v in reparsed.vias] == ["SIP/2.0/TCP a.example:5060;branch=z9hG4bK1"]
    assert reparsed.contacts == []
    msg.headers.set("Call-ID", "direct@edit")
    assert msg.call_id == "new@host"  # cached until invalidated
    msg.invalidate()
    assert msg.call_id == "direct@edit"


def test_contact_star_and_expires_rules() -> None:
    msg = parse_request(INVITE.replace(b"Contact: <sip:alice@pc33.atlanta.example.com>", b"m: *"))
    assert len(msg.contacts) == 1 and str(msg.contacts[0].uri) == "*"
    msg.headers.set("Expires", "99999999999")
    assert msg.expires == 3600  # malformed / overlarge: the RFC 3261 default
    msg.headers.set("Expires", "0")
    assert msg.expires == 0


# --- validate_request -----------------------------------------------------------------------


def status_of(msg: Request, **kwargs: object) -> int | None:
    try:
        validate_request(msg, **kwargs)  # type: ignore[arg-type]
    except SipParseError as exc:
        return exc.status_hint
    return 200


def test_validate_request_checks() -> None:
    base = parse_request(INVITE)
    assert status_of(base) == 200
    req = parse_request(INVITE.replace(b"Max-Forwards: 70\r\n", b"Require: timer\r\n"))
    assert status_of(req) == 420
    assert status_of(req, supported={"timer"}) == 200
    tel = parse_request(INVITE.replace(b"INVITE sip:bob@biloxi.example.com", b"INVITE tel:+468123"))
    assert status_of(tel) == 200 and status_of(tel, uri_schemes={"sip"}) == 416
    text = parse_request(INVITE.replace(b"application/sdp", b"text/plain"))
    assert status_of(text) == 415
    msg = parse_request(
        INVITE.replace(b"application/sdp", b"text/plain").replace(b"INVITE", b"MESSAGE")
    )
    assert status_of(msg) == 200  # MESSAGE bodies are the TU's business
    assert (
        status_of(parse_request(INVITE.replace(b"Max-Forwards: 70", b"Max-Forwards: 256"))) == 400
    )
    assert status_of(parse_request(INVITE.replace(b"Max-Forwards: 70", b"Accept: */*"))) == 200
    ack = parse_request(INVITE.replace(b"INVITE", b"ACK").replace(b"application/sdp", b"x/y"))
    assert status_of(ack) is None  # never answer an ACK
    dup = parse_request(
        INVITE.replace(b"Max-Forwards: 70\r\n", b"Max-Forwards: 70\r\nMax-Forwards: 5\r\n")
    )
    assert status_of(dup) == 400
    built = Request("OPTIONS", "sip:a@b", list(base.headers), b"")
    assert status_of(built) == 400  # CSeq says INVITE


# --- make_response ----------------------------------------------------------------------------


def test_make_response_copies_the_right_headers() -> None:
    req = parse_request(INVITE.replace(b"Max-Forwards: 70", b"Timestamp: 54"))
    trying = make_response(req, 100)
    assert trying.reason == "Trying" and trying.headers.get("Timestamp") == "54"
    assert trying.to.tag is None  # no tag on 100
    ok = make_response(
        req, 200, to_tag="as83kd", headers=[("Contact", "<sip:bob@192.0.2.4>")], body=SDP,
        content_type="application/sdp",
    )  # fmt: skip
    assert [n for n, _ in ok.headers] == [
        "Via", "Via", "From", "To", "Call-ID", "CSeq", "Contact", "Content-Type",
    ]  # fmt: skip
    assert ok.headers.get_all("Via") == req.headers.get_all("Via")
    assert ok.to.tag == "as83kd" and ok.from_ == req.from_ and ok.cseq == req.cseq
    assert ok.body == SDP and ok.status == 200 and ok.reason == "OK"
    assert make_response(req, 299).reason == "OK"  # class default
    assert make_response(req, 486, "Busy, sorry").reason == "Busy, sorry"
    tagged = parse_request(
        INVITE.replace(b"To: Bob <sip:bob@biloxi.example.com>", b"t: <sip:b@c>;tag=1")
    )
    assert make_response(tagged, 200, to_tag="2").to.tag == "1"
    assert REASONS[481] == "Call/Transaction Does Not Exist"


def test_identifiers() -> None:
    assert new_branch().startswith("z9hG4bK") and new_branch() != new_branch()
    assert len({new_tag() for _ in range(50)}) == 50
    cid = new_call_id("pbx.example.se")
    assert (
        cid.endswith("@pbx.example.se")
        and parse_request(
            INVITE.replace(b"a84b4c76e66710@pc33.atlanta.example.com", cid.encode())
        ).call_id
        == cid
    )


# --- StreamFramer -----------------------------------------------------------------------------


def test_stream_framer_byte_by_byte_with_keepalives() -> None:
    framer = StreamFramer()
    resp = bytes(make_response(parse_request(INVITE), 200, to_tag="x"))
    stream = b"\r\n\r\n" + INVITE + b"\r\n" + resp + b"\r\n\r\n"
    out: list[bytes] = []
    for i in range(len(stream)):
        out += framer.feed(stream[i : i + 1])
    assert out == [INVITE, resp]
    assert framer.feed(INVITE + INVITE[:10]) == [INVITE]
    assert framer.feed(INVITE[10:]) == [INVITE]
    compact = INVITE.replace(b"Content-Length:", b"l :")
    assert StreamFramer().feed(compact) == [compact]


def test_stream_framer_errors() -> None:
    no_length = INVITE.replace(CL + b"\r\n", b"")
    with pytest.raises(SipParseError):
        StreamFramer().feed(no_length)
    two = INVITE.replace(b"Max-Forwards: 70\r\n", b"l: 3\r\n")
    with pytest.raises(SipParseError):
        StreamFramer().feed(two)
    with pytest.raises(SipParseError):
        StreamFramer(max_header_size=100).feed(b"OPTIONS sip:a@b SIP/2.0\r\n" + b"X: y\r\n" * 50)
    with pytest.raises(SipParseError):
        StreamFramer(max_body_size=10).feed(INVITE)


# --- properties -------------------------------------------------------------------------------

_token = st.from_regex(r"[A-Za-z0-9.!%*_+`'~-]{1,10}", fullmatch=True)
_value = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=20)
_extra = st.lists(
    st.tuples(_token.map(lambda t: "X-" + t), _value.map(lambda v: v.strip(" \t"))), max_size=5
)


@st.composite
def common_headers(draw: st.DrawFn, method: str) -> list[tuple[str, str]]:
    via = st.builds(
        Via,
        st.sampled_from(["UDP", "TCP", "TLS"]),
        st.just("h.example"),
        st.none() | st.integers(1, 65535),
        st.fixed_dictionaries({"branch": _token.map("z9hG4bK".__add__)}),
    )
    vias = draw(st.lists(via, min_size=1, max_size=3))
    items = [("Via", str(v)) for v in vias]
    items += [
        ("From", str(draw(name_addrs()))),
        ("To", str(draw(name_addrs()))),
        ("Call-ID", draw(_token) + "@" + draw(_token)),
        ("CSeq", f"{draw(st.integers(0, 2**31 - 1))} {method}"),
    ]
    return items + draw(_extra)


@st.composite
def requests(draw: st.DrawFn) -> Request:
    method = draw(st.sampled_from(["INVITE", "REGISTER", "BYE"]) | _token)
    headers = draw(common_headers(method))
    return Request(method, draw(sip_uris()), Headers(headers), draw(st.binary(max_size=40)))


@st.composite
def responses(draw: st.DrawFn) -> Response:
    headers = draw(common_headers(draw(_token)))
    reason = draw(_value).strip(" \t")
    return Response(
        draw(st.integers(100, 699)), reason, Headers(headers), draw(st.binary(max_size=40))
    )


@given(requests())
def test_request_round_trip(req: Request) -> None:
    parsed = parse_message(bytes(req))
    assert parsed == req
    assert isinstance(parsed, Request) and bytes(parsed) == bytes(req)


@given(responses())
def test_response_round_trip(resp: Response) -> None:
    parsed = parse_message(bytes(resp))
    assert parsed == resp
    assert isinstance(parsed, Response) and bytes(parsed) == bytes(resp)


@given(st.binary(max_size=300))
def test_random_bytes_only_raise_sip_parse_error(data: bytes) -> None:
    with contextlib.suppress(SipParseError):
        parse_message(data)


_CORPUS = sorted(p.read_bytes() for p in CORPUS_DIR.glob("*.dat"))


@settings(max_examples=300)
@given(st.sampled_from(_CORPUS), st.integers(0, 2000), st.binary(min_size=1, max_size=4))
def test_mutated_corpus_only_raises_sip_parse_error(data: bytes, pos: int, junk: bytes) -> None:
    pos %= len(data)
    mutated = data[:pos] + junk + data[pos + len(junk) :]
    try:
        msg = parse_message(mutated)
        if isinstance(msg, Request):
            validate_request(msg)
        msg.contacts, msg.vias, msg.to  # noqa: B018
    except SipParseError:
        pass
