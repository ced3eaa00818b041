"""Directory search from the desk phone's keypad, with transfer (R40, R46).

Dial the search number (``directory.keypad_search_number``, 9005 in the
demo), key the start of a last or first name on the keypad and finish with
``#``; Växla reads the matches with their extension and current diversion
("Ett: Anna Karlsson, anknytning 1 0 0 3. Hänvisning: Lunch, tillbaka
klockan tretton noll noll."), and one digit connects the caller to that
person (a blind transfer by Växla; ringback meanwhile). ``*`` searches again.

Keys follow a Swedish phone: Å and Ä on 2, Ö on 6, accents dropped (É on 3,
Ü on 8), spaces and hyphens not keyed. A name matches when its last name,
its first name, or first and last name together start with the keyed
digits; last-name matches come first, then alphabetical. More than
:data:`MAX_LISTED` matches asks for more letters.

Only public fields are read out (name, extension, the diversion's reason and
return time), in the caller's language (:mod:`vaxla.directory.phone_voice`).
A digit keyed while Växla speaks interrupts it. The person list is loaded
from the directory when the service is first used and again after any
change to the people (the ``dir_index_changes`` log every writer keeps, so
an import or another node counts too) or once it is :data:`REFRESH_S`
seconds old; a search then costs one small query and a bisection.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from vaxla.directory.models import IndexChange, Person, PhoneNumber
from vaxla.directory.phone_codes import set_confirmation
from vaxla.directory.phone_voice import Voices, language_of
from vaxla.i18n import t
from vaxla.media.numbers_sv import digits_words
from vaxla.media.services import answer_call, keyed_number, next_digit
from vaxla.pbx.services import ServiceCall

if TYPE_CHECKING:
    from vaxla.directory.service import DirectoryService
    from vaxla.media.engine import MediaEngine
    from vaxla.media.leg import MediaLeg

log = logging.getLogger("vaxla.directory")

#: More matches than this: the caller is asked for more letters.
MAX_LISTED = 9
#: Seconds before the person list is read from the directory again, changed or not.
REFRESH_S = 300.0
#: Seconds Växla waits for a key before it asks again / says goodbye.
KEY_WAIT_S = 15.0
#: Searches in one call before Växla says goodbye.
MAX_SEARCHES = 5

_KEYS = {"2": "abcåä", "3": "def", "4": "ghi", "5": "jkl", "6": "mnoö", "7": "pqrs"}
_KEYS |= {"8": "tuv", "9": "wxyz"}
KEYPAD: dict[str, str] = {ch: key for key, letters in _KEYS.items() for ch in letters}
KEYPAD |= {"æ": "2", "ø": "6", "ß": "7"}


def keypad_digits(text: str) -> str:
    """``text`` as keyed on a Swedish phone: ``"Åsa Öberg"`` -> ``"27262374"``."""
    out = []
    for ch in text.lower():
        key = KEYPAD.get(ch)
        if key is None:  # é -> e, ü -> u; other marks and non-letters are not keyed
            key = KEYPAD.get(unicodedata.normalize("NFKD", ch)[:1])
        if key is not None:
            out.append(key)
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Listing:
    """A person reachable on an extension."""

    person_id: int
    first_name: str
    last_name: str
    extension: str

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


# How a listing matched: its last name, its first name, or both together.
_LAST, _FIRST, _FULL = 0, 1, 2


class KeypadIndex:
    """Listings by the keypad digits of their names, for prefix lookups."""

    def __init__(self, listings: Iterable[Listing]) -> None:
        self.listings = list(listings)
        keyed: list[tuple[str, int, int]] = []
        for i, entry in enumerate(self.listings):
            last, first = keypad_digits(entry.last_name), keypad_digits(entry.first_name)
            for digits, how in ((last, _LAST), (first, _FIRST), (first + last, _FULL)):
                if digits:
                    keyed.append((digits, how, i))
        keyed.sort()
        self._keys = [k[0] for k in keyed]
        self._entries = [(k[1], k[2]) for k in keyed]

    def find(self, digits: str, limit: int = MAX_LISTED) -> tuple[list[Listing], bool]:
        """The listings whose names start with ``digits`` (best first), and
        whether there were more than ``limit``."""
        if not digits:
            return [], False
        best: dict[int, int] = {}
        start = bisect.bisect_left(self._keys, digits)
        for pos in range(start, len(self._keys)):
            if not self._keys[pos].startswith(digits):
                break
            how, i = self._entries[pos]
            if how < best.get(i, 3):
                best[i] = how
                if len(best) > limit:
                    return [], True
        order = sorted(
            best, key=lambda i: (best[i], self.listings[i].last_name, self.listings[i].first_name)
        )
        return [self.listings[i] for i in order], False


async def load_listings(directory: DirectoryService) -> list[Listing]:
    """Every active person with an extension (one listing per extension)."""
    async with directory.db.session() as s:
        rows = await s.execute(
            select(Person.id, Person.first_name, Person.last_name, PhoneNumber.number)
            .join(PhoneNumber, PhoneNumber.person_id == Person.id)
            .where(PhoneNumber.kind == "extension", Person.active.is_(True))
            .order_by(Person.id, PhoneNumber.number)
        )
        return [Listing(r[0], r[1], r[2], r[3]) for r in rows]


class KeypadSearchService:
    """Answers the keypad search number: search, read the matches, connect."""

    def __init__(
        self, directory: DirectoryService, engine: MediaEngine, clock: Any = time.monotonic
    ) -> None:
        self.directory = directory
        self.engine = engine
        self.voices = Voices(engine)
        self.clock = clock
        self._index: KeypadIndex | None = None
        self._loaded_at = 0.0
        self._loaded_change: int | None = None
        self._loading = asyncio.Lock()

    async def index(self) -> KeypadIndex:
        """The keypad index, read again from the directory when people changed."""
        async with self._loading:
            now = self.clock()
            async with self.directory.db.session() as s:
                change = await s.scalar(select(func.max(IndexChange.seq)))
            stale = now - self._loaded_at > REFRESH_S or change != self._loaded_change
            if self._index is None or stale:
                self._index = KeypadIndex(await load_listings(self.directory))
                self._loaded_at, self._loaded_change = now, change
            return self._index

    async def describe(self, matches: list[Listing], lang: str) -> str:
        """The matches read out: number to press, name, extension, diversion."""
        now = self.directory.now()
        async with self.directory.db.session() as s:
            diverted = await self.directory.diversions.current_for(
                s, [m.person_id for m in matches], now
            )
        parts = []
        for choice, m in enumerate(matches, 1):
            ext = digits_words(m.extension) if lang == "sv" else " ".join(m.extension)
            parts.append(t("keypad-search.entry", lang, choice=choice, name=m.name, extension=ext))
            state = diverted.get(m.person_id)
            if state is not None:
                parts.append(set_confirmation(state, lang, now))
        parts.append(t("keypad-search.choose", lang))
        return " ".join(parts)

    async def handle(self, call: ServiceCall) -> None:
        leg = await answer_call(self.engine, call)
        if leg is None:
            return
        try:
            lang = await language_of(self.directory.db, call.caller, None)
            await _Dialogue(self, call, leg, lang).run()
        finally:
            self.engine.close_leg(leg, call.call_id)


class _Dialogue:
    """One caller's way through the search: prompts, digits, the transfer."""

    def __init__(
        self, service: KeypadSearchService, call: ServiceCall, leg: MediaLeg, lang: str
    ) -> None:
        self.service = service
        self.call = call
        self.leg = leg
        self.lang = lang

    async def say(self, key: str, **params: Any) -> None:
        await self.speak(t(key, self.lang, **params))

    async def speak(self, text: str) -> None:
        """Speak ``text``; a key pressed meanwhile stops it (and stays queued)."""
        pcm = await self.service.voices.speech(text, self.lang)
        if pcm is None or self.call.ended.is_set():
            return
        playing = self.leg.play_pcm(pcm)
        waiters: list[asyncio.Future[Any]] = [
            playing,
            asyncio.ensure_future(self.call.ended.wait()),
            asyncio.ensure_future(self._key_waiting()),
        ]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not playing.done():
                self.leg.player.stop()  # interrupted: the rest is not spoken
            for w in waiters:
                w.cancel()

    async def _key_waiting(self) -> None:
        while self.leg.digits.empty():
            await asyncio.sleep(0.02)

    async def key(self) -> str | None:
        """The next key, None when the caller hung up or stayed quiet."""
        return await next_digit(self.leg, self.call, KEY_WAIT_S)

    async def run(self) -> None:
        for _ in range(MAX_SEARCHES):
            await self.say("keypad-search.welcome")
            digits = await keyed_number(self.leg, self.call, KEY_WAIT_S, star_restarts=True)
            if digits is None:
                break
            matches, too_many = (await self.service.index()).find(digits)
            log.info(
                "keypad search",
                extra={"caller": self.call.caller, "digits": digits, "found": len(matches)},
            )
            if too_many:
                await self.say("keypad-search.too-many", count=MAX_LISTED)
                continue
            if not matches:
                await self.say("keypad-search.none")
                continue
            await self.speak(await self.service.describe(matches, self.lang))
            chosen = await self.choice(len(matches))
            if chosen is None:
                break
            if chosen == 0:
                continue
            if await self.connect(matches[chosen - 1]):
                return
        if not self.call.ended.is_set():
            await self.say("keypad-search.goodbye")

    async def choice(self, count: int) -> int | None:
        """1..count: the match chosen; 0: search again; None: hung up or quiet."""
        while True:
            key = await self.key()
            if key is None:
                return None
            if key == "*":
                return 0
            if key.isdigit() and 1 <= int(key) <= count:
                return int(key)

    async def connect(self, match: Listing) -> bool:
        """Hand the caller to ``match``'s extension; False when nobody took it."""
        from vaxla.media.player import ToneSource
        from vaxla.media.tones import swedish_tone

        transfer = asyncio.ensure_future(self.call.transfer(match.extension))
        try:  # the phone rings while the caller hears whom, then ringback
            await self.say("keypad-search.connecting", name=match.name)
            if not transfer.done():
                self.leg.play(ToneSource(swedish_tone("ringback"), 60_000))
            status = await transfer
        finally:
            transfer.cancel()
            self.leg.player.stop()
        log.info(
            "keypad search transfer",
            extra={"caller": self.call.caller, "to": match.extension, "status": status},
        )
        if status == 200 or self.call.ended.is_set():
            return True
        key = "keypad-search.busy" if status in (486, 600) else "keypad-search.no-answer"
        await self.say(key, name=match.name)
        return False


class KeypadSearchNumber:
    """The B2BUA's service on the search number: answered through the media
    engine once the media feature runs (480 before that, or without it)."""

    def __init__(
        self, directory: DirectoryService, engine: Callable[[], MediaEngine | None]
    ) -> None:
        self.directory = directory
        self.engine = engine
        self._service: KeypadSearchService | None = None

    async def handle(self, call: ServiceCall) -> None:
        engine = self.engine()
        if engine is None:
            call.reject(480)
            return
        if self._service is None or self._service.engine is not engine:
            self._service = KeypadSearchService(self.directory, engine)
        await self._service.handle(call)
