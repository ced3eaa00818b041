"""What the directory's phone services (diversion codes, keypad search) share:
the caller's language and speech in it.

The language is that of the web user linked to the caller's person (else to
the extension), Swedish when there is none; the texts come from
``vaxla/i18n.toml`` and are spoken by the media engine's espeak-ng, one
prompt cache per language.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import or_, select

from vaxla.auth.models import User
from vaxla.i18n import language

if TYPE_CHECKING:
    from vaxla.media.engine import MediaEngine
    from vaxla.media.tts import Pcm, PromptCache
    from vaxla.store.db import Database

log = logging.getLogger("vaxla.directory")


async def language_of(db: Database, extension: str, person_id: int | None) -> str:
    """The language of the web user linked to the person (else to the
    extension); Swedish when there is none."""
    linked = [User.extension == extension]
    if person_id is not None:
        linked.append(User.person_id == person_id)
    async with db.session() as s:
        rows = (
            await s.execute(
                select(User.person_id, User.language)
                .where(User.active.is_(True), or_(*linked))
                .order_by(User.id)
            )
        ).all()
    if not rows:
        return "sv"
    first = min(rows, key=lambda r: person_id is None or r[0] != person_id)  # stable
    return language(first[1])


class Voices:
    """Speech in each language through the engine's espeak-ng prompt caches."""

    def __init__(self, engine: MediaEngine) -> None:
        self.engine = engine
        self._caches: dict[str, PromptCache] = {}

    def _cache(self, lang: str) -> PromptCache:
        from vaxla.media.tts import PromptCache

        if lang == "sv":
            return self.engine.prompts
        cache = self._caches.get(lang)
        if cache is None:
            cache = self._caches[lang] = PromptCache(self.engine.prompts.directory, lang)
        return cache

    async def speech(self, text: str, lang: str) -> Pcm | None:
        """``text`` spoken in ``lang``; None when it cannot be rendered (logged)."""
        from vaxla.media.tts import PromptError

        try:
            return await self._cache(lang).render(text)
        except PromptError:
            log.exception("prompt failed", extra={"lang": lang})
            return None
