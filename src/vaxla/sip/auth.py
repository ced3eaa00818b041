"""SIP digest authentication, sans-IO (RFC 2617, RFC 7616, RFC 8760 for SIP).

Server side: :class:`DigestAuthenticator` issues challenges and verifies
``Authorization`` / ``Proxy-Authorization`` values. Nonces are stateless: a
nonce carries its issue time, the algorithm it was offered for and random
bytes, sealed with an HMAC under the server secret, so a nonce is checked
without having been stored (and any node sharing the secret can check it).
Only the highest nonce-count seen per nonce is remembered, in a bounded
table, to reject replays.

Passwords are never needed by the server: it asks a callback for the stored
HA1 = H(username ":" realm ":" password) of the realm and hash function
(see :func:`compute_ha1`).

Client side: :func:`parse_challenge` and :func:`build_authorization` (trunks,
tests).

Supported algorithms: ``MD5``, ``SHA-256`` and their ``-sess`` variants.
Supported qop: ``auth``, and no qop at all (RFC 2069 clients). ``auth-int``
is never offered and is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import struct
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote

from vaxla.sip.errors import SipParseError

__all__ = [
    "ALGORITHMS",
    "AuthResult",
    "DigestAuthenticator",
    "DigestChallenge",
    "DigestCredentials",
    "build_authorization",
    "compute_ha1",
    "parse_challenge",
]

# Canonical algorithm name -> (hashlib name, is a session variant).
_ALGORITHMS: dict[str, tuple[str, bool]] = {
    "MD5": ("md5", False),
    "MD5-sess": ("md5", True),
    "SHA-256": ("sha256", False),
    "SHA-256-sess": ("sha256", True),
}
ALGORITHMS: tuple[str, ...] = tuple(_ALGORITHMS)
_CANONICAL = {name.lower(): name for name in _ALGORITHMS}
# One byte code per algorithm, sealed into the nonce so that a nonce offered
# for SHA-256 cannot be answered with MD5 (downgrade protection).
_ALG_CODE = {name: i for i, name in enumerate(ALGORITHMS)}

_TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~")
_HEX = frozenset("0123456789abcdefABCDEF")


def _canonical_algorithm(name: str) -> str:
    """Canonical spelling of a supported algorithm (case-insensitive), else ValueError."""
    try:
        return _CANONICAL[name.lower()]
    except KeyError:
        raise ValueError(f"unsupported digest algorithm {name!r}") from None


def _base_algorithm(algorithm: str) -> str:
    """``MD5-sess`` -> ``MD5``, ``SHA-256-sess`` -> ``SHA-256``."""
    canonical = _canonical_algorithm(algorithm)
    return canonical.removesuffix("-sess")


def _hash(hash_name: str, text: str) -> str:
    return hashlib.new(hash_name, text.encode("utf-8")).hexdigest()


def compute_ha1(username: str, realm: str, password: str, algorithm: str = "MD5") -> str:
    """HA1 = H(username ":" realm ":" password), hex (RFC 7616 §3.4.2).

    This is what to store per user, realm and hash function instead of the
    password. For ``-sess`` algorithms the stored value is the same as for the
    base algorithm; the session key is derived from it at verification time.
    Raises ValueError for an unsupported algorithm.
    """
    hash_name, _ = _ALGORITHMS[_canonical_algorithm(algorithm)]
    return _hash(hash_name, f"{username}:{realm}:{password}")


def _response(
    algorithm: str,
    ha1: str,
    nonce: str,
    method: str,
    uri: str,
    qop: str | None,
    nc: str | None,
    cnonce: str | None,
) -> str:
    """The request-digest (RFC 7616 §3.4.1; RFC 2069 form when qop is None)."""
    hash_name, sess = _ALGORITHMS[_canonical_algorithm(algorithm)]
    if sess:
        # RFC 7616 §3.4.2: HA1 = H(H(user:realm:pass) ":" nonce ":" cnonce)
        ha1 = _hash(hash_name, f"{ha1}:{nonce}:{cnonce or ''}")
    ha2 = _hash(hash_name, f"{method}:{uri}")
    if qop is None:
        return _hash(hash_name, f"{ha1}:{nonce}:{ha2}")
    return _hash(hash_name, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


# --------------------------------------------------------------------------- parsing


def _split_scheme(value: str) -> tuple[str, str]:
    """``'Digest a=b'`` -> (``'Digest'``, ``'a=b'``); the scheme may stand alone."""
    text = value.strip()
    end = 0
    while end < len(text) and text[end] in _TOKEN_CHARS:
        end += 1
    if end == 0 or (end < len(text) and text[end] not in " \t"):
        raise SipParseError(f"malformed authentication header: {value!r}")
    return text[:end], text[end:].strip(" \t")


def _parse_auth_params(text: str) -> dict[str, str]:
    """Parse ``name=value`` pairs separated by commas (RFC 7235 auth-param).

    Values are tokens or quoted strings (backslash escapes removed). Names are
    lower-cased. Empty list elements (``a=1,,b=2``) are tolerated, duplicated
    names and anything else are SipParseError.
    """
    params: dict[str, str] = {}
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t\r\n,":
            i += 1
        if i >= n:
            return params
        start = i
        while i < n and text[i] in _TOKEN_CHARS:
            i += 1
        name = text[start:i].lower()
        if not name:
            raise SipParseError(f"bad auth-param at offset {start}: {text!r}")
        while i < n and text[i] in " \t":
            i += 1
        if i >= n or text[i] != "=":
            raise SipParseError(f"auth-param {name!r} without '=': {text!r}")
        i += 1
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] == '"':
            i += 1
            chars: list[str] = []
            while True:
                if i >= n:
                    raise SipParseError(f"unterminated quoted string in {text!r}")
                ch = text[i]
                if ch == "\\":
                    if i + 1 >= n:
                        raise SipParseError(f"dangling escape in {text!r}")
                    chars.append(text[i + 1])
                    i += 2
                elif ch == '"':
                    i += 1
                    break
                else:
                    chars.append(ch)
                    i += 1
            value = "".join(chars)
        else:
            # Tokens per the grammar; be lenient and accept any run of visible
            # characters (some clients send e.g. uri=sip:host unquoted).
            start = i
            while i < n and text[i] not in ' \t\r\n,"':
                i += 1
            value = text[start:i]
            if not value:
                raise SipParseError(f"auth-param {name!r} has an empty value: {text!r}")
        if name in params:
            raise SipParseError(f"auth-param {name!r} given twice: {text!r}")
        params[name] = value
        while i < n and text[i] in " \t\r\n":
            i += 1
        if i < n and text[i] != ",":
            raise SipParseError(f"expected ',' at offset {i}: {text!r}")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _decode_ext_value(value: str) -> str:
    """RFC 8187 ext-value (``UTF-8''J%C3%A4s``) as used by ``username*`` (RFC 7616 §3.4.4)."""
    charset, sep, rest = value.partition("'")
    _lang, sep2, encoded = rest.partition("'")
    if not sep or not sep2 or charset.lower() not in ("utf-8", "iso-8859-1"):
        raise SipParseError(f"bad username* value {value!r}")
    try:
        return unquote(encoded, encoding=charset.lower(), errors="strict")
    except UnicodeDecodeError:
        raise SipParseError(f"bad username* encoding {value!r}") from None


@dataclass(frozen=True, slots=True)
class DigestCredentials:
    """One Digest ``Authorization`` / ``Proxy-Authorization`` value.

    ``algorithm`` is the canonical spelling (``"MD5"`` when absent; an
    unknown algorithm is kept as sent). ``nc`` is kept as sent, since the
    response is computed over its exact text; ``nc_value`` is its number.
    """

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    qop: str | None = None
    nc: str | None = None
    cnonce: str | None = None
    opaque: str | None = None
    params: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def nc_value(self) -> int | None:
        return None if self.nc is None else int(self.nc, 16)

    @classmethod
    def parse(cls, header_value: str) -> DigestCredentials:
        """Parse ``Digest username="...", ...``. Raises SipParseError."""
        scheme, rest = _split_scheme(header_value)
        if scheme.lower() != "digest":
            raise SipParseError(f"not a Digest authorization: {scheme!r}")
        params = _parse_auth_params(rest)
        if "username*" in params:
            if "username" in params:
                raise SipParseError("both username and username* given")
            username = _decode_ext_value(params["username*"])
        elif "username" in params:
            username = params["username"]
        else:
            raise SipParseError("Digest credentials without username")
        for required in ("realm", "nonce", "uri", "response"):
            if required not in params:
                raise SipParseError(f"Digest credentials without {required}")
        algorithm = params.get("algorithm", "MD5")
        algorithm = _CANONICAL.get(algorithm.lower(), algorithm)
        qop = params.get("qop")
        nc = params.get("nc")
        cnonce = params.get("cnonce")
        if qop is not None and (nc is None or cnonce is None):
            raise SipParseError("Digest credentials with qop but without nc/cnonce")
        if nc is not None and not (1 <= len(nc) <= 8 and set(nc) <= _HEX):
            raise SipParseError(f"bad nonce-count {nc!r}")
        return cls(
            username=username,
            realm=params["realm"],
            nonce=params["nonce"],
            uri=params["uri"],
            response=params["response"],
            algorithm=algorithm,
            qop=qop,
            nc=nc,
            cnonce=cnonce,
            opaque=params.get("opaque"),
            params=params,
        )


@dataclass(frozen=True, slots=True)
class DigestChallenge:
    """One Digest ``WWW-Authenticate`` / ``Proxy-Authenticate`` value."""

    realm: str
    nonce: str
    algorithm: str = "MD5"  # canonical spelling when supported, else as sent
    qop: tuple[str, ...] = ()  # offered qop options, lower-cased; () = RFC 2069 style
    opaque: str | None = None
    stale: bool = False
    domain: str | None = None
    userhash: bool = False
    params: dict[str, str] = field(default_factory=dict, compare=False, repr=False)


def parse_challenge(value: str) -> DigestChallenge:
    """Parse a Digest challenge header value. Raises SipParseError."""
    scheme, rest = _split_scheme(value)
    if scheme.lower() != "digest":
        raise SipParseError(f"not a Digest challenge: {scheme!r}")
    params = _parse_auth_params(rest)
    for required in ("realm", "nonce"):
        if required not in params:
            raise SipParseError(f"Digest challenge without {required}")
    algorithm = params.get("algorithm", "MD5")
    qop = tuple(q.strip().lower() for q in params.get("qop", "").split(",") if q.strip())
    return DigestChallenge(
        realm=params["realm"],
        nonce=params["nonce"],
        algorithm=_CANONICAL.get(algorithm.lower(), algorithm),
        qop=qop,
        opaque=params.get("opaque"),
        stale=params.get("stale", "").lower() == "true",
        domain=params.get("domain"),
        userhash=params.get("userhash", "").lower() == "true",
        params=params,
    )


def build_authorization(
    challenge_value: str,
    method: str,
    uri: str,
    username: str,
    password: str,
    *,
    cnonce: str | None = None,
    nc: int = 1,
) -> str:
    """Answer a Digest challenge: the ``Authorization`` header value (client side).

    Uses qop=auth when offered, else the RFC 2069 form. ``cnonce`` is random
    when not given. Raises SipParseError for an unparseable challenge and
    ValueError for an algorithm or qop we cannot answer.
    """
    challenge = parse_challenge(challenge_value)
    algorithm = _canonical_algorithm(challenge.algorithm)
    qop: str | None = None
    if challenge.qop:
        if "auth" not in challenge.qop:
            raise ValueError(f"no supported qop in {challenge.qop!r}")
        qop = "auth"
    _, sess = _ALGORITHMS[algorithm]
    if cnonce is None and (qop is not None or sess):
        cnonce = secrets.token_hex(8)
    nc_text = f"{nc:08x}" if qop is not None else None
    ha1 = compute_ha1(username, challenge.realm, password, algorithm)
    response = _response(
        algorithm, ha1, challenge.nonce, method, uri, qop, nc_text, cnonce if qop or sess else None
    )
    parts = [
        f"username={_quote(username)}",
        f"realm={_quote(challenge.realm)}",
        f"nonce={_quote(challenge.nonce)}",
        f"uri={_quote(uri)}",
        f"response={_quote(response)}",
        f"algorithm={algorithm}",
    ]
    if cnonce is not None and (qop is not None or sess):
        parts.append(f"cnonce={_quote(cnonce)}")
    if challenge.opaque is not None:
        parts.append(f"opaque={_quote(challenge.opaque)}")
    if qop is not None:
        parts.append(f"qop={qop}")
        parts.append(f"nc={nc_text}")
    return "Digest " + ", ".join(parts)


# --------------------------------------------------------------------------- server


@dataclass(frozen=True, slots=True)
class AuthResult:
    """Outcome of :meth:`DigestAuthenticator.verify`.

    ``reason`` is one of: ``ok``, ``no-credentials`` (nothing for our realm),
    ``unknown-user``, ``bad-response``, ``stale``, ``replay``, ``bad-nonce``
    (not ours, tampered or offered for another algorithm), ``bad-opaque``,
    ``unsupported-algorithm``, ``unsupported-qop``.
    """

    ok: bool
    username: str | None
    stale: bool
    reason: str
    algorithm: str | None = None  # canonical algorithm of the credentials examined


# Nonce layout (before base64url): issue time in ms (int64), algorithm code
# (1 byte), 9 random bytes, then 18 bytes of HMAC-SHA256 over a label, the
# realm and those 18 bytes. 36 bytes -> 48 base64 characters without padding.
_NONCE_HEAD = struct.Struct(">qB")
_NONCE_RANDOM = 9
_NONCE_MAC = 18
_NONCE_BODY = _NONCE_HEAD.size + _NONCE_RANDOM
# A nonce issued "in the future" by more than this (e.g. before a restart
# reset the monotonic clock) is treated as expired.
_CLOCK_SLACK = 1.0


@dataclass(slots=True)
class _DecodedNonce:
    issued: float
    algorithm: str


class DigestAuthenticator:
    """Digest challenges and verification for one realm (RFC 7616, RFC 8760).

    ``now`` is whatever clock the caller uses consistently (monotonic in one
    process; nodes sharing ``secret`` must share a clock, e.g. wall time, for
    each other's nonces to be judged fresh). ``max_tracked_nonces`` bounds the
    nonce-count table; when it overflows, the least recently used nonces are
    forgotten and every untracked nonce issued no later than the newest one
    forgotten is answered ``stale`` (the client simply retries with a fresh
    nonce), so forgetting never opens a replay window.
    """

    def __init__(
        self,
        realm: str,
        secret: bytes,
        *,
        nonce_ttl: float = 300.0,
        max_tracked_nonces: int = 65536,
    ) -> None:
        if not secret:
            raise ValueError("secret must not be empty")
        if max_tracked_nonces < 1:
            raise ValueError("max_tracked_nonces must be positive")
        self.realm = realm
        self.nonce_ttl = nonce_ttl
        self._secret = secret
        self._max_tracked = max_tracked_nonces
        # nonce -> (highest nc accepted, issue time); order = least recently used first.
        self._nc_seen: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._forgotten_up_to: float | None = None

    # -- nonces

    def _mac(self, body: bytes) -> bytes:
        msg = b"vaxla-digest-nonce\x00" + self.realm.encode("utf-8") + b"\x00" + body
        return hmac.new(self._secret, msg, hashlib.sha256).digest()[:_NONCE_MAC]

    def _make_nonce(self, now: float, algorithm: str) -> str:
        body = _NONCE_HEAD.pack(round(now * 1000), _ALG_CODE[algorithm])
        body += secrets.token_bytes(_NONCE_RANDOM)
        return base64.urlsafe_b64encode(body + self._mac(body)).decode("ascii")

    def _decode_nonce(self, nonce: str) -> _DecodedNonce | None:
        try:
            raw = base64.urlsafe_b64decode(nonce.encode("ascii"))
        except (binascii.Error, ValueError, UnicodeEncodeError):
            return None
        # b64decode skips characters outside the alphabet: insist on the exact text.
        if len(raw) != _NONCE_BODY + _NONCE_MAC or base64.urlsafe_b64encode(raw) != nonce.encode():
            return None
        body, mac = raw[:_NONCE_BODY], raw[_NONCE_BODY:]
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        millis, code = _NONCE_HEAD.unpack_from(body)
        if code >= len(ALGORITHMS):
            return None
        return _DecodedNonce(issued=millis / 1000, algorithm=ALGORITHMS[code])

    def _opaque(self, nonce: str) -> str:
        msg = b"vaxla-digest-opaque\x00" + nonce.encode("ascii", "replace")
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()[:16]

    # -- public API

    def challenge(
        self, now: float, algorithms: Sequence[str] = ("MD5",), stale: bool = False
    ) -> list[str]:
        """Header values for WWW-Authenticate / Proxy-Authenticate, one per
        algorithm, in the order given (RFC 8760 §2.4: most preferred first).
        Raises ValueError for an unsupported algorithm."""
        values = []
        for name in algorithms:
            algorithm = _canonical_algorithm(name)
            nonce = self._make_nonce(now, algorithm)
            parts = [
                f"realm={_quote(self.realm)}",
                f'nonce="{nonce}"',
                f'opaque="{self._opaque(nonce)}"',
                f"algorithm={algorithm}",
                'qop="auth"',
            ]
            if stale:
                parts.append("stale=true")
            values.append("Digest " + ", ".join(parts))
        return values

    def verify(
        self,
        method: str,
        header_values: Sequence[str],
        lookup_ha1: Callable[[str, str, str], str | None],
        now: float,
    ) -> AuthResult:
        """Check the Authorization / Proxy-Authorization values of a request.

        Values with another scheme or another realm are ignored. When several
        Digest values are for our realm (RFC 8760 allows one per algorithm),
        the first that verifies wins; otherwise a stale result is preferred
        (so the client gets a stale=true challenge), else the first failure.
        ``lookup_ha1(username, realm, algorithm)`` is asked with the base
        algorithm (``"MD5"`` or ``"SHA-256"``, also for ``-sess``) and returns
        the stored HA1 hex (:func:`compute_ha1`) or None for an unknown user.

        A Digest value that cannot be parsed raises SipParseError (answer
        400), unless another value for our realm was usable.
        """
        self._prune(now)
        results: list[AuthResult] = []
        parse_error: SipParseError | None = None
        for value in header_values:
            try:
                scheme, _ = _split_scheme(value)
            except SipParseError as exc:
                parse_error = parse_error or exc
                continue
            if scheme.lower() != "digest":
                continue
            try:
                creds = DigestCredentials.parse(value)
            except SipParseError as exc:
                parse_error = parse_error or exc
                continue
            # The realm is compared exactly (RFC 7616: a quoted string).
            if creds.realm != self.realm:
                continue
            result = self._verify_one(method, creds, lookup_ha1, now)
            if result.ok:
                return result
            results.append(result)
        if not results:
            if parse_error is not None:
                raise parse_error
            return AuthResult(ok=False, username=None, stale=False, reason="no-credentials")
        for result in results:
            if result.stale:
                return result
        return results[0]

    def _verify_one(
        self,
        method: str,
        creds: DigestCredentials,
        lookup_ha1: Callable[[str, str, str], str | None],
        now: float,
    ) -> AuthResult:
        def fail(reason: str, *, stale: bool = False) -> AuthResult:
            return AuthResult(
                ok=False,
                username=creds.username,
                stale=stale,
                reason=reason,
                algorithm=creds.algorithm,
            )

        if creds.algorithm not in _ALGORITHMS:
            return fail("unsupported-algorithm")
        if creds.qop is not None and creds.qop.lower() != "auth":
            return fail("unsupported-qop")
        decoded = self._decode_nonce(creds.nonce)
        if decoded is None or decoded.algorithm != creds.algorithm:
            return fail("bad-nonce")
        # RFC 7616 says the client MUST return opaque; the value is derived from
        # the nonce and adds nothing secret, so a client that omits it is
        # tolerated, but a wrong one is not.
        if creds.opaque is not None and not hmac.compare_digest(
            creds.opaque.encode("utf-8"), self._opaque(creds.nonce).encode("ascii")
        ):
            return fail("bad-opaque")
        ha1 = lookup_ha1(creds.username, creds.realm, _base_algorithm(creds.algorithm))
        if ha1 is None:
            return fail("unknown-user")
        # The digest-uri is deliberately not compared with the Request-URI:
        # SIPp (and some phones behind NAT/proxies) put e.g. "sip:IP:PORT"
        # there. The response is computed over the uri as sent, so it is
        # still covered by the digest.
        qop = None if creds.qop is None else "auth"
        expected = _response(
            creds.algorithm,
            ha1.lower(),
            creds.nonce,
            method,
            creds.uri,
            qop,
            creds.nc,
            creds.cnonce,
        )
        if not hmac.compare_digest(
            expected.encode("ascii"), creds.response.lower().encode("utf-8")
        ):
            return fail("bad-response")
        age = now - decoded.issued
        if age > self.nonce_ttl or age < -_CLOCK_SLACK:
            return fail("stale", stale=True)
        nc = creds.nc_value
        if nc is not None:
            seen = self._nc_seen.get(creds.nonce)
            if seen is None:
                if self._forgotten_up_to is not None and decoded.issued <= self._forgotten_up_to:
                    # Its nonce-count history may have been evicted: make the
                    # client fetch a fresh nonce rather than risk a replay.
                    return fail("stale", stale=True)
            elif nc <= seen[0]:
                return fail("replay")
            self._remember(creds.nonce, nc, decoded.issued)
        # Without qop (RFC 2069) there is no nonce-count and so no replay
        # protection beyond the nonce lifetime; accepted for old clients.
        return AuthResult(
            ok=True, username=creds.username, stale=False, reason="ok", algorithm=creds.algorithm
        )

    def _remember(self, nonce: str, nc: int, issued: float) -> None:
        self._nc_seen[nonce] = (nc, issued)
        self._nc_seen.move_to_end(nonce)
        while len(self._nc_seen) > self._max_tracked:
            _, (_, old_issued) = self._nc_seen.popitem(last=False)
            if self._forgotten_up_to is None or old_issued > self._forgotten_up_to:
                self._forgotten_up_to = old_issued

    def _prune(self, now: float) -> None:
        """Drop expired nonces from the front of the table (least recently used first)."""
        while self._nc_seen:
            nonce, (_, issued) = next(iter(self._nc_seen.items()))
            if now - issued <= self.nonce_ttl:
                break
            del self._nc_seen[nonce]

    @property
    def tracked_nonces(self) -> int:
        """How many nonces currently have a remembered nonce-count."""
        return len(self._nc_seen)
