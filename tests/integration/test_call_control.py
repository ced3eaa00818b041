"""Console call control through the B2BUA, with real phones (baresip)."""

from __future__ import annotations

import asyncio

import pytest

from tests.peers.audio import tone_present
from tests.peers.baresip import BaresipPhone
from tests.peers.fixtures import BaresipFactory
from tests.support.phones import registered_phone
from tests.support.server import VaxlaProcess

pytestmark = [pytest.mark.slow, pytest.mark.peers]

HZ = {"1001": 440.0, "1002": 1000.0, "1003": 1600.0, "1004": 2200.0}


async def _phones(
    node: VaxlaProcess, factory: BaresipFactory, *numbers: str
) -> dict[str, BaresipPhone]:
    return {n: await registered_phone(node, factory, n, tone_hz=HZ[n]) for n in numbers}


async def _wait_until(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout / 0.1)):
        if predicate():
            return
        await asyncio.sleep(0.1)
    assert predicate()


async def test_click_to_call_rings_operator_then_target(
    node: VaxlaProcess, baresip_factory: BaresipFactory
) -> None:
    phones = await _phones(node, baresip_factory, "1001", "1002")
    operator, target = phones["1001"], phones["1002"]
    token = node.cli("token", "create", "--name", "tel", "--role", "operator").strip()
    auth = {"Authorization": f"Bearer {token}"}
    r = node.api(
        "POST", "/api/v1/calls/click-to-call", json={"from": "1001", "to": "1002"}, headers=auth
    )
    assert r.status_code == 202, r.text
    # The operator's phone rings first (auto-answer), then the target's.
    await operator.wait_event("CALL_ESTABLISHED", 10)
    await target.wait_event("CALL_ESTABLISHED", 10)
    live = node.api("GET", "/api/v1/calls/live", headers=auth).json()
    assert [(c["caller"], c["callee"], c["state"]) for c in live] == [("1001", "1002", "answered")]
    presence = node.api("GET", "/api/v1/presence?extensions=1001,1002,1003", headers=auth).json()
    assert presence == {"1001": "busy", "1002": "busy", "1003": "unregistered"}
    await asyncio.sleep(1.5)  # audio both ways
    r = node.api("POST", f"/api/v1/calls/{live[0]['call_id']}/hangup", headers=auth)
    assert r.status_code == 204
    await operator.wait_event("CALL_CLOSED", 5)
    await target.wait_event("CALL_CLOSED", 5)
    heard_by_operator = await operator.wait_recording("dec")
    heard_by_target = await target.wait_recording("dec")
    assert tone_present(heard_by_operator, HZ["1002"], min_snr_db=15)
    assert tone_present(heard_by_target, HZ["1001"], min_snr_db=15)
    call = node.wait_for_calls(1)[0]
    assert (call["caller"], call["callee"], call["result"]) == ("1001", "1002", "answered")
    assert call["hangup_by"] == "console"
    await _wait_until(
        lambda: (
            node.api("GET", "/api/v1/presence?extensions=1001", headers=auth).json()
            == {"1001": "free"}
        )
    )


async def _operator_transfers(
    node: VaxlaProcess, caller: BaresipPhone, operator: BaresipPhone, to: str
) -> dict[str, str]:
    """The caller calls the operator (1002), who answers; the console then
    transfers the call to ``to``. Returns the console's auth header."""
    token = node.cli("token", "create", "--name", "tel", "--role", "operator").strip()
    auth = {"Authorization": f"Bearer {token}"}
    await caller.dial(f"sip:1002@{node.sip_addr}")
    await caller.wait_event("CALL_ESTABLISHED", 10)
    await operator.wait_event("CALL_ESTABLISHED", 10)
    [live] = node.api("GET", "/api/v1/calls/live", headers=auth).json()
    r = node.api("POST", f"/api/v1/calls/{live['call_id']}/transfer", json={"to": to}, headers=auth)
    assert r.status_code == 202, r.text
    return auth


async def test_blind_transfer_moves_the_caller(
    node: VaxlaProcess, baresip_factory: BaresipFactory
) -> None:
    phones = await _phones(node, baresip_factory, "1001", "1002", "1003")
    caller, operator, colleague = phones["1001"], phones["1002"], phones["1003"]
    auth = await _operator_transfers(node, caller, operator, "1003")
    await colleague.wait_event("CALL_ESTABLISHED", 10)
    await operator.wait_event("CALL_CLOSED", 10)  # the operator is released
    live = node.api("GET", "/api/v1/calls/live", headers=auth).json()
    assert [(c["caller"], c["callee"]) for c in live] == [("1001", "1003")]
    await asyncio.sleep(1.5)
    await colleague.hangup()
    await caller.wait_event("CALL_CLOSED", 5)
    heard_by_colleague = await colleague.wait_recording("dec")
    assert tone_present(heard_by_colleague, HZ["1001"], min_snr_db=15)
    calls = node.wait_for_calls(2)
    results = sorted((c["callee"], c["result"]) for c in calls)
    assert results == [("1002", "transferred"), ("1003", "answered")]


async def test_blind_transfer_follows_the_targets_forwarding(
    node: VaxlaProcess, baresip_factory: BaresipFactory
) -> None:
    """1003 forwards every call to 1004: a call transferred to 1003 rings 1004,
    as a call dialled to 1003 would, and its record says so."""
    phones = await _phones(node, baresip_factory, "1001", "1002", "1003", "1004")
    caller, operator, away, stand_in = (phones[n] for n in ("1001", "1002", "1003", "1004"))
    r = node.api(
        "PUT",
        "/api/v1/extensions/1003/forwarding",
        json={"rules": [{"kind": "always", "target": "1004"}]},
    )
    assert r.status_code == 200, r.text
    await _operator_transfers(node, caller, operator, "1003")
    await stand_in.wait_event("CALL_ESTABLISHED", 10)
    await operator.wait_event("CALL_CLOSED", 10)
    await asyncio.sleep(1.0)
    await stand_in.hangup()
    await caller.wait_event("CALL_CLOSED", 5)
    assert tone_present(await stand_in.wait_recording("dec"), HZ["1001"], min_snr_db=15)
    assert not [e for e in away.events if str(e.get("type", "")).startswith("CALL_")]
    [record] = [r for r in node.call_records("1001", 2) if r["callee"] == "1004"]
    assert (record["result"], record["forwarded_from"], record["forward_kind"]) == (
        "answered",
        "1003",
        "always",
    )


async def test_call_control_needs_an_operator_role(module_node: VaxlaProcess) -> None:
    token = module_node.cli("token", "create", "--name", "e", "--role", "employee").strip()
    auth = {"Authorization": f"Bearer {token}"}
    r = module_node.api(
        "POST", "/api/v1/calls/click-to-call", json={"from": "1", "to": "2"}, headers=auth
    )
    assert r.status_code in (403, 422)
    r = module_node.api(
        "POST", "/api/v1/calls/click-to-call", json={"from": "1001", "to": "1002"}, headers=auth
    )
    assert r.status_code == 403 and r.json()["error_id"] == "forbidden"
    r = module_node.api("POST", "/api/v1/calls/click-to-call", json={"from": "1001", "to": "1002"})
    assert r.status_code == 404 and r.json()["error_id"] == "number-not-found"
    r = module_node.api("POST", "/api/v1/calls/nope/hangup")
    assert r.status_code == 404 and r.json()["error_id"] == "call-not-found"
