"""Call forwarding over the REST API of a running node: who may set it, bad
input, audit, the live event, and the status views that show it (R65, R83)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from tests.peers.sipp import run_scenario_async, start_scenario
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


# ---------------------------------------------------------------------- /api/v1/me/forwarding

ME = "/api/v1/me/forwarding"


async def _events_until(node: VaxlaProcess, wanted: Any, timeout: float = 5.0) -> dict[str, Any]:
    """The first ``forwarding.changed`` event whose data ``wanted(data)`` accepts."""
    url = node.base_url.replace("http://", "ws://") + "/api/v1/events?after=0"
    token = {"Authorization": f"Bearer {node.token}"}

    async def scan() -> dict[str, Any]:
        async with websockets.connect(url, additional_headers=token) as ws:
            while True:
                m = json.loads(await ws.recv())
                if m.get("topic") == "forwarding.changed" and wanted(m["data"]):
                    data: dict[str, Any] = m["data"]
                    return data

    return await asyncio.wait_for(scan(), timeout)


async def test_me_forwarding_is_checked_audited_and_published_like_the_rest(
    fwd_node: Node,
) -> None:
    node, _ = fwd_node
    lisa = sign_in(node, "lisa.lindqvist")  # employee on 2011
    try:
        # Forwarding to oneself: refused the same way by both routes, nothing stored.
        own = lisa.call("PUT", ME, json=[{"kind": "always", "target": "2011"}])
        full = lisa.call(
            "PUT", FWD.format("2011"), json={"rules": [{"kind": "always", "target": "2011"}]}
        )
        assert own.status_code == full.status_code == 400, own.text
        assert own.json()["error_id"] == full.json()["error_id"] == "forwarding-to-self"
        r = lisa.call("PUT", ME, json=[{"kind": "busy", "target": "4999"}])
        assert (r.status_code, r.json()["error_id"]) == (422, "forwarding-target-unknown")
        r = lisa.call(
            "PUT", ME, json=[{"kind": "busy", "target": "2012"}, {"kind": "busy", "target": "2010"}]
        )
        assert (r.status_code, r.json()["error_id"]) == (422, "invalid-input")
        assert lisa.http.get(ME).json() == []

        # A change through /me: the same validation (a national number becomes E.164),
        # kept ring time, an audit row, the live event, and routing's status at once.
        lisa.call("PUT", FWD.format("2011"), json={"rules": [], "no_answer_seconds": 12})
        r = lisa.call("PUT", ME, json=[{"kind": "busy", "target": "070-444 55 66"}])
        assert r.status_code == 200, r.text
        assert r.json() == [{"kind": "busy", "target": "+46704445566", "enabled": True}]
        assert lisa.http.get(ME).json() == r.json()
        full_view = lisa.http.get(FWD.format("2011")).json()
        assert full_view["no_answer_seconds"] == 12 and full_view["updated_by"] == "lisa.lindqvist"
        detail = node.api("GET", "/api/v1/presence?extensions=2011&detail=true").json()
        assert detail["2011"]["forwarding"] == [
            {"kind": "busy", "target": "+46704445566", "external": True}
        ]
        event = await _events_until(
            node,
            lambda d: d["extension"] == "2011" and d["by"] == "lisa.lindqvist" and d["forwarding"],
        )
        assert event["forwarding"] == [{"kind": "busy", "target": "+46704445566", "external": True}]
        assert event["no_answer_seconds"] == 12
    finally:
        lisa.call("DELETE", FWD.format("2011"))
        lisa.close()
    audit = node.api(
        "GET", "/api/v1/directory/audit?entity=extension&entity_id=2011&limit=100"
    ).json()
    via_me = [e for e in audit if e["after"] and e["after"].get("via") == "me"]
    assert [(e["actor"], e["action"]) for e in via_me] == [("lisa.lindqvist", "set-forwarding")]
    # A token has no extension of its own.
    r = node.api("GET", ME)
    assert (r.status_code, r.json()["error_id"]) == (409, "no-extension")


# ---------------------------------------------------------------------- removing an extension


async def test_removing_an_extension_removes_its_forwarding_and_forwarding_to_it(
    fwd_node: Node,
) -> None:
    node, _ = fwd_node
    for ext in ("4201", "4202", "4203"):
        node.add_extension(ext, f"pw-{ext}-secret")

    def put(ext: str, rules: list[dict[str, Any]], seconds: int = 20) -> None:
        body = {"rules": rules, "no_answer_seconds": seconds}
        r = node.api("PUT", FWD.format(ext), json=body)
        assert r.status_code == 200, r.text

    put("4201", [{"kind": "always", "target": "4202"}], seconds=30)
    put(
        "4202",
        [{"kind": "busy", "target": "4201"}, {"kind": "no-answer", "target": "4203"}],
        seconds=15,
    )
    put("4203", [{"kind": "always", "target": "4201", "enabled": False}])

    assert node.api("DELETE", "/api/v1/extensions/4201").status_code == 204

    # Rules of others that pointed at it are gone; their other rules stay.
    r = node.api("GET", FWD.format("4202")).json()
    assert _rules(r) == [("no-answer", "4203", True)] and r["no_answer_seconds"] == 15
    assert node.api("GET", FWD.format("4203")).json()["rules"] == []
    # Routing's status sees it at once, not after the snapshot's lifetime.
    detail = node.api("GET", "/api/v1/presence?extensions=4201,4202&detail=true").json()
    assert detail["4201"]["forwarding"] == []
    assert detail["4202"]["forwarding"] == [
        {"kind": "no-answer", "target": "4203", "external": False}
    ]
    r = node.api("GET", FWD.format("4201"))
    assert r.status_code == 404 and r.json()["error_id"] == "extension-not-found"
    # The number given out again starts without the old forwarding or ring time.
    node.add_extension("4201", "pw-4201-secret")
    again = node.api("GET", FWD.format("4201")).json()
    assert again["rules"] == [] and again["no_answer_seconds"] == 20

    # Each change is audited (the old rules kept for an administrator) and published.
    audit = node.api("GET", "/api/v1/directory/audit?entity=extension&limit=200").json()
    removed = {
        e["entity_id"]: e
        for e in audit
        if e["action"] == "clear-forwarding"
        and e["after"]
        and e["after"].get("via") == "extension-removed"
    }
    assert set(removed) == {"4201", "4202", "4203"}
    assert all(e["actor"] == "tests" for e in removed.values())
    assert removed["4202"]["before"]["rules"][0]["target"] == "4201"
    assert removed["4201"]["before"]["no_answer_seconds"] == 30
    event = await _events_until(
        node, lambda d: d["extension"] == "4202" and len(d["forwarding"]) == 1
    )
    assert event["forwarding"] == [{"kind": "no-answer", "target": "4203", "external": False}]


# ---------------------------------------------------------------------- call records


@pytest.mark.slow
@pytest.mark.peers
async def test_call_records_say_who_forwarded_the_call(fwd_node: Node) -> None:
    """GET /api/v1/calls: a forwarded call names the number dialled and the kind."""
    node, _ = fwd_node
    node.add_extension("4301", "pw-4301-secret")
    node.add_extension("4302", "pw-4302-secret")
    node.add_extension("4303", "pw-4303-secret")
    target = await start_scenario(
        "uas_register_answer", node.sip_addr, users=[("4303", "pw-4303-secret")], timeout=25
    )
    try:
        for _ in range(100):
            regs = node.api("GET", "/api/v1/registrations").json()
            if any(r["extension"] == "4303" for r in regs):
                break
            await asyncio.sleep(0.05)
        r = node.api("PUT", FWD.format("4302") + "/always", json={"target": "4303"})
        assert r.status_code == 200, r.text
        caller = await run_scenario_async(
            "uac_call",
            node.sip_addr,
            users=[("4301", "pw-4301-secret")],
            service="4302",
            duration_ms=300,
        )
        assert caller.ok, caller.describe()
        answered = await target.wait(10)
        assert answered.ok, answered.describe()
        # A call nobody forwarded: both fields are null.
        missing = await run_scenario_async(
            "uac_not_found", node.sip_addr, users=[("4301", "pw-4301-secret")], service="4999"
        )
        assert missing.ok, missing.describe()
    finally:
        await target.stop()
        node.api("DELETE", FWD.format("4302"))
    mine: list[dict[str, Any]] = []
    for _ in range(50):
        mine = [c for c in node.calls() if c["caller"] == "4301"]
        if len(mine) >= 2:
            break
        await asyncio.sleep(0.1)
    by_callee = {c["callee"]: c for c in mine}
    forwarded = by_callee["4303"]
    assert (forwarded["result"], forwarded["sip_status"]) == ("answered", 200)
    assert (forwarded["forwarded_from"], forwarded["forward_kind"]) == ("4302", "always")
    plain = by_callee["4999"]
    assert plain["result"] == "not-found"
    assert plain["forwarded_from"] is None and plain["forward_kind"] is None
