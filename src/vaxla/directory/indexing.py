"""What search looks up: folded tokens of every field and phonetic keys of names.

Pure functions: given a person's record (and the names of their units and
ancestor units), return the rows for ``dir_search_tokens`` and
``dir_name_keys``. The same folding is applied to queries.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from functools import lru_cache

from vaxla.directory.access import custom_field_name
from vaxla.directory.phonetic import (
    NameForm,
    consonant_skeleton,
    fold_name,
    name_words,
    phonetic_key,
)
from vaxla.directory.records import PersonRecord, national_form

MAX_TOKEN = 80
_SPLIT = re.compile(r"[^0-9a-z@._\-+]+")
_WORD = re.compile(r"[0-9a-z]+")
_FOLD = str.maketrans({"æ": "a", "ø": "o", "ß": "s", "ð": "d", "þ": "t", "ł": "l"})


def fold(text: str) -> str:
    """Lower-case, accents dropped (å, ä -> a, ö -> o), as stored in the token table."""
    decomposed = unicodedata.normalize("NFKD", text.casefold().translate(_FOLD))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def tokens(text: str) -> list[str]:
    return list(_tokens(text))


@lru_cache(maxsize=65536)
def _tokens(text: str) -> tuple[str, ...]:
    """Folded search tokens of a text: its words, and whole e-mail addresses too.

    ``"Anna.Öberg@Växjö.se"`` -> ``["anna.oberg@vaxjo.se", "anna", "oberg",
    "vaxjo", "se"]``; ``"070-123 45 67"`` -> ``["070", "123", "45", "67",
    "0701234567"]`` (digits run together as well, so a number typed with or
    without spaces is found).
    """
    folded = fold(text)
    out: list[str] = []
    for chunk in _SPLIT.split(folded):
        if "@" in chunk:
            out.append(chunk.strip("._-+"))
        out.extend(_WORD.findall(chunk))
    words = _WORD.findall(folded)
    if len(words) > 1 and all(w.isdigit() for w in words):
        out.append("".join(words))
    seen: set[str] = set()
    result: list[str] = []
    for t in out:
        t = t[:MAX_TOKEN]
        if t and t not in seen:
            seen.add(t)
            result.append(t)
    return tuple(result)


@lru_cache(maxsize=65536)
def word_form(word: str) -> tuple[str, str, str, str]:
    """(casefold, folded, phonetic key, skeleton) of one name word, cached: names repeat."""
    key = phonetic_key(word)
    return (
        unicodedata.normalize("NFC", word).casefold(),
        fold_name(word),
        key,
        consonant_skeleton(key),
    )


@lru_cache(maxsize=131072)
def _words(full_name: str) -> tuple[str, ...]:
    return tuple(name_words(full_name))


@lru_cache(maxsize=131072)
def name_form(full_name: str) -> NameForm:
    """:func:`~vaxla.directory.phonetic.analyse_name`, from cached per-word analyses."""
    forms = [word_form(w) for w in _words(full_name)]
    return NameForm(
        words=tuple(f[0] for f in forms),
        folded=tuple(f[1] for f in forms),
        keys=tuple(f[2] for f in forms),
        skeletons=tuple(f[3] for f in forms),
    )


def number_tokens(number: str) -> list[str]:
    """An E.164 number is found by its digits and by its Swedish national form."""
    digits = number.lstrip("+")
    found = [digits]
    national = national_form(number)
    if national:
        found.append(national)
    return found


def search_tokens(
    record: PersonRecord,
    unit_names: Iterable[str] = (),
    custom_searchable: Mapping[str, bool] | None = None,
) -> list[tuple[str, str]]:
    """(field, token) rows for a person. ``unit_names``: own units and their ancestors."""
    rows: list[tuple[str, str]] = []

    def add(field: str, text: str | None) -> None:
        if text:
            rows.extend((field, t) for t in tokens(text))

    add("first_name", record.first_name)
    add("last_name", record.last_name)
    for phone in record.phones:
        if phone.kind == "extension":
            rows.append(("extension", phone.number))
        else:
            rows.extend((phone.kind, t) for t in number_tokens(phone.number))
    add("email", record.email)
    for title in record.titles:
        add("titles", title)
    for task in record.tasks:
        add("tasks", task)
    for keyword in record.keywords:
        add("keywords", keyword)
    add("room", record.room)
    add("location", record.location)
    for address in record.addresses:
        add("addresses", address.text)
    for name in unit_names:
        add("units", name)
    for group in record.groups:
        add("groups", group)
    searchable = custom_searchable or {}
    for key, value in record.custom.items():
        if value is not None and searchable.get(key, False):
            add(custom_field_name(key), str(value))
    return list(dict.fromkeys(rows))


def name_keys(first_name: str, last_name: str) -> list[tuple[str, str, str]]:
    """(field, kind, key) rows: phonetic key "p" and consonant skeleton "s" per name word."""
    rows: list[tuple[str, str, str]] = []
    for field, name in (("first_name", first_name), ("last_name", last_name)):
        for word in _words(name):
            _, _, key, skeleton = word_form(word)
            if not key:
                continue
            rows.append((field, "p", key[:MAX_TOKEN]))
            if len(skeleton) >= 2:
                rows.append((field, "s", skeleton[:MAX_TOKEN]))
    return list(dict.fromkeys(rows))


def prefix_bounds(prefix: str) -> tuple[str, str]:
    """``[low, high)`` covering every string that starts with ``prefix`` (non-empty)."""
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)
