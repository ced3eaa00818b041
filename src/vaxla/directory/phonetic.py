"""Swedish phonetic keys for personal names.

The key is modelled on SfinxBis, the phonetic name code published by the
Swedish National Archives (Riksarkivet) and SWAMI: names are split into words,
nobility and place particles (``von``, ``af``, ``de`` ...) are set aside,
case and diacritics are normalised, letter combinations that spell the same
Swedish sound are rewritten to one symbol (the *sj*-sound, the *tj*-sound,
soft ``c``/``g``/``k`` at the start of a name, ``ck``/``q``/``ph``/``w``/``z``
/``x`` ...), silent letters are dropped and double letters collapsed. Unlike
the original SfinxBis, which keeps one letter and a string of digits and
throws the vowels away, the key here keeps every vowel as one of seven vowel
classes. Dropping vowels makes Berg and Borg, Lind and Lund, Jonsson and
Jönsson the same name, which a Swedish switchboard operator would never
accept.

The key is a short ASCII string of upper-case letters (outside Latin script,
letters pass through upper-cased), so it can be stored in an indexed column
and looked up with ``=``/``IN`` or, for type-ahead, with the half-open range
from :func:`key_prefix_bounds`. Key alphabet::

    consonants  B D F G H J K L M N P R S T V
                C  = tj-sound (kj, tj, ch/k + front vowel at the start)
                X  = sj-sound (sj, sch, skj, stj, sh, sk + front vowel, -tion)
                Q  = ng-sound (ng, and the g of gn after a vowel)
                F/V: kept apart at the start of a name, merged (V) inside it
    vowels      A  E (e, ä, æ, é)  I  O (o, å)  U  Y (y, ü)  W (ö, ø)

:class:`NameMatcher` ranks candidates for a query: exact > prefix >
phonetic > fuzzy (edit distance, via rapidfuzz). The intended use in the
directory is: store :func:`phonetic_keys` of every person's names (one row per
key, indexed), look candidates up by the query's keys (and by folded-name
prefix), then rank the handful of candidates in Python with the matcher.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TypeVar

from rapidfuzz import fuzz

_T = TypeVar("_T")

__all__ = [
    "PARTICLES",
    "MatchKind",
    "NameForm",
    "NameMatch",
    "NameMatcher",
    "analyse_name",
    "consonant_skeleton",
    "fold_name",
    "key_prefix_bounds",
    "name_words",
    "normalise_letters",
    "phonetic_key",
    "phonetic_keys",
]

# --------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------

#: Name particles set aside when they precede another word (``Max von Sydow``).
PARTICLES = frozenset(
    {"von", "af", "av", "de", "du", "la", "van", "der", "den", "da", "di", "del", "zu"}
)

_RING = "\u030a"
_DIAERESIS = "\u0308"
# Letters with a mark that must survive normalisation: the Swedish vowels and
# the German/Danish ones that spell the same sounds.
_KEEP_MARKED = {("A", _RING): "Å", ("A", _DIAERESIS): "Ä", ("O", _DIAERESIS): "Ö"}
_MARKED_TO_PLAIN = {("U", _DIAERESIS): "Y"}
# Letters that do not decompose under NFD.
_SPECIAL_LETTERS = {
    "Æ": "Ä",
    "Ø": "Ö",
    "Œ": "Ö",
    "ẞ": "SS",
    "Þ": "TH",
    "Ð": "D",
    "Đ": "D",
    "Ł": "L",
    "Ħ": "H",
    "İ": "I",
}
_WORD_SPLIT = re.compile(r"[\s\-\u2010-\u2015/,;:+&_.()]+")


def normalise_letters(text: str) -> str:
    """Upper-case ``text``, keep Å/Ä/Ö, drop other diacritics and every non-letter.

    Decomposed input (``a`` + combining ring) gives the same result as
    composed input; ü becomes Y, æ Ä and ø Ö, as Swedish pronounces them.
    """
    out: list[str] = []
    for ch in unicodedata.normalize("NFD", text.upper()):
        if unicodedata.combining(ch):
            if out:
                base = out[-1]
                if (base, ch) in _KEEP_MARKED:
                    out[-1] = _KEEP_MARKED[(base, ch)]
                elif (base, ch) in _MARKED_TO_PLAIN:
                    out[-1] = _MARKED_TO_PLAIN[(base, ch)]
            continue
        if ch in _SPECIAL_LETTERS:
            out.append(_SPECIAL_LETTERS[ch])
        elif ch.isalpha():
            out.append(ch.upper())
    return "".join(out)


def fold_name(text: str) -> str:
    """Lower-case ASCII folding of a name (``Öström`` -> ``ostrom``).

    Meant for a second indexed column that supports diacritic-insensitive
    prefix search and for fuzzy comparison of names typed without å, ä, ö.
    """
    letters = normalise_letters(text).translate(_ASCII_FOLD)
    return letters.lower()


_ASCII_FOLD = str.maketrans({"Å": "A", "Ä": "A", "Ö": "O"})


def name_words(full_name: str) -> list[str]:
    """Split a full name into words, set particles aside, keep original spelling.

    Hyphens split double-barrel names (``Peterson-Berger`` -> two words).
    A particle is dropped only when another word follows it, so a person
    whose whole (sur)name is ``De`` still has a word.
    """
    raw = [w for w in _WORD_SPLIT.split(full_name.strip()) if normalise_letters(w)]
    words: list[str] = []
    for index, word in enumerate(raw):
        is_particle = unicodedata.normalize("NFC", word).casefold() in PARTICLES
        if is_particle and index + 1 < len(raw):
            continue
        words.append(word)
    return words


# --------------------------------------------------------------------------
# The key
# --------------------------------------------------------------------------

_V = "AEIOUYÅÄÖ"  # vowels after normalisation
_FRONT = "EIYÄÖ"  # front ("soft") vowels: they soften g, k, c and sk
# Resolved sounds are written in lower case so later rules leave them alone.
_SJ, _TJ, _NG = "x", "c", "q"


def _rules(pairs: Sequence[tuple[str, str]]) -> list[tuple[re.Pattern[str], str]]:
    return [(re.compile(pattern), repl) for pattern, repl in pairs]


# Common surname endings, rewritten before the letter rules.
_SUFFIX_RULES = _rules(
    [
        (r"(?:QU|QV|QW|KV|KW|CQV|CKV)IST$", "KVIST"),  # -qvist, -quist, -kvist
        (r"STR(?:OE|O|Ö)M$", "STRÖM"),  # -ström, -strøm, -strom, -stroem
        (r"BERGH$", "BERG"),
        (r"SOHN$", "SON"),
    ]
)

# Rules for the beginning of a name, where Swedish softens g, k, c and sk.
_INITIAL_RULES = _rules(
    [
        (r"^(?:SCH|SKJ|STJ|SJ|SH)", _SJ),
        (rf"^SK(?=[{_FRONT}])", _SJ),
        (rf"^CH(?=[{_FRONT}])", _TJ),  # Chellberg = Kjellberg
        (r"^CH(?=[AOUÅ])", _SJ),  # Charlotta
        (r"^CH", "k"),  # Christina, Christer
        (r"^(?:KJ|TJ|CJ)", _TJ),
        (rf"^K(?=[{_FRONT}])", _TJ),  # Kerstin = Kjerstin
        (r"^(?:HJ|GJ|LJ|DJ)", "j"),  # Hjalmar, Ljungberg
        (rf"^G(?=[{_FRONT}])", "j"),  # Göran = Jöran
        (rf"^([{_SJ}{_TJ}])[IJ](?=[{_V}])", r"\1"),  # Skiöld = Sköld
        (rf"^Y(?=[{_V}])", "j"),  # Yasmin = Jasmin
        (r"^X", "s"),
        (r"^PH", "f"),
        (rf"^H(?=[^{_V}])", ""),
    ]
)

# Rules anywhere in the name, applied in order.
_BODY_RULES = _rules(
    [
        (r"SCH|SKJ|STJ|SJ", _SJ),
        (r"TI(?=ON)", _SJ),  # -tion
        (r"CH", "k"),  # Michael, Joachim, Richard
        (r"CK|CC", "k"),
        (rf"C(?=[{_FRONT}])", "s"),
        (r"C", "k"),
        (r"KJ|TJ", _TJ),
        (r"PH", "f"),
        (rf"Q[UVW](?=[{_V}])", "kv"),
        (r"Q", "k"),
        (r"X", "ks"),
        (r"W", "v"),
        (r"Z", "s"),
        (r"DT|TH", "t"),
        (r"DH", "d"),
        (r"GH", "g"),
        (rf"(?<=[^{_V}])H", ""),  # h after a consonant is silent: Lindh, Dahl
        (rf"(?<=[{_V}])H(?=[^{_V}]|$)", ""),  # and after a vowel unless one follows
        (rf"(?<=[^{_V}])T(?=[sS])", ""),  # Bengtsson = Bengtzon, Schultz = Schulz
        (rf"(?<=[{_V}])GN", _NG + "n"),  # Magnus, Ragnar
        (r"NG", _NG),
        (rf"(?<=[^{_V}])(?:IE|Y)$", "I"),  # Jennie = Jenny (final i-sound)
        (rf"(?<=[{_V}])[IY]J?(?=[{_V}])", "j"),  # Meijer = Meyer = Mejer
        (rf"(?<=[{_V}])[IY](?=[^{_V}]|$)", "j"),  # Kai = Kay = Kaj, Leif
    ]
)

# Digraphs in the first syllable: ae is the old spelling of a long a (Claes =
# Klas); oe and ue transliterate ö and ü (Loefgren, Mueller). Later in a name
# they are usually two syllables (Mikael, Rafael, Samuel) and are left alone.
_FIRST_SYLLABLE_DIGRAPH = re.compile(rf"^([^{_V}]*)(AE|OE|UE)")
_DIGRAPH_VOWEL = {"AE": "A", "OE": "Ö", "UE": "Y"}
_COLLAPSE = re.compile(r"(.)\1+")
_MEDIAL_FV = re.compile(r"(?<=.)[FfVv]")

_ENCODE = str.maketrans(
    {
        "Ä": "E",
        "Å": "O",
        "Ö": "W",
        _SJ: "X",
        _TJ: "C",
        _NG: "Q",
        "k": "K",
        "s": "S",
        "f": "F",
        "v": "V",
        "t": "T",
        "d": "D",
        "g": "G",
        "j": "J",
        "n": "N",
    }
)


def phonetic_key(name: str) -> str:
    """Phonetic key of one name word (``Carlsson`` -> ``KARLSON``).

    Separators and particles are not treated specially here: give it one
    word, or use :func:`phonetic_keys` for a full name. Returns ``""`` when
    the input has no letters.
    """
    word = normalise_letters(name)
    if not word:
        return ""
    word = _COLLAPSE.sub(r"\1", word)
    for pattern, repl in _SUFFIX_RULES:
        word = pattern.sub(repl, word)
    word = _FIRST_SYLLABLE_DIGRAPH.sub(lambda m: m[1] + _DIGRAPH_VOWEL[m[2]], word)
    for pattern, repl in _INITIAL_RULES:
        word = pattern.sub(repl, word, count=1)
    for pattern, repl in _BODY_RULES:
        word = pattern.sub(repl, word)
    word = _MEDIAL_FV.sub("v", word)
    return _COLLAPSE.sub(r"\1", word.translate(_ENCODE))


def phonetic_keys(full_name: str) -> list[str]:
    """One phonetic key per word of a full name, particles set aside.

    ``"Anna von Schöberg-Carlson"`` -> ``["ANA", "XWBERG", "KARLSON"]``.
    Words without letters give no key; an empty name gives ``[]``.
    """
    keys = (phonetic_key(word) for word in name_words(full_name))
    return [key for key in keys if key]


def key_prefix_bounds(prefix: str) -> tuple[str, str]:
    """Half-open range ``[low, high)`` of keys starting with ``prefix``.

    For index-friendly type-ahead in SQL: ``key >= :low AND key < :high``
    (``LIKE`` cannot always use an index). ``prefix`` must be non-empty.
    """
    if not prefix:
        raise ValueError("empty key prefix")
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


# --------------------------------------------------------------------------
# Ranking
# --------------------------------------------------------------------------


class MatchKind(IntEnum):
    """How a candidate matched; a higher value ranks first."""

    FUZZY = 1
    PHONETIC = 2
    PREFIX = 3
    EXACT = 4


@dataclass(frozen=True, slots=True, order=True)
class NameMatch:
    """A candidate's match: ``kind`` ranks first, then ``score`` (0-1) in the kind.

    ``completion`` is true when some query word only matched the start of a
    candidate word (as typed, or by phonetic key): a type-ahead hit, not a
    claim that the names are the same.
    """

    kind: MatchKind
    score: float
    completion: bool = field(default=False, compare=False)


@dataclass(frozen=True, slots=True)
class NameForm:
    """A name prepared for matching: per word, its casefold, folded and key forms."""

    words: tuple[str, ...]
    folded: tuple[str, ...]
    keys: tuple[str, ...]
    skeletons: tuple[str, ...]


def analyse_name(full_name: str) -> NameForm:
    """Prepare a name for :class:`NameMatcher` (do it once per candidate)."""
    words = name_words(full_name)
    keys = tuple(phonetic_key(w) for w in words)
    return NameForm(
        words=tuple(unicodedata.normalize("NFC", w).casefold() for w in words),
        folded=tuple(fold_name(w) for w in words),
        keys=keys,
        skeletons=tuple(consonant_skeleton(k) for k in keys),
    )


def consonant_skeleton(key: str) -> str:
    """A phonetic key without its vowels (``MUHAMAD`` -> ``MHMD``).

    Names whose consonants agree but whose vowels differ (Mohammed and
    Muhammad, Silvia and Sylvia) are fuzzy matches; the skeleton can also be
    stored in an indexed column to look such candidates up.
    """
    return key.translate(_NO_VOWELS)


_NO_VOWELS = str.maketrans("", "", "AEIOUYW")
_SKELETON_SIMILARITY = 85.0


def _word_match(
    q: NameForm, qi: int, c: NameForm, ci: int, matcher: NameMatcher
) -> NameMatch | None:
    q_word, c_word, q_key, c_key = q.words[qi], c.words[ci], q.keys[qi], c.keys[ci]
    if q_word == c_word:
        return NameMatch(MatchKind.EXACT, 1.0)
    if matcher.prefix and c_word.startswith(q_word):
        return NameMatch(MatchKind.PREFIX, 0.5 + 0.5 * len(q_word) / len(c_word), True)
    if q_key and q_key == c_key:
        return NameMatch(MatchKind.PHONETIC, 1.0)
    if matcher.prefix and len(q_key) >= 3 and c_key.startswith(q_key):
        return NameMatch(MatchKind.PHONETIC, 0.5 + 0.4 * len(q_key) / len(c_key), True)
    similarity = max(fuzz.ratio(q.folded[qi], c.folded[ci]), fuzz.ratio(q_key, c_key))
    if len(q.skeletons[qi]) >= 2 and q.skeletons[qi] == c.skeletons[ci]:
        similarity = max(similarity, _SKELETON_SIMILARITY)
    if similarity >= matcher.min_fuzzy:
        return NameMatch(MatchKind.FUZZY, similarity / 100.0)
    return None


class NameMatcher:
    """Rank candidate names for a query: exact > prefix > phonetic > fuzzy.

    Every query word must match a different word of the candidate; the
    candidate's match kind is the weakest of its words' kinds and its score
    the mean of their scores. Comparison is case-insensitive; a name typed
    without å/ä/ö (``Ostrom``) for ``Öström`` is a fuzzy match with score 1.

    ``min_fuzzy`` is the rapidfuzz ``ratio`` (0-100) a word needs, on its
    folded spelling or on its phonetic key, to count as a fuzzy match; words
    with the same consonant skeleton count as 85. ``prefix=False`` turns off
    type-ahead completion (for whole-name lookups such as caller names).
    """

    def __init__(self, *, min_fuzzy: float = 80.0, prefix: bool = True) -> None:
        self.min_fuzzy = min_fuzzy
        self.prefix = prefix

    def match(self, query: str | NameForm, candidate: str | NameForm) -> NameMatch | None:
        """How ``candidate`` matches ``query``, or ``None`` when it does not."""
        q = query if isinstance(query, NameForm) else analyse_name(query)
        c = candidate if isinstance(candidate, NameForm) else analyse_name(candidate)
        if not q.words or len(q.words) > len(c.words):
            return None
        # Best word-to-word pairs first, each candidate word used once.
        pairs: list[tuple[NameMatch, int, int]] = []
        for qi in range(len(q.words)):
            for ci in range(len(c.words)):
                found = _word_match(q, qi, c, ci, self)
                if found is not None:
                    pairs.append((found, qi, ci))
        pairs.sort(key=lambda p: p[0], reverse=True)
        chosen: dict[int, NameMatch] = {}
        used: set[int] = set()
        for found, qi, ci in pairs:
            if qi not in chosen and ci not in used:
                chosen[qi] = found
                used.add(ci)
        if len(chosen) < len(q.words):
            return None
        matches = list(chosen.values())
        return NameMatch(
            kind=min(m.kind for m in matches),
            score=sum(m.score for m in matches) / len(matches),
            completion=any(m.completion for m in matches),
        )

    def rank(
        self,
        query: str,
        candidates: Iterable[_T],
        name: Callable[[_T], str | NameForm],
        limit: int | None = None,
    ) -> list[tuple[_T, NameMatch]]:
        """Candidates that match ``query``, best first (stable for ties)."""
        q = analyse_name(query)
        scored: list[tuple[_T, NameMatch]] = []
        for candidate in candidates:
            found = self.match(q, name(candidate))
            if found is not None:
                scored.append((candidate, found))
        scored.sort(key=lambda item: item[1], reverse=True)
        return scored if limit is None else scored[:limit]
