"""Digest authentication of phones (REGISTER 401, INVITE 407) with throttling.

A source that keeps failing is throttled by (host, port) so a password-guessing
flood costs almost nothing and never locks out another phone, nor the attacked
extension itself when its real phone sits elsewhere.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from vaxla.pbx.extensions import DigestSecrets, ExtensionStore
from vaxla.sip.auth import DigestAuthenticator, DigestCredentials
from vaxla.sip.errors import SipParseError
from vaxla.sip.message import Request
from vaxla.sip.transaction import Peer

log = logging.getLogger("vaxla.auth")

WINDOW = 60.0
MAX_TRACKED_SOURCES = 10_000


@dataclass(frozen=True, slots=True)
class AuthOutcome:
    """ok: username is set. Otherwise answer ``status`` with ``headers``, or drop."""

    username: str | None = None
    status: int = 0
    headers: tuple[tuple[str, str], ...] = ()
    drop: bool = False

    @property
    def ok(self) -> bool:
        return self.username is not None


class FailureThrottle:
    """Counts failed attempts per source in a sliding window."""

    def __init__(self, limit: int, window: float = WINDOW) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[tuple[str, int], deque[float]] = {}

    def blocked(self, key: tuple[str, int], now: float) -> bool:
        q = self._failures.get(key)
        if q is None:
            return False
        while q and q[0] <= now - self.window:
            q.popleft()
        if not q:
            del self._failures[key]
            return False
        return len(q) >= self.limit

    def failed(self, key: tuple[str, int], now: float) -> None:
        if len(self._failures) >= MAX_TRACKED_SOURCES and key not in self._failures:
            # Forget the quietest sources rather than grow without bound.
            for k in list(self._failures)[: MAX_TRACKED_SOURCES // 10]:
                del self._failures[k]
        self._failures.setdefault(key, deque()).append(now)


class PhoneAuth:
    def __init__(
        self,
        extensions: ExtensionStore,
        realm: str,
        secret: bytes,
        default_algorithms: list[str],
        nonce_ttl: float,
        failure_limit: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.extensions = extensions
        self.realm = realm
        self.digest = DigestAuthenticator(realm, secret, nonce_ttl=nonce_ttl)
        self.default_algorithms = tuple(default_algorithms)
        self.throttle = FailureThrottle(failure_limit)
        self.clock = clock

    def _algorithms(self, secrets: DigestSecrets | None) -> tuple[str, ...]:
        if secrets is not None and secrets.algorithms:
            return secrets.algorithms
        return self.default_algorithms

    def _challenge(self, proxy: bool, secrets: DigestSecrets | None, stale: bool) -> AuthOutcome:
        name = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        values = self.digest.challenge(self.clock(), self._algorithms(secrets), stale=stale)
        return AuthOutcome(status=407 if proxy else 401, headers=tuple((name, v) for v in values))

    async def check(
        self, request: Request, peer: Peer, *, proxy: bool, hint_user: str
    ) -> AuthOutcome:
        now = self.clock()
        source = (peer.host, peer.port)
        if self.throttle.blocked(source, now):
            return AuthOutcome(drop=True)
        header = "Proxy-Authorization" if proxy else "Authorization"
        values = request.headers.get_all(header)
        username: str | None = None
        for value in values:
            try:
                creds = DigestCredentials.parse(value)
            except SipParseError:
                continue  # another scheme (RFC 4475 regaut01): ignore it
            if creds.realm == self.realm:
                username = creds.username
                break
        if username is None:
            secrets = await self.extensions.secrets(hint_user) if hint_user.isdigit() else None
            return self._challenge(proxy, secrets, stale=False)

        secrets = await self.extensions.secrets(username)
        if secrets is None or not secrets.enabled:
            return self._refuse(peer, username, "unknown-user", now)

        def lookup(user: str, realm: str, algorithm: str) -> str | None:
            if user != username or realm != secrets.realm:
                return None
            return secrets.ha1.get(algorithm.upper().removesuffix("-SESS"))

        result = self.digest.verify(request.method, values, lookup, now)
        if result.ok:
            return AuthOutcome(username=result.username)
        if result.stale:
            return self._challenge(proxy, secrets, stale=True)
        if result.reason in ("replay", "no-credentials", "bad-nonce"):
            return self._challenge(proxy, secrets, stale=False)
        return self._refuse(peer, username, result.reason, now)

    def _refuse(self, peer: Peer, username: str, reason: str, now: float) -> AuthOutcome:
        """403, counted against the source (same answer for every reason: no user
        enumeration)."""
        self.throttle.failed((peer.host, peer.port), now)
        log.info(
            "auth failed",
            extra={"user": username, "reason": reason, "peer": f"{peer.host}:{peer.port}"},
        )
        return AuthOutcome(status=403)
