"""Swedish numbers with en/ett (R97.10 "nummerpaket")."""

from __future__ import annotations

import pytest

from vaxla.media.numbers_sv import (
    count_phrase,
    digits_words,
    number_words,
    ordinal_words,
    queue_position,
)


@pytest.mark.parametrize(
    ("n", "neuter", "common"),
    [
        (0, "noll", "noll"),
        (1, "ett", "en"),
        (7, "sju", "sju"),
        (11, "elva", "elva"),
        (18, "arton", "arton"),
        (20, "tjugo", "tjugo"),
        (21, "tjugoett", "tjugoen"),
        (99, "nittionio", "nittionio"),
        (100, "ett hundra", "ett hundra"),
        (101, "ett hundra ett", "ett hundra en"),
        (1000, "ett tusen", "ett tusen"),
        (1001, "ett tusen ett", "ett tusen en"),
        (1049, "ett tusen fyrtionio", "ett tusen fyrtionio"),
        (2021, "två tusen tjugoett", "två tusen tjugoen"),
        (21000, "tjugoett tusen", "tjugoett tusen"),
        (1_000_000, "en miljon", "en miljon"),
        (2_000_001, "två miljoner ett", "två miljoner en"),
        (21_000_000, "tjugoen miljoner", "tjugoen miljoner"),
        (1_000_000_000, "en miljard", "en miljard"),
    ],
)
def test_cardinals(n: int, neuter: str, common: str) -> None:
    assert number_words(n) == neuter
    assert number_words(n, "common") == common


def test_en_and_ett_in_phrases() -> None:
    assert count_phrase(1, "handläggare", "handläggare", "common") == "en handläggare"
    assert count_phrase(1, "samtal", "samtal", "neuter") == "ett samtal"
    assert count_phrase(3, "minut", "minuter", "common") == "tre minuter"
    assert count_phrase(21, "minut", "minuter", "common") == "tjugoen minuter"
    assert queue_position(1) == "nummer ett"
    assert ordinal_words(1) == "första" and ordinal_words(3) == "tredje"
    assert number_words(-5) == "minus fem"


def test_digits() -> None:
    assert digits_words("1001") == "ett noll noll ett"
    assert digits_words("+46*#") == "plus fyra sex stjärna fyrkant"
    with pytest.raises(ValueError):
        digits_words("12a")
