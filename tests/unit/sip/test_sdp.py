"""Tests for vaxla.sip.sdp (RFC 4566)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vaxla.sip.errors import SipParseError
from vaxla.sip.sdp import (
    Connection,
    MediaDescription,
    Origin,
    SdpParseError,
    SessionDescription,
    Timing,
)

# The shared conformance corpus sits next to the project checkout.
RFC4475_DIR = Path(__file__).resolve().parents[4] / "shared" / "conformance" / "rfc4475"


def crlf(*lines: str) -> bytes:
    return "".join(line + "\r\n" for line in lines).encode()


# Captured from baresip 1.0.0 (Debian) dialling a UDP listener, modules g711, opus, g722.
BARESIP_OFFER = crlf(
    "v=0",
    "o=- 1119294891 2108604347 IN IP4 127.0.0.1",
    "s=-",
    "c=IN IP4 127.0.0.1",
    "t=0 0",
    "a=tool:baresip 1.0.0",
    "m=audio 6608 RTP/AVP 0 8 96 9 101",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:96 opus/48000/2",
    "a=fmtp:96 stereo=1;sprop-stereo=1",
    "a=rtpmap:9 G722/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-15",
    "a=sendrecv",
    "a=label:1",
    "a=rtcp-rsize",
    "a=ssrc:2654166438 cname:sip:1001@127.0.0.1",
    "a=minptime:20",
    "a=ptime:20",
)

# A Linphone-style audio+video offer (layout of Linphone desktop 4.x offers,
# written by hand: no Linphone is installed here).
LINPHONE_OFFER = crlf(
    "v=0",
    "o=1001 2390 3085 IN IP4 192.168.1.23",
    "s=Talk",
    "c=IN IP4 192.168.1.23",
    "t=0 0",
    "a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics",
    "a=record:off",
    "m=audio 7078 RTP/AVP 96 97 98 0 8 18 101 99 100",
    "a=rtpmap:96 opus/48000/2",
    "a=fmtp:96 useinbandfec=1",
    "a=rtpmap:97 SILK/16000",
    "a=rtpmap:98 speex/16000",
    "a=fmtp:98 vbr=on",
    "a=rtpmap:18 G729/8000",
    "a=fmtp:18 annexb=yes",
    "a=rtpmap:101 telephone-event/48000",
    "a=rtpmap:99 telephone-event/16000",
    "a=rtpmap:100 telephone-event/8000",
    "a=rtcp:7079",
    "a=rtcp-fb:* trr-int 1000",
    "a=rtcp-fb:* ccm tmmbr",
    "m=video 9078 RTP/AVP 102 103",
    "a=rtpmap:102 VP8/90000",
    "a=rtpmap:103 H264/90000",
    "a=fmtp:103 profile-level-id=42801F",
    "a=rtcp:9079",
    "a=rtcp-fb:* trr-int 1000",
    "a=rtcp-fb:102 nack pli",
    "a=rtcp-fb:103 ccm fir",
    "a=sendonly",
)

# RFC 4566 §5 example, with the §5.10 r=/z= examples and b=, k=, p= added.
RFC4566_FULL = crlf(
    "v=0",
    "o=jdoe 2890844526 2890842807 IN IP4 10.47.16.5",
    "s=SDP Seminar",
    "i=A Seminar on the session description protocol",
    "u=http://www.example.com/seminars/sdp.pdf",
    "e=j.doe@example.com (Jane Doe)",
    "p=+46 8 123 456 78",
    "c=IN IP4 224.2.17.12/127",
    "b=CT:128",
    "t=2873397496 2873404696",
    "r=604800 3600 0 90000",
    "r=7d 1h 0 25h",
    "z=2882844526 -1h 2898848070 0",
    "k=prompt",
    "a=recvonly",
    "m=audio 49170 RTP/AVP 0",
    "m=video 51372/2 RTP/AVP 99",
    "i=the camera",
    "c=IN IP6 ff15::101/3",
    "b=AS:256",
    "k=prompt",
    "a=rtpmap:99 h263-1998/90000",
)


def rfc4475_body(name: str) -> bytes:
    data = (RFC4475_DIR / name).read_bytes()
    return data.split(b"\r\n\r\n", 1)[1]


# --------------------------------------------------------------------------- real offers


def test_baresip_offer() -> None:
    sdp = SessionDescription.parse(BARESIP_OFFER)
    assert sdp.origin == Origin("-", "1119294891", 2108604347, "IN", "IP4", "127.0.0.1")
    assert sdp.session_name == "-"
    assert sdp.connection == Connection("127.0.0.1")
    assert sdp.times == [Timing(0, 0)]
    assert sdp.attributes == [("tool", "baresip 1.0.0")]
    assert len(sdp.media) == 1
    audio = sdp.media[0]
    assert (audio.media, audio.port, audio.port_count, audio.proto) == (
        "audio",
        6608,
        None,
        "RTP/AVP",
    )
    assert audio.formats == ["0", "8", "96", "9", "101"]
    assert audio.connection is None
    assert sdp.media_connection(audio) == Connection("127.0.0.1")
    assert audio.rtpmap() == {
        0: ("PCMU", 8000, 1),
        8: ("PCMA", 8000, 1),
        96: ("opus", 48000, 2),
        9: ("G722", 8000, 1),
        101: ("telephone-event", 8000, 1),
    }
    assert audio.fmtp() == {96: "stereo=1;sprop-stereo=1", 101: "0-15"}
    assert audio.direction == "sendrecv"
    assert audio.has_attribute("sendrecv")
    assert audio.get_attribute("ptime") == "20"
    assert audio.get_attribute("rtcp-rsize") is None
    assert audio.get_attributes("ssrc") == ["2654166438 cname:sip:1001@127.0.0.1"]
    assert bytes(sdp) == BARESIP_OFFER


def test_linphone_offer() -> None:
    sdp = SessionDescription.parse(LINPHONE_OFFER)
    assert sdp.session_name == "Talk"
    assert sdp.attributes[1] == ("record", "off")
    audio, video = sdp.media
    assert audio.rtpmap()[101] == ("telephone-event", 48000, 1)
    assert 0 not in audio.rtpmap()  # static payload type without a=rtpmap
    assert audio.fmtp()[18] == "annexb=yes"
    assert audio.get_attribute("rtcp") == "7079"
    assert audio.get_attributes("rtcp-fb") == ["* trr-int 1000", "* ccm tmmbr"]
    assert video.rtpmap() == {102: ("VP8", 90000, 1), 103: ("H264", 90000, 1)}
    assert sdp.direction is None
    assert sdp.media_direction(audio) == "sendrecv"
    assert video.direction == "sendonly"
    assert bytes(sdp) == LINPHONE_OFFER


def test_rfc4566_full_example() -> None:
    sdp = SessionDescription.parse(RFC4566_FULL)
    assert sdp.information == "A Seminar on the session description protocol"
    assert sdp.uri == "http://www.example.com/seminars/sdp.pdf"
    assert sdp.emails == ["j.doe@example.com (Jane Doe)"]
    assert sdp.phones == ["+46 8 123 456 78"]
    assert sdp.connection == Connection("224.2.17.12", ttl=127)
    assert sdp.bandwidths == [("CT", 128)]
    assert sdp.times == [Timing(2873397496, 2873404696, ["604800 3600 0 90000", "7d 1h 0 25h"])]
    assert sdp.time_zones == "2882844526 -1h 2898848070 0"
    assert sdp.encryption_key == "prompt"
    assert sdp.direction == "recvonly"
    audio, video = sdp.media
    assert sdp.media_direction(audio) == "recvonly"
    assert audio.direction == "sendrecv"  # media level only
    assert (video.port, video.port_count) == (51372, 2)
    assert video.title == "the camera"
    assert video.connection == Connection("ff15::101", addrtype="IP6", count=3)
    assert video.bandwidths == [("AS", 256)]
    assert video.encryption_key == "prompt"
    assert bytes(sdp) == RFC4566_FULL


@pytest.mark.parametrize(
    ("name", "origin_address", "connection_address"),
    [("sdp01.dat", "192.0.2.5", "192.0.2.5"), ("wsinv.dat", "192.0.2.3", "192.0.2.4")],
)
def test_rfc4475_bodies(name: str, origin_address: str, connection_address: str) -> None:
    body = rfc4475_body(name)
    assert len(body) == 150  # their Content-Length
    sdp = SessionDescription.parse(body)
    assert sdp.origin.username == "mhandley"
    assert sdp.origin.address == origin_address
    assert sdp.connection == Connection(connection_address)
    audio, video = sdp.media
    assert audio.formats == ["0", "12"]
    assert (video.port, video.formats) == (3227, ["31"])
    # "a=rtpmap:31 LPC" has no clock rate: kept as an attribute, skipped by rtpmap().
    assert video.attributes == [("rtpmap", "31 LPC")]
    assert video.rtpmap() == {}
    assert bytes(sdp) == body


# --------------------------------------------------------------------------- leniency


def test_lf_only_and_blank_lines() -> None:
    lf = BARESIP_OFFER.replace(b"\r\n", b"\n") + b"\n"
    sdp = SessionDescription.parse(lf)
    assert sdp == SessionDescription.parse(BARESIP_OFFER)
    assert bytes(sdp) == BARESIP_OFFER


def test_str_input_and_missing_final_newline() -> None:
    text = BARESIP_OFFER.decode().rstrip("\r\n")
    assert bytes(SessionDescription.parse(text)) == BARESIP_OFFER


def test_lines_out_of_order_are_accepted_and_serialised_canonically() -> None:
    shuffled = crlf(
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0",
        "c=IN IP4 192.0.2.1",  # after t= and a=
        "m=audio 4000 RTP/AVP 0",
        "a=ptime:20",
        "c=IN IP4 192.0.2.2",  # a= before c=
        "b=AS:80",
        "a=sendonly",
    )
    sdp = SessionDescription.parse(shuffled)
    assert sdp.connection == Connection("192.0.2.1")
    assert sdp.media[0].connection == Connection("192.0.2.2")
    assert sdp.media[0].attributes == [("ptime", "20"), ("sendonly", None)]
    assert bytes(sdp) == crlf(
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "c=IN IP4 192.0.2.1",
        "t=0 0",
        "a=group:BUNDLE 0",
        "m=audio 4000 RTP/AVP 0",
        "c=IN IP4 192.0.2.2",
        "b=AS:80",
        "a=ptime:20",
        "a=sendonly",
    )


def test_non_utf8_octets_survive() -> None:
    body = crlf("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "t=0 0").replace(b"s=-", b"s=K\xf6k")
    assert bytes(SessionDescription.parse(body)) == body


def test_rejected_stream_without_formats() -> None:
    body = crlf("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "t=0 0", "m=video 0 RTP/AVP")
    sdp = SessionDescription.parse(body)
    assert sdp.media[0].formats == []
    assert bytes(sdp) == body


# --------------------------------------------------------------------------- errors

_GOOD_HEAD = ["v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "t=0 0"]


@pytest.mark.parametrize(
    "lines",
    [
        [],
        ["o=- 1 1 IN IP4 192.0.2.1", "v=0", "s=-", "t=0 0"],  # v= not first
        ["v=1", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "t=0 0"],
        ["v=0", "s=-", "t=0 0"],  # no o=
        ["v=0", "o=- 1 1 IN IP4 192.0.2.1", "t=0 0"],  # no s=
        ["v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-"],  # no t=
        ["v=0", "o=- 1 1 IN IP4", "s=-", "t=0 0"],  # short o=
        ["v=0", "o=- 1 x IN IP4 192.0.2.1", "s=-", "t=0 0"],  # version not numeric
        ["v=0", "o=-  1 1 IN IP4 192.0.2.1", "s=-", "t=0 0"],  # double space
        [*_GOOD_HEAD, "o=- 2 2 IN IP4 192.0.2.1"],  # two o=
        [*_GOOD_HEAD, "s=again"],
        [*_GOOD_HEAD, "c=IN IP4 192.0.2.1", "c=IN IP4 192.0.2.2"],
        [*_GOOD_HEAD, "c=IN IP4"],
        [*_GOOD_HEAD, "c=IN IP4 224.2.1.1/x"],
        [*_GOOD_HEAD, "c=IN IP4 224.2.1.1/1/2/3"],
        [*_GOOD_HEAD, "c=IN IP6 ff15::1/1/2"],
        [*_GOOD_HEAD, "b=AS"],
        [*_GOOD_HEAD, "b=AS:-5"],
        ["v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "t=now 0"],
        ["v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "r=1 2 3", "t=0 0"],
        [*_GOOD_HEAD, "x=unknown type"],
        [*_GOOD_HEAD, "A=upper"],
        [*_GOOD_HEAD, "a="],
        [*_GOOD_HEAD, "a=bad name:1"],
        [*_GOOD_HEAD, "garbage"],
        [*_GOOD_HEAD, "a"],
        [*_GOOD_HEAD, " a=x"],
        [*_GOOD_HEAD, "m=audio"],
        [*_GOOD_HEAD, "m=audio 70000 RTP/AVP 0"],
        [*_GOOD_HEAD, "m=audio -1 RTP/AVP 0"],
        [*_GOOD_HEAD, "m=audio 4000/ RTP/AVP 0"],
        [*_GOOD_HEAD, "m=audio 4000  RTP/AVP 0"],
        [*_GOOD_HEAD, "m=audio 4000 RTP/AVP 0 "],
        [*_GOOD_HEAD, "m=audio 4000 RTP/AVP 0", "t=0 0"],  # session line in media
        [*_GOOD_HEAD, "m=audio 4000 RTP/AVP 0", "c=IN IP4 1.2.3.4", "c=IN IP4 1.2.3.5"],
        [*_GOOD_HEAD, "m=audio 4000 RTP/AVP 0", "i=a", "i=b"],
        [*_GOOD_HEAD, "m=audio 4000 RTP/AVP 0", "q=what"],
        [*_GOOD_HEAD, "v=0"],
    ],
)
def test_garbage_rejected_with_488(lines: list[str]) -> None:
    with pytest.raises(SdpParseError) as info:
        SessionDescription.parse(crlf(*lines))
    assert isinstance(info.value, SipParseError)
    assert info.value.status_hint == 488


def test_baseline_for_error_cases_is_valid() -> None:
    # The error cases above are the good head plus one bad line: make sure the head parses.
    sdp = SessionDescription.parse(crlf(*_GOOD_HEAD, "m=audio 4000 RTP/AVP 0"))
    assert sdp.media[0].port == 4000


def test_binary_garbage_rejected() -> None:
    with pytest.raises(SdpParseError):
        SessionDescription.parse(b"\x00\x01\x02\xff\xfe")


# --------------------------------------------------------------------------- helpers


def test_direction_setter_replaces_in_place() -> None:
    sdp = SessionDescription.parse(BARESIP_OFFER)
    audio = sdp.media[0]
    index = audio.attributes.index(("sendrecv", None))
    audio.direction = "inactive"
    assert audio.direction == "inactive"
    assert audio.attributes[index] == ("inactive", None)
    assert ("sendrecv", None) not in audio.attributes
    assert b"a=inactive\r\na=label:1\r\n" in bytes(sdp)
    with pytest.raises(ValueError):
        audio.direction = "sideways"


def test_direction_setter_appends_and_collapses_duplicates() -> None:
    m = MediaDescription("audio", 4000, "RTP/AVP", ["0"])
    m.direction = "recvonly"
    assert m.attributes == [("recvonly", None)]
    m.attributes.append(("sendonly", None))  # two direction attributes: last wins
    assert m.direction == "sendonly"
    m.direction = "sendrecv"
    assert m.attributes == [("sendrecv", None)]
    sdp = SessionDescription(Origin("-", "1", 1), media=[m])
    sdp.direction = "inactive"
    assert sdp.attributes == [("inactive", None)]
    assert sdp.media_direction(m) == "sendrecv"


def test_rewrite_connection_for_media_anchoring() -> None:
    sdp = SessionDescription.parse(LINPHONE_OFFER)
    sdp.media[1].port = 0  # a rejected video stream keeps port 0
    sdp.rewrite_connection("203.0.113.7", [40000, 40002])
    assert sdp.connection == Connection("203.0.113.7")
    assert sdp.origin.address == "203.0.113.7"
    audio, video = sdp.media
    assert audio.port == 40000
    assert video.port == 0
    assert audio.connection is None and video.connection is None
    assert not audio.has_attribute("rtcp")  # named the old endpoint
    assert video.has_attribute("rtcp")  # untouched: port not changed
    text = bytes(sdp)
    assert b"192.168.1.23" not in text
    assert b"m=audio 40000 RTP/AVP 96 97" in text
    assert SessionDescription.parse(text) == sdp


def test_rewrite_connection_ipv6_and_keep_ports() -> None:
    sdp = SessionDescription.parse(RFC4566_FULL)
    sdp.rewrite_connection("2001:db8::1", rewrite_origin=False)
    assert sdp.connection == Connection("2001:db8::1", addrtype="IP6")
    assert sdp.origin.address == "10.47.16.5"
    assert [m.port for m in sdp.media] == [49170, 51372]
    assert all(m.connection is None for m in sdp.media)
    with pytest.raises(ValueError):
        sdp.rewrite_connection("192.0.2.1", [1])
    with pytest.raises(ValueError):
        sdp.rewrite_connection("192.0.2.1", [70000, None])


def test_build_from_scratch() -> None:
    sdp = SessionDescription(
        origin=Origin("vaxla", "42", 1, address="192.0.2.10"),
        connection=Connection("192.0.2.10"),
        media=[
            MediaDescription(
                "audio",
                30000,
                "RTP/AVP",
                ["8", "101"],
                attributes=[
                    ("rtpmap", "8 PCMA/8000"),
                    ("rtpmap", "101 telephone-event/8000"),
                    ("fmtp", "101 0-16"),
                    ("ptime", "20"),
                    ("sendrecv", None),
                ],
            )
        ],
    )
    assert bytes(sdp) == crlf(
        "v=0",
        "o=vaxla 42 1 IN IP4 192.0.2.10",
        "s=-",
        "c=IN IP4 192.0.2.10",
        "t=0 0",
        "m=audio 30000 RTP/AVP 8 101",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=ptime:20",
        "a=sendrecv",
    )


def test_rtpmap_skips_malformed_lines() -> None:
    m = MediaDescription(
        "audio",
        1,
        "RTP/AVP",
        ["0"],
        attributes=[
            ("rtpmap", None),
            ("rtpmap", "x PCMU/8000"),
            ("rtpmap", "0 PCMU"),
            ("rtpmap", "0 PCMU/fast"),
            ("rtpmap", "0 /8000"),
            ("rtpmap", "0 L16/8000/two"),
            ("rtpmap", "11 L16/44100/1"),
            ("fmtp", None),
            ("fmtp", "* x=1"),
            ("fmtp", "11 a=b"),
        ],
    )
    assert m.rtpmap() == {11: ("L16", 44100, 1)}
    assert m.fmtp() == {11: "a=b"}


# --------------------------------------------------------------------------- property

_TOKEN = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+~",
    min_size=1,
    max_size=12,
)
_VALUE = st.text(
    alphabet=st.characters(
        codec="utf-8", exclude_characters="\r\n", exclude_categories=("Cs", "Cc")
    ),
    max_size=20,
)
_NON_EMPTY_VALUE = _VALUE.filter(bool)
_NUMBER = st.integers(min_value=0, max_value=2**40)
_ADDRESS = st.from_regex(r"[a-z0-9.:]{1,20}", fullmatch=True)


@st.composite
def _connections(draw: st.DrawFn) -> Connection:
    addrtype = draw(st.sampled_from(["IP4", "IP6"]))
    ttl = draw(st.none() | st.integers(0, 255)) if addrtype == "IP4" else None
    count = draw(st.none() | st.integers(1, 16)) if addrtype == "IP6" or ttl is not None else None
    return Connection(draw(_ADDRESS), "IN", addrtype, ttl, count)


_ATTRIBUTES = st.lists(st.tuples(_TOKEN, st.none() | _VALUE), max_size=4)
_BANDWIDTHS = st.lists(st.tuples(_TOKEN, _NUMBER), max_size=2)


@st.composite
def _media(draw: st.DrawFn) -> MediaDescription:
    return MediaDescription(
        media=draw(_TOKEN),
        port=draw(st.integers(0, 65535)),
        proto=draw(st.lists(_TOKEN, min_size=1, max_size=3).map("/".join)),
        formats=draw(st.lists(_TOKEN, max_size=5)),
        port_count=draw(st.none() | st.integers(1, 8)),
        title=draw(st.none() | _VALUE),
        connection=draw(st.none() | _connections()),
        bandwidths=draw(_BANDWIDTHS),
        encryption_key=draw(st.none() | _VALUE),
        attributes=draw(_ATTRIBUTES),
    )


@st.composite
def _sessions(draw: st.DrawFn) -> SessionDescription:
    origin = Origin(
        draw(_TOKEN),
        str(draw(_NUMBER)),
        draw(_NUMBER),
        "IN",
        draw(st.sampled_from(["IP4", "IP6"])),
        draw(_ADDRESS),
    )
    times = draw(
        st.lists(
            st.builds(Timing, _NUMBER, _NUMBER, st.lists(_NON_EMPTY_VALUE, max_size=2)),
            min_size=1,
            max_size=2,
        )
    )
    return SessionDescription(
        origin=origin,
        session_name=draw(_VALUE),
        information=draw(st.none() | _VALUE),
        uri=draw(st.none() | _VALUE),
        emails=draw(st.lists(_VALUE, max_size=2)),
        phones=draw(st.lists(_VALUE, max_size=2)),
        connection=draw(st.none() | _connections()),
        bandwidths=draw(_BANDWIDTHS),
        times=times,
        time_zones=draw(st.none() | _VALUE),
        encryption_key=draw(st.none() | _VALUE),
        attributes=draw(_ATTRIBUTES),
        media=draw(st.lists(_media(), max_size=3)),
    )


@given(_sessions())
def test_round_trip_property(sdp: SessionDescription) -> None:
    data = bytes(sdp)
    parsed = SessionDescription.parse(data)
    assert parsed == sdp
    assert bytes(parsed) == data
