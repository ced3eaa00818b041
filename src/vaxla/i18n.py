"""One translation table for every user-facing string (R23): Swedish first.

The table is ``i18n.toml`` beside this module: one line per key with its
Swedish and English text, e.g. ``"nav.console" = { sv = "Konsol", en = "Console" }``.
Templates call ``t(key)``; the browser's ES modules get the same table for
the user's language as JSON. Parameters use ``{name}`` placeholders.
"""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path

LANGUAGES = ("sv", "en")
DEFAULT_LANGUAGE = "sv"
TABLE_PATH = Path(__file__).with_name("i18n.toml")


@functools.cache
def table() -> dict[str, dict[str, str]]:
    with open(TABLE_PATH, "rb") as fh:
        raw = tomllib.load(fh)
    out: dict[str, dict[str, str]] = {}
    for key, texts in raw.items():
        if not isinstance(texts, dict) or set(texts) != set(LANGUAGES):
            raise ValueError(f"i18n.toml: {key!r} needs exactly {LANGUAGES}")
        out[key] = {lang: str(texts[lang]) for lang in LANGUAGES}
    return out


def language(lang: str | None) -> str:
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


def t(key: str, lang: str | None = DEFAULT_LANGUAGE, **params: object) -> str:
    """The text of ``key`` in ``lang``; an unknown key shows itself (and a test fails)."""
    texts = table().get(key)
    text = key if texts is None else texts[language(lang)]
    return text.format(**params) if params else text


def catalogue(lang: str | None) -> dict[str, str]:
    """Every text in one language, for the browser."""
    chosen = language(lang)
    return {key: texts[chosen] for key, texts in table().items()}
