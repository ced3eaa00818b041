"""Search on SQLite and PostgreSQL: phonetic variants, ranking, filters, custom fields."""

from __future__ import annotations

from typing import Any

import pytest

from tests.directory.conftest import ADMIN, EMPLOYEE, OPERATOR, Directory
from vaxla.directory.admin import DirectoryAdmin
from vaxla.directory.records import PersonRecord
from vaxla.directory.search import SearchQuery


@pytest.fixture(params=["memory", "sql"])
def search_source(request: pytest.FixtureRequest) -> str:
    """Every search test runs on the in-memory index and on SQL: the same answers."""
    return str(request.param)


PEOPLE = [
    (
        "Anna",
        "Karlsson",
        "1001",
        "Växjö kommun/Socialförvaltningen/IFO",
        "B101",
        ["Försörjningsstöd"],
    ),
    ("Bo", "Carlsson", "1002", "Växjö kommun/Socialförvaltningen/Äldreomsorg", "B102", []),
    ("Cecilia", "Carlson", "1003", "Växjö kommun/Kultur", "C1", ["Bibliotek"]),
    ("David", "Karlström", "1004", "Växjö kommun/Kultur", "C2", []),
    ("Eva", "Eriksson", "1005", "Växjö kommun/Socialförvaltningen/IFO", "B103", []),
    ("Fredrik", "Ericsson", "1006", "Växjö kommun/Tekniska", "T1", ["Snöröjning"]),
    ("Gun", "Erixon", "1007", "Växjö kommun/Tekniska", "T2", []),
    ("Hans", "Lindqvist", "1008", "Växjö kommun/Tekniska", "T3", []),
    ("Ida", "Lindkvist", "1009", "Växjö kommun/Kultur", "C3", []),
    ("Jan", "Sjöberg", "1010", "Växjö kommun/Kultur", "C4", []),
    ("Karin", "Kjellberg", "1011", "Växjö kommun/Kultur", "C5", []),
    ("Lars", "Gustafsson", "1012", "Växjö kommun/Tekniska", "T4", []),
    ("Maria", "Wikström", "1013", "Växjö kommun/Tekniska", "T5", []),
    ("Nils", "Zetterström", "1014", "Växjö kommun/Tekniska", "T6", []),
    ("Mohammed", "Ali", "1015", "Växjö kommun/Socialförvaltningen/IFO", "B104", []),
    ("Karl", "Berg", "1016", "Växjö kommun/Tekniska", "T7", []),
    ("Karla", "Borg", "1017", "Växjö kommun/Tekniska", "T8", []),
]


@pytest.fixture
async def loaded(directory: Directory) -> dict[str, int]:
    admin = DirectoryAdmin(directory.service)
    await admin.create_field(
        {
            "key": "sprak",
            "label_sv": "Språk",
            "label_en": "Languages",
            "type": "text",
            "choices": [],
            "searchable": True,
            "position": 1,
            "view_level": 1,
            "edit_level": 3,
        },
        ADMIN,
    )
    ids: dict[str, int] = {}
    for first, last, ext, unit, room, tasks in PEOPLE:
        custom: dict[str, Any] = {"sprak": "finska arabiska"} if last == "Ali" else {}
        view = await directory.service.create(
            PersonRecord(
                first_name=first,
                last_name=last,
                phones=[{"kind": "extension", "number": ext}],  # type: ignore[list-item]
                units=[unit],
                room=room,
                tasks=tasks,
                custom=custom,
            ),
            ADMIN,
        )
        ids[last] = view["id"]
    return ids


async def names(d: Directory, **query: Any) -> list[str]:
    found = await d.service.search(SearchQuery(**query), OPERATOR)
    return [i["last_name"] for i in found["items"]]


VARIANTS = [
    ("Carlsson", {"Karlsson", "Carlsson", "Carlson"}),
    ("Ericsson", {"Eriksson", "Ericsson", "Erixon"}),
    ("Lindquist", {"Lindqvist", "Lindkvist"}),
    ("Schöberg", {"Sjöberg"}),
    ("Tjellberg", {"Kjellberg"}),
    ("Gustavsson", {"Gustafsson"}),
    ("Vikström", {"Wikström"}),
    ("Setterström", {"Zetterström"}),
]


async def test_phonetic_variants(directory: Directory, loaded: dict[str, int]) -> None:
    for typed, expected in VARIANTS:
        assert set(await names(directory, text=typed)) >= expected, typed
        assert set(await names(directory, last_name=typed)) >= expected, typed


async def test_ranking_exact_prefix_phonetic_fuzzy(
    directory: Directory, loaded: dict[str, int]
) -> None:
    found = await directory.service.search(SearchQuery(text="Karlsson"), OPERATOR)
    kinds = [(i["last_name"], i["match"]) for i in found["items"]]
    assert kinds[0] == ("Karlsson", "exact")
    assert ("Carlsson", "phonetic") in kinds
    order = [k for _, k in kinds]
    rank = {"exact": 4, "prefix": 3, "phonetic": 2, "fuzzy": 1, "field": 0}
    assert [rank[k] for k in order] == sorted((rank[k] for k in order), reverse=True)
    typeahead = await directory.service.search(SearchQuery(text="Karl"), OPERATOR)
    first = [(i["last_name"], i["match"]) for i in typeahead["items"]][:3]
    assert first[0] == ("Berg", "exact")  # Karl Berg: the first name is exactly "Karl"
    assert {n for n, _ in first[1:]} == {"Borg", "Karlsson"}  # Karla, Karlsson: prefixes
    fuzzy = await directory.service.search(SearchQuery(text="Muhammad"), OPERATOR)
    assert [(i["last_name"], i["match"]) for i in fuzzy["items"]] == [("Ali", "fuzzy")]


