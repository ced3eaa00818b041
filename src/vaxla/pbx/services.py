"""Hooks for applications that take calls (services) or carry their media.

A *service* answers calls to a number itself: echo test, read-back, a
conference room, later IVR, voicemail and queues. The B2BUA hands it a
``ServiceCall`` — the caller's side of the dialog — and the service answers
with its own SDP, plays and listens through the media engine, and hangs up.

A *media anchor* puts Växla in the media path of a bridged call: it rewrites
each side's SDP to Växla's own addresses and relays (and may record, mix or
announce into) the RTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(eq=False)
class ServiceCall:
    """The caller's leg of a call that a service answers."""

    call_id: str
    caller: str  # authenticated extension (or the From user of a trusted peer)
    number: str  # what was dialled
    offer: bytes  # the caller's SDP offer (empty for a delayed offer)
    content_type: str | None
    # Set by the B2BUA: how the service acts on the dialog.
    _ring: Callable[[], None]
    _answer: Callable[[bytes], None]
    _reject: Callable[[int], None]
    _hangup: Callable[[], None]
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    answered: bool = False
    answer_sdp: bytes = b""
    # Called with (digit, duration_ms) for SIP INFO application/dtmf-relay.
    on_info_dtmf: Callable[[str, int], None] | None = None
    # Called with a re-INVITE offer; returns the SDP answer (default: the same answer).
    on_reoffer: Callable[[bytes], bytes] | None = None
    # Called with the SDP of the caller's ACK: the answer to an offer the
    # service put in its 200 OK (delayed offer, RFC 3264 §5 / RFC 3261 §13.2.1).
    on_ack: Callable[[bytes], None] | None = None
    # Set by the B2BUA when call control runs: see :meth:`transfer`.
    _transfer: Callable[[str], asyncio.Future[int]] | None = None

    def ring(self) -> None:
        self._ring()

    def answer(self, sdp: bytes) -> None:
        self.answered = True
        self.answer_sdp = sdp
        self._answer(sdp)

    def reject(self, status: int) -> None:
        self._reject(status)

    def hangup(self) -> None:
        if not self.ended.is_set():
            self._hangup()

    async def transfer(self, number: str) -> int:
        """Hand the caller to ``number`` (a blind transfer by Växla): 200 once
        they talk, and the service's part is over; otherwise the failure
        status (486 busy, 480 no answer or no phone) and the caller stays
        with the service.  501 when transfers are not available."""
        if self._transfer is None:
            return 501
        return await self._transfer(number)


class CallService(Protocol):
    async def handle(self, call: ServiceCall) -> None: ...


class CallMedia(Protocol):
    """Media of one anchored call: SDP rewriting between the two legs."""

    def offer_to_b(self, sdp: bytes) -> bytes: ...

    def answer_to_a(self, sdp: bytes) -> bytes: ...

    def offer_from(self, side: str, sdp: bytes) -> bytes:
        """A re-INVITE offer from ``side`` ("a"/"b"), rewritten for the other side."""
        ...

    def answer_from(self, side: str, sdp: bytes) -> bytes:
        """The answer to such a re-INVITE from ``side``, rewritten for the offerer."""
        ...

    async def close(self) -> None: ...


class MediaAnchor(Protocol):
    async def prepare(self, call_id: str, caller: str, callee: str) -> CallMedia | None:
        """Media for a new bridged call, or None to let media flow directly."""
        ...


@runtime_checkable
class LiveMediaAnchor(Protocol):
    """A media anchor that can also take over (and give back) a live call."""

    async def prepare(self, call_id: str, caller: str, callee: str) -> CallMedia | None: ...

    async def anchor(self, call_id: str, caller: str, callee: str) -> CallMedia:
        """Media for a call being anchored now, whatever the node's default."""
        ...

    def direct_sdp(self, media: CallMedia, to_side: str, sdp: bytes) -> bytes:
        """A phone's own ``sdp`` for ``to_side`` when the call leaves the
        anchor (the o= line continues the session that side knows)."""
        ...
