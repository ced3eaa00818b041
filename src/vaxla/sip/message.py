"""SIP requests and responses: parsing, serialising, checking, framing (RFC 3261 §7, §8.2, §18.3).

Parsing is lazy: the start line and header lines are split eagerly and the raw
values kept; typed views (Via, From, To, Contact, ...) are parsed on first
access and cached.  What transaction matching needs (top Via, CSeq, Call-ID,
From, and To for requests) is parsed eagerly so that a malformed message
raises from :func:`parse_message`.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Collection, Iterable, Mapping
from typing import Any, cast

from vaxla.sip.errors import SipParseError
from vaxla.sip.headers import CSeq, Headers, Via, split_head
from vaxla.sip.uri import URI, AbsoluteURI, NameAddr, parse_uri, split_list

__all__ = [
    "REASONS",
    "Request",
    "Response",
    "StreamFramer",
    "error_response",
    "make_response",
    "new_branch",
    "new_call_id",
    "new_tag",
    "parse_message",
    "validate_request",
]

_REASON_TEXT = (
    "100 Trying|180 Ringing|181 Call Is Being Forwarded|182 Queued|183 Session Progress|"
    "199 Early Dialog Terminated|200 OK|202 Accepted|204 No Notification|300 Multiple Choices|"
    "301 Moved Permanently|302 Moved Temporarily|305 Use Proxy|380 Alternative Service|"
    "400 Bad Request|401 Unauthorized|402 Payment Required|403 Forbidden|404 Not Found|"
    "405 Method Not Allowed|406 Not Acceptable|407 Proxy Authentication Required|"
    "408 Request Timeout|410 Gone|412 Conditional Request Failed|413 Request Entity Too Large|"
    "414 Request-URI Too Long|415 Unsupported Media Type|416 Unsupported URI Scheme|"
    "420 Bad Extension|421 Extension Required|422 Session Interval Too Small|"
    "423 Interval Too Brief|428 Use Identity Header|429 Provide Referrer Identity|"
    "433 Anonymity Disallowed|439 First Hop Lacks Outbound Support|480 Temporarily Unavailable|"
    "481 Call/Transaction Does Not Exist|482 Loop Detected|483 Too Many Hops|"
    "484 Address Incomplete|485 Ambiguous|486 Busy Here|487 Request Terminated|"
    "488 Not Acceptable Here|489 Bad Event|491 Request Pending|493 Undecipherable|"
    "494 Security Agreement Required|500 Server Internal Error|501 Not Implemented|"
    "502 Bad Gateway|503 Service Unavailable|504 Server Time-out|505 Version Not Supported|"
    "513 Message Too Large|580 Precondition Failure|600 Busy Everywhere|603 Decline|"
    "604 Does Not Exist Anywhere|606 Not Acceptable|607 Unwanted"
)
#: Default reason phrases (RFC 3261 §21 and extensions).
REASONS: dict[int, str] = {int(e[:3]): e[4:] for e in _REASON_TEXT.split("|")}

_VERSION = re.compile(r"SIP/[0-9]+\.[0-9]+", re.I)
_METHOD = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+")
_CALL_ID = re.compile(
    r"[A-Za-z0-9.!%*_+`'~()<>:\\\"/\[\]?{}-]+(?:@[A-Za-z0-9.!%*_+`'~()<>:\\\"/\[\]?{}-]+)?"
)


def _reason_for(status: int) -> str:
    return REASONS.get(status) or REASONS.get(status // 100 * 100, "")


_UNSET: object = object()


class _Message:
    """Header accessors shared by requests and responses.

    Parsed values are cached snapshots: assign through the properties (which rewrite the
    header) or edit ``headers`` and call :meth:`invalidate`; mutating a returned object
    (``msg.to.params[...]``) does not change the header."""

    __slots__ = ("_cache", "body", "headers", "version")

    headers: Headers
    body: bytes
    version: str
    _cache: dict[str, Any]

    def invalidate(self) -> None:
        """Forget every cached parsed value (call after editing ``headers`` directly)."""
        self._cache = {}

    def _put(self, name: str, value: str | None) -> None:
        if value is None:
            self.headers.remove(name)
        else:
            self.headers.set(name, value)

    def _put_all(self, name: str, values: Iterable[object]) -> None:
        self.headers.remove(name)
        for value in values:
            self.headers.add(name, str(value))

    def _required(self, name: str) -> str:
        values = self.headers._index.get(name.lower())
        if not values:
            raise SipParseError(f"missing {name} header")
        return values[0]

    @property
    def call_id(self) -> str:
        value: str | None = self._cache.get("call_id")
        if value is None:
            value = self._required("Call-ID")
            if _CALL_ID.fullmatch(value) is None:
                raise SipParseError(f"malformed Call-ID {value!r}")
            self._cache["call_id"] = value
        return value

    @call_id.setter
    def call_id(self, value: str) -> None:
        self.headers.set("Call-ID", value)
        self._cache["call_id"] = value

    @property
    def cseq(self) -> CSeq:
        value: CSeq | None = self._cache.get("cseq")
        if value is None:
            value = self._cache["cseq"] = CSeq.parse(self._required("CSeq"))
        return value

    @cseq.setter
    def cseq(self, value: CSeq) -> None:
        self.headers.set("CSeq", str(value))
        self._cache["cseq"] = value

    @property
    def from_(self) -> NameAddr:
        value: NameAddr | None = self._cache.get("from")
        if value is None:
            value = self._cache["from"] = NameAddr.parse(self._required("From"))
        return value

    @from_.setter
    def from_(self, value: NameAddr) -> None:
        self.headers.set("From", str(value))
        self._cache["from"] = value

    @property
    def to(self) -> NameAddr:
        value: NameAddr | None = self._cache.get("to")
        if value is None:
            value = self._cache["to"] = NameAddr.parse(self._required("To"))
        return value

    @to.setter
    def to(self, value: NameAddr) -> None:
        self.headers.set("To", str(value))
        self._cache["to"] = value

    @property
    def vias(self) -> list[Via]:
        value: list[Via] | None = self._cache.get("vias")
        if value is None:
            value = [Via.parse(v) for v in self.headers.get_all("Via")]
            if not value:
                raise SipParseError("missing Via header")
            self._cache["vias"] = value
            self._cache["top_via"] = value[0]
        return value

    @vias.setter
    def vias(self, value: list[Via]) -> None:
        self._put_all("Via", value)
        self._cache.pop("top_via", None)
        self._cache["vias"] = list(value)
        if value:
            self._cache["top_via"] = value[0]

    @property
    def top_via(self) -> Via:
        value: Via | None = self._cache.get("top_via")
        if value is None:
            first = self._required("Via")
            parts = split_list(first) if "," in first else [first]
            if not parts:
                raise SipParseError("empty Via header")
            value = self._cache["top_via"] = Via.parse(parts[0])
        return value

    @property
    def contacts(self) -> list[NameAddr]:
        """Contact values; ``Contact: *`` gives one NameAddr whose uri is AbsoluteURI("*", "*")."""
        value: list[NameAddr] | None = self._cache.get("contacts")
        if value is None:
            value = [NameAddr.parse(v) for v in self.headers.get_all("Contact")]
            self._cache["contacts"] = value
        return value

    @contacts.setter
    def contacts(self, value: list[NameAddr]) -> None:
        self._put_all("Contact", value)
        self._cache["contacts"] = list(value)

    @property
    def max_forwards(self) -> int | None:
        result = self._cache.get("max_forwards", _UNSET)
        if result is _UNSET:
            value = self.headers.get("Max-Forwards")
            result = None
            if value is not None:
                if not value.isascii() or not value.isdigit() or len(value) > 10:
                    raise SipParseError(f"bad Max-Forwards {value!r}")
                result = int(value)
                if result > 255:
                    raise SipParseError(f"Max-Forwards over 255: {value!r}")
            self._cache["max_forwards"] = result
        return cast("int | None", result)

    @max_forwards.setter
    def max_forwards(self, value: int | None) -> None:
        self._put("Max-Forwards", None if value is None else str(value))
        self._cache["max_forwards"] = value

    @property
    def expires(self) -> int | None:
        """Expires in seconds; malformed or > 2**32-1 counts as 3600 (RFC 3261 §20.19)."""
        value = self.headers.get("Expires")
        if value is None:
            return None
        ok = value.isascii() and value.isdigit() and len(value) <= 10
        return int(value) if ok and int(value) <= 2**32 - 1 else 3600

    @expires.setter
    def expires(self, value: int | None) -> None:
        self._put("Expires", None if value is None else str(value))

    @property
    def content_type(self) -> str | None:
        """The Content-Type value as sent (with parameters such as ``boundary``)."""
        return self.headers.get("Content-Type")

    @content_type.setter
    def content_type(self, value: str | None) -> None:
        self._put("Content-Type", value)

    @property
    def media_type(self) -> str | None:
        """Content-Type without parameters, lower-cased (``application/sdp``)."""
        value = self.headers.get("Content-Type")
        return None if value is None else value.partition(";")[0].strip(" \t").lower()

    def _start_line(self) -> str:
        raise NotImplementedError

    def __bytes__(self) -> bytes:
        out = [self._start_line(), "\r\n"]
        for name, value in self.headers._items:
            if name != "Content-Length":
                out += (name, ": ", value, "\r\n")
        out.append(f"Content-Length: {len(self.body)}\r\n\r\n")
        return "".join(out).encode("utf-8", "surrogateescape") + self.body

    def _comparable(self) -> tuple[object, ...]:
        headers = [(n, v) for n, v in self.headers._items if n != "Content-Length"]
        return (self._start_line(), headers, self.body)

    def __eq__(self, other: object) -> bool:
        """Equal start line, headers and body (Content-Length aside: it follows the body)."""
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _Message)
        return self._comparable() == other._comparable()

    __hash__ = None  # type: ignore[assignment]


def _as_headers(headers: Headers | Iterable[tuple[str, str]] | None) -> Headers:
    if headers is None:
        return Headers()
    return headers if isinstance(headers, Headers) else Headers(headers)


class Request(_Message):
    __slots__ = ("method", "uri")

    def __init__(
        self,
        method: str,
        uri: URI | str,
        headers: Headers | Iterable[tuple[str, str]] | None = None,
        body: bytes = b"",
        version: str = "SIP/2.0",
    ) -> None:
        self._cache = {}
        self.method = method
        self.uri: URI = parse_uri(uri) if isinstance(uri, str) else uri
        self.headers = _as_headers(headers)
        self.body = body
        self.version = version

    def _start_line(self) -> str:
        return f"{self.method} {self.uri} {self.version}"

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri}>"


class Response(_Message):
    __slots__ = ("reason", "status")

    def __init__(
        self,
        status: int,
        reason: str | None = None,
        headers: Headers | Iterable[tuple[str, str]] | None = None,
        body: bytes = b"",
        version: str = "SIP/2.0",
    ) -> None:
        self._cache = {}
        self.status = status
        self.reason = _reason_for(status) if reason is None else reason
        self.headers = _as_headers(headers)
        self.body = body
        self.version = version

    def _start_line(self) -> str:
        return f"{self.version} {self.status} {self.reason}"

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason}>"


def parse_message(data: bytes) -> Request | Response:
    """Parse one message from a datagram or one framed stream message.

    Octets after Content-Length are ignored (RFC 4475 dblreq).  Raises
    SipParseError; for responses its ``status_hint`` is None (drop silently).
    """
    if data[:1] in (b"\r", b"\n"):
        data = data.lstrip(b"\r\n")  # RFC 3261 §7.5: CRLFs before the start line are ignored
    is_response = data[:4].upper() == b"SIP/"
    try:
        start, headers, body_start = split_head(data)
        msg = _start_message(start, headers, is_response)
        index = headers._index
        cl = index.get("content-length")
        if cl is None:
            msg.body = data[body_start:]
        else:
            value = cl[0]
            if len(cl) > 1:
                raise SipParseError("more than one Content-Length")
            if not value.isascii() or not value.isdigit() or len(value) > 10:
                raise SipParseError(f"bad Content-Length {value!r}")
            length = int(value)
            if body_start + length > len(data):
                raise SipParseError("Content-Length larger than the message")
            msg.body = data[body_start : body_start + length]
        # eager: what transaction matching needs, straight into the cache
        cache = msg._cache
        via = _first(index, "via", "Via")
        if "," in via:
            via = (split_list(via) or [""])[0]
        cache["top_via"] = Via.parse(via)
        cache["cseq"] = CSeq.parse(_first(index, "cseq", "CSeq"))
        call_id = _first(index, "call-id", "Call-ID")
        if _CALL_ID.fullmatch(call_id) is None:
            raise SipParseError(f"malformed Call-ID {call_id!r}")
        cache["call_id"] = call_id
        cache["from"] = NameAddr.parse(_first(index, "from", "From"))
        if not is_response:
            cache["to"] = NameAddr.parse(_first(index, "to", "To"))
    except SipParseError as exc:
        if is_response and exc.status_hint is not None:
            raise SipParseError(exc.message, status_hint=None) from exc
        raise
    return msg


def _first(index: dict[str, list[str]], key: str, name: str) -> str:
    values = index.get(key)
    if not values:
        raise SipParseError(f"missing {name} header")
    return values[0]


def _start_message(start: str, headers: Headers, is_response: bool) -> Request | Response:
    if is_response:
        version, _, rest = start.partition(" ")
        code, _, reason = rest.partition(" ")
        if _VERSION.fullmatch(version) is None:
            raise SipParseError(f"bad status line {start[:60]!r}")
        if len(code) != 3 or not code.isascii() or not code.isdigit() or code[0] not in "123456":
            raise SipParseError(f"bad status code in {start[:60]!r}")
        resp = Response.__new__(Response)
        resp._cache = {}
        resp.status = int(code)
        resp.reason = reason
        resp.version = version.upper()
        resp.headers = headers
        return resp
    parts = start.split(" ")
    if (
        len(parts) != 3
        or _METHOD.fullmatch(parts[0]) is None
        or _VERSION.fullmatch(parts[2]) is None
    ):
        raise SipParseError(f"bad request line {start[:60]!r}")
    req = Request.__new__(Request)
    req._cache = {}
    req.method = parts[0]
    req.uri = parse_uri(parts[1])
    req.version = parts[2].upper()
    req.headers = headers
    return req


# --- checks a UAS applies before acting (RFC 3261 §8.2, RFC 4475) -------------------------

_MANDATORY = ("Via", "From", "To", "Call-ID", "CSeq")
_SINGLE_TEXT = (
    "From To Call-ID CSeq Max-Forwards Content-Length Content-Type Expires Min-Expires Date "
    "MIME-Version RSeq RAck Event Refer-To Session-Expires Min-SE"
)
_SINGLE = _SINGLE_TEXT.split()
_MANDATORY_KEYS = tuple((n.lower(), n) for n in _MANDATORY)
_SINGLE_KEYS = tuple((n.lower(), n) for n in _SINGLE)

#: Option tags a UAS accepts in Require by default (none: callers pass what they implement).
SUPPORTED_OPTION_TAGS: frozenset[str] = frozenset()
#: Body types the SIP core handles per method; methods not listed are left to the TU.
BODY_TYPES: Mapping[str, tuple[str, ...]] = {
    m: ("application/sdp",) for m in ("INVITE", "ACK", "PRACK", "UPDATE")
}
REQUEST_URI_SCHEMES: frozenset[str] = frozenset({"sip", "sips", "tel"})


def validate_request(
    req: Request,
    *,
    supported: Collection[str] = SUPPORTED_OPTION_TAGS,
    body_types: Mapping[str, Collection[str]] = BODY_TYPES,
    uri_schemes: Collection[str] = REQUEST_URI_SCHEMES,
) -> None:
    """Checks a UAS/registrar applies before acting; raises SipParseError with the status
    to answer (and extra headers).  For ACK, which is never answered, status_hint is None."""
    try:
        _validate(req, supported, body_types, uri_schemes)
    except SipParseError as exc:
        if req.method == "ACK" and exc.status_hint is not None:
            raise SipParseError(exc.message, status_hint=None) from exc
        raise


def _validate(
    req: Request,
    supported: Collection[str],
    body_types: Mapping[str, Collection[str]],
    uri_schemes: Collection[str],
) -> None:
    if req.version != "SIP/2.0":
        raise SipParseError(f"unsupported version {req.version}", status_hint=505)
    headers = req.headers
    index = headers._index  # canonical lower-case name -> values (same package)
    for key, name in _MANDATORY_KEYS:
        if key not in index:
            raise SipParseError(f"missing {name} header")
    for key, name in _SINGLE_KEYS:
        values = index.get(key)
        if values is not None and len(values) > 1:
            raise SipParseError(f"{name} given more than once")
    # Values parse_message cached came from these same headers and parsers: no
    # need to parse them again (callers that edit headers call invalidate()).
    for na in (req.from_, req.to):
        if isinstance(na.uri, AbsoluteURI) and na.uri.scheme == "*":
            raise SipParseError("'*' is only allowed in Contact")
    req.vias  # noqa: B018
    req.call_id  # noqa: B018
    req.max_forwards  # noqa: B018
    contacts = req.contacts
    if len(contacts) > 1 and any(
        isinstance(c.uri, AbsoluteURI) and c.uri.scheme == "*" for c in contacts
    ):
        raise SipParseError("Contact '*' combined with other contacts")
    for name in ("Route", "Record-Route"):
        for value in headers.get_all(name):
            NameAddr.parse(value)
    if req.cseq.method != req.method:
        raise SipParseError(f"CSeq method {req.cseq.method} does not match {req.method}")
    length = headers.get("Content-Length")
    if length is not None and (not length.isdigit() or int(length) != len(req.body)):
        raise SipParseError("Content-Length does not match the body")
    if isinstance(req.uri, AbsoluteURI):
        if req.uri.scheme not in uri_schemes:
            raise SipParseError(f"unsupported URI scheme {req.uri.scheme}", status_hint=416)
    elif req.uri.headers:
        raise SipParseError("headers in the Request-URI")  # RFC 4475 escruri
    if req.method not in ("ACK", "CANCEL"):
        unknown = [
            tag
            for name in ("Require", "Proxy-Require")
            for tag in headers.get_all(name)
            if tag not in supported
        ]
        if unknown:
            raise SipParseError(
                "unsupported extension",
                status_hint=420,
                extra_headers=[("Unsupported", ", ".join(unknown))],
            )
    if req.body:
        media = req.media_type
        if media is None:
            raise SipParseError("body without Content-Type")
        allowed = body_types.get(req.method)
        if allowed is not None and media not in allowed:
            raise SipParseError(
                f"cannot handle {media}",
                status_hint=415,
                extra_headers=[("Accept", ", ".join(allowed))],
            )
        encodings = [e.lower() for e in headers.get_all("Content-Encoding")]
        if any(e != "identity" for e in encodings):
            raise SipParseError(
                "unsupported Content-Encoding",
                status_hint=415,
                extra_headers=[("Accept-Encoding", "identity")],
            )
    if req.method == "INVITE" and "Accept" in headers:
        accepted = {a.partition(";")[0].strip(" \t").lower() for a in headers.get_all("Accept")}
        if not accepted & {"application/sdp", "application/*", "*/*"}:
            raise SipParseError("Accept does not include application/sdp", status_hint=406)


# --- stream framing -----------------------------------------------------------------------

_CONTENT_LENGTH = re.compile(rb"\n(?:content-length|l)[ \t]*:[ \t]*([0-9]+)[ \t]*\r?(?=\n)", re.I)


class StreamFramer:
    """Content-Length framing for TCP/TLS: ``feed(data)`` returns the complete messages;
    CRLF keep-alives (RFC 5626) are skipped; a message without Content-Length, with a
    header section over ``max_header_size`` or a body over ``max_body_size`` raises."""

    def __init__(self, max_header_size: int = 65536, max_body_size: int = 1 << 20) -> None:
        self._buf = bytearray()
        self.max_header_size = max_header_size
        self.max_body_size = max_body_size

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf
        buf += data
        out: list[bytes] = []
        while buf:
            skip = 0
            while skip < len(buf) and buf[skip] in (13, 10):
                skip += 1
            if skip:
                del buf[:skip]
                continue
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > self.max_header_size:
                    raise SipParseError("header section too large")
                break
            if end > self.max_header_size:
                raise SipParseError("header section too large")
            lengths = {int(m) for m in _CONTENT_LENGTH.findall(bytes(buf[: end + 2]))}
            if len(lengths) != 1:
                raise SipParseError("stream message without a single Content-Length")
            length = lengths.pop()
            if length > self.max_body_size:
                raise SipParseError("message body too large", status_hint=413)
            total = end + 4 + length
            if len(buf) < total:
                break
            out.append(bytes(buf[:total]))
            del buf[:total]
        return out


# --- building responses and identifiers ---------------------------------------------------


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
) -> Response:
    """RFC 3261 §8.2.6: copies Via (all, in order), From, To (adds to_tag if To has none and
    status > 100), Call-ID, CSeq; adds the extra headers; default reason from the status."""
    items: list[tuple[str, str]] = [("Via", v) for v in request.headers.get_raw("Via")]
    items.append(("From", request._required("From")))
    to = request._required("To")
    if to_tag is not None and status > 100 and request.to.tag is None:
        to = f"{to};tag={to_tag}"
    items.append(("To", to))
    items.append(("Call-ID", request._required("Call-ID")))
    items.append(("CSeq", request._required("CSeq")))
    timestamp = request.headers.get("Timestamp")
    if status == 100 and timestamp is not None:
        items.append(("Timestamp", timestamp))  # §8.2.6.1
    items.extend(headers)
    if content_type is not None:
        items.append(("Content-Type", content_type))
    return Response(status, reason, Headers(items), body)


def error_response(data: bytes, error: SipParseError, to_tag: str | None = None) -> bytes | None:
    """Best-effort answer to a request :func:`parse_message` or :func:`validate_request`
    rejected: copies the raw Via, From, To, Call-ID and CSeq lines that are present.  None
    when the error says drop, or the message is not a request or has no Via."""
    if error.status_hint is None:
        return None
    try:
        start, raw, _ = split_head(data.lstrip(b"\r\n"))
    except SipParseError:
        return None
    if start[:4].upper() == "SIP/" or "Via" not in raw:
        return None
    items = [("Via", v) for v in raw.get_raw("Via")]
    for name in ("From", "To", "Call-ID", "CSeq"):  # what is there (RFC 4475 insuf has few)
        value = raw.get(name)
        if value is not None:
            if (
                name == "To"
                and to_tag is not None
                and ";tag=" not in value.replace(" ", "").lower()
            ):
                value = f"{value};tag={to_tag}"
            items.append((name, value))
    items.extend(error.extra_headers)
    return bytes(Response(error.status_hint, None, Headers(items)))


def new_branch() -> str:
    """A fresh RFC 3261 branch: the magic cookie plus 64 random bits or more."""
    return "z9hG4bK" + secrets.token_hex(10)


def new_tag() -> str:
    return secrets.token_hex(6)


def new_call_id(host: str) -> str:
    return f"{secrets.token_hex(12)}@{host}"
