"""SDP offer/answer (RFC 3264) for Växla's own audio streams, sans-IO.

Växla speaks G.711 only, A-law first (Swedish networks use A-law), plus
RFC 4733 telephone-event. This module

* builds offers (:func:`make_offer`) and answers (:func:`make_answer`) for a
  stream Växla terminates (services, re-INVITEs when anchoring a live call);
* reads the other side's answer to such an offer (:func:`accept_answer`);
* narrows a phone's offer to what an anchored call can record and mix
  (:func:`restrict_to_g711`), before Växla passes it on.

Every result is a :class:`StreamParams`: where to send, which payload types,
at which packetisation time, and in which direction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from vaxla.media.errors import MediaError
from vaxla.sip.sdp import Connection, MediaDescription, Origin, SessionDescription, Timing

__all__ = [
    "PCMA",
    "PCMU",
    "AudioCodec",
    "NegotiationError",
    "StreamParams",
    "accept_answer",
    "make_answer",
    "make_offer",
    "restrict_to_g711",
]

TELEPHONE_EVENT = "telephone-event"
DEFAULT_TE_PT = 101
PTIMES = (20, 30)
_REVERSE = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}


class NegotiationError(MediaError):
    """No usable audio stream in an offer or answer: answer 488."""

    status_hint = 488


@dataclass(frozen=True, slots=True)
class AudioCodec:
    name: str
    payload_type: int
    clock_rate: int = 8000


PCMA = AudioCodec("PCMA", 8)
PCMU = AudioCodec("PCMU", 0)
SUPPORTED = (PCMA, PCMU)


@dataclass(frozen=True, slots=True)
class StreamParams:
    """The negotiated audio stream, as Växla sends and receives it.

    ``remote_address``/``remote_port`` is where the peer asked to receive
    (symmetric RTP may later latch elsewhere). ``direction`` is Växla's own
    (``sendonly``: Växla sends, does not expect audio).
    """

    remote_address: str
    remote_port: int
    remote_rtcp_port: int
    codec: AudioCodec
    telephone_event_pt: int | None = None
    ptime: int = 20
    direction: str = "sendrecv"
    rtcp_mux: bool = False

    @property
    def sends(self) -> bool:
        return self.direction in ("sendrecv", "sendonly") and self.remote_port != 0

    @property
    def receives(self) -> bool:
        return self.direction in ("sendrecv", "recvonly")


def _codec_of(m: MediaDescription, fmt: str) -> AudioCodec | None:
    if not fmt.isdigit():
        return None
    pt = int(fmt)
    rtpmap = m.rtpmap()
    if pt in rtpmap:
        name, rate, channels = rtpmap[pt]
        for codec in SUPPORTED:
            if name.upper() == codec.name and rate == 8000 and channels == 1:
                return AudioCodec(codec.name, pt)
        return None
    for codec in SUPPORTED:  # static payload types need no rtpmap
        if pt == codec.payload_type:
            return codec
    return None


def _telephone_event_pt(m: MediaDescription) -> int | None:
    for pt, (name, rate, _) in m.rtpmap().items():
        if name.lower() == TELEPHONE_EVENT and rate == 8000 and str(pt) in m.formats:
            return pt
    return None


def _ptime(m: MediaDescription) -> int | None:
    value = m.get_attribute("ptime")
    if value is None:
        return None
    try:
        ms = int(float(value))
    except ValueError:
        return None
    return ms if ms in PTIMES else None


def _audio_streams(sd: SessionDescription) -> list[int]:
    return [
        i
        for i, m in enumerate(sd.media)
        if m.media == "audio" and m.port != 0 and m.proto.upper() == "RTP/AVP"
    ]


def _remote(sd: SessionDescription, m: MediaDescription) -> tuple[str, int, int, bool]:
    conn = sd.media_connection(m)
    if conn is None:
        raise NegotiationError("audio stream without a connection address")
    mux = m.has_attribute("rtcp-mux")
    rtcp = m.port + 1
    value = m.get_attribute("rtcp")
    if value:
        port_text = value.split(" ", 1)[0]
        if port_text.isdigit():
            rtcp = int(port_text)
    if mux:
        rtcp = m.port
    return conn.address, m.port, rtcp, mux


def _parse(sdp: SessionDescription | bytes) -> SessionDescription:
    return SessionDescription.parse(sdp) if isinstance(sdp, bytes) else sdp


def _media_section(
    port: int,
    codecs: Sequence[AudioCodec],
    te_pt: int | None,
    ptime: int,
    direction: str,
    rtcp_mux: bool,
) -> MediaDescription:
    formats = [str(c.payload_type) for c in codecs]
    attributes: list[tuple[str, str | None]] = [
        ("rtpmap", f"{c.payload_type} {c.name}/8000") for c in codecs
    ]
    if te_pt is not None:
        formats.append(str(te_pt))
        attributes.append(("rtpmap", f"{te_pt} {TELEPHONE_EVENT}/8000"))
        attributes.append(("fmtp", f"{te_pt} 0-16"))
    attributes.append(("ptime", str(ptime)))
    if rtcp_mux:
        attributes.append(("rtcp-mux", None))
    attributes.append((direction, None))
    return MediaDescription("audio", port, "RTP/AVP", formats, attributes=attributes)


def _session(address: str, session_id: str, version: int) -> SessionDescription:
    kind = "IP6" if ":" in address else "IP4"
    return SessionDescription(
        origin=Origin("vaxla", session_id, version, "IN", kind, address),
        session_name="Vaxla",
        connection=Connection(address, "IN", kind),
        times=[Timing()],
    )


def make_offer(
    address: str,
    port: int,
    *,
    session_id: str,
    version: int = 1,
    ptime: int = 20,
    codecs: Sequence[AudioCodec] = SUPPORTED,
    te_pt: int | None = DEFAULT_TE_PT,
    direction: str = "sendrecv",
    rtcp_mux: bool = False,
) -> SessionDescription:
    """An offer for one audio stream on ``address:port`` (RTCP on port + 1)."""
    sd = _session(address, session_id, version)
    sd.media.append(_media_section(port, codecs, te_pt, ptime, direction, rtcp_mux))
    return sd


def make_answer(
    offer: SessionDescription | bytes,
    address: str,
    port: int,
    *,
    session_id: str,
    version: int = 1,
    ptime: int = 20,
    preference: Sequence[AudioCodec] = SUPPORTED,
    want_direction: str = "sendrecv",
) -> tuple[SessionDescription, StreamParams]:
    """Answer ``offer`` (RFC 3264 §6): the first usable audio stream is taken.

    The codec is Växla's preference among those offered (PCMA before PCMU);
    telephone-event is kept at the offerer's payload type; other streams are
    rejected with port 0. Växla sends at the offer's ``a=ptime`` when it is
    20 or 30, else at ``ptime``, and says so in the answer's ``a=ptime``
    (phones such as baresip follow the answer's value for what they send,
    so both directions use the offerer's packetisation).
    Raises :class:`NegotiationError`.
    """
    sd = _parse(offer)
    chosen: tuple[int, AudioCodec] | None = None
    for index in _audio_streams(sd):
        m = sd.media[index]
        offered = [c for c in (_codec_of(m, f) for f in m.formats) if c is not None]
        for wanted in preference:
            match = next((c for c in offered if c.name == wanted.name), None)
            if match is not None:
                chosen = (index, match)
                break
        if chosen is not None:
            break
    if chosen is None:
        raise NegotiationError("no G.711 audio stream offered")
    index, codec = chosen
    m = sd.media[index]
    address_r, port_r, rtcp_r, mux = _remote(sd, m)
    te_pt = _telephone_event_pt(m)
    offered_direction = sd.media_direction(m)
    direction = _REVERSE.get(offered_direction, "sendrecv")
    if want_direction != "sendrecv" and direction != "inactive":
        direction = want_direction if direction == "sendrecv" else "inactive"
    if address_r in ("0.0.0.0", "::"):  # RFC 3264 §8.4 hold (old style)
        direction = "inactive" if direction in ("sendonly", "inactive") else "recvonly"
    send_ptime = _ptime(m) or ptime
    answer = _session(address, session_id, version)
    for i, other in enumerate(sd.media):
        if i == index:
            answer.media.append(_media_section(port, [codec], te_pt, send_ptime, direction, mux))
        else:
            answer.media.append(MediaDescription(other.media, 0, other.proto, other.formats[:1]))
    params = StreamParams(address_r, port_r, rtcp_r, codec, te_pt, send_ptime, direction, mux)
    return answer, params


def accept_answer(
    offer: SessionDescription | bytes,
    answer: SessionDescription | bytes,
    *,
    ptime: int = 20,
) -> StreamParams:
    """What an answer to Växla's own offer means for the stream (RFC 3264 §7)."""
    offer_sd = _parse(offer)
    sd = _parse(answer)
    streams = _audio_streams(sd)
    if not streams:
        raise NegotiationError("answer rejects every audio stream")
    m = sd.media[streams[0]]
    codec = next((c for c in (_codec_of(m, f) for f in m.formats) if c is not None), None)
    if codec is None:
        raise NegotiationError("answer has no G.711 codec")
    address_r, port_r, rtcp_r, mux = _remote(sd, m)
    offered_mux = any(om.has_attribute("rtcp-mux") for om in offer_sd.media)
    direction = _REVERSE.get(sd.media_direction(m), "sendrecv")
    return StreamParams(
        address_r,
        port_r,
        rtcp_r,
        codec,
        _telephone_event_pt(m),
        _ptime(m) or ptime,
        direction,
        mux and offered_mux,
    )


def restrict_to_g711(offer: SessionDescription | bytes) -> SessionDescription | None:
    """A copy of ``offer`` whose audio streams carry only G.711 (A-law first)
    and telephone-event, for an anchored call Växla may record and mix.

    Returns None when some audio stream has no G.711 at all (the call then
    keeps its codecs and is relayed as is).
    """
    sd = _parse(offer)
    out = SessionDescription.parse(bytes(sd))
    for index in _audio_streams(out):
        m = out.media[index]
        codecs = [c for c in (_codec_of(m, f) for f in m.formats) if c is not None]
        if not codecs:
            return None
        codecs.sort(key=lambda c: 0 if c.name == "PCMA" else 1)
        te_pt = _telephone_event_pt(m)
        keep = {str(c.payload_type) for c in codecs} | (
            {str(te_pt)} if te_pt is not None else set()
        )
        m.formats = [str(c.payload_type) for c in codecs] + (
            [str(te_pt)] if te_pt is not None else []
        )
        m.attributes = [
            (name, value)
            for name, value in m.attributes
            if name not in ("rtpmap", "fmtp")
            or (value is not None and value.split(" ", 1)[0] in keep)
        ]
    return out


def with_direction(params: StreamParams, direction: str) -> StreamParams:
    return replace(params, direction=direction)
