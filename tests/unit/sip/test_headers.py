"""Headers multi-map, Via and CSeq."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.sip.test_uri import header_params, hosts
from vaxla.sip.errors import LocalProtocolError, SipParseError
from vaxla.sip.headers import CSeq, Headers, Via, parse_header_lines


def test_compact_forms_and_case_are_canonicalised() -> None:
    h = Headers([("v", "SIP/2.0/UDP a"), ("i", "x@y"), ("MAX-FORWARDS", "70"), ("cseq", "1 A")])
    assert list(h) == [
        ("Via", "SIP/2.0/UDP a"),
        ("Call-ID", "x@y"),
        ("Max-Forwards", "70"),
        ("CSeq", "1 A"),
    ]
    for compact, name in [("f", "From"), ("t", "To"), ("m", "Contact"), ("l", "Content-Length"),
                          ("c", "Content-Type"), ("k", "Supported"), ("s", "Subject"),
                          ("e", "Content-Encoding"), ("o", "Event"), ("u", "Allow-Events"),
                          ("r", "Refer-To"), ("b", "Referred-By"), ("x", "Session-Expires"),
                          ("y", "Identity")]:  # fmt: skip
        assert list(Headers([(compact, "v")])) == [(name, "v")]
    assert h.get("call-id") == "x@y" and h.get("I") == "x@y"
    assert "VIA" in h and "Route" not in h
    assert list(Headers([("X-Custom-Thing", "1")])) == [("X-Custom-Thing", "1")]


def test_get_all_splits_list_headers_only() -> None:
    h = Headers(
        [
            ("Contact", '"A, B" <sip:a@b>, <sip:c@d>'),
            ("Allow", "INVITE, ACK"),
            ("Contact", "<sip:e@f>"),
            ("Subject", "hello, world"),
        ]
    )
    assert h.get_all("m") == ['"A, B" <sip:a@b>', "<sip:c@d>", "<sip:e@f>"]
    assert h.get_all("Allow") == ["INVITE", "ACK"]
    assert h.get_all("Subject") == ["hello, world"]
    assert h.get_all("Route") == []
    assert h.get("Contact") == '"A, B" <sip:a@b>, <sip:c@d>'


def test_mutation() -> None:
    h = Headers([("From", "a"), ("Via", "v1"), ("To", "b"), ("Via", "v2")])
    h.prepend("Via", "v0")
    assert list(h)[1] == ("Via", "v0") and h.get("Via") == "v0"
    h.prepend("Route", "r")  # no Route yet: goes to the top
    assert next(iter(h)) == ("Route", "r")
    h.set("Via", "only")
    assert h.get_all("Via") == ["only"] and list(h)[2] == ("Via", "only")
    h.add("X-A", "1")
    h.remove("via")
    assert "Via" not in h and [n for n, _ in h] == ["Route", "From", "To", "X-A"]
    copy = h.copy()
    copy.add("Y", "2")
    assert "Y" not in h and copy != h
    assert Headers(list(h)) == h
    with pytest.raises(LocalProtocolError):
        h.add("X-A", "a\r\nInjected: 1")
    with pytest.raises(SipParseError):
        h.add("bad name", "1")


def test_parse_header_lines_unfolds() -> None:
    h = parse_header_lines(["Subject: one", "  two", "\tthree", "To : <sip:a@b>", "Empty:"])
    assert list(h) == [("Subject", "one two three"), ("To", "<sip:a@b>"), ("Empty", "")]
    for bad in (["  leading continuation"], ["NoColon"], [": empty"], ["Bad Name: x"]):
        with pytest.raises(SipParseError):
            parse_header_lines(bad)


def test_via_parse() -> None:
    via = Via.parse(
        "SIP / 2.0 / tcp  Host.Example.com : 5061 ; branch = z9hG4bKx ;rport;received=[::1]"
    )
    assert via == Via("TCP", "host.example.com", 5061, {"branch": "z9hG4bKx", "rport": None,
                                                        "received": "[::1]"})  # fmt: skip
    assert via.branch == "z9hG4bKx"
    assert str(via) == "SIP/2.0/TCP host.example.com:5061;branch=z9hG4bKx;rport;received=[::1]"
    v6 = Via.parse("SIP/2.0/UDP [2001:db8::1]:5060")
    assert (v6.host, v6.port, v6.branch) == ("2001:db8::1", 5060, None)
    assert str(v6) == "SIP/2.0/UDP [2001:db8::1]:5060"


@pytest.mark.parametrize(
    "text",
    [
        "SIP/2.0/UDP",
        "SIP/2.0 UDP host",
        "HTTP/1.1/TCP host",
        "SIP/2.0/UDP host:70000",
        "SIP/2.0/UDP 192.0.2.15;;",
        "SIP/2.0/UDP host;branch=a b",
        "SIP/2.0/UDP ho st",
    ],
)
def test_malformed_via_raises(text: str) -> None:
    with pytest.raises(SipParseError):
        Via.parse(text)


@given(
    st.sampled_from(["UDP", "TCP", "TLS", "WS", "WSS", "SCTP", "X-NEW"]),
    hosts,
    st.none() | st.integers(0, 65535),
    header_params,
)
def test_via_round_trip(
    transport: str, host: str, port: int | None, params: dict[str, str | None]
) -> None:
    via = Via(transport, host, port, params)
    assert Via.parse(str(via)) == via


def test_cseq() -> None:
    assert CSeq.parse("0009\t INVITE") == CSeq(9, "INVITE")
    assert str(CSeq(2**31 - 1, "BYE")) == "2147483647 BYE"
    for bad in ("INVITE", "1", "2147483648 INVITE", "-1 BYE", "1 BYE x", "1 B@D", "99999999999 A"):
        with pytest.raises(SipParseError):
            CSeq.parse(bad)


@given(st.integers(0, 2**31 - 1), st.from_regex(r"[A-Za-z0-9.!%*_+`'~-]{1,12}", fullmatch=True))
def test_cseq_round_trip(seq: int, method: str) -> None:
    assert CSeq.parse(str(CSeq(seq, method))) == CSeq(seq, method)


def test_replace_first_keeps_the_other_values_in_place() -> None:
    h = Headers(
        [
            ("Via", "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2"),
            ("To", "<sip:x@y>"),
            ("Via", "SIP/2.0/UDP c;branch=z9hG4bK3"),
        ]
    )
    h.replace_first("Via", "SIP/2.0/UDP a;branch=z9hG4bK1;received=192.0.2.1")
    assert h.get_all("Via") == [
        "SIP/2.0/UDP a;branch=z9hG4bK1;received=192.0.2.1",
        "SIP/2.0/UDP b;branch=z9hG4bK2",
        "SIP/2.0/UDP c;branch=z9hG4bK3",
    ]
    assert [n for n, _ in h] == ["Via", "To", "Via"]
    empty = Headers()
    empty.replace_first("Via", "SIP/2.0/UDP d")
    assert empty.get_all("Via") == ["SIP/2.0/UDP d"]
