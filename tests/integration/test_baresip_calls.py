"""Two real phones (baresip) register with digest auth and call through Växla."""

from __future__ import annotations

import asyncio

import pytest

from tests.peers.audio import dominant_frequencies, read_wav, tone_present, tone_snr_db
from tests.peers.baresip import BaresipPhone
from tests.peers.fixtures import BaresipFactory
from tests.support.server import VaxlaProcess

pytestmark = [pytest.mark.slow, pytest.mark.peers]

ALICE_HZ = 440.0
BOB_HZ = 1000.0


async def _two_registered_phones(
    node: VaxlaProcess, factory: BaresipFactory
) -> tuple[BaresipPhone, BaresipPhone]:
    node.add_extension("1001", "alice-secret", name="Alice Åberg")
    node.add_extension("1002", "bob-secret", name="Bob Öst")
    alice = await factory("alice", tone_hz=ALICE_HZ)
    bob = await factory("bob", tone_hz=BOB_HZ)
    await alice.register("1001", "alice-secret", node.sip_addr)
    await bob.register("1002", "bob-secret", node.sip_addr)
    regs = {r["extension"] for r in node.api("GET", "/api/v1/registrations").json()}
    assert regs == {"1001", "1002"}
    return alice, bob


@pytest.mark.parametrize("hangup_side", ["caller", "callee"])
async def test_call_audio_dtmf_and_hangup(
    node: VaxlaProcess, baresip_factory: BaresipFactory, hangup_side: str
) -> None:
    alice, bob = await _two_registered_phones(node, baresip_factory)

    await alice.dial(f"sip:1002@{node.sip_addr}")
    out = await alice.wait_event("CALL_ESTABLISHED", 10)
    inc = await bob.wait_event("CALL_ESTABLISHED", 10)
    assert out["direction"] == "outgoing" and inc["direction"] == "incoming"
    # A B2BUA: each phone has its own dialog with Växla.
    assert out["id"] != inc["id"]
    await alice.wait_event("CALL_RTPESTAB", 5)
    await bob.wait_event("CALL_RTPESTAB", 5)
    await asyncio.sleep(1.5)  # audio both ways

    await alice.send_dtmf("7")
    assert (await bob.wait_event("CALL_DTMF_START", 5))["param"] == "7"
    await bob.send_dtmf("#")
    assert (await alice.wait_event("CALL_DTMF_START", 5))["param"] == "#"
    await asyncio.sleep(0.5)

    hanger, other = (alice, bob) if hangup_side == "caller" else (bob, alice)
    await hanger.hangup()
    await hanger.wait_event("CALL_CLOSED", 5)
    await other.wait_event("CALL_CLOSED", 5)

    heard_by_alice = await alice.wait_recording("dec")
    heard_by_bob = await bob.wait_recording("dec")
    samples, rate = read_wav(heard_by_alice)
    assert rate == 8000 and len(samples) / rate > 1.5
    assert abs(dominant_frequencies(heard_by_alice, n=1)[0] - BOB_HZ) < 5
    assert abs(dominant_frequencies(heard_by_bob, n=1)[0] - ALICE_HZ) < 5
    assert tone_present(heard_by_alice, BOB_HZ, min_snr_db=20)
    assert tone_present(heard_by_bob, ALICE_HZ, min_snr_db=20)
    assert tone_snr_db(heard_by_alice, ALICE_HZ) < 0  # nobody hears themself
    assert tone_snr_db(heard_by_bob, BOB_HZ) < 0
    assert alice.audio_codecs_used()[:1] == ["PCMA"]

    calls = node.wait_for_calls(1)
    assert len(calls) == 1
    call = calls[0]
    assert (call["caller"], call["callee"], call["result"]) == ("1001", "1002", "answered")
    assert call["hangup_by"] == hangup_side
    assert call["answered_at"] is not None and call["ended_at"] is not None
    assert call["started_at"] <= call["answered_at"] <= call["ended_at"]


async def test_wrong_password_never_binds(
    node: VaxlaProcess, baresip_factory: BaresipFactory
) -> None:
    node.add_extension("1003", "right-secret")
    phone = await baresip_factory("mallory")
    event = await phone.register("1003", "wrong-secret", node.sip_addr, check=False)
    assert event["type"] == "REGISTER_FAIL"
    assert "403" in event.get("param", "") or "401" in event.get("param", "")
    assert node.api("GET", "/api/v1/registrations").json() == []


async def test_hold_and_resume_reinvite_pass_through(
    node: VaxlaProcess, baresip_factory: BaresipFactory
) -> None:
    alice, bob = await _two_registered_phones(node, baresip_factory)
    await alice.dial(f"sip:1002@{node.sip_addr}")
    await alice.wait_event("CALL_ESTABLISHED", 10)
    await bob.wait_event("CALL_ESTABLISHED", 10)
    before = bob.log_text().count("got re-INVITE")
    await alice.command("hold")
    for _ in range(50):
        if bob.log_text().count("got re-INVITE") > before:
            break
        await asyncio.sleep(0.1)
    assert bob.log_text().count("got re-INVITE") == before + 1
    await alice.command("resume")
    for _ in range(50):
        if bob.log_text().count("got re-INVITE") > before + 1:
            break
        await asyncio.sleep(0.1)
    assert bob.log_text().count("got re-INVITE") == before + 2
    # Both re-INVITEs were answered with 200 and passed back to the caller.
    assert node.metric("vaxla_sip_messages_sent_total", {"method": "INVITE", "status": "200"}) == 3
    await bob.hangup()
    await alice.wait_event("CALL_CLOSED", 5)
    call = node.wait_for_calls(1)[0]
    assert call["result"] == "answered" and call["hangup_by"] == "callee"


async def test_parallel_forking_to_every_contact(
    node: VaxlaProcess, baresip_factory: BaresipFactory
) -> None:
    node.add_extension("1001", "alice-secret")
    node.add_extension("1002", "bob-secret")
    alice = await baresip_factory("alice", tone_hz=ALICE_HZ)
    desk = await baresip_factory("desk", tone_hz=BOB_HZ)
    mobile = await baresip_factory("mobile", tone_hz=BOB_HZ)
    await alice.register("1001", "alice-secret", node.sip_addr)
    await desk.register("1002", "bob-secret", node.sip_addr, answermode="manual")
    await mobile.register("1002", "bob-secret", node.sip_addr, answermode="manual")
    regs = node.api("GET", "/api/v1/registrations").json()
    assert sorted(r["extension"] for r in regs) == ["1001", "1002", "1002"]

    await alice.dial(f"sip:1002@{node.sip_addr}")
    await desk.wait_event("CALL_INCOMING", 10)
    await mobile.wait_event("CALL_INCOMING", 10)  # both ring at once
    await mobile.answer()
    await alice.wait_event("CALL_ESTABLISHED", 10)
    await mobile.wait_event("CALL_ESTABLISHED", 10)
    await desk.wait_event("CALL_CLOSED", 10)  # the loser was cancelled
    assert not [e for e in desk.events if e["type"] == "CALL_ESTABLISHED"]
    await alice.hangup()
    await mobile.wait_event("CALL_CLOSED", 5)
    call = node.wait_for_calls(1)[0]
    assert call["result"] == "answered"
