"""Error taxonomy of the media layer.

Parse errors are remote errors (the peer sent bytes we cannot accept); they
subclass :class:`ValueError` so callers that only want to drop bad datagrams
can catch one familiar type.
"""

from __future__ import annotations


class MediaError(Exception):
    """Base class of every error raised by ``vaxla.media``."""


class MediaParseError(MediaError, ValueError):
    """The remote side sent a malformed RTP/RTCP packet or payload."""
