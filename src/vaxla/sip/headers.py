"""SIP header fields: an ordered case-insensitive multi-map, Via and CSeq (RFC 3261 §7.3, §20)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from vaxla.sip.errors import LocalProtocolError, SipParseError
from vaxla.sip.uri import format_params, is_token, parse_params, split_list

__all__ = [
    "LIST_HEADERS",
    "CSeq",
    "Headers",
    "Via",
    "canonical_name",
    "parse_header_lines",
    "split_head",
]

_KNOWN_TEXT = (
    "Accept Accept-Contact Accept-Encoding Accept-Language Alert-Info Allow Allow-Events "
    "Authentication-Info Authorization Call-ID Call-Info Contact Content-Disposition "
    "Content-Encoding Content-Language Content-Length Content-Type CSeq Date Diversion "
    "Error-Info Event Expires From History-Info Identity In-Reply-To Max-Forwards "
    "MIME-Version Min-Expires Min-SE Organization P-Asserted-Identity P-Preferred-Identity "
    "Path Priority Privacy Proxy-Authenticate Proxy-Authorization Proxy-Require RAck Reason "
    "Record-Route Refer-To Referred-By Reject-Contact Replaces Reply-To Request-Disposition "
    "Require Retry-After Route RSeq Server Service-Route Session-Expires Subject "
    "Subscription-State Supported Timestamp To Unsupported User-Agent Via Warning "
    "WWW-Authenticate"
)
_KNOWN_NAMES = _KNOWN_TEXT.split()

_COMPACT = {
    "v": "Via",
    "f": "From",
    "t": "To",
    "i": "Call-ID",
    "m": "Contact",
    "l": "Content-Length",
    "c": "Content-Type",
    "k": "Supported",
    "s": "Subject",
    "e": "Content-Encoding",
    "o": "Event",
    "u": "Allow-Events",
    "r": "Refer-To",
    "b": "Referred-By",
    "x": "Session-Expires",
    "y": "Identity",
    "a": "Accept-Contact",  # RFC 3841
    "j": "Reject-Contact",
    "d": "Request-Disposition",
}

_CANONICAL: dict[str, str] = {n.lower(): n for n in _KNOWN_NAMES}
_CANONICAL.update(_COMPACT)

#: Headers whose value is a comma-separated list (RFC 3261 §7.3.1).
LIST_HEADERS = frozenset(
    (
        "Via Contact Route Record-Route Path Service-Route Allow Allow-Events Supported Require "
        "Proxy-Require Unsupported Accept Accept-Encoding Accept-Language Accept-Contact "
        "Reject-Contact Request-Disposition Content-Encoding Content-Language In-Reply-To "
        "Alert-Info Call-Info Error-Info Warning P-Asserted-Identity P-Preferred-Identity "
        "History-Info Diversion Reason"
    )
    .lower()
    .split()
)

# raw spelling as received -> (lower-case key, canonical name); bounded cache
_NAME_CACHE: dict[str, tuple[str, str]] = {}
_NAME_CACHE_MAX = 4096


def _name_entry(raw: str) -> tuple[str, str]:
    entry = _NAME_CACHE.get(raw)
    if entry is not None:
        return entry
    name = raw.rstrip(" \t")
    if not is_token(name):
        raise SipParseError(f"bad header name {raw!r}")
    lower = name.lower()
    canon = _CANONICAL.get(lower, name)
    entry = (canon.lower(), canon)
    if len(_NAME_CACHE) < _NAME_CACHE_MAX:
        _NAME_CACHE[raw] = entry
    return entry


def canonical_name(name: str) -> str:
    """Canonical spelling of a header name (compact forms expanded)."""
    return _name_entry(name)[1]


def _check_value(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise LocalProtocolError("CR/LF in a header value")
    return value.strip(" \t")


class Headers:
    """Ordered, case-insensitive multi-map. Compact forms (v, f, t, i, m, l, c, k, s, e, o, u,
    r, b, x, y; also a, j, d of RFC 3841) are expanded to canonical names on input."""

    __slots__ = ("_index", "_items")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = []
        self._index: dict[str, list[str]] = {}
        for name, value in items:
            self.add(name, value)

    @classmethod
    def _trusted(cls, items: list[tuple[str, str]], index: dict[str, list[str]]) -> Headers:
        """Build from already canonical, validated parts (used by the parser)."""
        self = cls.__new__(cls)
        self._items = items
        self._index = index
        return self

    def _reindex(self) -> None:
        index: dict[str, list[str]] = {}
        for name, value in self._items:
            index.setdefault(name.lower(), []).append(value)
        self._index = index

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self._index.get(_name_entry(name)[0])
        return values[0] if values else default

    def get_all(self, name: str) -> list[str]:
        key = _name_entry(name)[0]
        values = self._index.get(key)
        if not values:
            return []
        if key not in LIST_HEADERS:
            return list(values)
        out: list[str] = []
        for value in values:
            out += split_list(value)
        return out

    def get_raw(self, name: str) -> list[str]:
        """Every header line's value for *name*, unsplit."""
        return list(self._index.get(_name_entry(name)[0], ()))

    def count(self, name: str) -> int:
        """How many header lines of that name there are."""
        return len(self._index.get(_name_entry(name)[0], ()))

    def add(self, name: str, value: str) -> None:
        key, canon = _name_entry(name)
        value = _check_value(value)
        self._items.append((canon, value))
        self._index.setdefault(key, []).append(value)

    def prepend(self, name: str, value: str) -> None:
        key, canon = _name_entry(name)
        value = _check_value(value)
        pos = 0
        for i, (n, _) in enumerate(self._items):
            if n.lower() == key:
                pos = i
                break
        self._items.insert(pos, (canon, value))
        self._reindex()

    def set(self, name: str, value: str) -> None:
        key, canon = _name_entry(name)
        value = _check_value(value)
        pos = None
        items: list[tuple[str, str]] = []
        for n, v in self._items:
            if n.lower() == key:
                if pos is None:
                    pos = len(items)
            else:
                items.append((n, v))
        items.insert(len(items) if pos is None else pos, (canon, value))
        self._items = items
        self._index[key] = [value]

    def replace_first(self, name: str, value: str) -> None:
        """Replace the first value of *name* (the first element of a comma
        list), keeping every other line and value where it is."""
        key, canon = _name_entry(name)
        value = _check_value(value)
        for i, (n, v) in enumerate(self._items):
            if n.lower() == key:
                if "," in v:
                    rest = split_list(v)[1:]
                    value = ", ".join([value, *rest])
                self._items[i] = (canon, value)
                self._index[key][0] = value
                return
        self.add(name, value)

    def remove(self, name: str) -> None:
        key = _name_entry(name)[0]
        if key in self._index:
            self._items = [(n, v) for n, v in self._items if n.lower() != key]
            del self._index[key]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and _name_entry(name)[0] in self._index

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._items == other._items

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    def copy(self) -> Headers:
        return Headers._trusted(list(self._items), {k: list(v) for k, v in self._index.items()})


