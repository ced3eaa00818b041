"""Swedish phonetic name keys and the name matcher (vaxla.directory.phonetic)."""

from __future__ import annotations

import csv
import itertools
import re
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vaxla.directory.phonetic import (
    MatchKind,
    NameMatch,
    NameMatcher,
    analyse_name,
    consonant_skeleton,
    fold_name,
    key_prefix_bounds,
    name_words,
    normalise_letters,
    phonetic_key,
    phonetic_keys,
)

DATA = Path(__file__).parent / "data" / "swedish_name_variants.csv"

# Every group of variants named in issue 4 ("Phonetic name search").
ISSUE_4_GROUPS = [
    ["Karlsson", "Carlsson", "Carlson"],
    ["Eriksson", "Ericsson", "Erixon"],
    ["Lindqvist", "Lindkvist", "Lindquist"],
    ["Sjöberg", "Schöberg"],
    ["Kjellberg", "Tjellberg"],
    ["Gustafsson", "Gustavsson"],
    ["Wikström", "Vikström"],
    ["Zetterström", "Setterström"],
]
ISSUE_4_PAIRS = [pair for group in ISSUE_4_GROUPS for pair in itertools.combinations(group, 2)]


def _load() -> tuple[list[list[str]], list[tuple[str, str]]]:
    groups: list[list[str]] = []
    different: list[tuple[str, str]] = []
    with DATA.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            names = row["names"].split("|")
            if row["relation"] == "same":
                groups.append(names)
            else:
                assert row["relation"] == "different", row
                assert len(names) == 2, row
                different.append((names[0], names[1]))
    return groups, different


GROUPS, DIFFERENT = _load()


# --- the evaluation set itself --------------------------------------------


def test_evaluation_set_is_large_and_consistent() -> None:
    assert len(GROUPS) >= 60
    names = [n for g in GROUPS for n in g]
    assert len(names) == len(set(names)), "a name may belong to one variant group only"
    assert all(len(g) >= 2 for g in GROUPS)
    for a, b in DIFFERENT:
        assert not any(a in g and b in g for g in GROUPS), (a, b)


def test_issue_4_variants_are_in_the_evaluation_set() -> None:
    for a, b in ISSUE_4_PAIRS:
        assert any(a in g and b in g for g in GROUPS), (a, b)


# --- required behaviour ----------------------------------------------------


@pytest.mark.parametrize(("a", "b"), ISSUE_4_PAIRS)
def test_issue_4_variants_have_equal_keys(a: str, b: str) -> None:
    assert phonetic_key(a) == phonetic_key(b) != ""


@pytest.mark.parametrize(("a", "b"), ISSUE_4_PAIRS)
def test_issue_4_variants_match_phonetically_or_better(a: str, b: str) -> None:
    matcher = NameMatcher()
    for query, candidate in ((a, b), (b, a)):
        found = matcher.match(query, candidate)
        assert found is not None
        assert found.kind >= MatchKind.PHONETIC
        assert not found.completion


@pytest.mark.parametrize(("a", "b"), DIFFERENT, ids=[f"{a}-{b}" for a, b in DIFFERENT])
def test_different_names_have_different_keys(a: str, b: str) -> None:
    assert phonetic_key(a) != phonetic_key(b)


def test_precision_and_recall_on_the_evaluation_set() -> None:
    """Regression guard for bench/phonetic_eval.py: key equality over all pairs."""
    names = list(dict.fromkeys([n for g in GROUPS for n in g] + [n for p in DIFFERENT for n in p]))
    group_of = {n: i for i, g in enumerate(GROUPS) for n in g}
    keys = {n: phonetic_key(n) for n in names}
    tp = fp = fn = 0
    for a, b in itertools.combinations(names, 2):
        same = a in group_of and group_of[a] == group_of.get(b)
        guess = keys[a] == keys[b]
        tp += same and guess
        fp += guess and not same
        fn += same and not guess
    assert tp / (tp + fp) >= 0.95
    assert tp / (tp + fn) >= 0.95


# --- key format and stability ------------------------------------------------

