"""Keypad directory search: Swedish keys and the prefix index (pure logic)."""

from __future__ import annotations

import pytest

from vaxla.directory.keypad_search import MAX_LISTED, KeypadIndex, Listing, keypad_digits


@pytest.mark.parametrize(
    ("name", "keys"),
    [
        ("Karlsson", "52757766"),
        ("Åsa Öberg", "27262374"),  # Å on 2, Ö on 6; the space is not keyed
        ("Ängström", "26478766"),
        ("Zoë", "963"),  # ë -> e
        ("Müller-Lüdenscheid", "68553758336724343"),  # hyphen dropped, ü -> u
        ("", ""),
    ],
)
def test_names_as_keyed_on_a_swedish_phone(name: str, keys: str) -> None:
    assert keypad_digits(name) == keys


def _people() -> list[Listing]:
    names = [
        ("Karin", "Lindqvist", "1001"),
        ("Lina", "Karlsson", "1002"),
        ("Carl", "Lindkvist", "1003"),
        ("Anna", "Lind", "1004"),
        ("Jens", "Kjellberg", "1005"),
        ("Åke", "Öberg", "1006"),
    ]
    return [Listing(i, f, last, ext) for i, (f, last, ext) in enumerate(names, 1)]


def _names(found: list[Listing]) -> list[str]:
    return [p.name for p in found]


def test_last_names_first_then_first_names_each_alphabetical() -> None:
    index = KeypadIndex(_people())
    found, more = index.find(keypad_digits("Lin"))
    assert not more
    # Lind, Lindkvist, Lindqvist by last name; Lina Karlsson by first name
    assert _names(found) == ["Anna Lind", "Carl Lindkvist", "Karin Lindqvist", "Lina Karlsson"]


def test_first_and_last_name_together() -> None:
    index = KeypadIndex(_people())
    found, _ = index.find(keypad_digits("CarlLindk"))
    assert _names(found) == ["Carl Lindkvist"]
    found, _ = index.find(keypad_digits("Åke Öb"))
    assert _names(found) == ["Åke Öberg"]


def test_a_person_is_listed_once_by_the_best_match() -> None:
    # "Lina" also starts "Lina Karlsson" keyed in full: still one listing
    found, _ = KeypadIndex(_people()).find(keypad_digits("Lina"))
    assert _names(found) == ["Lina Karlsson"]


def test_no_keys_or_no_match_finds_nobody() -> None:
    index = KeypadIndex(_people())
    assert index.find("") == ([], False)
    assert index.find("999") == ([], False)


def test_too_many_matches_ask_for_more_letters() -> None:
    many = [Listing(i, f"Per{i}", "Svensson", f"2{i:03d}") for i in range(MAX_LISTED + 1)]
    index = KeypadIndex([*many, Listing(99, "Ulla", "Svedberg", "2099")])
    assert index.find(keypad_digits("Sv")) == ([], True)
    assert index.find(keypad_digits("Svensson")) == ([], True)
    found, more = index.find(keypad_digits("Sved"))
    assert (_names(found), more) == (["Ulla Svedberg"], False)
    exactly, more = KeypadIndex(many[:MAX_LISTED]).find(keypad_digits("Sv"))
    assert (len(exactly), more) == (MAX_LISTED, False)
