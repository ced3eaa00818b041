"""SIP and other URIs, and name-addr values (RFC 3261 §19.1, §20.10, §25.1).

Also holds the small grammar helpers the header parsers share: token checks,
quoted strings, comma lists and ``;name=value`` parameter lists.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from vaxla.sip.errors import LocalProtocolError, SipParseError

__all__ = [
    "URI",
    "AbsoluteURI",
    "NameAddr",
    "SipURI",
    "format_params",
    "is_token",
    "parse_params",
    "parse_uri",
    "quote_string",
    "split_list",
]

# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
_TOKEN = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+")
# A display name given without quotes: tokens separated by LWS.  Octets above
# 0x7F are tolerated (phones send unquoted UTF-8 names); separators are not.
_DISPLAY_TOKENS = re.compile(
    r"[A-Za-z0-9.!%*_+`'~\x80-\U0010ffff-]+(?:[ \t]+[A-Za-z0-9.!%*_+`'~\x80-\U0010ffff-]+)*"
)
_DISPLAY_TOKENS_RE = _DISPLAY_TOKENS.pattern
# name-addr in its usual shapes; anything else goes the slow way (which also explains errors)
_NAME_ADDR = re.compile(
    r'[ \t]*(?:"([^"\\]*(?:\\.[^"\\]*)*)"[ \t]*|(' + _DISPLAY_TOKENS_RE + r")?[ \t]*)"
    r"<([^<>]*)>[ \t]*(?:;(.*))?",
    re.S,
)
# The rest of a quoted string after its opening quote, up to the closing quote.
_QUOTED_REST = re.compile(r'([^"\\]*(?:\\.[^"\\]*)*)"', re.S)
_QUOTED_PAIR = re.compile(r"\\(.)", re.S)
_NEEDS_QUOTED_PAIR = re.compile(r'[\x00-\x08\x0b\x0c\x0e-\x1f"\\\x7f]')
# gen-value = token / host / quoted-string (quoted strings are checked separately)
_GEN_VALUE = re.compile(r"[A-Za-z0-9.!%*_+`'~:\[\]-]*")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
# Characters never allowed unescaped in a URI (whitespace, controls, delimiters).
_URI_BAD = re.compile(r'[\x00-\x20"<>\\^`{|}\x7f]')
# sip/sips URI: userinfo (no ':' in user), host or [IPv6], port, ;params, ?headers.
_U = r"[^\x00-\x20\"<>\\^`{|}\x7f"
_SIP_URI = re.compile(
    rf"([sS][iI][pP][sS]?):(?:({_U}:@]+)(?::({_U}@]*))?@)?"
    r"(?:\[([0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)\]|([A-Za-z0-9_][A-Za-z0-9._-]*))"
    rf"(?::([0-9]{{1,5}}))?(?:;({_U}?]*))?(?:\?({_U}]*))?"
)
_SIP_SCHEMES = frozenset(("sip", "sips"))
_LIST_SPECIAL = re.compile(r'[",<]')
_PARAM_SPECIAL = re.compile(r'[";]')
_T = r"[A-Za-z0-9.!%*_+`'~-]+"
_G = r"[A-Za-z0-9.!%*_+`'~:\[\]-]*"
# ;-separated params without quotes or whitespace: the common case, checked in one go
_SIMPLE_PARAMS = re.compile(rf"{_T}(?:={_G})?(?:;{_T}(?:={_G})?)*")

# Characters that may stay unescaped in each URI component (besides alphanum and -_.~).
_USER_SAFE = "!*'()&=+$,;?/"
_PASSWORD_SAFE = "!*'()&=+$,"
_PARAM_SAFE = "!*'()[]/:&+$"
_HEADER_SAFE = "!*'()[]/?:+$"
_USER_OK = re.compile(r"[A-Za-z0-9_.~!*'()&=+$,;?/-]*")
_PASSWORD_OK = re.compile(r"[A-Za-z0-9_.~!*'()&=+$,-]*")
_PARAM_OK = re.compile(r"[A-Za-z0-9_.~!*'()\[\]/:&+$-]*")
_HEADER_OK = re.compile(r"[A-Za-z0-9_.~!*'()\[\]/?:+$-]*")

# URI parameters that must match when present in either URI (§19.1.4).
_STRICT_URI_PARAMS = ("user", "ttl", "method", "maddr", "transport")


def is_token(text: str) -> bool:
    """True when *text* is a non-empty RFC 3261 token."""
    return _TOKEN.fullmatch(text) is not None


def _unescape(text: str) -> str:
    if "%" not in text:
        return text
    return unquote(text, errors="surrogateescape")


def _escape(text: str, ok: re.Pattern[str], safe: str) -> str:
    if ok.fullmatch(text):
        return text
    return quote(text, safe=safe, errors="surrogateescape")


def quote_string(text: str) -> str:
    """Serialise *text* as a quoted-string, escaping ``"``, ``\\`` and controls."""
    if "\r" in text or "\n" in text:
        raise LocalProtocolError("CR/LF cannot appear in a quoted string")
    if _NEEDS_QUOTED_PAIR.search(text):
        text = _NEEDS_QUOTED_PAIR.sub(lambda m: "\\" + m.group(0), text)
    return f'"{text}"'