async def test_berg_is_not_borg(directory: Directory, loaded: dict[str, int]) -> None:
    found = await directory.service.search(SearchQuery(last_name="Berg"), OPERATOR)
    # Same consonants: Borg is only a fuzzy match, after the exact one, never phonetic.
    assert [(i["last_name"], i["match"]) for i in found["items"]] == [
        ("Berg", "exact"),
        ("Borg", "fuzzy"),
    ]


async def test_first_and_last_name_together(directory: Directory, loaded: dict[str, int]) -> None:
    assert await names(directory, text="eva eriksson") == ["Eriksson"]
    assert await names(directory, first_name="Fredrik", last_name="Eriksson") == ["Ericsson"]


async def test_unit_subtree_restricts_search(directory: Directory, loaded: dict[str, int]) -> None:
    units = await DirectoryAdmin(directory.service).units()
    social = next(u["id"] for u in units if u["path"] == "Växjö kommun/Socialförvaltningen")
    assert set(await names(directory, text="carlsson", unit_id=social)) == {"Karlsson", "Carlsson"}
    listed = await names(directory, unit_id=social)
    assert set(listed) == {"Karlsson", "Carlsson", "Eriksson", "Ali"}
    assert set(await names(directory, text="socialförvaltningen")) == set(listed)


async def test_filters_and_free_text_over_every_field(
    directory: Directory, loaded: dict[str, int]
) -> None:
    assert await names(directory, extension="1006") == ["Ericsson"]
    assert (
        await names(directory, extension="101")
        == ["Sjöberg", "Kjellberg", "Gustafsson", "Wikström", "Zetterström", "Ali", "Berg", "Borg"]
        or len(await names(directory, extension="101")) == 8
    )
    assert await names(directory, room="t3") == ["Lindqvist"]
    assert await names(directory, task="snöröjning") == ["Ericsson"]
    assert await names(directory, text="snöröjning") == ["Ericsson"]
    assert await names(directory, text="bibliotek carlson") == ["Carlson"]
    assert await names(directory, text="arabiska") == ["Ali"]  # custom field
    assert await names(directory, text="1008") == ["Lindqvist"]
    assert await names(directory, text="nobody-like-this") == []


async def test_custom_field_hidden_from_public_level(
    directory: Directory, loaded: dict[str, int]
) -> None:
    admin = DirectoryAdmin(directory.service)
    await admin.update_field("sprak", {"view_level": 2}, ADMIN)
    public = await directory.service.search(SearchQuery(text="arabiska"), EMPLOYEE)
    assert public["items"] == []
    person = await directory.service.get(loaded["Ali"], EMPLOYEE)
    assert person["custom"] == {}
    person = await directory.service.get(loaded["Ali"], OPERATOR)
    assert person["custom"] == {"sprak": "finska arabiska"}


async def test_unit_rename_is_searchable(directory: Directory, loaded: dict[str, int]) -> None:
    admin = DirectoryAdmin(directory.service)
    kultur = next(u["id"] for u in await admin.units() if u["path"] == "Växjö kommun/Kultur")
    await admin.rename_unit(kultur, "Kultur och fritid", ADMIN)
    assert "Carlson" in await names(directory, text="fritid")
    person = await directory.service.get(loaded["Carlson"], OPERATOR)
    assert person["units"] == ["Växjö kommun/Kultur och fritid"]


async def test_unselective_lookups_are_intersected_completely(
    directory: Directory, loaded: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    import vaxla.directory.lookups as lookups

    monkeypatch.setattr(lookups, "CAP", 1)  # every lookup now counts as unselective
    units = await DirectoryAdmin(directory.service).units()
    social = next(u["id"] for u in units if u["path"] == "Växjö kommun/Socialförvaltningen")
    found = await directory.service.search(
        SearchQuery(last_name="Carlsson", unit_id=social), OPERATOR
    )
    assert {i["last_name"] for i in found["items"]} == {"Karlsson", "Carlsson"}
    assert found["truncated"] is True  # more than CAP: flagged
    found = await directory.service.search(SearchQuery(text="eriksson eva"), OPERATOR)
    assert [i["last_name"] for i in found["items"]] == ["Eriksson"]


async def test_full_name_fast_path_returns_only_exact_matches(
    directory: Directory, loaded: dict[str, int]
) -> None:
    found = await directory.service.search(SearchQuery(text="Karlsson", limit=1), OPERATOR)
    assert [(i["last_name"], i["match"]) for i in found["items"]] == [("Karlsson", "exact")]
    found = await directory.service.search(SearchQuery(text="eriksson eva", limit=1), OPERATOR)
    assert [(i["first_name"], i["match"]) for i in found["items"]] == [("Eva", "exact")]
    # Not enough exact matches: the full search ranks the variants after it.
    found = await directory.service.search(SearchQuery(text="Karlsson", limit=3), OPERATOR)
    assert found["items"][0]["match"] == "exact"
    assert len(found["items"]) == 3
