"""Helpers of the web tests: a node with users and people, signed-in HTTP clients."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.server import VaxlaProcess

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"

#: (username, password, roles, extension) created with `vaxla user add`.
USERS = (
    ("admin1", "admin-pass-1", "admin", None),
    ("telefonist", "operator-pass-1", "operator", "2001"),
    ("telefonist2", "operator-pass-2", "operator", "2002"),
    ("katalog", "katalog-pass-1", "directory-admin", None),
    ("redaktor", "editor-pass-1", "directory-editor", None),
    ("chef", "supervisor-pass", "supervisor", None),
    ("handlaggare", "agent-pass-1", "agent", None),
    ("karl.eriksson", "employee-pass", "employee", "2010"),
    ("lisa.lindqvist", "employee-pass2", "employee", "2011"),
    ("multi", "multi-pass-12", "employee,operator", "2012"),
)
PASSWORDS = {u: p for u, p, _, _ in USERS}

#: Directory people (first, last, extension, username, mobile, unit, tasks).
PEOPLE = (
    (
        "Karl",
        "Eriksson",
        "2010",
        "karl.eriksson",
        "+46701112233",
        "Växjö kommun/Socialförvaltningen",
        ["Försörjningsstöd"],
    ),
    (
        "Lisa",
        "Lindqvist",
        "2011",
        "lisa.lindqvist",
        "+46702223344",
        "Växjö kommun/Tekniska förvaltningen",
        ["Bygglov"],
    ),
    (
        "Åsa",
        "Sjöberg",
        "2013",
        None,
        "+46703334455",
        "Växjö kommun/Socialförvaltningen",
        ["Äldreomsorg"],
    ),
    ("Nils", "Sjöberg", "2013", None, None, "Växjö kommun/Socialförvaltningen", ["Äldreomsorg"]),
    ("Telefonist", "Växel", "2001", "telefonist", None, "Växjö kommun/Kommunledningen", ["Växel"]),
    ("Göran", "Gustafsson", "2020", None, None, "Växjö kommun/Kultur", ["Bibliotek"]),
)


def setup_node(node: VaxlaProcess) -> dict[str, int]:
    """Users (the first through the CLI, the rest through the API), extensions,
    people and a group; returns person ids by username (or name)."""
    for i, (username, password, roles, ext) in enumerate(USERS):
        if i == 0:
            node.cli("user", "add", username, "--password", password, "--role", roles)
            continue
        r = node.api(
            "POST",
            "/api/v1/users",
            json={
                "username": username,
                "password": password,
                "roles": roles.split(","),
                "display_name": username.title(),
                "extension": ext,
            },
        )
        assert r.status_code == 201, r.text
    for _, _, _, ext in USERS:
        if ext:
            node.add_extension(ext, f"pw-{ext}-secret", name=f"Anknytning {ext}")
    ids: dict[str, int] = {}
    for first, last, ext, username, mobile, unit, tasks in PEOPLE:
        phones = [{"kind": "extension", "number": ext}]
        if mobile:
            phones.append({"kind": "mobile", "number": mobile})
        body: dict[str, Any] = {
            "first_name": first,
            "last_name": last,
            "phones": phones,
            "units": [unit],
            "tasks": tasks,
            "room": "B 214",
            "groups": ["Socialjouren"] if "Social" in unit else [],
        }
        if username:
            body["username"] = username
        r = node.api("POST", "/api/v1/directory/people", json=body)
        assert r.status_code == 201, r.text
        ids[username or f"{first} {last}"] = r.json()["id"]
    return ids


@dataclass
class WebClient:
    """An httpx client signed in through the sign-in form, like a browser."""

    http: httpx.Client
    csrf: str

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-CSRF-Token": self.csrf, **kwargs.pop("headers", {})}
        return self.http.request(method, path, headers=headers, **kwargs)

    def close(self) -> None:
        self.http.close()


def signin_form(http: httpx.Client) -> str:
    page = http.get("/logga-in")
    assert page.status_code == 200
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found
    return found.group(1)


def post_signin(http: httpx.Client, username: str, password: str) -> httpx.Response:
    token = signin_form(http)
    return http.post(
        "/logga-in",
        data={"csrf_token": token, "username": username, "password": password},
    )


def sign_in(node: VaxlaProcess, username: str, password: str | None = None) -> WebClient:
    http = httpx.Client(base_url=node.base_url, timeout=10)
    r = post_signin(http, username, password or PASSWORDS[username])
    assert r.status_code == 303, r.text
    page = http.get("/mina-sidor")
    found = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert found
    return WebClient(http, found.group(1))