def _read_quoted(text: str, start: int) -> tuple[str, int]:
    """Parse the quoted string opening at ``text[start]``; return (content, end)."""
    m = _QUOTED_REST.match(text, start + 1)
    if m is None:
        raise SipParseError("unterminated quoted string")
    content = m.group(1)
    if "\\" in content:
        content = _QUOTED_PAIR.sub(r"\1", content)
    return content, m.end()


def split_list(value: str) -> list[str]:
    """Split a comma-separated header value; commas inside quotes or <> are kept.

    Empty elements are dropped; an unterminated quoted string or ``<`` raises.
    """
    if "," not in value:
        value = value.strip()
        return [value] if value else []
    if '"' not in value and "<" not in value:
        return [p for p in (x.strip() for x in value.split(",")) if p]
    out: list[str] = []
    start = 0
    pos = 0
    while True:
        m = _LIST_SPECIAL.search(value, pos)
        if m is None:
            break
        i = m.start()
        c = value[i]
        if c == '"':
            pos = _read_quoted(value, i)[1]
        elif c == "<":
            j = value.find(">", i + 1)
            if j < 0:
                raise SipParseError("unterminated '<' in header value")
            pos = j + 1
        else:
            part = value[start:i].strip()
            if part:
                out.append(part)
            start = pos = i + 1
    part = value[start:].strip()
    if part:
        out.append(part)
    return out


def _split_params(text: str) -> list[str]:
    if '"' not in text:
        return text.split(";")
    out: list[str] = []
    start = 0
    pos = 0
    while True:
        m = _PARAM_SPECIAL.search(text, pos)
        if m is None:
            break
        i = m.start()
        if text[i] == '"':
            pos = _read_quoted(text, i)[1]
        else:
            out.append(text[start:i])
            start = pos = i + 1
    out.append(text[start:])
    return out


def parse_params(text: str) -> dict[str, str | None]:
    """Parse header parameters ``a=b;c;d="q"`` (the text after the first ``;``).

    Names are lower-cased; values are kept as sent (quoted strings keep their
    quotes); a parameter without ``=`` maps to None.
    """
    params: dict[str, str | None] = {}
    if _SIMPLE_PARAMS.fullmatch(text):
        for part in text.split(";"):
            name, eq, value = part.partition("=")
            params[name.lower()] = value if eq else None
        return params
    for part in _split_params(text):
        name, eq, value = part.partition("=")
        name = name.strip(" \t")
        if _TOKEN.fullmatch(name) is None:
            raise SipParseError(f"bad parameter name {name!r}")
        if not eq:
            params[name.lower()] = None
            continue
        value = value.strip(" \t")
        if value.startswith('"'):
            if _read_quoted(value, 0)[1] != len(value):
                raise SipParseError(f"bad quoted parameter value {value!r}")
        elif _GEN_VALUE.fullmatch(value) is None:
            raise SipParseError(f"bad parameter value {value!r}")
        params[name.lower()] = value
    return params


