"""People, units, custom fields and the audit log, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from tests.directory.conftest import ADMIN, EDITOR, EMPLOYEE, OPERATOR, Directory
from vaxla.directory import audit
from vaxla.directory.errors import DuplicateEntry, FieldNotEditable, NotAllowed
from vaxla.directory.records import PersonRecord


def åsa(**extra: Any) -> PersonRecord:
    data: dict[str, Any] = {
        "first_name": "Åsa",
        "last_name": "Lindqvist",
        "phones": [
            {"kind": "extension", "number": "4321"},
            {"kind": "mobile", "number": "070-123 45 67"},
        ],
        "email": "Asa.Lindqvist@Vaxjo.se",
        "titles": ["Socialsekreterare"],
        "tasks": ["Försörjningsstöd", "Bostadsfrågor"],
        "keywords": ["ekonomiskt bistånd"],
        "room": "B214",
        "location": "Stadshuset, Växjö",
        "units": ["Växjö kommun/Socialförvaltningen/IFO"],
        "groups": ["Mottagningen"],
        "external_id": "uid=asal",
        "username": "asal",
    }
    data.update(extra)
    return PersonRecord.model_validate(data)


async def test_create_normalises_and_loads_everything(directory: Directory) -> None:
    view = await directory.service.create(åsa(), ADMIN)
    assert view["phones"] == [
        {"kind": "extension", "number": "4321"},
        {"kind": "mobile", "number": "+46701234567"},
    ]
    assert view["email"] == "asa.lindqvist@vaxjo.se"
    assert view["units"] == ["Växjö kommun/Socialförvaltningen/IFO"]
    assert view["groups"] == ["Mottagningen"]
    assert view["tasks"] == ["Försörjningsstöd", "Bostadsfrågor"]
    again = await directory.service.get(view["id"], OPERATOR)
    assert again["room"] == "B214" and again["username"] == "asal"
    assert directory.bus.since(0)[-1].topic == "directory.person.changed"


async def test_public_level_hides_fields(directory: Directory) -> None:
    pid = (await directory.service.create(åsa(), ADMIN))["id"]
    public = await directory.service.get(pid, EMPLOYEE)
    assert "mobile" not in {p["kind"] for p in public["phones"]}
    assert "keywords" not in public and "username" not in public and "groups" not in public
    assert public["first_name"] == "Åsa" and public["room"] == "B214"
    full = await directory.service.get(pid, OPERATOR)
    assert "mobile" in {p["kind"] for p in full["phones"]} and full["keywords"]


async def test_edit_levels_per_field(directory: Directory) -> None:
    pid = (await directory.service.create(åsa(), ADMIN))["id"]
    with pytest.raises(NotAllowed):
        await directory.service.create(åsa(external_id="x2", username="u2"), OPERATOR)
    with pytest.raises(FieldNotEditable) as e:
        await directory.service.update(pid, {"room": "C1"}, OPERATOR)
    assert e.value.details["field"] == "room"
    with pytest.raises(FieldNotEditable):
        await directory.service.update(pid, {"external_id": "other"}, EDITOR)
    changed = await directory.service.update(pid, {"room": "C1"}, EDITOR)
    assert changed["room"] == "C1"
    admin = await directory.service.update(pid, {"external_id": "other"}, ADMIN)
    assert admin["external_id"] == "other"


async def test_every_change_is_audited_with_before_and_after(directory: Directory) -> None:
    pid = (await directory.service.create(åsa(), ADMIN))["id"]
    await directory.service.update(pid, {"room": "C1", "tasks": ["Bostadsfrågor"]}, EDITOR)
    async with directory.db.session() as s:
        rows = await audit.entries(s, "person", str(pid))
    assert [r.action for r in rows] == ["update", "create"]
    assert rows[0].actor == "redaktör"
    assert rows[0].before == {"room": "B214", "tasks": ["Försörjningsstöd", "Bostadsfrågor"]}
    assert rows[0].after == {"room": "C1", "tasks": ["Bostadsfrågor"]}


async def test_unique_external_id(directory: Directory) -> None:
    await directory.service.create(åsa(), ADMIN)
    with pytest.raises(DuplicateEntry):
        await directory.service.create(åsa(username="other"), ADMIN)


async def test_deactivated_people_are_kept_but_not_found(directory: Directory) -> None:
    from vaxla.directory.search import SearchQuery

    pid = (await directory.service.create(åsa(), ADMIN))["id"]
    await directory.service.deactivate(pid, EDITOR)
    assert (await directory.service.get(pid, OPERATOR))["active"] is False
    found = await directory.service.search(SearchQuery(text="Lindqvist"), OPERATOR)
    assert found["items"] == []
    found = await directory.service.search(
        SearchQuery(text="Lindqvist", include_inactive=True), OPERATOR
    )
    assert [i["id"] for i in found["items"]] == [pid]