def parse_header_lines(lines: Iterable[str]) -> Headers:
    """Build Headers from raw header lines (no start line, no CR/LF); folded
    continuation lines (starting with SP/HT) are joined with one space."""
    items: list[tuple[str, str]] = []
    index: dict[str, list[str]] = {}
    cached = _NAME_CACHE.get
    key = ""
    for line in lines:
        name, colon, value = line.partition(":")
        entry = cached(name)
        if entry is None:  # cache miss: a new spelling, a continuation line or garbage
            first = line[:1]
            if first == " " or first == "\t":
                if not items:
                    raise SipParseError("continuation line before any header")
                name, value = items[-1]
                more = line.strip(" \t")
                value = f"{value} {more}" if value and more else value or more
                items[-1] = (name, value)
                index[key][-1] = value
                continue
            if not colon:
                raise SipParseError(f"malformed header line {line[:40]!r}")
            entry = _name_entry(name)
        key = entry[0]
        value = value.strip(" \t")
        items.append((entry[1], value))
        values = index.get(key)
        if values is None:
            index[key] = [value]
        else:
            values.append(value)
    return Headers._trusted(items, index)


def split_head(data: bytes) -> tuple[str, Headers, int]:
    """Split a message into start line, headers (unfolded) and the offset of the body."""
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        body_start = end + 4
    else:
        end = data.find(b"\n\n")
        if end >= 0:
            body_start = end + 2
        else:  # a datagram that ends without the empty line: headers only
            end = body_start = len(data)
    text = data[:end].decode("utf-8", "surrogateescape").rstrip("\r\n")
    if not text:
        raise SipParseError("empty message", status_hint=None)
    lines = text.split("\r\n")
    if text.count("\n") != len(lines) - 1 or text.count("\r") != len(lines) - 1:
        # bare LF line ends (tolerated); a lone CR is not
        text = text.replace("\r\n", "\n")
        if "\r" in text:
            raise SipParseError("bare CR in header section")
        lines = text.split("\n")
    return lines[0], parse_header_lines(lines[1:]), body_start


_TOKEN_RE = r"[A-Za-z0-9.!%*_+`'~-]+"
_VIA = re.compile(
    rf"[ \t]*({_TOKEN_RE})[ \t]*/[ \t]*({_TOKEN_RE})[ \t]*/[ \t]*({_TOKEN_RE})[ \t]+"
    r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_][A-Za-z0-9._-]*)(?:[ \t]*:[ \t]*([0-9]{1,5}))?"
    r"[ \t]*(?:;(.*))?",
    re.S,
)


@dataclass(slots=True)
class Via:
    """One Via value: ``SIP/2.0/<transport> host[:port];params``."""

    transport: str
    host: str
    port: int | None
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @classmethod
    def parse(cls, text: str) -> Via:
        m = _VIA.fullmatch(text)
        if m is None:
            raise SipParseError(f"malformed Via: {text!r}")
        proto, _version, transport, host, port_text, param_text = m.groups()
        if proto.upper() != "SIP":
            raise SipParseError(f"Via protocol is not SIP: {text!r}")
        if host[0] == "[":
            host = host[1:-1]
        port = None
        if port_text is not None:
            port = int(port_text)
            if port > 65535:
                raise SipParseError(f"Via port out of range: {text!r}")
        params = parse_params(param_text) if param_text is not None else {}
        return cls(transport.upper(), host.lower(), port, params)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if self.port is None else f":{self.port}"
        return f"SIP/2.0/{self.transport} {host}{port}{format_params(self.params)}"


_MAX_CSEQ = 2**31 - 1
_CSEQ = re.compile(r"[ \t]*([0-9]{1,10})[ \t]+(" + _TOKEN_RE + r")[ \t]*")


@dataclass(frozen=True, slots=True)
class CSeq:
    """CSeq: sequence number (< 2**31) and method."""

    seq: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        m = _CSEQ.fullmatch(text)
        if m is None:
            raise SipParseError(f"malformed CSeq: {text!r}")
        seq = int(m.group(1))
        if seq > _MAX_CSEQ:
            raise SipParseError(f"CSeq number out of range: {text!r}")
        return cls(seq, m.group(2))

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"