def format_params(params: dict[str, str | None]) -> str:
    """Serialise parameters as ``;a=b;c`` (empty string when there are none)."""
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


def _same_host(a: str, b: str) -> bool:
    if a == b:
        return True
    if ":" in a and ":" in b:
        try:
            return ipaddress.IPv6Address(a) == ipaddress.IPv6Address(b)
        except ValueError:
            return False
    return False


@dataclass(slots=True)
class SipURI:
    """A ``sip:`` or ``sips:`` URI; components are stored unescaped."""

    scheme: str
    user: str | None
    password: str | None
    host: str
    port: int | None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> SipURI:
        m = _SIP_URI.fullmatch(text)
        if m is None:
            raise SipParseError(f"malformed SIP URI: {text!r}")
        return cls._from_match(m, text)

    @classmethod
    def _from_match(cls, m: re.Match[str], text: str) -> SipURI:
        scheme, user, password, ipv6, host, port_text, param_text, header_text = m.groups()
        if user is not None:
            if "%" in user:
                user = _unescape(user)
            if password is not None and "%" in password:
                password = _unescape(password)
        port = None
        if port_text is not None:
            port = int(port_text)
            if port > 65535:
                raise SipParseError(f"port out of range in {text!r}")
        params: dict[str, str | None] = {}
        if param_text is not None:
            for part in param_text.split(";"):
                name, eq, value = part.partition("=")
                if not name:
                    raise SipParseError(f"empty URI parameter in {text!r}")
                if "%" in part:
                    name = _unescape(name)
                    value = _unescape(value)
                params[name.lower()] = value if eq else None
        headers: dict[str, str] = {}
        if header_text is not None:
            for part in header_text.split("&"):
                name, eq, value = part.partition("=")
                if not name or not eq:
                    raise SipParseError(f"bad URI header in {text!r}")
                headers[_unescape(name)] = _unescape(value)
        host = (host or ipv6).lower()
        if scheme != "sip":
            scheme = scheme.lower()
        return cls(scheme, user, password, host, port, params, headers)

    def __str__(self) -> str:
        parts = [self.scheme, ":"]
        if self.user is not None:
            parts.append(_escape(self.user, _USER_OK, _USER_SAFE))
            if self.password is not None:
                parts += (":", _escape(self.password, _PASSWORD_OK, _PASSWORD_SAFE))
            parts.append("@")
        parts.append(f"[{self.host}]" if ":" in self.host else self.host)
        if self.port is not None:
            parts.append(f":{self.port}")
        for name, value in self.params.items():
            parts += (";", _escape(name, _PARAM_OK, _PARAM_SAFE))
            if value is not None:
                parts += ("=", _escape(value, _PARAM_OK, _PARAM_SAFE))
        sep = "?"
        for name, value in self.headers.items():
            parts += (
                sep,
                _escape(name, _HEADER_OK, _HEADER_SAFE),
                "=",
                _escape(value, _HEADER_OK, _HEADER_SAFE),
            )
            sep = "&"
        return "".join(parts)

    @property
    def transport(self) -> str | None:
        value = self.params.get("transport")
        return value.lower() if value is not None else None

    def equivalent(self, other: SipURI) -> bool:
        """RFC 3261 §19.1.4: user and password case-sensitive, the rest not;
        user/ttl/method/maddr/transport must agree when either URI has them,
        other parameters only when both have them; headers must all agree."""
        if (
            self.scheme != other.scheme
            or self.user != other.user
            or self.password != other.password
            or self.port != other.port
            or not _same_host(self.host, other.host)
        ):
            return False
        for name in _STRICT_URI_PARAMS:
            if (name in self.params) != (name in other.params):
                return False
        for name, value in self.params.items():
            if name in other.params:
                theirs = other.params[name]
                if (value is None) != (theirs is None):
                    return False
                if value is not None and theirs is not None and value.lower() != theirs.lower():
                    return False
        mine = {k.lower(): v.lower() for k, v in self.headers.items()}
        theirs_h = {k.lower(): v.lower() for k, v in other.headers.items()}
        return mine == theirs_h


