"""Error taxonomy of the SIP core.

Remote errors (the peer sent something wrong) carry the status to answer
with; ``status_hint=None`` means the message is dropped silently.
"""

from __future__ import annotations

from collections.abc import Iterable


class SipError(Exception):
    """Base class of every error raised by ``vaxla.sip``."""

    def __init__(
        self,
        message: str,
        status_hint: int | None = 400,
        extra_headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_hint = status_hint
        self.extra_headers: tuple[tuple[str, str], ...] = tuple(extra_headers)


class SipParseError(SipError):
    """The remote side sent a malformed or unacceptable message."""


class LocalProtocolError(SipError):
    """We tried to do something the protocol does not allow."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status_hint=None)
