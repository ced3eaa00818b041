"""URIs and name-addr values (RFC 3261 §19.1, §20.10, §25.1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vaxla.sip.errors import SipParseError
from vaxla.sip.uri import (
    AbsoluteURI,
    NameAddr,
    SipURI,
    parse_params,
    parse_uri,
    quote_string,
    split_list,
)

# --- strategies -----------------------------------------------------------------------------

_text = st.text(st.characters(codec="utf-8"), max_size=12)
_token = st.from_regex(r"[A-Za-z0-9.!%*_+`'~-]{1,10}", fullmatch=True)
_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?", fullmatch=True)
hosts = st.one_of(
    st.lists(_label, min_size=1, max_size=4).map(".".join),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: str(a).lower()),
)


@st.composite
def sip_uris(draw: st.DrawFn) -> SipURI:
    user = draw(st.none() | _text.filter(bool))
    password = draw(st.none() | _text) if user is not None else None
    keys = st.text(st.characters(codec="utf-8"), min_size=1, max_size=8)
    params = draw(st.dictionaries(keys.map(str.lower).filter(bool), st.none() | _text, max_size=4))
    headers = draw(st.dictionaries(keys, _text, max_size=3))
    return SipURI(
        scheme=draw(st.sampled_from(["sip", "sips"])),
        user=user,
        password=password,
        host=draw(hosts),
        port=draw(st.none() | st.integers(0, 65535)),
        params=params,
        headers=headers,
    )


_quoted_value = _text.filter(lambda s: "\r" not in s and "\n" not in s).map(quote_string)
header_params = st.dictionaries(
    _token.map(str.lower), st.none() | _token | _quoted_value, max_size=4
)


@st.composite
def name_addrs(draw: st.DrawFn) -> NameAddr:
    display = draw(st.none() | _text.filter(lambda s: "\r" not in s and "\n" not in s))
    return NameAddr(draw(sip_uris()), display, draw(header_params))


# --- SipURI -----------------------------------------------------------------------------------


def test_parse_full_uri() -> None:
    uri = SipURI.parse(
        "SIPS:Alice:secret@Atlanta.COM:5061;Transport=TCP;lr?subject=project%20x&x=1"
    )
    assert uri == SipURI(
        "sips",
        "Alice",
        "secret",
        "atlanta.com",
        5061,
        {"transport": "TCP", "lr": None},
        {"subject": "project x", "x": "1"},
    )
    assert uri.transport == "tcp"


def test_ipv6_reference() -> None:
    uri = SipURI.parse("sip:bob@[2001:DB8::1]:5070;maddr=[2001:db8::9]")
    assert (uri.host, uri.port) == ("2001:db8::1", 5070)
    assert uri.params["maddr"] == "[2001:db8::9]"
    assert str(uri) == "sip:bob@[2001:db8::1]:5070;maddr=[2001:db8::9]"


def test_escaping_on_output() -> None:
    uri = SipURI("sip", "a b@c:d", "p@ss", "example.com", None, {"x y": "1;2"}, {"h": "<v>&"})
    text = str(uri)
    assert text == "sip:a%20b%40c%3Ad:p%40ss@example.com;x%20y=1%3B2?h=%3Cv%3E%26"
    assert SipURI.parse(text) == uri


@pytest.mark.parametrize(
    "text",
    [
        "sip:",
        "sip:@example.com",
        "sip:user@",
        "sip:user@exa mple.com",
        "sip:user@example.com:99999",
        "sip:user@example.com:port",
        "sip:user@[2001:db8::1",
        "sip:user@example.com;;lr",
        "sip:user@example.com?noequals",
        "sip:<user>@example.com",
        "tel",
        "http:",
        "<sip:a@b>",
    ],
)
def test_malformed_uris_raise(text: str) -> None:
    with pytest.raises(SipParseError):
        parse_uri(text)


def test_other_schemes_stay_opaque() -> None:
    assert parse_uri("tel:+46-8-123456;phone-context=x") == AbsoluteURI(
        "tel", "tel:+46-8-123456;phone-context=x"
    )
    assert parse_uri("Soap.Beep://192.0.2.103:3002").scheme == "soap.beep"
    assert str(parse_uri("urn:service:sos")) == "urn:service:sos"


def test_equivalence_rules_of_19_1_4() -> None:
    def eq(a: str, b: str) -> bool:
        x, y = SipURI.parse(a), SipURI.parse(b)
        assert x.equivalent(y) == y.equivalent(x)
        return x.equivalent(y)

    # RFC 3261 §19.1.4 examples that are equivalent
    assert eq("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp")
    assert eq("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5")
    assert eq("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;newparam=5")
    assert eq(
        "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
        "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
    )
    assert eq(
        "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
        "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
    )
    assert eq("sip:a@[2001:db8::1]", "sip:a@[2001:0db8:0:0::1]")
    # and those that are not
    assert not eq("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP")
    assert not eq("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060")
    assert not eq("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp")
    assert not eq("sip:bob@biloxi.com", "sips:bob@biloxi.com")
    assert not eq("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting")
    assert not eq("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off")
    assert not eq("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4")


@given(sip_uris())
def test_sip_uri_round_trip(uri: SipURI) -> None:
    text = str(uri)
    assert SipURI.parse(text) == uri
    assert SipURI.parse(text).equivalent(uri)


# --- helpers ----------------------------------------------------------------------------------


def test_split_list_respects_quotes_and_angles() -> None:
    value = '"Doe, John" <sip:j@x;a=1,2>;q=0.5 , <sip:k@y>,,sip:z@w'
    assert split_list(value) == ['"Doe, John" <sip:j@x;a=1,2>;q=0.5', "<sip:k@y>", "sip:z@w"]
    with pytest.raises(SipParseError):
        split_list('"unterminated, <sip:a@b>, x')
    with pytest.raises(SipParseError):
        split_list("<sip:a@b, c")


def test_parse_params() -> None:
    assert parse_params(' tag = abc ;lr; x="a;b\\"c" ') == {
        "tag": "abc",
        "lr": None,
        "x": '"a;b\\"c"',
    }
    for bad in ("", "a;;b", "a b=c", 'x="open', "x=a b"):
        with pytest.raises(SipParseError):
            parse_params(bad)


# --- NameAddr ---------------------------------------------------------------------------------


def test_name_addr_forms() -> None:
    na = NameAddr.parse('"Alice \\"A\\" Smith" <sip:alice@atlanta.com>;tag=88sja8x;x')
    assert na.display == 'Alice "A" Smith' and na.tag == "88sja8x"
    assert na.params == {"tag": "88sja8x", "x": None}
    assert str(na) == '"Alice \\"A\\" Smith" <sip:alice@atlanta.com>;tag=88sja8x;x'
    bare = NameAddr.parse("sip:bob@biloxi.com;tag=1")  # addr-spec: params belong to the header
    assert bare.display is None and bare.params == {"tag": "1"}
    assert isinstance(bare.uri, SipURI) and bare.uri.params == {}
    assert NameAddr.parse("Bob Smith<sip:bob@b.com>").display == "Bob Smith"
    star = NameAddr.parse("*")
    assert star.uri == AbsoluteURI("*", "*") and str(star) == "*"
    inst = NameAddr.parse('<sip:a@b;ob>;+sip.instance="<urn:uuid:1>";reg-id=1')
    assert inst.params == {"+sip.instance": '"<urn:uuid:1>"', "reg-id": "1"}


@pytest.mark.parametrize(
    "text",
    [
        "",
        '"unterminated <sip:a@b>',
        "Bell, Alexander <sip:a@b>",
        "< sip:a@b >",
        "<sip:a@b",
        "sip:a@b?Route=x",
        "<sip:a@b> junk",
        "<sip:a@b>;;",
    ],
)
def test_malformed_name_addrs_raise(text: str) -> None:
    with pytest.raises(SipParseError):
        NameAddr.parse(text)


@given(name_addrs())
def test_name_addr_round_trip(na: NameAddr) -> None:
    assert NameAddr.parse(str(na)) == na