@dataclass(slots=True)
class AbsoluteURI:
    """A URI of any scheme other than sip/sips, kept opaque."""

    scheme: str
    text: str

    def __str__(self) -> str:
        return self.text


URI = SipURI | AbsoluteURI


def parse_uri(text: str) -> URI:
    """Parse a URI: SipURI for sip/sips, AbsoluteURI for any other scheme."""
    m = _SIP_URI.fullmatch(text)
    if m is not None:
        return SipURI._from_match(m, text)
    colon = text.find(":")
    if colon <= 0:
        raise SipParseError(f"URI without scheme: {text!r}")
    if colon <= 4 and text[:colon].lower() in _SIP_SCHEMES:
        raise SipParseError(f"malformed SIP URI: {text!r}")
    if _SCHEME.fullmatch(text, 0, colon) is None or colon == len(text) - 1 or _URI_BAD.search(text):
        raise SipParseError(f"malformed URI: {text!r}")
    return AbsoluteURI(text[:colon].lower(), text)


_STAR = "*"


@dataclass(slots=True)
class NameAddr:
    """A name-addr or addr-spec value (From, To, Contact, Route, ...)."""

    uri: URI
    display: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        m = _NAME_ADDR.fullmatch(text)
        if m is not None:  # fast path
            quoted, name, uri_text, param_text = m.groups()
            if quoted is not None:
                name = _QUOTED_PAIR.sub(r"\1", quoted) if "\\" in quoted else quoted
            fast = parse_params(param_text) if param_text is not None else {}
            return cls(parse_uri(uri_text), name, fast)
        s = text.strip(" \t")
        if not s:
            raise SipParseError("empty address")
        display: str | None = None
        if s[0] == '"':
            display, end = _read_quoted(s, 0)
            rest = s[end:].lstrip(" \t")
            if not rest.startswith("<"):
                raise SipParseError(f"display name not followed by <uri>: {text!r}")
        else:
            lt = s.find("<")
            semi = s.find(";")
            if lt < 0 or (0 <= semi < lt):
                return cls._parse_addr_spec(s, text)
            raw_display = s[:lt].rstrip(" \t")
            if raw_display:
                if _DISPLAY_TOKENS.fullmatch(raw_display) is None:
                    raise SipParseError(f"bad display name {raw_display!r}")
                display = raw_display
            rest = s[lt:]
        gt = rest.find(">")
        if gt < 0:
            raise SipParseError(f"missing '>' in {text!r}")
        uri = parse_uri(rest[1:gt])  # the URI grammar has no room for whitespace (badaspec)
        after = rest[gt + 1 :].lstrip(" \t")
        params: dict[str, str | None] = {}
        if after:
            if after[0] != ";":
                raise SipParseError(f"unexpected text after '>' in {text!r}")
            params = parse_params(after[1:])
        return cls(uri, display, params)

    @classmethod
    def _parse_addr_spec(cls, s: str, text: str) -> NameAddr:
        uri_text, has_params, param_text = s.partition(";")
        uri_text = uri_text.rstrip(" \t")
        if uri_text == _STAR:
            uri: URI = AbsoluteURI(_STAR, _STAR)
        else:
            # §20: a URI with ',', '?' or ';' must be enclosed in <> (RFC 4475 regbadct)
            if "?" in uri_text or "," in uri_text:
                raise SipParseError(f"URI with headers must be in <>: {text!r}")
            uri = parse_uri(uri_text)
        params = parse_params(param_text) if has_params else {}
        return cls(uri, None, params)

    def __str__(self) -> str:
        if isinstance(self.uri, AbsoluteURI) and self.uri.scheme == _STAR:
            return _STAR + format_params(self.params)
        prefix = "" if self.display is None else quote_string(self.display) + " "
        return f"{prefix}<{self.uri}>{format_params(self.params)}"
