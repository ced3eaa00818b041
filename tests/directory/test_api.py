"""The directory API through a real ``vaxla serve``: access levels, search, diversion."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.server import VaxlaProcess


class Client:
    """Requests with a token of one role."""

    def __init__(self, node: VaxlaProcess, role: str, name: str | None = None) -> None:
        self.node = node
        name = name or role
        self.token = node.cli("token", "create", "--name", name, "--role", role).strip()

    def __call__(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.request(
            method, f"{self.node.base_url}{path}", headers=headers, timeout=10, **kwargs
        )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VaxlaProcess]:
    """One node for the module (starting one takes a second or two)."""
    proc = VaxlaProcess(tmp_path_factory.mktemp("node"))
    try:
        proc.start()
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def clients(served: VaxlaProcess) -> dict[str, Client]:
    return {
        role: Client(served, role)
        for role in ("employee", "operator", "directory-editor", "directory-admin")
    } | {"anna": Client(served, "employee", "anna.k")}


@pytest.fixture(scope="module")
def people(clients: dict[str, Client]) -> dict[str, int]:
    admin = clients["directory-admin"]
    entries = [
        {
            "first_name": "Anna",
            "last_name": "Karlsson",
            "username": "anna.k",
            "phones": [
                {"kind": "extension", "number": "2001"},
                {"kind": "mobile", "number": "070-111 22 33"},
            ],
            "email": "anna.karlsson@vaxjo.se",
            "units": ["Växjö kommun/Socialförvaltningen/IFO"],
            "tasks": ["Försörjningsstöd"],
            "keywords": ["hemlig-nyckel"],
            "room": "B214",
            "groups": ["Mottagningen"],
        },
        {
            "first_name": "Erik",
            "last_name": "Carlsson",
            "phones": [{"kind": "extension", "number": "2001"}],
            "units": ["Växjö kommun/Socialförvaltningen/IFO"],
            "groups": ["Mottagningen"],
        },
        {
            "first_name": "Åke",
            "last_name": "Sjöberg",
            "phones": [{"kind": "extension", "number": "3001"}],
            "units": ["Växjö kommun/Kultur- och fritidsförvaltningen"],
            "tasks": ["Bibliotek"],
        },
    ]
    ids = {}
    for e in entries:
        r = admin("POST", "/api/v1/directory/people", json=e)
        assert r.status_code == 201, r.text
        ids[e["last_name"]] = r.json()["id"]
    return ids


def test_openapi_documents_the_directory(served: VaxlaProcess) -> None:
    doc = httpx.get(f"{served.base_url}/api/openapi.json", timeout=10).json()
    paths = doc["paths"]
    for path in (
        "/api/v1/directory/people",
        "/api/v1/directory/people/{person_id}",
        "/api/v1/diversions/{person_id}",
        "/api/v1/diversions/groups/{group_id}",
        "/api/v1/directory/import",
        "/api/v1/directory/export",
        "/api/v1/directory/extensions/{number}/status",
    ):
        assert path in paths, path
    assert "PersonOut" in doc["components"]["schemas"]


def test_needs_a_token(served: VaxlaProcess) -> None:
    r = httpx.get(f"{served.base_url}/api/v1/directory/people", timeout=10)
    assert r.status_code == 401 and r.json()["error_id"] == "unauthorized"


def test_public_level_sees_public_fields_only(
    clients: dict[str, Client], people: dict[str, int]
) -> None:
    r = clients["employee"]("GET", f"/api/v1/directory/people/{people['Karlsson']}")
    assert r.status_code == 200
    body = r.json()
    assert body["first_name"] == "Anna" and body["room"] == "B214"
    assert [p["kind"] for p in body["phones"]] == ["extension"]
    for hidden in ("keywords", "username", "groups", "external_id"):
        assert hidden not in body, hidden


def test_all_fields_level_sees_everything(
    clients: dict[str, Client], people: dict[str, int]
) -> None:
    body = clients["operator"]("GET", f"/api/v1/directory/people/{people['Karlsson']}").json()
    assert {p["kind"] for p in body["phones"]} == {"extension", "mobile"}
    assert body["keywords"] == ["hemlig-nyckel"] and body["username"] == "anna.k"


def test_hidden_fields_cannot_be_searched(
    clients: dict[str, Client], people: dict[str, int]
) -> None:
    as_employee = clients["employee"]("GET", "/api/v1/directory/people", params={"q": "hemlig"})
    assert as_employee.json()["items"] == []
    as_operator = clients["operator"]("GET", "/api/v1/directory/people", params={"q": "hemlig"})
    assert [i["id"] for i in as_operator.json()["items"]] == [people["Karlsson"]]
    by_mobile = clients["employee"](
        "GET", "/api/v1/directory/people", params={"mobile": "0701112233"}
    )
    assert by_mobile.json()["items"] == []


def test_edit_level_per_field(clients: dict[str, Client], people: dict[str, int]) -> None:
    path = f"/api/v1/directory/people/{people['Sjöberg']}"
    r = clients["operator"]("PATCH", path, json={"room": "A1"})
    assert r.status_code == 403 and r.json()["error_id"] == "field-not-editable"
    r = clients["employee"](
        "POST", "/api/v1/directory/people", json={"first_name": "X", "last_name": "Y"}
    )
    assert r.status_code == 403 and r.json()["error_id"] == "directory-forbidden"
    r = clients["directory-editor"]("PATCH", path, json={"room": "A1"})
    assert r.status_code == 200 and r.json()["room"] == "A1"
    r = clients["directory-editor"]("PATCH", path, json={"external_id": "x"})
    assert r.status_code == 403 and r.json()["details"]["field"] == "external_id"
    r = clients["directory-admin"]("PATCH", path, json={"external_id": "sjoberg-1"})
    assert r.status_code == 200 and r.json()["external_id"] == "sjoberg-1"


def test_admin_changes_a_fields_access_level(
    clients: dict[str, Client], people: dict[str, int]
) -> None:
    path = f"/api/v1/directory/people/{people['Karlsson']}"
    r = clients["directory-editor"](
        "PUT", "/api/v1/directory/access/room", json={"view_level": 2, "edit_level": 3}
    )
    assert r.status_code == 403
    r = clients["directory-admin"](
        "PUT", "/api/v1/directory/access/room", json={"view_level": 2, "edit_level": 3}
    )
    assert r.status_code == 200
    try:
        assert "room" not in clients["employee"]("GET", path).json()
        assert clients["operator"]("GET", path).json()["room"] == "B214"
    finally:
        clients["directory-admin"](
            "PUT", "/api/v1/directory/access/room", json={"view_level": 1, "edit_level": 3}
        )
    assert clients["employee"]("GET", path).json()["room"] == "B214"


def test_phonetic_search_and_ranking(clients: dict[str, Client], people: dict[str, int]) -> None:
    r = clients["employee"]("GET", "/api/v1/directory/people", params={"q": "karlsson"})
    items = r.json()["items"]
    assert [i["last_name"] for i in items] == ["Karlsson", "Carlsson"]
    assert [i["match"] for i in items] == ["exact", "phonetic"]
    r = clients["employee"]("GET", "/api/v1/directory/people", params={"q": "schöberg"})
    assert [i["last_name"] for i in r.json()["items"]] == ["Sjöberg"]


def test_structured_filters(clients: dict[str, Client], people: dict[str, int]) -> None:
    units = clients["employee"]("GET", "/api/v1/directory/units").json()
    social = next(u["id"] for u in units if u["path"] == "Växjö kommun/Socialförvaltningen")
    get = clients["operator"]
    found = get("GET", "/api/v1/directory/people", params={"unit": social}).json()["items"]
    assert {i["id"] for i in found} == {people["Karlsson"], people["Carlsson"]}
    found = get("GET", "/api/v1/directory/people", params={"extension": "3001"}).json()["items"]
    assert [i["id"] for i in found] == [people["Sjöberg"]]
    found = get(
        "GET", "/api/v1/directory/people", params={"task": "försörjningsstöd", "room": "b214"}
    ).json()["items"]
    assert [i["id"] for i in found] == [people["Karlsson"]]
    found = get("GET", "/api/v1/directory/people", params={"email": "anna.karlsson@"}).json()
    assert [i["id"] for i in found["items"]] == [people["Karlsson"]]
    found = get("GET", "/api/v1/directory/people", params={"mobile": "+46 70 111"}).json()
    assert [i["id"] for i in found["items"]] == [people["Karlsson"]]
    found = get(
        "GET", "/api/v1/directory/people", params={"first_name": "anna", "extension": "2001"}
    )
    assert [i["id"] for i in found.json()["items"]] == [people["Karlsson"]]
    found = get("GET", "/api/v1/directory/people", params={"q": "socialförvaltningen erik"}).json()
    assert [i["id"] for i in found["items"]] == [people["Carlsson"]]


def test_diversion_for_self_and_by_operator(
    clients: dict[str, Client], people: dict[str, int]
) -> None:
    anna, erik = people["Karlsson"], people["Carlsson"]
    body = {"reason": "lunch", "return_at": "2030-01-01T13:00:00+01:00", "message": "Äter"}
    r = clients["anna"]("PUT", f"/api/v1/diversions/{anna}", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["diversion"]["label_sv"] == "Lunch"
    r = clients["anna"]("PUT", f"/api/v1/diversions/{erik}", json=body)
    assert r.status_code == 403 and r.json()["error_id"] == "directory-forbidden"
    r = clients["operator"]("PUT", f"/api/v1/diversions/{erik}", json={"reason": "meeting"})
    assert r.status_code == 200
    r = clients["operator"]("PUT", f"/api/v1/diversions/{erik}", json={"reason": "nope"})
    assert r.status_code == 404 and r.json()["error_id"] == "diversion-reason-not-found"
    found = clients["employee"]("GET", "/api/v1/directory/people", params={"q": "anna"}).json()
    shown = found["items"][0]["diversion"]
    assert shown["reason"] == "lunch" and "tillbaka" in shown["summary_sv"]
    assert found["items"][0]["phone_status"] == [{"extension": "2001", "registered": False}]
    assert clients["anna"]("DELETE", f"/api/v1/diversions/{anna}").json()["diversion"] is None
    assert clients["operator"]("DELETE", f"/api/v1/diversions/{erik}").status_code == 200
    history = clients["operator"]("GET", f"/api/v1/diversions/{anna}/history").json()
    assert history[0]["reason"] == "lunch" and history[0]["cleared_by"] == "anna.k"


def test_shared_extension_stays_open_when_one_is_diverted(
    clients: dict[str, Client], people: dict[str, int]
) -> None:
    anna = people["Karlsson"]
    op = clients["operator"]
    assert op("PUT", f"/api/v1/diversions/{anna}", json={"reason": "course"}).status_code == 200
    try:
        status = op("GET", "/api/v1/directory/extensions/2001/status").json()
        assert status["closed"] is False
        by_id = {p["id"]: p["diversion"] for p in status["people"]}
        assert by_id[anna]["reason"] == "course" and by_id[people["Carlsson"]] is None
    finally:
        op("DELETE", f"/api/v1/diversions/{anna}")


def test_group_diversion(clients: dict[str, Client], people: dict[str, int]) -> None:
    op = clients["operator"]
    groups = op("GET", "/api/v1/directory/groups").json()
    gid = next(g["id"] for g in groups if g["name"] == "Mottagningen")
    r = clients["employee"]("PUT", f"/api/v1/diversions/groups/{gid}", json={"reason": "meeting"})
    assert r.status_code == 403
    r = op("PUT", f"/api/v1/diversions/groups/{gid}", json={"reason": "meeting", "message": "APT"})
    assert r.json()["person_ids"] == sorted([people["Karlsson"], people["Carlsson"]])
    status = op("GET", "/api/v1/directory/extensions/2001/status").json()
    assert status["closed"] is True
    assert op("DELETE", f"/api/v1/diversions/groups/{gid}").status_code == 200
    assert op("GET", "/api/v1/directory/extensions/2001/status").json()["closed"] is False


def test_messages_left_for_a_person(clients: dict[str, Client], people: dict[str, int]) -> None:
    sjoberg = people["Sjöberg"]
    r = clients["operator"](
        "POST",
        f"/api/v1/directory/people/{sjoberg}/messages",
        json={"text": "Ring Kalle om bokbussen", "caller_number": "0470-12345"},
    )
    assert r.status_code == 201 and r.json()["status"] == "pending"
    listed = clients["operator"]("GET", f"/api/v1/directory/people/{sjoberg}/messages").json()
    assert [m["text"] for m in listed] == ["Ring Kalle om bokbussen"]
    assert (
        clients["employee"]("GET", f"/api/v1/directory/people/{sjoberg}/messages").status_code
        == 403
    )


def test_audit_log_through_the_api(clients: dict[str, Client], people: dict[str, int]) -> None:
    r = clients["operator"]("GET", "/api/v1/directory/audit")
    assert r.status_code == 403
    entries = clients["directory-admin"](
        "GET",
        "/api/v1/directory/audit",
        params={"entity": "person", "entity_id": people["Sjöberg"]},
    ).json()
    actions = [e["action"] for e in entries]
    assert "create" in actions and "update" in actions
    assert all(e["actor"] for e in entries)


def test_not_found_error_ids(clients: dict[str, Client]) -> None:
    r = clients["operator"]("GET", "/api/v1/directory/people/999999")
    assert r.status_code == 404 and r.json()["error_id"] == "person-not-found"
    r = clients["operator"]("PUT", "/api/v1/diversions/999999", json={"reason": "lunch"})
    assert r.status_code == 404 and r.json()["error_id"] == "person-not-found"


def test_times_need_a_time_zone(clients: dict[str, Client], people: dict[str, int]) -> None:
    r = clients["operator"](
        "PUT",
        f"/api/v1/diversions/{people['Sjöberg']}",
        json={"reason": "lunch", "return_at": "2030-01-01T13:00:00"},
    )
    assert r.status_code == 422 and r.json()["error_id"] == "invalid-input"


def test_weekly_rule_through_the_api(clients: dict[str, Client], people: dict[str, int]) -> None:
    body = {
        "person_id": people["Sjöberg"],
        "kind": "absence",
        "weekdays": [1, 2, 3, 4, 5, 6, 7],
        "start": "00:00",
        "end": "23:59:59",
        "reason": "course",
    }
    r = clients["employee"]("POST", "/api/v1/diversions/rules", json=body)
    assert r.status_code == 403
    r = clients["operator"]("POST", "/api/v1/diversions/rules", json=body)
    assert r.status_code == 201, r.text
    shown = clients["operator"]("GET", f"/api/v1/diversions/{people['Sjöberg']}").json()
    assert shown["diversion"]["source"] == "schedule" and shown["diversion"]["reason"] == "course"
    assert (
        clients["operator"]("DELETE", f"/api/v1/diversions/rules/{r.json()['id']}").status_code
        == 204
    )
    assert (
        clients["operator"]("GET", f"/api/v1/diversions/{people['Sjöberg']}").json()["diversion"]
        is None
    )


def test_import_and_export_through_the_api(clients: dict[str, Client]) -> None:
    csv = "external_id,first_name,last_name,extension\napi-1,Örjan,Älg,7001\n"
    r = clients["directory-editor"](
        "POST", "/api/v1/directory/import", params={"format": "csv"}, content=csv
    )
    assert r.status_code == 403
    r = clients["directory-admin"](
        "POST", "/api/v1/directory/import", params={"format": "csv", "dry_run": "true"}, content=csv
    )
    assert r.json() == {
        "dry_run": True,
        "added": ["api-1"],
        "changed": {},
        "deactivated": [],
        "unchanged": 0,
    }
    r = clients["directory-admin"](
        "POST", "/api/v1/directory/import", params={"format": "csv"}, content=csv
    )
    assert r.json()["added"] == ["api-1"]
    xml = clients["directory-editor"]("GET", "/api/v1/directory/export", params={"format": "xml"})
    assert xml.headers["content-type"].startswith("application/xml")
    assert "<first-name>Örjan</first-name>" in xml.text
    r = clients["directory-admin"](
        "PUT",
        "/api/v1/directory/people/by-external-id/api-1",
        json={"first_name": "Örjan", "last_name": "Älg", "room": "Ö1"},
    )
    assert r.status_code == 200 and r.json()["room"] == "Ö1"
    bad = clients["directory-admin"](
        "POST", "/api/v1/directory/import", params={"format": "xml"}, content="<x"
    )
    assert bad.status_code == 422 and bad.json()["error_id"] == "invalid-import"


def test_reasons_name_their_desk_phone_number(clients: dict[str, Client]) -> None:
    """The number keyed in *23*<n># is listed with each active reason, in the same order."""
    from vaxla.directory.diversion import Reason, numbered_reasons

    admin = clients["directory-admin"]
    r = admin("PATCH", "/api/v1/diversions/reasons/course", json={"active": False})
    assert r.status_code == 200, r.text
    try:
        listed = clients["employee"]("GET", "/api/v1/diversions/reasons").json()
        active = [x for x in listed if x["active"]]
        assert [x["phone_number"] for x in active] == list(range(1, len(active) + 1))
        assert next(x for x in listed if x["code"] == "course")["phone_number"] is None
        assert active[0]["code"] == "lunch"
        # the phone codes number reasons by the same rule
        reasons = [
            Reason(i, x["code"], x["label_sv"], x["label_en"], x["position"], x["active"])
            for i, x in enumerate(listed)
        ]
        assert [r.code for r in numbered_reasons(reasons)] == [x["code"] for x in active]
    finally:
        admin("PATCH", "/api/v1/diversions/reasons/course", json={"active": True})