# The keys are stored in an indexed column: a change here means a reindex.
STORED_KEYS = {
    "Karlsson": "KARLSON",
    "Sjöberg": "XWBERG",
    "Kjellberg": "CELBERG",
    "Lindqvist": "LINDKVIST",
    "Wikström": "VIKSTRWM",
    "Gustafsson": "GUSTAVSON",
    "Bengtzon": "BEQSON",
    "Öberg": "WBERG",
    "Åberg": "OBERG",
    "Meijer": "MEJER",
    "Claes": "KLAS",
    "Mikael": "MIKAEL",
}


@pytest.mark.parametrize(("name", "key"), STORED_KEYS.items())
def test_keys_are_stable(name: str, key: str) -> None:
    assert phonetic_key(name) == key


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyzåäöéüæøABCDEFGHIJKLMNOPQRSTUVWXYZÅÄÖ -'"))
def test_latin_names_give_ascii_upper_case_keys(name: str) -> None:
    assert re.fullmatch(r"[A-Z]*", phonetic_key(name))


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyzåäöéüæø"))
def test_keys_ignore_case(name: str) -> None:
    assert phonetic_key(name) == phonetic_key(name.upper())


@given(st.text())
def test_any_text_is_handled_and_composition_does_not_matter(text: str) -> None:
    nfc, nfd = unicodedata.normalize("NFC", text), unicodedata.normalize("NFD", text)
    assert phonetic_key(nfc) == phonetic_key(nfd)
    assert phonetic_keys(nfc) == phonetic_keys(nfd)
    assert all(phonetic_keys(text))  # no empty keys


def test_decomposed_swedish_letters_equal_composed_ones() -> None:
    decomposed = "A\u030aNGSTRO\u0308M"  # Ångström written with combining marks
    assert decomposed != "ÅNGSTRÖM"
    assert normalise_letters(decomposed) == "ÅNGSTRÖM"
    assert phonetic_key(decomposed) == phonetic_key("Ångström")
    assert phonetic_key("a\u0308ngel") == phonetic_key("Ängel")


def test_nordic_and_foreign_letters_fold_to_swedish_sounds() -> None:
    assert phonetic_key("Bjørk") == phonetic_key("Björk")
    assert phonetic_key("Ærlig") == phonetic_key("Ärlig")
    assert phonetic_key("Müller") == phonetic_key("Myller")
    assert phonetic_key("André") == phonetic_key("Andre")
    # å, ä and ö are distinct Swedish letters, not a with a mark
    assert len({phonetic_key(n) for n in ("Åberg", "Öberg", "Aberg")}) == 3


@pytest.mark.parametrize("text", ["", "   ", "123", "--", "'", "\u0308"])
def test_input_without_letters_gives_no_key(text: str) -> None:
    assert phonetic_key(text) == ""
    assert phonetic_keys(text) == []
    assert analyse_name(text).words == ()


def test_non_latin_names_pass_through_upper_cased() -> None:
    assert phonetic_key("Иван") == "ИВАН"
    assert phonetic_key("иван") == phonetic_key("ИВАН")


# --- full names ---------------------------------------------------------------


def test_full_names_give_one_key_per_word() -> None:
    assert phonetic_keys("Anna Karlsson") == ["ANA", "KARLSON"]
    assert phonetic_keys("  Anna   Karlsson ") == ["ANA", "KARLSON"]


def test_double_barrel_names_are_split() -> None:
    assert phonetic_keys("Anna Peterson-Berger") == ["ANA", "PETERSON", "BERGER"]
    assert phonetic_keys("Anna-Karin Svensson Kråik") == ["ANA", "KARIN", "SVENSON", "KROJK"]


def test_particles_are_set_aside_before_another_word() -> None:
    assert phonetic_keys("Max von Sydow") == phonetic_keys("Max Sydow")
    assert phonetic_keys("Ebba Hermansson af Klint") == phonetic_keys("Ebba Hermansson Klint")
    assert name_words("Jacob De la Gardie") == ["Jacob", "Gardie"]
    # a particle with nothing after it is the name itself
    assert phonetic_keys("De") == ["DE"]
    assert phonetic_keys("Anna Af") == ["ANA", "AV"]


