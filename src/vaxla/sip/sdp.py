"""SDP (RFC 4566) parsing and serialisation, sans-IO.

:meth:`SessionDescription.parse` is strict about the content of each line
(field counts, numbers, the mandatory v/o/s/t lines, unknown line types) and
lenient about form: LF-only line ends, blank lines, and the order of lines
within the session part or within one media section (e.g. ``a=`` before
``c=``). Serialisation writes the RFC 4566 order with CRLF line ends, so a
description in canonical order round-trips byte for byte. Octets that are not
UTF-8 survive the round trip (decoded with ``surrogateescape``).

Errors raise :class:`SdpParseError`, whose ``status_hint`` is 488 (Not
Acceptable Here), the SIP answer to an offer that cannot be used.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from vaxla.sip.errors import SipParseError

__all__ = [
    "DIRECTIONS",
    "Connection",
    "MediaDescription",
    "Origin",
    "SdpParseError",
    "SessionDescription",
    "Timing",
]

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
Attribute = tuple[str, str | None]

_TOKEN_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`{|}~"
)
_DIGITS = frozenset("0123456789")


class SdpParseError(SipParseError):
    """An SDP body that cannot be parsed; answer 488 by default."""

    def __init__(self, message: str, status_hint: int | None = 488) -> None:
        super().__init__(message, status_hint=status_hint)


def _is_token(text: str) -> bool:
    return bool(text) and all(ch in _TOKEN_CHARS for ch in text)


def _int(text: str, what: str, *, maximum: int | None = None) -> int:
    if not text or not set(text) <= _DIGITS:
        raise SdpParseError(f"{what}: not a number: {text!r}")
    value = int(text)
    if maximum is not None and value > maximum:
        raise SdpParseError(f"{what}: out of range: {text!r}")
    return value


def _fields(value: str, count: int, what: str) -> list[str]:
    parts = value.split(" ")
    if len(parts) != count or not all(parts):
        raise SdpParseError(
            f"{what}: expected {count} fields separated by single spaces: {value!r}"
        )
    return parts


@dataclass(slots=True)
class Origin:
    """``o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>``.

    ``session_id`` is kept as text (it may exceed 64 bits and is only
    compared); ``session_version`` is a number so it can be incremented
    (RFC 3264 §8: +1 for each changed offer in a dialog).
    """

    username: str
    session_id: str
    session_version: int
    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "0.0.0.0"

    @classmethod
    def parse(cls, value: str) -> Origin:
        username, sess_id, version, nettype, addrtype, address = _fields(value, 6, "o=")
        # RFC 4566 wants digits; any token is accepted since it is only compared.
        if not _is_token(sess_id):
            raise SdpParseError(f"o=: bad session id: {sess_id!r}")
        return cls(
            username, sess_id, _int(version, "o= session version"), nettype, addrtype, address
        )

    def __str__(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.session_version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )


@dataclass(slots=True)
class Connection:
    """``c=<nettype> <addrtype> <connection-address>``.

    Multicast suffixes are split off: IP4 ``addr/ttl[/count]``, IP6
    ``addr[/count]``.
    """

    address: str
    nettype: str = "IN"
    addrtype: str = "IP4"
    ttl: int | None = None
    count: int | None = None

    @classmethod
    def parse(cls, value: str) -> Connection:
        nettype, addrtype, full = _fields(value, 3, "c=")
        address, *suffix = full.split("/")
        if not address:
            raise SdpParseError(f"c=: empty address: {value!r}")
        numbers = [_int(part, "c= multicast suffix") for part in suffix]
        ttl: int | None = None
        count: int | None = None
        if addrtype.upper() == "IP6":
            if len(numbers) > 1:
                raise SdpParseError(f"c=: too many '/' for IP6: {value!r}")
            count = numbers[0] if numbers else None
        else:
            if len(numbers) > 2:
                raise SdpParseError(f"c=: too many '/': {value!r}")
            ttl = numbers[0] if numbers else None
            count = numbers[1] if len(numbers) > 1 else None
        return cls(address, nettype, addrtype, ttl, count)

    def __str__(self) -> str:
        text = f"{self.nettype} {self.addrtype} {self.address}"
        if self.ttl is not None:
            text += f"/{self.ttl}"
        if self.count is not None:
            text += f"/{self.count}"
        return text


@dataclass(slots=True)
class Timing:
    """``t=<start> <stop>`` and its ``r=`` lines (kept as text)."""

    start: int = 0
    stop: int = 0
    repeats: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, value: str) -> Timing:
        start, stop = _fields(value, 2, "t=")
        return cls(_int(start, "t= start"), _int(stop, "t= stop"))


def _parse_bandwidth(value: str) -> tuple[str, int]:
    bwtype, sep, amount = value.partition(":")
    if not sep or not _is_token(bwtype):
        raise SdpParseError(f"b=: malformed: {value!r}")
    return bwtype, _int(amount, "b= bandwidth")


def _parse_attribute(value: str) -> Attribute:
    name, sep, attr_value = value.partition(":")
    if not _is_token(name):
        raise SdpParseError(f"a=: malformed attribute name: {value!r}")
    return name, attr_value if sep else None


def _format_attribute(attribute: Attribute) -> str:
    name, value = attribute
    return name if value is None else f"{name}:{value}"


def _get_direction(attributes: Sequence[Attribute]) -> str | None:
    found = None
    for name, value in attributes:
        if value is None and name in DIRECTIONS:
            found = name
    return found


def _set_direction(attributes: list[Attribute], direction: str) -> None:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
    positions = [
        i for i, (name, value) in enumerate(attributes) if value is None and name in DIRECTIONS
    ]
    for i in reversed(positions):
        del attributes[i]
    attributes.insert(positions[0] if positions else len(attributes), (direction, None))


@dataclass(slots=True)
class MediaDescription:
    """One ``m=`` section: ``m=<media> <port>[/<count>] <proto> <fmt> ...`` and its lines.

    ``attributes`` keeps the ``a=`` lines in order as (name, value) with value
    None for property attributes such as ``a=sendrecv``.
    """

    media: str
    port: int
    proto: str
    formats: list[str]
    port_count: int | None = None
    title: str | None = None
    connection: Connection | None = None
    bandwidths: list[tuple[str, int]] = field(default_factory=list)
    encryption_key: str | None = None
    attributes: list[Attribute] = field(default_factory=list)

    @classmethod
    def parse_m_line(cls, value: str) -> MediaDescription:
        parts = value.split(" ")
        if len(parts) < 3 or not all(parts):
            raise SdpParseError(f"m=: malformed: {value!r}")
        media, port_text, proto, *formats = parts
        if not _is_token(media):
            raise SdpParseError(f"m=: bad media type: {value!r}")
        if not all(_is_token(part) for part in proto.split("/")):
            raise SdpParseError(f"m=: bad transport protocol: {value!r}")
        port_part, sep, count_part = port_text.partition("/")
        port = _int(port_part, "m= port", maximum=65535)
        port_count = _int(count_part, "m= port count") if sep else None
        for fmt in formats:
            if not _is_token(fmt):
                raise SdpParseError(f"m=: bad format {fmt!r}")
        # RFC 4566 wants at least one format; a rejected stream (port 0)
        # without any is seen in the wild and accepted.
        return cls(media, port, proto, list(formats), port_count)

    def m_line(self) -> str:
        port = str(self.port) if self.port_count is None else f"{self.port}/{self.port_count}"
        return " ".join([self.media, port, self.proto, *self.formats])

    # -- attribute helpers

    def get_attributes(self, name: str) -> list[str | None]:
        """Values of every ``a=<name>`` line, in order."""
        return [value for attr, value in self.attributes if attr == name]

    def get_attribute(self, name: str) -> str | None:
        """Value of the first ``a=<name>`` (None when absent or valueless)."""
        for attr, value in self.attributes:
            if attr == name:
                return value
        return None

    def has_attribute(self, name: str) -> bool:
        return any(attr == name for attr, _ in self.attributes)

    def remove_attributes(self, name: str) -> None:
        self.attributes[:] = [a for a in self.attributes if a[0] != name]

    def rtpmap(self) -> dict[int, tuple[str, int, int]]:
        """``a=rtpmap`` as {payload type: (encoding name, clock rate, channels)}.

        Channels default to 1. Malformed lines are skipped. Static payload
        types without an rtpmap line are not included.
        """
        result: dict[int, tuple[str, int, int]] = {}
        for value in self.get_attributes("rtpmap"):
            if value is None:
                continue
            pt_text, _, encoding = value.partition(" ")
            parts = encoding.strip().split("/")
            if not pt_text.isdigit() or len(parts) not in (2, 3) or not parts[0]:
                continue
            if not parts[1].isdigit() or (len(parts) == 3 and not parts[2].isdigit()):
                continue
            channels = int(parts[2]) if len(parts) == 3 else 1
            result[int(pt_text)] = (parts[0], int(parts[1]), channels)
        return result

    def fmtp(self) -> dict[int, str]:
        """``a=fmtp`` as {payload type: format parameters text}. Non-numeric formats are skipped."""
        result: dict[int, str] = {}
        for value in self.get_attributes("fmtp"):
            if value is None:
                continue
            pt_text, _, params = value.partition(" ")
            if pt_text.isdigit():
                result[int(pt_text)] = params.strip()
        return result

    @property
    def direction(self) -> str:
        """The media-level direction attribute; ``"sendrecv"`` when none.

        Does not look at the session level: see
        :meth:`SessionDescription.media_direction`.
        """
        return _get_direction(self.attributes) or "sendrecv"

    @direction.setter
    def direction(self, value: str) -> None:
        """Replace every direction attribute by ``value`` (at the first one's place)."""
        _set_direction(self.attributes, value)

    def lines(self) -> list[str]:
        out = [f"m={self.m_line()}"]
        if self.title is not None:
            out.append(f"i={self.title}")
        if self.connection is not None:
            out.append(f"c={self.connection}")
        out.extend(f"b={bwtype}:{amount}" for bwtype, amount in self.bandwidths)
        if self.encryption_key is not None:
            out.append(f"k={self.encryption_key}")
        out.extend(f"a={_format_attribute(attr)}" for attr in self.attributes)
        return out


def _split_lines(data: bytes | str) -> Iterable[tuple[int, str, str]]:
    text = data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.removesuffix("\r")
        if not line:
            continue
        if len(line) < 2 or line[1] != "=" or not ("a" <= line[0] <= "z"):
            raise SdpParseError(f"SDP line {number} is not <type>=<value>: {line!r}")
        yield number, line[0], line[2:]


@dataclass(slots=True)
class SessionDescription:
    """A whole SDP body (RFC 4566 §5)."""

    origin: Origin
    session_name: str = "-"
    version: int = 0
    information: str | None = None
    uri: str | None = None
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    connection: Connection | None = None
    bandwidths: list[tuple[str, int]] = field(default_factory=list)
    times: list[Timing] = field(default_factory=lambda: [Timing()])
    time_zones: str | None = None
    encryption_key: str | None = None
    attributes: list[Attribute] = field(default_factory=list)
    media: list[MediaDescription] = field(default_factory=list)

    @classmethod
    def parse(cls, data: bytes | str) -> SessionDescription:
        """Parse an SDP body. Raises SdpParseError."""
        lines = list(_split_lines(data))
        if not lines:
            raise SdpParseError("empty SDP")
        number, kind, value = lines[0]
        if kind != "v":
            raise SdpParseError(f"SDP must start with v=, not {kind}=")
        if value != "0":
            raise SdpParseError(f"unsupported SDP version {value!r}")
        origin: Origin | None = None
        session_name: str | None = None
        single: dict[str, str] = {}
        emails: list[str] = []
        phones: list[str] = []
        bandwidths: list[tuple[str, int]] = []
        times: list[Timing] = []
        attributes: list[Attribute] = []
        media: list[MediaDescription] = []
        current: MediaDescription | None = None

        for number, kind, value in lines[1:]:
            if kind == "m":
                current = MediaDescription.parse_m_line(value)
                media.append(current)
            elif current is not None:
                _media_line(current, number, kind, value)
            elif kind == "o":
                if origin is not None:
                    raise SdpParseError("more than one o= line")
                origin = Origin.parse(value)
            elif kind == "s":
                if session_name is not None:
                    raise SdpParseError("more than one s= line")
                session_name = value
            elif kind in "iuczk":
                if kind in single:
                    raise SdpParseError(f"more than one session-level {kind}= line")
                single[kind] = value
            elif kind == "e":
                emails.append(value)
            elif kind == "p":
                phones.append(value)
            elif kind == "b":
                bandwidths.append(_parse_bandwidth(value))
            elif kind == "t":
                times.append(Timing.parse(value))
            elif kind == "r":
                if not times:
                    raise SdpParseError(f"line {number}: r= before any t=")
                times[-1].repeats.append(value)
            elif kind == "a":
                attributes.append(_parse_attribute(value))
            elif kind == "v":
                raise SdpParseError(f"line {number}: v= repeated")
            else:
                # RFC 4566 §5: a description with an unknown type letter is ignored as a whole.
                raise SdpParseError(f"line {number}: unknown SDP line type {kind}=")

        if origin is None:
            raise SdpParseError("SDP without o= line")
        if session_name is None:
            raise SdpParseError("SDP without s= line")
        if not times:
            raise SdpParseError("SDP without t= line")
        return cls(
            origin=origin,
            session_name=session_name,
            information=single.get("i"),
            uri=single.get("u"),
            emails=emails,
            phones=phones,
            connection=Connection.parse(single["c"]) if "c" in single else None,
            bandwidths=bandwidths,
            times=times,
            time_zones=single.get("z"),
            encryption_key=single.get("k"),
            attributes=attributes,
            media=media,
        )

    def lines(self) -> list[str]:
        out = [f"v={self.version}", f"o={self.origin}", f"s={self.session_name}"]
        if self.information is not None:
            out.append(f"i={self.information}")
        if self.uri is not None:
            out.append(f"u={self.uri}")
        out.extend(f"e={email}" for email in self.emails)
        out.extend(f"p={phone}" for phone in self.phones)
        if self.connection is not None:
            out.append(f"c={self.connection}")
        out.extend(f"b={bwtype}:{amount}" for bwtype, amount in self.bandwidths)
        for timing in self.times:
            out.append(f"t={timing.start} {timing.stop}")
            out.extend(f"r={repeat}" for repeat in timing.repeats)
        if self.time_zones is not None:
            out.append(f"z={self.time_zones}")
        if self.encryption_key is not None:
            out.append(f"k={self.encryption_key}")
        out.extend(f"a={_format_attribute(attr)}" for attr in self.attributes)
        for m in self.media:
            out.extend(m.lines())
        return out

    def __str__(self) -> str:
        return "".join(line + "\r\n" for line in self.lines())

    def __bytes__(self) -> bytes:
        return str(self).encode("utf-8", "surrogateescape")

    # -- helpers

    @property
    def direction(self) -> str | None:
        """The session-level direction attribute, or None when absent."""
        return _get_direction(self.attributes)

    @direction.setter
    def direction(self, value: str) -> None:
        _set_direction(self.attributes, value)

    def media_direction(self, media: MediaDescription) -> str:
        """Effective direction of one stream: media level, else session level, else sendrecv."""
        return _get_direction(media.attributes) or self.direction or "sendrecv"

    def media_connection(self, media: MediaDescription) -> Connection | None:
        """Effective connection of one stream: media-level c=, else the session-level one."""
        return media.connection or self.connection

    def rewrite_connection(
        self,
        address: str,
        ports: Sequence[int | None] | None = None,
        *,
        addrtype: str | None = None,
        rewrite_origin: bool = True,
    ) -> None:
        """Point every stream at ``address`` (and new ports): for media anchoring.

        Sets the session-level ``c=`` and drops media-level ones (same
        meaning, one place). ``ports`` is aligned with :attr:`media`: an int
        replaces that stream's port, None keeps it; streams with port 0
        (rejected) are never given a port. Where a port changes, ``a=rtcp``
        (RFC 3605) is removed, since it named the old endpoint; RTCP then
        defaults to port + 1. ICE attributes are not touched. ``addrtype``
        defaults to IP6 when the address contains ':', else IP4.
        """
        if ports is not None and len(ports) != len(self.media):
            raise ValueError(f"{len(ports)} ports given for {len(self.media)} media sections")
        kind = addrtype or ("IP6" if ":" in address else "IP4")
        self.connection = Connection(address, "IN", kind)
        if rewrite_origin:
            self.origin.addrtype = kind
            self.origin.address = address
        for index, m in enumerate(self.media):
            m.connection = None
            new_port = None if ports is None else ports[index]
            if new_port is not None and m.port != 0:
                if not 0 < new_port <= 65535:
                    raise ValueError(f"bad port {new_port}")
                if new_port != m.port:
                    m.port = new_port
                    m.remove_attributes("rtcp")


def _media_line(m: MediaDescription, number: int, kind: str, value: str) -> None:
    if kind == "a":
        m.attributes.append(_parse_attribute(value))
    elif kind == "b":
        m.bandwidths.append(_parse_bandwidth(value))
    elif kind == "c":
        if m.connection is not None:
            # Several c= per stream (layered multicast) is not something a PBX accepts.
            raise SdpParseError(f"line {number}: more than one c= in a media section")
        m.connection = Connection.parse(value)
    elif kind == "i":
        if m.title is not None:
            raise SdpParseError(f"line {number}: more than one i= in a media section")
        m.title = value
    elif kind == "k":
        if m.encryption_key is not None:
            raise SdpParseError(f"line {number}: more than one k= in a media section")
        m.encryption_key = value
    elif kind in "vostrzeup":
        raise SdpParseError(f"line {number}: session-level {kind}= line inside a media section")
    else:
        raise SdpParseError(f"line {number}: unknown SDP line type {kind}=")
