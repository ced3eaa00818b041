"""Call forwarding with real phones (baresip, SIPp) through a running node:
unconditional, busy, no answer, not reachable, loops, external targets."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.peers.audio import dominant_frequencies, tone_present
from tests.peers.fixtures import BaresipFactory
from tests.peers.sipp import SippProcess, run_scenario_async, start_scenario
from tests.support.phones import registered_phone
from tests.support.server import VaxlaProcess

pytestmark = [pytest.mark.slow, pytest.mark.peers]

FWD = "/api/v1/extensions/{}/forwarding"


@pytest.fixture
def node(module_node: VaxlaProcess) -> VaxlaProcess:
    """The tests of this module share one node (each uses its own extensions)."""
    return module_node


def _forward(node: VaxlaProcess, ext: str, *rules: dict[str, Any], seconds: int = 20) -> None:
    r = node.api("PUT", FWD.format(ext), json={"rules": list(rules), "no_answer_seconds": seconds})
    assert r.status_code == 200, r.text


async def _sipp_phone(
    node: VaxlaProcess, scenario: str, ext: str, call: str | None = None
) -> SippProcess:
    """A SIPp callee registered as ``ext`` that plays ``scenario``'s call
    (or ``call``, an out-of-call scenario that replaces the usual one)."""
    password = f"pw-{ext}"
    node.add_extension(ext, password)
    uas = await start_scenario(
        scenario, node.sip_addr, users=[(ext, password)], timeout=25, ooc_scenario=call
    )
    for _ in range(100):
        regs = node.api("GET", "/api/v1/registrations").json()
        if any(r["extension"] == ext for r in regs):
            return uas
        await asyncio.sleep(0.05)
    result = await uas.stop()
    raise AssertionError(f"{ext} never registered:\n" + result.describe())


async def test_unconditional_forwarding_rings_the_target_not_the_callee(
    node: VaxlaProcess, baresip_factory: BaresipFactory
) -> None:
    a = await registered_phone(node, baresip_factory, "3001", tone_hz=440.0)
    b = await registered_phone(node, baresip_factory, "3002", tone_hz=1000.0)
    c = await registered_phone(node, baresip_factory, "3003", tone_hz=1600.0)
    _forward(node, "3002", {"kind": "always", "target": "3003"})

    await a.dial(f"sip:3002@{node.sip_addr}")
    await a.wait_event("CALL_ESTABLISHED", 10)
    await c.wait_event("CALL_ESTABLISHED", 10)
    live = node.api("GET", "/api/v1/calls/live").json()
    assert [(x["caller"], x["callee"], x["state"]) for x in live] == [("3001", "3003", "answered")]
    presence = node.api("GET", "/api/v1/presence?extensions=3002,3003&detail=true").json()
    assert presence["3003"]["state"] == "busy"
    assert presence["3002"] == {
        "state": "free",
        "forwarding": [{"kind": "always", "target": "3003", "external": False}],
    }
    await asyncio.sleep(1.5)  # audio both ways
    await a.hangup()
    await c.wait_event("CALL_CLOSED", 5)
    assert tone_present(await c.wait_recording("dec"), 440.0, min_snr_db=15)
    assert tone_present(await a.wait_recording("dec"), 1600.0, min_snr_db=15)
    assert not [e for e in b.events if str(e.get("type", "")).startswith("CALL_")]

    [record] = node.call_records("3001")
    assert (record["callee"], record["result"], record["sip_status"]) == ("3003", "answered", 200)
    assert (record["forwarded_from"], record["forward_kind"]) == ("3002", "always")


async def test_busy_forwarding_carries_a_diversion_header(node: VaxlaProcess) -> None:
    node.add_extension("3101", "pw-3101")
    busy = await _sipp_phone(node, "uas_register_busy", "3102")
    target = await _sipp_phone(node, "uas_register_answer", "3103")
    _forward(node, "3102", {"kind": "busy", "target": "3103"})

    caller = await run_scenario_async(
        "uac_call", node.sip_addr, users=[("3101", "pw-3101")], service="3102", duration_ms=300
    )
    assert caller.ok, caller.describe()
    assert (await busy.wait(10)).ok
    answered = await target.wait(10)
    assert answered.ok, answered.describe()
    # RFC 5806: the target's phone learns who forwarded the call, and why.
    invite = answered.messages[answered.messages.index("INVITE sip:3103@") :]
    assert "Diversion: <sip:3102@127.0.0.1>;reason=user-busy;counter=1;privacy=off" in invite
    assert "To: <sip:3103@127.0.0.1>" in invite

    [record] = node.call_records("3101")
    assert (record["callee"], record["result"]) == ("3103", "answered")
    assert (record["forwarded_from"], record["forward_kind"]) == ("3102", "busy")


async def test_no_answer_forwarding_after_its_ring_time(
    node: VaxlaProcess, baresip_factory: BaresipFactory
) -> None:
    a = await registered_phone(node, baresip_factory, "3201", tone_hz=440.0)
    node.add_extension("3202", "pw-3202")
    b = await baresip_factory("p3202")
    await b.register("3202", "pw-3202", node.sip_addr, answermode="manual")
    c = await registered_phone(node, baresip_factory, "3203", tone_hz=1600.0)
    _forward(node, "3202", {"kind": "no-answer", "target": "3203"}, seconds=3)

    await a.dial(f"sip:3202@{node.sip_addr}")
    await b.wait_event("CALL_INCOMING", 10)  # 3202 rings and nobody answers...
    rang_at = time.monotonic()
    await c.wait_event("CALL_ESTABLISHED", 10)  # ...so after 3 s 3203 gets the call
    assert time.monotonic() - rang_at >= 2.5
    await b.wait_event("CALL_CLOSED", 5)
    await a.wait_event("CALL_ESTABLISHED", 5)
    await asyncio.sleep(1.5)  # audio both ways
    await c.hangup()
    await a.wait_event("CALL_CLOSED", 5)
    assert tone_present(await c.wait_recording("dec"), 440.0, min_snr_db=15)

    [record] = node.call_records("3201")
    assert (record["callee"], record["result"], record["hangup_by"]) == (
        "3203",
        "answered",
        "callee",
    )
    assert (record["forwarded_from"], record["forward_kind"]) == ("3202", "no-answer")


async def test_forwarding_target_answers_before_the_first_phone_stops_ringing(
    node: VaxlaProcess, baresip_factory: BaresipFactory
) -> None:
    """A slow phone acknowledges the CANCEL but ends its INVITE only 2 s
    later; the target answering meanwhile must still connect the caller
    (once a CI run lost the call here: the slow leg was cancelled twice)."""
    a = await registered_phone(node, baresip_factory, "3251", tone_hz=440.0)
    slow = await _sipp_phone(node, "uas_register_noanswer", "3252", call="uas_slow_cancel.xml")
    c = await registered_phone(node, baresip_factory, "3253", tone_hz=1600.0)
    _forward(node, "3252", {"kind": "no-answer", "target": "3253"}, seconds=3)

    await a.dial(f"sip:3252@{node.sip_addr}")
    await c.wait_event("CALL_ESTABLISHED", 10)
    await a.wait_event("CALL_ESTABLISHED", 2)  # while the slow phone still rings
    result = await slow.wait(10)
    assert result.ok, result.describe()
    assert result.messages.count("CANCEL sip:3252@") == 1, result.describe()
    await a.hangup()
    await c.wait_event("CALL_CLOSED", 5)
    [record] = node.call_records("3251")
    assert (record["callee"], record["result"], record["forward_kind"]) == (
        "3253",
        "answered",
        "no-answer",
    )


async def test_not_reachable_forwarding_and_a_loop_that_is_stopped(node: VaxlaProcess) -> None:
    node.add_extension("3301", "pw-3301")
    node.add_extension("3302", "pw-3302")  # no phone registered
    target = await _sipp_phone(node, "uas_register_answer", "3303")
    _forward(node, "3302", {"kind": "unreachable", "target": "3303"})
    _forward(node, "3303", {"kind": "always", "target": "3302"})  # back again: a loop

    caller = await run_scenario_async(
        "uac_call", node.sip_addr, users=[("3301", "pw-3301")], service="3302", duration_ms=300
    )
    assert caller.ok, caller.describe()
    answered = await target.wait(10)
    assert answered.ok, answered.describe()
    assert "Diversion: <sip:3302@127.0.0.1>;reason=unavailable" in answered.messages
    [record] = node.call_records("3301")
    assert (record["callee"], record["forwarded_from"], record["forward_kind"]) == (
        "3303",
        "3302",
        "unreachable",
    )
    logs = [r for r in node.log_records() if r.get("msg") == "forwarding stopped"]
    assert logs and logs[-1]["reason"] == "loop" and logs[-1]["at"] == "3303"


async def test_external_target_without_a_trunk_fails_clearly(node: VaxlaProcess) -> None:
    node.add_extension("3401", "pw-3401")
    node.add_extension("3402", "pw-3402")
    _forward(node, "3402", {"kind": "always", "target": "0701234567"})
    caller = await run_scenario_async(
        "uac_noanswer", node.sip_addr, users=[("3401", "pw-3401")], service="3402"
    )
    assert caller.ok, caller.describe()  # 480 at once
    assert "SIP/2.0 480" in caller.messages
    assert "+46701234567 needs an external line (trunk)" in caller.messages
    [record] = node.call_records("3401")
    assert (record["callee"], record["result"], record["forward_kind"]) == (
        "+46701234567",
        "unavailable",
        "always",
    )


async def _dial_code(phone: Any, node: VaxlaProcess, code: str) -> None:
    """Dial a forwarding code (``#`` escaped in the URI) and wait for Växla to hang up."""
    await phone.dial(f"sip:{code.replace('#', '%23')}@{node.sip_addr}")
    await phone.wait_event("CALL_ESTABLISHED", 10)
    await phone.wait_event("CALL_CLOSED", 10)


async def test_forwarding_codes_from_the_phone(
    node: VaxlaProcess, baresip_factory: BaresipFactory
) -> None:
    a = await registered_phone(node, baresip_factory, "3501")
    node.add_extension("3503", "pw-3503")

    await _dial_code(a, node, "*21*3503#")
    assert tone_present(await a.wait_recording("dec"), 1400.0, min_snr_db=10)  # confirmed
    rules = node.api("GET", FWD.format("3501")).json()["rules"]
    assert [(r["kind"], r["target"], r["enabled"]) for r in rules] == [("always", "3503", True)]

    await asyncio.sleep(1.1)  # baresip names recordings by the second
    await _dial_code(a, node, "#21#")  # off, the target kept
    rules = node.api("GET", FWD.format("3501")).json()["rules"]
    assert [(r["kind"], r["target"], r["enabled"]) for r in rules] == [("always", "3503", False)]

    await asyncio.sleep(1.1)
    await _dial_code(a, node, "*67*3501#")  # to itself: refused
    heard = dominant_frequencies(await a.wait_recording("dec"), n=3)
    for sit in (950.0, 1400.0, 1800.0):  # the special information tone
        assert any(abs(f - sit) < 10 for f in heard), heard
    assert len(node.api("GET", FWD.format("3501")).json()["rules"]) == 1

    audit = node.api("GET", "/api/v1/directory/audit?entity=extension&limit=100").json()
    mine = [e for e in audit if e["entity_id"] == "3501" and "forwarding" in e["action"]]
    assert {e["action"] for e in mine} == {"set-forwarding", "disable-forwarding"}
    assert all(e["actor"] == "3501" and e["after"]["via"] == "phone" for e in mine)
