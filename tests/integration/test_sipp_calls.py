"""SIPp against a running ``vaxla serve``: registration and call flows."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.peers.sipp import SippProcess, SippResult, run_scenario_async, start_scenario
from tests.support.server import VaxlaProcess

pytestmark = [pytest.mark.peers, pytest.mark.slow]

_numbers = itertools.count(2000, 2)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VaxlaProcess]:
    # One node for the module; a short no-answer timeout keeps that test quick.
    proc = VaxlaProcess(
        tmp_path_factory.mktemp("sipp") / "node", env={"VAXLA_SIP__NO_ANSWER_TIMEOUT": "3"}
    )
    try:
        proc.start()
        yield proc
    finally:
        proc.stop()


@dataclass
class Pbx:
    """The shared node and a fresh caller/callee pair for one test."""

    node: VaxlaProcess
    caller: tuple[str, str]
    callee: tuple[str, str]

    @property
    def sip_addr(self) -> str:
        return self.node.sip_addr

    def calls(self, n: int = 1) -> list[dict[str, Any]]:
        """This test's call records (the caller is unique to the test)."""
        deadline = time.monotonic() + 5
        while True:
            mine = [c for c in self.node.calls() if c["caller"] == self.caller[0]]
            if len(mine) >= n or time.monotonic() > deadline:
                return mine
            time.sleep(0.1)


@pytest.fixture
def pbx(node: VaxlaProcess) -> Pbx:
    first = next(_numbers)
    caller = (str(first), f"caller-{first}")
    callee = (str(first + 1), f"callee-{first + 1}")
    node.add_extension(*caller, name="Anna Andersson")
    node.add_extension(*callee, name="Erik Johansson")
    return Pbx(node, caller, callee)


async def _dial(pbx: Pbx, scenario: str, number: str, **kwargs: Any) -> SippResult:
    return await run_scenario_async(
        scenario, pbx.sip_addr, users=[pbx.caller], service=number, **kwargs
    )


async def _registered_callee(pbx: Pbx, scenario: str) -> SippProcess:
    uas = await start_scenario(scenario, pbx.sip_addr, users=[pbx.callee], timeout=25)
    for _ in range(100):
        regs = pbx.node.api("GET", "/api/v1/registrations").json()
        if any(r["extension"] == pbx.callee[0] for r in regs):
            return uas
        await asyncio.sleep(0.05)
    result = await uas.stop()
    raise AssertionError("callee never registered:\n" + result.describe())


async def test_register_with_digest_auth(pbx: Pbx) -> None:
    result = await run_scenario_async("register", pbx.sip_addr, users=[pbx.caller])
    assert result.ok, result.describe()
    regs = pbx.node.api("GET", "/api/v1/registrations").json()
    mine = [r for r in regs if r["extension"] == pbx.caller[0]]
    assert len(mine) == 1 and mine[0]["transport"] == "udp"
    assert "WWW-Authenticate: Digest" in result.messages
    assert pbx.node.metric("vaxla_registrations") >= 1


async def test_call_answered_through_vaxla(pbx: Pbx) -> None:
    uas = await _registered_callee(pbx, "uas_register_answer")
    uac = await run_scenario_async(
        "uac_call", pbx.sip_addr, users=[pbx.caller], service=pbx.callee[0], duration_ms=300
    )
    assert uac.ok, uac.describe()
    callee_result = await uas.wait(10)
    assert callee_result.ok, callee_result.describe()
    assert "407 Proxy Authentication Required" in uac.messages
    # The callee saw Växla's INVITE, not the caller's: a B2BUA rewrites the dialog.
    assert f"INVITE sip:{pbx.callee[0]}@127.0.0.1" in callee_result.messages
    calls = pbx.calls(1)
    assert len(calls) == 1
    call = calls[0]
    assert (call["caller"], call["callee"], call["result"]) == (
        pbx.caller[0],
        pbx.callee[0],
        "answered",
    )
    assert call["answered_at"] is not None and call["ended_at"] is not None
    assert call["hangup_by"] == "caller" and call["sip_status"] == 200


async def test_cancel_before_answer(pbx: Pbx) -> None:
    uas = await _registered_callee(pbx, "uas_register_noanswer")
    uac = await run_scenario_async(
        "uac_cancel", pbx.sip_addr, users=[pbx.caller], service=pbx.callee[0]
    )
    assert uac.ok, uac.describe()
    callee_result = await uas.wait(10)
    assert callee_result.ok, callee_result.describe()
    assert "CANCEL sip:" in callee_result.messages  # Växla cancelled the callee's leg
    call = pbx.calls(1)[0]
    assert call["result"] == "cancelled" and call["sip_status"] == 487
    assert call["answered_at"] is None


async def test_busy(pbx: Pbx) -> None:
    uas = await _registered_callee(pbx, "uas_register_busy")
    uac = await run_scenario_async(
        "uac_busy", pbx.sip_addr, users=[pbx.caller], service=pbx.callee[0]
    )
    assert uac.ok, uac.describe()
    assert "SIP/2.0 486" in uac.messages
    assert (await uas.wait(10)).ok
    call = pbx.calls(1)[0]
    assert call["result"] == "busy" and call["sip_status"] == 486


async def test_no_answer_times_out(pbx: Pbx) -> None:
    uas = await _registered_callee(pbx, "uas_register_noanswer")
    uac = await run_scenario_async(
        "uac_noanswer", pbx.sip_addr, users=[pbx.caller], service=pbx.callee[0]
    )
    assert uac.ok, uac.describe()
    assert "SIP/2.0 480" in uac.messages
    callee_result = await uas.wait(10)
    assert "CANCEL sip:" in callee_result.messages
    call = pbx.calls(1)[0]
    assert call["result"] == "no-answer" and call["sip_status"] == 480


async def test_unknown_number(pbx: Pbx) -> None:
    uac = await run_scenario_async(
        "uac_not_found", pbx.sip_addr, users=[pbx.caller], service="2999"
    )
    assert uac.ok, uac.describe()
    assert "SIP/2.0 404" in uac.messages
    call = pbx.calls(1)[0]
    assert call["result"] == "not-found" and call["callee"] == "2999"
    assert "Proxy-Authenticate" in uac.messages  # unknown callers learn nothing unauthenticated


async def test_unregistered_callee_is_unavailable(pbx: Pbx) -> None:
    uac = await run_scenario_async(
        "uac_noanswer", pbx.sip_addr, users=[pbx.caller], service=pbx.callee[0]
    )
    # Nobody registered on the callee: Växla answers 480 at once (the no-answer
    # scenario expects exactly that status).
    assert uac.ok, uac.describe()
    assert uac.duration < 3
    call = pbx.calls(1)[0]
    assert call["result"] == "unavailable"
