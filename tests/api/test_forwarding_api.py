"""Call forwarding over the REST API of a running node: who may set it, bad
input, audit, the live event, and the status views that show it (R65, R83)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from tests.support.server import VaxlaProcess
from tests.web.support import setup_node, sign_in

Node = tuple[VaxlaProcess, dict[str, int]]
FWD = "/api/v1/extensions/{}/forwarding"


@pytest.fixture(scope="module")
def fwd_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    proc = VaxlaProcess(tmp_path_factory.mktemp("fwd") / "node")
    try:
        proc.start()
        yield proc, setup_node(proc)
    finally:
        proc.stop()


def _rules(body: dict[str, Any]) -> list[tuple[str, str, bool]]:
    return [(r["kind"], r["target"], r["enabled"]) for r in body["rules"]]


def test_owner_sets_and_clears_own_forwarding(fwd_node: Node) -> None:
    node, _ = fwd_node
    karl = sign_in(node, "karl.eriksson")  # employee on 2010
    try:
        body = {
            "rules": [
                {"kind": "busy", "target": "070-111 22 33"},
                {"kind": "no-answer", "target": "2011"},
            ],
            "no_answer_seconds": 15,
        }
        r = karl.call("PUT", FWD.format("2010"), json=body)
        assert r.status_code == 200, r.text
        out = r.json()
        assert _rules(out) == [("busy", "+46701112233", True), ("no-answer", "2011", True)]
        assert out["rules"][0]["external"] is True and out["rules"][0]["routable"] is False
        assert out["rules"][1]["external"] is False and out["rules"][1]["routable"] is True
        assert out["no_answer_seconds"] == 15 and out["updated_by"] == "karl.eriksson"
        assert karl.http.get(FWD.format("2010")).json() == out
        # Someone else's extension: refused, whatever it is.
        r = karl.call("PUT", FWD.format("2011"), json=body)
        assert r.status_code == 403 and r.json()["error_id"] == "forbidden"
        assert karl.http.get(FWD.format("2011")).status_code == 403
        assert karl.call("DELETE", FWD.format("2010")).status_code == 204
        assert karl.http.get(FWD.format("2010")).json()["rules"] == []
    finally:
        karl.close()


def test_operators_and_admins_may_set_and_remove_others_supervisors_only_read(
    fwd_node: Node,
) -> None:
    node, _ = fwd_node
    op = sign_in(node, "telefonist")
    chef = sign_in(node, "chef")
    katalog = sign_in(node, "katalog")
    try:
        r = op.call("PUT", FWD.format("2011") + "/always", json={"target": "2012"})
        assert r.status_code == 200, r.text
        assert _rules(r.json()) == [("always", "2012", True)]
        assert chef.http.get(FWD.format("2011")).status_code == 200
        r = chef.call("DELETE", FWD.format("2011"))
        assert r.status_code == 403 and r.json()["error_id"] == "forbidden"
        assert katalog.http.get(FWD.format("2011")).status_code == 403
        # Switch off and on again; the target is kept (R65: see and remove).
        r = op.call("PUT", FWD.format("2011") + "/always", json={"enabled": False})
        assert _rules(r.json()) == [("always", "2012", False)]
        r = node.api("PUT", FWD.format("2011") + "/always", json={})  # admin token
        assert _rules(r.json()) == [("always", "2012", True)]
        r = op.call("DELETE", FWD.format("2011") + "/always")
        assert r.status_code == 200 and r.json()["rules"] == []
    finally:
        for c in (op, chef, katalog):
            c.close()
    audit = node.api("GET", "/api/v1/directory/audit?entity=extension&limit=100").json()
    actions = [(e["actor"], e["action"], e["entity_id"]) for e in audit]
    assert ("telefonist", "set-forwarding", "2011") in actions
    assert ("telefonist", "disable-forwarding", "2011") in actions
    assert ("telefonist", "clear-forwarding", "2011") in actions
    assert ("tests", "set-forwarding", "2011") in actions


@pytest.mark.parametrize(
    ("body", "status", "error_id"),
    [
        ({"rules": [{"kind": "always", "target": "2012"}]}, 400, "forwarding-to-self"),
        ({"rules": [{"kind": "always", "target": "4999"}]}, 422, "forwarding-target-unknown"),
        ({"rules": [{"kind": "always", "target": "ring mig"}]}, 422, "forwarding-target-invalid"),
        ({"rules": [{"kind": "sometimes", "target": "2011"}]}, 422, "invalid-input"),
        (
            {"rules": [{"kind": "busy", "target": "2011"}, {"kind": "busy", "target": "2010"}]},
            422,
            "invalid-input",
        ),
        ({"rules": [], "no_answer_seconds": 1}, 422, "invalid-input"),
        ({"rules": [], "no_answer_seconds": 3600}, 422, "invalid-input"),
        ({}, 422, "invalid-input"),
    ],
)
def test_bad_input_is_refused_with_an_error_id(
    fwd_node: Node, body: dict[str, Any], status: int, error_id: str
) -> None:
    node, _ = fwd_node
    r = node.api("PUT", FWD.format("2012"), json=body)
    assert (r.status_code, r.json()["error_id"]) == (status, error_id), r.text
    assert node.api("GET", FWD.format("2012")).json()["rules"] == []


def test_unknown_extensions_and_rules(fwd_node: Node) -> None:
    node, _ = fwd_node
    r = node.api("GET", FWD.format("4999"))
    assert r.status_code == 404 and r.json()["error_id"] == "extension-not-found"
    r = node.api("PUT", FWD.format("2012") + "/busy", json={})
    assert r.status_code == 409 and r.json()["error_id"] == "forwarding-not-set"
    assert httpx.get(f"{node.base_url}{FWD.format('2012')}").status_code == 401


def test_openapi_documents_the_routes(fwd_node: Node) -> None:
    node, _ = fwd_node
    paths = httpx.get(f"{node.base_url}/api/openapi.json").json()["paths"]
    assert {"get", "put", "delete"} <= set(paths["/api/v1/extensions/{number}/forwarding"])
    assert {"put", "delete"} <= set(paths["/api/v1/extensions/{number}/forwarding/{kind}"])


async def test_status_views_show_the_forwarding(fwd_node: Node) -> None:
    node, ids = fwd_node
    r = node.api(
        "PUT",
        FWD.format("2010"),
        json={
            "rules": [
                {"kind": "always", "target": "2011"},
                {"kind": "unreachable", "target": "+46701112233"},
                {"kind": "busy", "target": "2012", "enabled": False},
            ]
        },
    )
    assert r.status_code == 200, r.text
    try:
        shown = [
            {"kind": "always", "target": "2011", "external": False},
            {"kind": "unreachable", "target": "+46701112233", "external": True},
        ]
        # Presence: the plain form stays as it was; detail adds the forwarding.
        plain = node.api("GET", "/api/v1/presence?extensions=2010,2011").json()
        assert plain == {"2010": "unregistered", "2011": "unregistered"}
        detail = node.api("GET", "/api/v1/presence?extensions=2010,2011&detail=true").json()
        assert detail == {
            "2010": {"state": "unregistered", "forwarding": shown},
            "2011": {"state": "unregistered", "forwarding": []},
        }
        # The directory: search results, the person card, the extension status.
        op = sign_in(node, "telefonist")
        lisa = sign_in(node, "lisa.lindqvist")
        try:
            found = op.http.get("/api/v1/directory/people?q=Karl Eriksson").json()["items"]
            karl = next(p for p in found if p["id"] == ids["karl.eriksson"])
            assert karl["phone_status"] == [
                {"extension": "2010", "registered": False, "forwarding": shown}
            ]
            card = op.http.get(f"/api/v1/directory/people/{ids['karl.eriksson']}").json()
            assert card["phone_status"][0]["forwarding"] == shown
            status = op.http.get("/api/v1/directory/extensions/2010/status").json()
            assert status["forwarding"] == shown
            # Without forwarding nothing is added (the earlier form of the status).
            other = op.http.get(f"/api/v1/directory/people/{ids['Göran Gustafsson']}").json()
            assert other["phone_status"] == [{"extension": "2020", "registered": False}]
            # A colleague sees that it is forwarded outside, not the private number.
            card = lisa.http.get(f"/api/v1/directory/people/{ids['karl.eriksson']}").json()
            assert card["phone_status"][0]["forwarding"][1] == {
                "kind": "unreachable",
                "target": None,
                "external": True,
            }
            masked = lisa.http.get("/api/v1/presence?extensions=2010&detail=true").json()
            assert masked["2010"]["forwarding"][1]["target"] is None
        finally:
            op.close()
            lisa.close()
    finally:
        node.api("DELETE", FWD.format("2010"))


async def test_changes_reach_the_event_stream(fwd_node: Node) -> None:
    node, _ = fwd_node
    url = node.base_url.replace("http://", "ws://") + "/api/v1/events?after=0"
    r = node.api("PUT", FWD.format("2002") + "/no-answer", json={"target": "2001"})
    assert r.status_code == 200
    node.api("DELETE", FWD.format("2002"))
    token = {"Authorization": f"Bearer {node.token}"}
    seen: list[dict[str, Any]] = []
    async with websockets.connect(url, additional_headers=token) as ws:
        assert json.loads(await ws.recv())["type"] == "hello"
        while len(seen) < 2:
            m = json.loads(await ws.recv())
            if m.get("topic") == "forwarding.changed" and m["data"]["extension"] == "2002":
                seen.append(m["data"])
    assert seen[0]["forwarding"] == [{"kind": "no-answer", "target": "2001", "external": False}]
    assert seen[0]["by"] == "tests"
    assert seen[1]["forwarding"] == []
