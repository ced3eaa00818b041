"""Forwarding codes dialled on a phone (R40): ``*21*1003#`` and the rest.

The B2BUA hands a call to a dialled code (see
:func:`vaxla.pbx.forwarding.parse_star_code`) to :class:`ForwardingCodeService`.
It changes the caller's own forwarding (stored and audited like any other
change, actor = the extension, ``via: phone``), answers, and confirms with a
tone: three short 1400 Hz beeps when done, the special information tone
(950/1400/1800 Hz) when refused (e.g. ``*21*`` to the own number, to an
unknown short number, or ``*21#`` with no stored target). Then it hangs up.

The confirmation needs Växla's media engine (``media`` feature); without it
codes are not recognised and are routed like any number.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from vaxla.errors import VaxlaError
from vaxla.pbx.forwarding import StarCode, normalise_target, parse_star_code
from vaxla.pbx.forwarding_store import ForwardingStore
from vaxla.pbx.services import ServiceCall

if TYPE_CHECKING:
    from vaxla.media.engine import MediaEngine

log = logging.getLogger("vaxla.forwarding")

REFUSE_MS = 2100


class ForwardingCodeService:
    """Applies a forwarding code for the calling extension and confirms it."""

    def __init__(
        self,
        store: ForwardingStore,
        is_internal: Callable[[str], Awaitable[bool]],
        engine: MediaEngine,
    ) -> None:
        self.store = store
        self.is_internal = is_internal
        self.engine = engine

    async def apply(self, extension: str, code: StarCode) -> bool:
        """Change ``extension``'s forwarding as ``code`` says; False when refused."""
        store, actor = self.store, extension
        try:
            if code.action == "set":
                assert code.kind is not None and code.target is not None
                raw = code.target
                internal = raw.isdigit() and await self.is_internal(raw)
                target = normalise_target(raw, lambda n: internal and n == raw)
                await store.set_rule(extension, code.kind, target=target, actor=actor, via="phone")
            elif code.action in ("enable", "disable"):
                assert code.kind is not None
                enabled = code.action == "enable"
                await store.set_rule(
                    extension, code.kind, enabled=enabled, actor=actor, via="phone"
                )
            elif code.action == "erase":
                await store.remove_rule(extension, code.kind, actor=actor, via="phone")
            elif code.action == "disable-all":
                await store.disable_all(extension, actor=actor, via="phone")
            else:  # erase-all
                await store.remove_rule(extension, None, actor=actor, via="phone")
        except (VaxlaError, LookupError) as exc:
            log.info(
                "forwarding code refused",
                extra={"extension": extension, "code": code.action, "why": str(exc) or "no target"},
            )
            return False
        return True

    async def handle(self, call: ServiceCall) -> None:
        from vaxla.media.player import ToneSource
        from vaxla.media.services import answer_call
        from vaxla.media.tones import CONFIRMATION_MS, swedish_tone

        code = parse_star_code(call.number)
        if code is None:
            call.reject(404)
            return
        ok = await self.apply(call.caller, code)
        leg = await answer_call(self.engine, call)  # to an offer, or a delayed offer
        if leg is None:
            return
        if ok:
            source = ToneSource(swedish_tone("confirmation"), CONFIRMATION_MS)
        else:
            source = ToneSource(swedish_tone("special_information"), REFUSE_MS)
        ended = asyncio.ensure_future(call.ended.wait())
        played = leg.play(source)
        waiting: list[asyncio.Future[Any]] = [played, ended]
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if not ended.done():
                await asyncio.sleep(0.2)  # the last packets reach the phone
        finally:
            ended.cancel()
            played.cancel()
            self.engine.close_leg(leg, call.call_id)
