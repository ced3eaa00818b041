"""The web platform over HTTP against a real node: sign-in, sessions, CSRF,
roles per route, account lock, the event WebSocket, self-service, audit."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets

from tests.support.server import VaxlaProcess
from tests.web.support import PASSWORDS, post_signin, sign_in

Node = tuple[VaxlaProcess, dict[str, int]]


def test_signin_sets_httponly_samesite_strict_session_cookie(web_node: Node) -> None:
    node, _ = web_node
    with httpx.Client(base_url=node.base_url) as http:
        r = post_signin(http, "telefonist", PASSWORDS["telefonist"])
        assert r.status_code == 303 and r.headers["location"] == "/konsol"
        cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("vaxla_session="))
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        me = http.get("/api/v1/me").json()
        assert me["subject"] == "telefonist" and me["roles"] == ["operator"]
        assert me["extension"] == "2001" and me["via"] == "session"


def test_wrong_password_and_unknown_user_look_the_same(web_node: Node) -> None:
    node, _ = web_node
    with httpx.Client(base_url=node.base_url) as http:
        a = post_signin(http, "chef", "not-the-password")
        b = post_signin(http, "no-such-user", "not-the-password")
    assert a.status_code == b.status_code == 401
    assert "Fel användarnamn eller lösenord" in a.text


def test_forged_csrf_requests_are_refused(web_node: Node) -> None:
    node, ids = web_node
    op = sign_in(node, "telefonist")
    try:
        pid = ids["karl.eriksson"]
        body = {"reason": "lunch"}
        # A cross-site form or script can send the cookie but not the token.
        forged = op.http.put(f"/api/v1/diversions/{pid}", json=body)
        assert forged.status_code == 403 and forged.json()["error_id"] == "csrf-failed"
        wrong = op.http.put(
            f"/api/v1/diversions/{pid}", json=body, headers={"X-CSRF-Token": "0" * 64}
        )
        assert wrong.status_code == 403 and wrong.json()["error_id"] == "csrf-failed"
        # Another session's token does not fit this session either.
        other = sign_in(node, "telefonist2")
        stolen = op.http.put(
            f"/api/v1/diversions/{pid}", json=body, headers={"X-CSRF-Token": other.csrf}
        )
        assert stolen.status_code == 403
        other.close()
        good = op.call("PUT", f"/api/v1/diversions/{pid}", json=body)
        assert good.status_code == 200, good.text
        assert op.call("DELETE", f"/api/v1/diversions/{pid}").status_code == 200
        # Sign-out is a form: without its token it is refused and the session lives on.
        assert op.http.post("/logga-ut", data={}).status_code == 403
        assert op.http.get("/api/v1/me").status_code == 200
        # Sign-in itself needs the form's token (no login CSRF).
        with httpx.Client(base_url=node.base_url) as fresh:
            r = fresh.post(
                "/logga-in",
                data={"username": "telefonist", "password": PASSWORDS["telefonist"]},
            )
            assert r.status_code == 403 and "vaxla_session" not in r.headers.get("set-cookie", "")
    finally:
        op.close()


def test_api_tokens_need_no_csrf_and_keep_working(web_node: Node) -> None:
    node, ids = web_node
    r = node.api("PUT", f"/api/v1/diversions/{ids['Göran Gustafsson']}", json={"reason": "meeting"})
    assert r.status_code == 200
    assert node.api("GET", "/api/v1/extensions").status_code == 200
    bad = httpx.get(
        f"{node.base_url}/api/v1/extensions", headers={"Authorization": "Bearer vx_nope"}
    )
    assert bad.status_code == 401 and bad.json()["error_id"] == "unauthorized"


def test_sign_out_ends_the_session_on_the_server(web_node: Node) -> None:
    node, _ = web_node
    c = sign_in(node, "chef")
    cookie = c.http.cookies.get("vaxla_session")
    r = c.http.post("/logga-ut", data={"csrf_token": c.csrf})
    assert r.status_code == 303
    c.close()
    # Replaying the old cookie does not work: the session is revoked server-side.
    replay = httpx.get(f"{node.base_url}/api/v1/me", cookies={"vaxla_session": cookie or ""})
    assert replay.status_code == 401


def test_every_api_route_declares_who_may_call_it(web_node: Node) -> None:
    node, _ = web_node
    spec = httpx.get(f"{node.base_url}/api/openapi.json").json()
    open_routes = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if path.startswith("/api/") and not op.get("security"):
                open_routes.append(f"{method.upper()} {path}")
    assert open_routes == []
    # And without credentials each of them answers 401.
    for path in ("/api/v1/users", "/api/v1/me", "/api/v1/directory/people", "/api/v1/phone-states"):
        assert httpx.get(f"{node.base_url}{path}").status_code == 401


# ---------------------------------------------------------------------- roles

ROLE_MATRIX: list[tuple[str, str, str, int]] = [
    # (user, method, path template, expected status)
    ("karl.eriksson", "GET", "/api/v1/users", 403),
    ("telefonist", "GET", "/api/v1/users", 403),
    ("katalog", "GET", "/api/v1/users", 403),
    ("admin1", "GET", "/api/v1/users", 200),
    ("karl.eriksson", "GET", "/api/v1/extensions", 403),
    ("telefonist", "GET", "/api/v1/extensions", 403),
    ("admin1", "GET", "/api/v1/extensions", 200),
    ("karl.eriksson", "GET", "/api/v1/directory/audit", 403),
    ("telefonist", "GET", "/api/v1/directory/audit", 403),
    ("katalog", "GET", "/api/v1/directory/audit", 200),
    ("karl.eriksson", "PUT", "/api/v1/diversions/{lisa.lindqvist}", 403),
    ("karl.eriksson", "PUT", "/api/v1/diversions/{karl.eriksson}", 200),
    ("telefonist", "PUT", "/api/v1/diversions/{lisa.lindqvist}", 200),
    ("handlaggare", "PUT", "/api/v1/diversions/{lisa.lindqvist}", 200),
    ("karl.eriksson", "POST", "/api/v1/directory/people", 403),
    ("redaktor", "POST", "/api/v1/directory/people", 201),
    ("karl.eriksson", "PUT", "/api/v1/directory/access/mobile", 403),
    ("redaktor", "PUT", "/api/v1/directory/access/mobile", 403),
    ("multi", "PUT", "/api/v1/diversions/{lisa.lindqvist}", 200),  # operator as second role
]


@pytest.mark.parametrize(("user", "method", "path", "status"), ROLE_MATRIX)
def test_each_role_gets_what_it_may_through_the_api(
    web_node: Node, user: str, method: str, path: str, status: int
) -> None:
    node, ids = web_node
    for name, pid in ids.items():
        path = path.replace("{" + name + "}", str(pid))
    body: dict[str, Any] | None = None
    if method == "PUT" and "diversions" in path:
        body = {"reason": "meeting"}
    elif "people" in path:
        body = {"first_name": "Ny", "last_name": f"Person{user.replace('.', '')}"}
    elif "access" in path:
        body = {"view_level": 2, "edit_level": 3}
    c = sign_in(node, user)
    try:
        r = c.call(method, path, json=body)
        assert r.status_code == status, r.text
        if status == 403:
            assert r.json()["error_id"] in ("forbidden", "directory-forbidden")
    finally:
        c.close()


def test_an_employee_sees_only_public_fields(web_node: Node) -> None:
    node, ids = web_node
    emp = sign_in(node, "karl.eriksson")
    op = sign_in(node, "telefonist")
    try:
        pid = ids["lisa.lindqvist"]
        seen_by_employee = emp.http.get(f"/api/v1/directory/people/{pid}").json()
        seen_by_operator = op.http.get(f"/api/v1/directory/people/{pid}").json()
        kinds = lambda person: {p["kind"] for p in person["phones"]}  # noqa: E731
        assert kinds(seen_by_operator) == {"extension", "mobile"}
        assert kinds(seen_by_employee) == {"extension"}  # mobile needs level 2 (R90)
    finally:
        emp.close()
        op.close()


@pytest.mark.parametrize(
    ("user", "page", "status"),
    [
        ("karl.eriksson", "/konsol", 403),
        ("karl.eriksson", "/admin", 403),
        ("karl.eriksson", "/mina-sidor", 200),
        ("telefonist", "/konsol", 200),
        ("telefonist", "/admin", 403),
        ("katalog", "/admin", 200),
        ("admin1", "/admin", 200),
    ],
)
def test_pages_follow_roles(web_node: Node, user: str, page: str, status: int) -> None:
    node, _ = web_node
    c = sign_in(node, user)
    try:
        r = c.http.get(page)
        assert r.status_code == status
        if status == 403:
            assert "Ingen behörighet" in r.text
    finally:
        c.close()


def test_pages_redirect_to_signin_and_send_security_headers(web_node: Node) -> None:
    node, _ = web_node
    r = httpx.get(f"{node.base_url}/konsol")
    assert r.status_code == 303 and r.headers["location"].startswith("/logga-in?next=/konsol")
    page = httpx.get(f"{node.base_url}/logga-in")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


# ---------------------------------------------------------------------- lock-out


def test_ten_wrong_passwords_lock_the_account_but_not_others(web_node: Node) -> None:
    node, _ = web_node
    with httpx.Client(base_url=node.base_url) as http:
        for _ in range(9):
            assert post_signin(http, "lisa.lindqvist", "wrong-password").status_code == 401
        tenth = post_signin(http, "lisa.lindqvist", "wrong-password")
        assert tenth.status_code == 401
        # Now locked: even the right password is refused, for a while.
        locked = post_signin(http, "lisa.lindqvist", PASSWORDS["lisa.lindqvist"])
        assert locked.status_code == 423 and "låst" in locked.text
    # Another account, from the same address, signs in as usual.
    other = sign_in(node, "karl.eriksson")
    other.close()
    # The administrator sees the lock and lifts it.
    admin = sign_in(node, "admin1")
    try:
        users = {u["username"]: u for u in admin.http.get("/api/v1/users").json()}
        assert users["lisa.lindqvist"]["locked_until"] is not None
        assert users["karl.eriksson"]["locked_until"] is None
        r = admin.call(
            "PATCH", f"/api/v1/users/{users['lisa.lindqvist']['id']}", json={"unlock": True}
        )
        assert r.status_code == 200 and r.json()["locked_until"] is None
        audit = admin.http.get("/api/v1/directory/audit?entity=user&limit=200").json()
        assert any(e["action"] == "lock" and e["entity_id"] == "lisa.lindqvist" for e in audit)
    finally:
        admin.close()
    sign_in(node, "lisa.lindqvist").close()


# ---------------------------------------------------------------------- events


def _ws_url(node: VaxlaProcess, after: int | None = None) -> str:
    url = node.base_url.replace("http://", "ws://") + "/api/v1/events"
    return url if after is None else f"{url}?after={after}"


async def _next_event(ws: Any, topic: str, timeout: float = 3.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            m = json.loads(await ws.recv())
            if m["type"] == "event" and m["topic"] == topic:
                return m  # type: ignore[no-any-return]


async def test_event_stream_is_live_filtered_and_resumable(web_node: Node) -> None:
    node, ids = web_node
    op = sign_in(node, "telefonist")
    emp = sign_in(node, "karl.eriksson")
    pid = ids["Åsa Sjöberg"]
    try:
        op_cookie = {"Cookie": f"vaxla_session={op.http.cookies['vaxla_session']}"}
        emp_cookie = {"Cookie": f"vaxla_session={emp.http.cookies['vaxla_session']}"}
        async with (
            websockets.connect(_ws_url(node), additional_headers=op_cookie) as ws_op,
            websockets.connect(_ws_url(node), additional_headers=emp_cookie) as ws_emp,
        ):
            hello = json.loads(await ws_op.recv())
            assert hello["type"] == "hello" and hello["subject"] == "telefonist"
            json.loads(await ws_emp.recv())
            r = await asyncio.to_thread(
                op.call,
                "PUT",
                f"/api/v1/diversions/{pid}",
                json={"reason": "meeting", "return_at": "2030-01-01T13:00:00+01:00"},
            )
            assert r.status_code == 200
            seen = await _next_event(ws_op, "diversion.changed")
            assert seen["data"]["person_id"] == pid
            assert seen["data"]["diversion"]["reason"] == "meeting"
            # An employee learns only that the person changed (and refetches).
            seen_emp = await _next_event(ws_emp, "diversion.changed")
            assert seen_emp["data"] == {"person_id": pid}
            position = seen["position"]
        # While disconnected, two more changes happen...
        for reason in ("lunch", "course"):
            r = op.call("PUT", f"/api/v1/diversions/{pid}", json={"reason": reason})
            assert r.status_code == 200
        # ...and the reconnecting client gets both, in order, from its position.
        async with websockets.connect(_ws_url(node, position), additional_headers=op_cookie) as ws:
            assert json.loads(await ws.recv())["type"] == "hello"
            first = await _next_event(ws, "diversion.changed")
            second = await _next_event(ws, "diversion.changed")
            assert first["position"] > position and second["position"] > first["position"]
            assert [
                first["data"]["diversion"]["reason"],
                second["data"]["diversion"]["reason"],
            ] == [
                "lunch",
                "course",
            ]
        op.call("DELETE", f"/api/v1/diversions/{pid}")
    finally:
        op.close()
        emp.close()


async def test_event_stream_needs_credentials_and_same_origin(web_node: Node) -> None:
    node, _ = web_node
    with pytest.raises(websockets.exceptions.WebSocketException):
        async with websockets.connect(_ws_url(node)) as ws:
            await ws.recv()
    # A page of another site cannot use a signed-in browser's cookie.
    c = sign_in(node, "telefonist")
    headers = {
        "Cookie": f"vaxla_session={c.http.cookies['vaxla_session']}",
        "Origin": "https://evil.example",
    }
    with pytest.raises(websockets.exceptions.WebSocketException):
        async with websockets.connect(_ws_url(node), additional_headers=headers) as ws:
            await ws.recv()
    c.close()
    # API clients use their bearer token.
    token = {"Authorization": f"Bearer {node.token}"}
    async with websockets.connect(_ws_url(node), additional_headers=token) as ws:
        assert json.loads(await ws.recv())["subject"] == "tests"


# ---------------------------------------------------------------------- self-service


def test_self_service_settings_are_stored_and_audited(web_node: Node) -> None:
    node, _ = web_node
    me = sign_in(node, "karl.eriksson")
    try:
        assert me.http.get("/api/v1/me").json()["person_id"] is not None
        targets = [
            {"kind": "busy", "target": "+46701112233", "enabled": True},
            {"kind": "no-answer", "target": "2011", "enabled": True},
        ]
        r = me.call("PUT", "/api/v1/me/forwarding", json=targets)
        assert r.status_code == 200 and r.json() == targets
        assert me.http.get("/api/v1/me/forwarding").json() == targets
        assert me.call("PUT", "/api/v1/me/voicemail-pin", json={"pin": "12"}).status_code == 422
        assert me.call("PUT", "/api/v1/me/voicemail-pin", json={"pin": "2468"}).status_code == 204
        r = me.call("PUT", "/api/v1/me/sip-password", json={"password": "new-phone-pw"})
        assert r.status_code == 204
        r = me.call("PATCH", "/api/v1/me", json={"language": "en"})
        assert r.status_code == 200 and r.json()["language"] == "en"
        assert "My pages" in me.http.get("/mina-sidor").text  # English chosen per user (R23)
        me.call("PATCH", "/api/v1/me", json={"language": "sv"})
    finally:
        me.close()
    admin = sign_in(node, "katalog")
    try:
        audit = admin.http.get("/api/v1/directory/audit?entity=extension&limit=50").json()
        actions = {(e["actor"], e["action"], e["entity_id"]) for e in audit}
        assert ("karl.eriksson", "set-forwarding", "2010") in actions
        assert ("karl.eriksson", "set-voicemail-pin", "2010") in actions
        assert ("karl.eriksson", "set-sip-password", "2010") in actions
    finally:
        admin.close()


def test_admin_manages_users_and_roles_with_audit(web_node: Node) -> None:
    node, _ = web_node
    admin = sign_in(node, "admin1")
    try:
        r = admin.call(
            "POST",
            "/api/v1/users",
            json={"username": "ny.telefonist", "password": "secret-pass-9", "roles": ["employee"]},
        )
        assert r.status_code == 201, r.text
        uid = r.json()["id"]
        new = sign_in(node, "ny.telefonist", "secret-pass-9")
        assert new.http.get("/konsol").status_code == 403
        # A role given takes effect at the user's next request.
        r = admin.call("PATCH", f"/api/v1/users/{uid}", json={"roles": ["employee", "operator"]})
        assert r.json()["roles"] == ["operator", "employee"]
        assert new.http.get("/konsol").status_code == 200
        # Deactivating ends the user's sessions at once.
        admin.call("PATCH", f"/api/v1/users/{uid}", json={"active": False})
        assert new.http.get("/api/v1/me").status_code == 401
        new.close()
        assert admin.call("DELETE", f"/api/v1/users/{uid}").status_code == 204
        audit = admin.http.get("/api/v1/directory/audit?entity=user&limit=100").json()
        mine = [e["action"] for e in audit if e["entity_id"] == "ny.telefonist"]
        assert {"create", "update", "delete"} <= set(mine)
        sessions = admin.http.get("/api/v1/directory/audit?entity=session&limit=200").json()
        assert any(e["actor"] == "ny.telefonist" and e["action"] == "sign-in" for e in sessions)
    finally:
        admin.close()


def test_changes_without_their_own_audit_are_audited_per_request(web_node: Node) -> None:
    node, _ = web_node
    r = node.api(
        "POST", "/api/v1/extensions", json={"number": "2999", "name": "Test", "password": "pw-2999"}
    )
    assert r.status_code == 201
    audit = node.api("GET", "/api/v1/directory/audit?entity=extension&entity_id=2999").json()
    assert [(e["actor"], e["action"]) for e in audit] == [("tests", "create")]
