"""Search tokens and phonetic keys of a person (pure)."""

from __future__ import annotations

from vaxla.directory.indexing import fold, name_keys, prefix_bounds, search_tokens, tokens
from vaxla.directory.records import PersonRecord, normalise_number


def test_fold_and_tokens() -> None:
    assert fold("Öström-Åberg") == "ostrom-aberg"
    assert tokens("Anna.Öberg@Växjö.se") == ["anna.oberg@vaxjo.se", "anna", "oberg", "vaxjo", "se"]
    assert tokens("070-123 45 67")[-1] == "0701234567"
    assert tokens("Kultur- och fritidsförvaltningen") == ["kultur", "och", "fritidsforvaltningen"]


def test_numbers_are_normalised_and_indexed_both_ways() -> None:
    assert normalise_number("mobile", "070-123 45 67") == "+46701234567"
    assert normalise_number("direct", "0046 470 41000") == "+4647041000"
    assert normalise_number("extension", "12 34") == "1234"
    r = PersonRecord(
        first_name="Åsa",
        last_name="Öberg",
        phones=[{"kind": "mobile", "number": "0701234567"}],  # type: ignore[list-item]
    ).normalised()
    rows = search_tokens(r)
    assert ("mobile", "46701234567") in rows and ("mobile", "0701234567") in rows


def test_custom_fields_indexed_only_when_searchable() -> None:
    r = PersonRecord(first_name="A", last_name="B", custom={"sprak": "Finska", "lon": "42"})
    rows = search_tokens(r, ["Växjö kommun"], {"sprak": True, "lon": False})
    assert ("custom.sprak", "finska") in rows
    assert not any(f == "custom.lon" for f, _ in rows)
    assert ("units", "vaxjo") in rows


def test_name_keys_include_phonetic_key_and_skeleton() -> None:
    keys = name_keys("Carl", "Lindqvist")
    assert ("first_name", "p", "KARL") in keys
    assert ("last_name", "p", "LINDKVIST") in keys
    assert ("last_name", "s", "LNDKVST") in keys


def test_prefix_bounds() -> None:
    low, high = prefix_bounds("karl")
    assert low <= "karlsson" < high and not (low <= "karm" < high)
