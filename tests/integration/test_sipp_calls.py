"""SIPp against a running ``vaxla serve``: registration and call flows."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.peers.sipp import SippProcess, run_scenario_async, start_scenario
from tests.support.server import VaxlaProcess

pytestmark = [pytest.mark.peers, pytest.mark.slow]

CALLER = ("2001", "caller-secret")
CALLEE = ("2002", "callee-secret")


@pytest.fixture
def pbx(tmp_path: Path) -> Iterator[VaxlaProcess]:
    # A short no-answer timeout keeps the no-answer test quick.
    proc = VaxlaProcess(tmp_path / "node", env={"VAXLA_SIP__NO_ANSWER_TIMEOUT": "3"})
    try:
        proc.start()
        proc.add_extension(*CALLER, name="Anna Andersson")
        proc.add_extension(*CALLEE, name="Erik Johansson")
        yield proc
    finally:
        proc.stop()


async def _registered_callee(pbx: VaxlaProcess, scenario: str) -> SippProcess:
    uas = await start_scenario(scenario, pbx.sip_addr, users=[CALLEE], timeout=25)
    for _ in range(100):
        if any(r["extension"] == CALLEE[0] for r in pbx.api("GET", "/api/v1/registrations").json()):
            return uas
        await asyncio.sleep(0.05)
    result = await uas.stop()
    raise AssertionError("callee never registered:\n" + result.describe())


async def test_register_with_digest_auth(pbx: VaxlaProcess) -> None:
    result = await run_scenario_async("register", pbx.sip_addr, users=[CALLER])
    assert result.ok, result.describe()
    regs = pbx.api("GET", "/api/v1/registrations").json()
    assert [r["extension"] for r in regs] == [CALLER[0]]
    assert regs[0]["transport"] == "udp"
    assert "WWW-Authenticate: Digest" in result.messages
    assert pbx.metric("vaxla_registrations") == 1


async def test_call_answered_through_vaxla(pbx: VaxlaProcess) -> None:
    uas = await _registered_callee(pbx, "uas_register_answer")
    uac = await run_scenario_async(
        "uac_call", pbx.sip_addr, users=[CALLER], service=CALLEE[0], duration_ms=300
    )
    assert uac.ok, uac.describe()
    callee_result = await uas.wait(10)
    assert callee_result.ok, callee_result.describe()
    assert "407 Proxy Authentication Required" in uac.messages
    # The callee saw Växla's INVITE, not the caller's: a B2BUA rewrites the dialog.
    assert "INVITE sip:2002@127.0.0.1" in callee_result.messages
    calls = pbx.wait_for_calls(1)
    assert len(calls) == 1
    call = calls[0]
    assert (call["caller"], call["callee"], call["result"]) == ("2001", "2002", "answered")
    assert call["answered_at"] is not None and call["ended_at"] is not None
    assert call["hangup_by"] == "caller" and call["sip_status"] == 200


async def test_cancel_before_answer(pbx: VaxlaProcess) -> None:
    uas = await _registered_callee(pbx, "uas_register_noanswer")
    uac = await run_scenario_async("uac_cancel", pbx.sip_addr, users=[CALLER], service=CALLEE[0])
    assert uac.ok, uac.describe()
    callee_result = await uas.wait(10)
    assert callee_result.ok, callee_result.describe()
    assert "CANCEL sip:" in callee_result.messages  # Växla cancelled the callee's leg
    call = pbx.wait_for_calls(1)[0]
    assert call["result"] == "cancelled" and call["sip_status"] == 487
    assert call["answered_at"] is None


async def test_busy(pbx: VaxlaProcess) -> None:
    uas = await _registered_callee(pbx, "uas_register_busy")
    uac = await run_scenario_async("uac_busy", pbx.sip_addr, users=[CALLER], service=CALLEE[0])
    assert uac.ok, uac.describe()
    assert "SIP/2.0 486" in uac.messages
    assert (await uas.wait(10)).ok
    call = pbx.wait_for_calls(1)[0]
    assert call["result"] == "busy" and call["sip_status"] == 486


async def test_no_answer_times_out(pbx: VaxlaProcess) -> None:
    uas = await _registered_callee(pbx, "uas_register_noanswer")
    uac = await run_scenario_async("uac_noanswer", pbx.sip_addr, users=[CALLER], service=CALLEE[0])
    assert uac.ok, uac.describe()
    assert "SIP/2.0 480" in uac.messages
    callee_result = await uas.wait(10)
    assert "CANCEL sip:" in callee_result.messages
    call = pbx.wait_for_calls(1)[0]
    assert call["result"] == "no-answer" and call["sip_status"] == 480


async def test_unknown_number(pbx: VaxlaProcess) -> None:
    uac = await run_scenario_async("uac_not_found", pbx.sip_addr, users=[CALLER], service="2999")
    assert uac.ok, uac.describe()
    assert "SIP/2.0 404" in uac.messages
    call = pbx.wait_for_calls(1)[0]
    assert call["result"] == "not-found" and call["callee"] == "2999"


async def test_unregistered_callee_is_unavailable(pbx: VaxlaProcess) -> None:
    uac = await run_scenario_async("uac_noanswer", pbx.sip_addr, users=[CALLER], service=CALLEE[0])
    # Nobody registered on 2002: Växla answers 480 at once (the no-answer
    # scenario expects exactly that status).
    assert uac.ok, uac.describe()
    assert uac.duration < 3
    call = pbx.wait_for_calls(1)[0]
    assert call["result"] == "unavailable"
