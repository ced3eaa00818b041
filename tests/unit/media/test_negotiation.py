"""RFC 3264 offer/answer for Växla's G.711 streams."""

from __future__ import annotations

import pytest

from vaxla.media.negotiation import (
    PCMA,
    PCMU,
    NegotiationError,
    accept_answer,
    make_answer,
    make_offer,
    restrict_to_g711,
)
from vaxla.sip.sdp import SessionDescription

BARESIP_OFFER = (
    b"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 0 8 96 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:96 opus/48000/2\r\na=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-15\r\na=ptime:30\r\na=sendrecv\r\n"
    b"m=video 5000 RTP/AVP 97\r\na=rtpmap:97 H264/90000\r\n"
)


def test_answer_prefers_pcma_keeps_telephone_event_and_rejects_video() -> None:
    answer, params = make_answer(BARESIP_OFFER, "127.0.0.2", 30000, session_id="9")
    assert params.codec == PCMA
    assert params.telephone_event_pt == 101
    assert (params.remote_address, params.remote_port, params.remote_rtcp_port) == (
        "127.0.0.1",
        4000,
        4001,
    )
    assert params.ptime == 30  # the offerer wants 30 ms packets
    audio, video = answer.media
    assert audio.get_attribute("ptime") == "30"  # and the answer says so
    assert audio.port == 30000 and audio.formats == ["8", "101"]
    assert audio.direction == "sendrecv"
    assert video.port == 0  # same number of m-lines, rejected (RFC 3264 §6)
    assert answer.connection is not None and answer.connection.address == "127.0.0.2"
    SessionDescription.parse(bytes(answer))  # well-formed


def test_answer_mirrors_direction_and_pcmu_only() -> None:
    offer = make_offer("10.0.0.1", 4000, session_id="1", codecs=[PCMU], direction="sendonly")
    _, params = make_answer(offer, "127.0.0.1", 30000, session_id="2")
    assert params.codec == PCMU and params.direction == "recvonly"
    assert params.receives and not params.sends


def test_no_g711_is_488() -> None:
    offer = BARESIP_OFFER.replace(b"RTP/AVP 0 8 96 101", b"RTP/AVP 96")
    with pytest.raises(NegotiationError) as info:
        make_answer(offer, "127.0.0.1", 30000, session_id="1")
    assert info.value.status_hint == 488


def test_offer_and_accept_answer_rtcp_mux() -> None:
    offer = make_offer("127.0.0.1", 30000, session_id="1", rtcp_mux=True, ptime=20)
    answer, _ = make_answer(offer, "127.0.0.3", 40000, session_id="2")
    params = accept_answer(offer, answer)
    assert params.rtcp_mux and params.remote_rtcp_port == 40000
    assert params.codec == PCMA and params.telephone_event_pt == 101


def test_restrict_to_g711_orders_alaw_first() -> None:
    narrowed = restrict_to_g711(BARESIP_OFFER)
    assert narrowed is not None
    audio = narrowed.media[0]
    assert audio.formats == ["8", "0", "101"]
    assert set(audio.rtpmap()) == {0, 8, 101}
    assert restrict_to_g711(BARESIP_OFFER.replace(b"RTP/AVP 0 8 96 101", b"RTP/AVP 96")) is None
