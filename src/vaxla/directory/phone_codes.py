"""Diversion (hänvisning) set and cleared from the desk phone by keypad code (R81, R40).

In the style of Swedish enterprise PBXs (MX-ONE's *frånvarohänvisning*):

=========================  ==================================================
dial                       does
=========================  ==================================================
``*23*<reason>#``          set my diversion with reason number ``<reason>``
``*23*<reason>*<HHMM>#``   the same, back at ``HH:MM`` ("tillbaka 13:00")
``#23#``                   clear my diversion
=========================  ==================================================

``<reason>`` is the reason's place, counted from 1, in the list of active
reasons as users see it (ordered by ``position``): with the seeded list
1 lunch, 2 möte, 3 kurs, 4 semester, 5 tjänsteresa, 6 gått för dagen, 7 sjuk,
8 ledig. An administrator who reorders or retires reasons renumbers them.

The return time is the *next* ``HH:MM`` in Swedish time: today while it is
still ahead, otherwise tomorrow, so ``*23*6*0800#`` dialled at 17:00 means
"gone for the day, back tomorrow at eight" (the confirmation says "i
morgon"). As on the web, it is the return time shown to callers and the
operator; the diversion stays until it is cleared.

The caller is the authenticated extension; the person is the one active
directory person with that extension. When there is none, or several share
it (R46: one person on a shared extension can be diverted without closing it
for the others, but a code dialled there does not say who dialled), the code
is refused. A change is stored and audited like any other (actor = the
extension, ``via: phone`` in the audit row) and published on the bus as
``diversion.changed``, so consoles update live.

The phone hears the outcome spoken by the media engine (espeak-ng) in the
user's language (that of the web user linked to the person or extension,
Swedish otherwise), all texts from ``vaxla/i18n.toml``; a refusal starts with
the special information tone. Then Växla hangs up. Without the media engine
the codes are not recognised and are routed like any number.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Literal

from vaxla.directory.diversion import (
    DiversionRequest,
    DiversionState,
    Reason,
    numbered_reasons,
)
from vaxla.directory.phone_voice import Voices, language_of
from vaxla.directory.schedule import STOCKHOLM
from vaxla.errors import VaxlaError
from vaxla.i18n import t
from vaxla.media.numbers_sv import number_words
from vaxla.pbx.services import ServiceCall

if TYPE_CHECKING:
    from vaxla.directory.service import DirectoryService
    from vaxla.media.engine import MediaEngine

log = logging.getLogger("vaxla.directory")

SET_PREFIX = "*23*"
CLEAR_CODE = "#23#"
_SET = re.compile(r"(\d{1,3})(?:\*(\d{4}))?#")

#: The special information tone played once before a spoken refusal (3 × 332 ms + gaps).
SIT_MS = 1350
#: Pause after the last word before Växla hangs up (the last packets reach the phone).
TAIL_S = 0.3


class CodeRefused(Exception):
    """A diversion code that cannot be carried out.

    ``problem`` names the spoken reason (``diversion-code.refused.<problem>``
    in the translation table): ``format``, ``reason``, ``time``,
    ``no-person``, ``shared``, ``failed``."""

    def __init__(self, problem: str, **params: object) -> None:
        super().__init__(problem)
        self.problem = problem
        self.params = params


@dataclass(frozen=True, slots=True)
class DiversionCode:
    action: Literal["set", "clear"]
    reason: int = 0  # the reason's number, from 1 (set only)
    back: time | None = None  # the return time of day (set only)


def is_diversion_code(dialled: str) -> bool:
    """Whether ``dialled`` is meant as a diversion code (well-formed or not)."""
    return dialled.startswith(SET_PREFIX) or dialled == CLEAR_CODE


def parse_diversion_code(dialled: str) -> DiversionCode | None:
    """The diversion code in a dialled number; None when it is none.

    Raises :class:`CodeRefused` for a diversion code that cannot be right:
    ``format`` (``*23*1``, ``*23*a#``, ``*23*1*130#``), ``reason`` (0) or
    ``time`` (``*23*1*2460#``)."""
    if dialled == CLEAR_CODE:
        return DiversionCode("clear")
    if not dialled.startswith(SET_PREFIX):
        return None
    m = _SET.fullmatch(dialled[len(SET_PREFIX) :])
    if m is None:
        raise CodeRefused("format")
    number, hhmm = int(m.group(1)), m.group(2)
    if number < 1:
        raise CodeRefused("reason", number=number)
    back = None
    if hhmm is not None:
        hour, minute = int(hhmm[:2]), int(hhmm[2:])
        if hour > 23 or minute > 59:
            raise CodeRefused("time")
        back = time(hour, minute)
    return DiversionCode("set", number, back)


def reason_by_number(reasons: Iterable[Reason], number: int) -> Reason:
    """The reason with ``number`` (from 1); :class:`CodeRefused` ``reason`` when none."""
    listed = numbered_reasons(reasons)
    if not 1 <= number <= len(listed):
        raise CodeRefused("reason", number=number)
    return listed[number - 1]


def return_at(back: time, now: datetime) -> datetime:
    """The next ``back`` o'clock in Swedish time after ``now`` (UTC): today if
    still ahead, else tomorrow."""
    local = now.astimezone(STOCKHOLM)
    day = local.date()
    when = datetime.combine(day, back, tzinfo=STOCKHOLM)
    if when <= local:
        when = datetime.combine(day + timedelta(days=1), back, tzinfo=STOCKHOLM)
    return when.astimezone(UTC)


def spoken_time(when: time, lang: str) -> str:
    """A clock time for the speech synthesiser: ``13:00`` is "tretton noll noll"
    in Swedish, "13 hundred" (thirteen hundred) in English."""
    hour, minute = when.hour, when.minute
    if lang == "sv":
        words = "noll noll" if minute == 0 else number_words(minute)
        if 0 < minute < 10:
            words = f"noll {words}"
        return f"{number_words(hour)} {words}"
    if minute == 0:
        return f"{hour} hundred"
    return f"{hour} oh {minute}" if minute < 10 else f"{hour} {minute}"


def set_confirmation(state: DiversionState, lang: str, now: datetime) -> str:
    """What the phone hears after ``*23*``: the diversion now in force."""
    reason = _label(state.reason, lang)
    if state.return_at is None:
        return t("diversion-code.set", lang, reason=reason)
    back = state.return_at.astimezone(STOCKHOLM)
    today = now.astimezone(STOCKHOLM).date()
    key = "diversion-code.set-back" if back.date() == today else "diversion-code.set-back-tomorrow"
    return t(key, lang, reason=reason, time=spoken_time(back.time(), lang))


def clear_confirmation(changed: bool, state: DiversionState | None, lang: str) -> str:
    """What the phone hears after ``#23#``: removed (``changed``) or there was
    none; a weekly schedule that still diverts the person is named."""
    if state is None:
        return t("diversion-code.cleared" if changed else "diversion-code.none", lang)
    still = t("diversion-code.still", lang, reason=_label(state.reason, lang))
    return f"{t('diversion-code.cleared', lang)} {still}" if changed else still


def refusal(exc: CodeRefused, lang: str) -> str:
    params = dict(exc.params)
    if "number" in params and lang == "sv":
        params["number"] = number_words(int(str(params["number"])))
    return t(f"diversion-code.refused.{exc.problem}", lang, **params)


def _label(reason: Reason, lang: str) -> str:
    return reason.label_sv if lang == "sv" else reason.label_en


@dataclass(frozen=True, slots=True)
class Reply:
    """The outcome of a code: done or refused, and what to say."""

    ok: bool
    text: str
    lang: str = "sv"


class DiversionCodeService:
    """Carries out a diversion code for the calling extension and says so."""

    def __init__(self, directory: DirectoryService, engine: MediaEngine | None = None) -> None:
        self.directory = directory
        self.engine = engine
        self.voices = Voices(engine) if engine is not None else None

    async def apply(self, extension: str, dialled: str) -> Reply:
        """Change the diversion of ``extension``'s person as ``dialled`` says."""
        lang = "sv"
        try:
            code = parse_diversion_code(dialled)
            if code is None:
                raise CodeRefused("format")
            people = await self.directory.people_on_extension(extension)
            lang = await language_of(
                self.directory.db, extension, people[0] if len(people) == 1 else None
            )
            if not people:
                raise CodeRefused("no-person")
            if len(people) > 1:
                raise CodeRefused("shared", count=len(people))
            person_id = people[0]
            if code.action == "clear":
                changed, state = await self.directory.divert_from_phone(
                    person_id, None, extension=extension
                )
                return Reply(True, clear_confirmation(changed, state, lang), lang)
            async with self.directory.db.session() as s:
                reasons = await self.directory.diversions.reasons(s)
            reason = reason_by_number(reasons.values(), code.reason)
            now = self.directory.now()
            back = None if code.back is None else return_at(code.back, now)
            _, state = await self.directory.divert_from_phone(
                person_id, DiversionRequest(reason.code, return_at=back), extension=extension
            )
            assert state is not None  # the diversion just set is in force
            return Reply(True, set_confirmation(state, lang, now), lang)
        except CodeRefused as exc:
            log.info(
                "diversion code refused",
                extra={"extension": extension, "code": dialled, "why": exc.problem},
            )
            return Reply(False, refusal(exc, lang), lang)
        except (VaxlaError, LookupError) as exc:
            log.warning(
                "diversion code failed",
                extra={"extension": extension, "code": dialled, "why": str(exc)},
            )
            return Reply(False, refusal(CodeRefused("failed"), lang), lang)

    async def handle(self, call: ServiceCall) -> None:
        from vaxla.media.player import ToneSource
        from vaxla.media.services import answer_call
        from vaxla.media.tones import CONFIRMATION_MS, swedish_tone

        assert self.engine is not None
        reply = await self.apply(call.caller, call.number)
        assert self.voices is not None
        speech = await self.voices.speech(reply.text, reply.lang)  # before answering: no dead air
        leg = await answer_call(self.engine, call)  # to an offer, or a delayed offer
        if leg is None:
            return
        ended = asyncio.ensure_future(call.ended.wait())
        playing: list[asyncio.Future[None]] = []
        if not reply.ok:
            playing.append(leg.play(ToneSource(swedish_tone("special_information"), SIT_MS)))
        elif speech is None:  # no speech synthesiser: the forwarding codes' three beeps
            playing.append(leg.play(ToneSource(swedish_tone("confirmation"), CONFIRMATION_MS)))
        if speech is not None:
            playing.append(leg.play_pcm(speech))
        waiting: list[asyncio.Future[Any]] = [playing[-1], ended]
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if not ended.done():
                await asyncio.sleep(TAIL_S)
        finally:
            ended.cancel()
            for played in playing:
                played.cancel()
            self.engine.close_leg(leg, call.call_id)


@dataclass
class DiversionCodes:
    """The B2BUA's matcher for diversion codes (``B2BUA.register_code``).

    ``engine`` returns the node's media engine once the media feature runs;
    without it (or for a trusted peer, whose caller is not authenticated)
    the codes are not claimed."""

    directory: DirectoryService
    engine: Callable[[], MediaEngine | None]
    _service: DiversionCodeService | None = field(default=None, repr=False)

    def __call__(self, dialled: str, trusted: bool) -> DiversionCodeService | None:
        if trusted or not is_diversion_code(dialled):
            return None
        engine = self.engine()
        if engine is None:
            return None
        if self._service is None or self._service.engine is not engine:
            self._service = DiversionCodeService(self.directory, engine)
        return self._service