def test_fold_name_is_lower_case_ascii() -> None:
    assert fold_name("Öström") == "ostrom"
    assert fold_name("Åsa-Britt") == "asabritt"
    assert fold_name("Bjørn") == "bjorn"


def test_key_prefix_bounds_select_exactly_the_keys_with_that_prefix() -> None:
    keys = sorted({phonetic_key(n) for g in GROUPS for n in g})
    low, high = key_prefix_bounds("KAR")
    assert [k for k in keys if low <= k < high] == [k for k in keys if k.startswith("KAR")]
    assert any(k.startswith("KAR") for k in keys)
    with pytest.raises(ValueError):
        key_prefix_bounds("")


def test_consonant_skeleton_drops_vowel_classes() -> None:
    assert consonant_skeleton(phonetic_key("Muhammad")) == "MHMD"
    assert consonant_skeleton(phonetic_key("Öberg")) == "BRG"


# --- the matcher ---------------------------------------------------------------


def test_match_kinds_rank_exact_prefix_phonetic_fuzzy() -> None:
    matcher = NameMatcher()
    people = ["Eva Karlström", "Anna Carlsson", "Lars Karlsson", "Karl Larsson", "Per Karlsson"]
    ranked = matcher.rank("karlsson", people, name=lambda p: p)
    assert [(p, m.kind) for p, m in ranked] == [
        ("Lars Karlsson", MatchKind.EXACT),
        ("Per Karlsson", MatchKind.EXACT),
        ("Anna Carlsson", MatchKind.PHONETIC),
        ("Karl Larsson", MatchKind.FUZZY),
    ]
    prefix = matcher.match("Karl", "Eva Karlström")
    assert prefix is not None and prefix.kind is MatchKind.PREFIX and prefix.completion


def test_match_order_is_kind_first_then_score() -> None:
    assert NameMatch(MatchKind.PREFIX, 0.51) > NameMatch(MatchKind.PHONETIC, 1.0)
    assert NameMatch(MatchKind.FUZZY, 0.9) > NameMatch(MatchKind.FUZZY, 0.8)
    longer = NameMatcher().match("Karls", "Karlsson")
    shorter = NameMatcher().match("Ka", "Karlsson")
    assert longer is not None and shorter is not None and longer > shorter


def test_every_query_word_must_match_a_different_candidate_word() -> None:
    matcher = NameMatcher()
    both = matcher.match("anna carlson", "Anna Karlsson")
    assert both == NameMatch(MatchKind.PHONETIC, 1.0)
    assert matcher.match("Anna Karlsson", "Anna Nilsson") is None
    assert matcher.match("Anna Anna", "Anna Karlsson") is None
    assert matcher.match("", "Anna Karlsson") is None
    assert matcher.match("Anna", "") is None


def test_phonetic_type_ahead_is_a_completion() -> None:
    found = NameMatcher().match("Sjöb", "Ulla Schöberg")
    assert found is not None
    assert found.kind is MatchKind.PHONETIC and found.completion
    assert NameMatcher(prefix=False).match("Sjöb", "Ulla Schöberg") is None


def test_fuzzy_catches_names_typed_without_swedish_letters_and_typos() -> None:
    matcher = NameMatcher()
    folded = matcher.match("Ostrom", "Öström")
    assert folded == NameMatch(MatchKind.FUZZY, 1.0)
    typo = matcher.match("Karlssno", "Karlsson")
    assert typo is not None and typo.kind is MatchKind.FUZZY
    transliteration = matcher.match("Mohammed", "Muhammad")
    assert transliteration is not None and transliteration.kind is MatchKind.FUZZY
    assert matcher.match("Berg", "Nilsson") is None


def test_rank_accepts_prepared_names_and_a_limit() -> None:
    prepared = {n: analyse_name(n) for n in ("Sjöberg", "Schöberg", "Sjögren", "Berg")}
    ranked = NameMatcher().rank("Schöberg", prepared, name=prepared.__getitem__, limit=2)
    assert [n for n, _ in ranked] == ["Schöberg", "Sjöberg"]
