"""The REST API of a running node: tokens, extensions, errors, OpenAPI, metrics."""

from __future__ import annotations

import httpx

from tests.support.server import VaxlaProcess


def test_openapi_document_lists_the_routes(module_node: VaxlaProcess) -> None:
    doc = httpx.get(f"{module_node.base_url}/api/openapi.json", timeout=5).json()
    assert doc["info"]["title"] == "Växla API"
    paths = doc["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/extensions"])
    assert {"get", "delete"} <= set(paths["/api/v1/extensions/{number}"])
    assert "/api/v1/registrations" in paths and "/api/v1/calls" in paths
    # errors are documented with the ApiError schema
    assert "ApiError" in doc["components"]["schemas"]
    # call records name the forwarding that sent a call on
    record = doc["components"]["schemas"]["CallRecordOut"]["properties"]
    assert {"forwarded_from", "forward_kind"} <= set(record)


def test_token_is_required(module_node: VaxlaProcess) -> None:
    r = httpx.get(f"{module_node.base_url}/api/v1/extensions", timeout=5)
    assert r.status_code == 401 and r.json()["error_id"] == "unauthorized"
    r = httpx.get(
        f"{module_node.base_url}/api/v1/extensions",
        headers={"Authorization": "Bearer vx_not-a-real-token"},
        timeout=5,
    )
    assert r.status_code == 401 and r.json()["error_id"] == "unauthorized"


def test_extension_lifecycle_and_error_ids(module_node: VaxlaProcess) -> None:
    r = module_node.api(
        "POST",
        "/api/v1/extensions",
        json={"number": "4000", "name": "Örjan Åkesson", "password": "hemligt1"},
    )
    assert r.status_code == 201
    body = r.json()
    assert body["number"] == "4000" and body["name"] == "Örjan Åkesson"
    assert "password" not in body and body["registered_contacts"] == 0

    r = module_node.api(
        "POST", "/api/v1/extensions", json={"number": "4000", "name": "Dup", "password": "hemligt1"}
    )
    assert r.status_code == 409 and r.json()["error_id"] == "extension-exists"

    r = module_node.api(
        "POST", "/api/v1/extensions", json={"number": "40a", "name": "X", "password": "p"}
    )
    assert r.status_code == 422
    err = r.json()
    assert err["error_id"] == "invalid-input"
    fields = {e["field"] for e in err["details"]["errors"]}
    assert {"number", "password"} <= fields

    r = module_node.api(
        "POST",
        "/api/v1/extensions",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["error_id"] == "invalid-input"

    r = module_node.api(
        "POST",
        "/api/v1/extensions",
        json={"number": "4001", "name": "X", "password": "hemligt1", "digest_algorithms": ["MD4"]},
    )
    assert r.status_code == 422 and r.json()["error_id"] == "invalid-extension"

    assert module_node.api("GET", "/api/v1/extensions/4000").json()["name"] == "Örjan Åkesson"
    r = module_node.api("GET", "/api/v1/extensions/4999")
    assert r.status_code == 404 and r.json()["error_id"] == "extension-not-found"
    assert module_node.api("DELETE", "/api/v1/extensions/4000").status_code == 204
    r = module_node.api("DELETE", "/api/v1/extensions/4000")
    assert r.status_code == 404 and r.json()["error_id"] == "extension-not-found"
    # the CLI sees the same database
    assert "4000" not in module_node.cli("extension", "list")


def test_role_without_rights_is_forbidden(module_node: VaxlaProcess) -> None:
    token = module_node.cli("token", "create", "--name", "anna", "--role", "employee").strip()
    r = httpx.get(
        f"{module_node.base_url}/api/v1/extensions",
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert r.status_code == 403 and r.json()["error_id"] == "forbidden"


def test_unknown_route_has_an_error_id(module_node: VaxlaProcess) -> None:
    r = module_node.api("GET", "/api/v1/nothing-here")
    assert r.status_code == 404 and r.json()["error_id"] == "not-found"


def test_metrics_are_prometheus_text(module_node: VaxlaProcess) -> None:
    text = httpx.get(f"{module_node.base_url}/metrics", timeout=5).text
    for name in (
        "vaxla_sip_messages_received_total",
        "vaxla_sip_parse_errors_total",
        "vaxla_registrations",
        "vaxla_active_calls",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in text
