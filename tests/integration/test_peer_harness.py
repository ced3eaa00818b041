"""The real-peer harness works on its own, without Växla.

Two baresip phones call each other directly over loopback (audio both ways,
DTMF both ways, hang-up), SIPp's built-in UAC calls its built-in UAS, and
every bundled SIPp scenario completes against a SIPp stand-in for Växla
(and fails when the far end answers differently).
"""

from __future__ import annotations

import asyncio
import hashlib
import re

import pytest

from tests.peers import fixtures as peer_fixtures
from tests.peers.audio import dominant_frequencies, read_wav, tone_present, tone_snr_db
from tests.peers.baresip import BaresipPhone
from tests.peers.fixtures import BaresipFactory, SippFactory
from tests.peers.sipp import SippResult, run_scenario_async

pytestmark = [pytest.mark.slow, pytest.mark.peers]

baresip_factory = peer_fixtures.baresip_factory
sipp_factory = peer_fixtures.sipp_factory

USERS = [("1001", "secret-1001")]

ALICE_HZ = 440.0
BOB_HZ = 1000.0


async def _established(caller: BaresipPhone, callee: BaresipPhone) -> None:
    out = await caller.wait_event("CALL_ESTABLISHED", 10)
    inc = await callee.wait_event("CALL_ESTABLISHED", 10)
    assert out["direction"] == "outgoing"
    assert inc["direction"] == "incoming"
    assert out["id"] == inc["id"], "both ends must report the same call (Call-ID)"


async def test_two_baresip_phones_talk_dtmf_and_hang_up(
    baresip_factory: BaresipFactory,
) -> None:
    alice = await baresip_factory("alice", tone_hz=ALICE_HZ)
    bob = await baresip_factory("bob", tone_hz=BOB_HZ)
    await alice.add_account()
    await bob.add_account()  # answermode=auto

    await alice.dial(bob.contact_uri())
    await _established(alice, bob)
    assert (await bob.wait_event("CALL_RTPESTAB", 5))["param"] == "audio"
    assert (await alice.wait_event("CALL_RTPESTAB", 5))["param"] == "audio"

    await asyncio.sleep(1.5)  # let audio flow both ways
    await alice.send_dtmf("5")
    dtmf = await bob.wait_event("CALL_DTMF_START", 5)
    assert dtmf["param"] == "5"
    await bob.send_dtmf("#")
    dtmf = await alice.wait_event("CALL_DTMF_START", 5)
    assert dtmf["param"] == "#"
    await asyncio.sleep(1.0)

    await alice.hangup()
    closed_a = await alice.wait_event("CALL_CLOSED", 5)
    closed_b = await bob.wait_event("CALL_CLOSED", 5)
    assert closed_a["id"] == closed_b["id"]

    # PCMA is preferred by both accounts
    assert alice.audio_codecs_used()[:1] == ["PCMA"]
    assert bob.audio_codecs_used()[:1] == ["PCMA"]

    heard_by_alice = await alice.wait_recording("dec")
    heard_by_bob = await bob.wait_recording("dec")
    samples, rate = read_wav(heard_by_alice)
    assert rate == 8000
    assert len(samples) / rate > 1.5, "at least 1.5 s of received audio"

    top_a = dominant_frequencies(heard_by_alice, n=1)
    top_b = dominant_frequencies(heard_by_bob, n=1)
    assert top_a and abs(top_a[0] - BOB_HZ) < 5, top_a
    assert top_b and abs(top_b[0] - ALICE_HZ) < 5, top_b
    assert tone_present(heard_by_alice, BOB_HZ, min_snr_db=20)
    assert tone_present(heard_by_bob, ALICE_HZ, min_snr_db=20)
    # each side hears the other, not itself
    assert tone_snr_db(heard_by_alice, ALICE_HZ) < 0
    assert tone_snr_db(heard_by_bob, BOB_HZ) < 0
    # and what each sent is its own tone
    sent_by_alice = alice.sent_wav_path()
    assert sent_by_alice is not None
    assert tone_present(sent_by_alice, ALICE_HZ, min_snr_db=20)


async def test_baresip_manual_answer_and_callee_hangup(baresip_factory: BaresipFactory) -> None:
    alice = await baresip_factory("alice", tone_hz=ALICE_HZ)
    bob = await baresip_factory("bob", tone_hz=BOB_HZ)
    await alice.add_account()
    await bob.add_account(answermode="manual")

    await alice.dial(bob.contact_uri())
    incoming = await bob.wait_event("CALL_INCOMING", 5)
    assert incoming["peeruri"] == alice.contact_uri()
    await alice.wait_event("CALL_RINGING", 5)
    await bob.answer()
    await _established(alice, bob)

    await bob.hangup()
    await bob.wait_event("CALL_CLOSED", 5)
    await alice.wait_event("CALL_CLOSED", 5)


async def test_sipp_builtin_uac_calls_builtin_uas(sipp_factory: SippFactory) -> None:
    uas = await sipp_factory("uas", calls=1, timeout=20)
    uac = await run_scenario_async(
        "uac", f"127.0.0.1:{uas.local_port}", calls=1, duration_ms=200, timeout=20
    )
    server = await uas.wait(20)
    assert uac.ok, uac.describe()
    assert server.ok, server.describe()
    assert uac.successful_calls == 1 and uac.failed_calls == 0, uac.stats
    assert server.successful_calls == 1, server.stats
    assert "BYE sip:" in uac.messages


# ------------------------------------------------- bundled scenarios vs stand-ins


def _digest_params(header: str) -> dict[str, str]:
    return {k: v1 or v2 for k, v1, v2 in re.findall(r'(\w+)=(?:"([^"]*)"|([^,\s]*))', header)}


def _assert_digest_matches_request_uri(messages: str, method: str, password: str) -> None:
    """Recompute the MD5 digest a SIPp client sent and check its uri is the Request-URI."""
    blocks = [b for b in messages.split("\n\n") if "uthorization: Digest" in b]
    assert blocks, "no request with credentials in the message log"
    request = blocks[-1][blocks[-1].index(f"{method} ") :]
    request_uri = request.split()[1]
    auth_line = next(line for line in request.splitlines() if "uthorization: Digest" in line)
    p = _digest_params(auth_line.split("Digest", 1)[1])
    assert p["uri"] == request_uri, f"digest uri {p['uri']} != Request-URI {request_uri}"

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    ha1 = md5(f"{p['username']}:{p['realm']}:{password}")
    ha2 = md5(f"{method}:{p['uri']}")
    if p.get("qop"):
        expected = md5(f"{ha1}:{p['nonce']}:{p['nc']}:{p['cnonce']}:{p['qop']}:{ha2}")
    else:
        expected = md5(f"{ha1}:{p['nonce']}:{ha2}")
    assert p["response"] == expected


async def _client_vs_standin(
    sipp_factory: SippFactory,
    standin: str,
    client: str,
    *,
    users: list[tuple[str, str]] = USERS,
    **client_kwargs: object,
) -> tuple[SippResult, SippResult]:
    server = await sipp_factory(f"standin/{standin}", users=USERS, timeout=15)
    result = await run_scenario_async(
        client, f"127.0.0.1:{server.local_port}", users=users, timeout=15, **client_kwargs
    )
    return result, await server.wait(15)


async def test_register_scenario_against_verifyauth_registrar(
    sipp_factory: SippFactory,
) -> None:
    client, registrar = await _client_vs_standin(sipp_factory, "registrar", "register")
    assert client.ok, client.describe()
    assert registrar.ok, registrar.describe()  # <verifyauth> accepted the credentials
    _assert_digest_matches_request_uri(client.messages, "REGISTER", USERS[0][1])


async def test_register_wrong_password_scenario(sipp_factory: SippFactory) -> None:
    client, registrar = await _client_vs_standin(
        sipp_factory, "registrar", "register_wrong_password", users=[("1001", "not-it")]
    )
    assert client.ok, client.describe()
    assert registrar.ok, registrar.describe()
    assert "SIP/2.0 403 Forbidden" in client.messages
    # and the same scenario fails when the registrar accepts the password
    accepted, _ = await _client_vs_standin(sipp_factory, "registrar", "register_wrong_password")
    assert not accepted.ok


@pytest.mark.parametrize(
    ("client", "standin", "duration_ms"),
    [
        ("uac_call", "invite_answer", 300),
        ("uac_cancel", "invite_ring", 300),
        ("uac_busy", "invite_reject_486", None),
        ("uac_not_found", "invite_reject_404", None),
        ("uac_noanswer", "invite_reject_480", None),
        ("uac_noanswer", "invite_reject_408", None),
    ],
)
async def test_uac_scenarios_against_standin(
    sipp_factory: SippFactory, client: str, standin: str, duration_ms: int | None
) -> None:
    result, server = await _client_vs_standin(
        sipp_factory, standin, client, service="1002", duration_ms=duration_ms
    )
    assert result.ok, result.describe()
    assert server.ok, server.describe()
    assert result.successful_calls == 1
    _assert_digest_matches_request_uri(result.messages, "INVITE", USERS[0][1])


@pytest.mark.parametrize(
    ("client", "standin"),
    [("uac_not_found", "invite_reject_486"), ("uac_busy", "invite_answer")],
)
async def test_uac_scenarios_fail_on_other_status(
    sipp_factory: SippFactory, client: str, standin: str
) -> None:
    result, _ = await _client_vs_standin(sipp_factory, standin, client, service="1002")
    assert not result.ok
    assert result.failed_calls == 1


@pytest.mark.parametrize(
    ("callee", "caller", "duration_ms"),
    [
        ("uas_register_answer", "uac", 200),
        ("uas_register_busy", "standin/caller_busy", None),
        ("uas_register_noanswer", "standin/caller_cancel", 300),
    ],
)
async def test_uas_scenarios_register_then_take_a_call(
    sipp_factory: SippFactory, callee: str, caller: str, duration_ms: int | None
) -> None:
    registrar = await sipp_factory("standin/registrar", users=USERS, timeout=15)
    phone = await sipp_factory(callee, f"127.0.0.1:{registrar.local_port}", users=USERS, timeout=15)
    registered = await registrar.wait(10)
    assert registered.ok, registered.describe()
    assert f"Contact: <sip:1001@127.0.0.1:{phone.local_port}" in registered.messages

    call = await run_scenario_async(
        caller,
        f"127.0.0.1:{phone.local_port}",
        service="1001",
        duration_ms=duration_ms,
        timeout=10,
    )
    done = await phone.wait(15)
    assert call.ok, call.describe()
    assert done.ok, done.describe()
    assert done.duration < 10


async def test_uas_register_scenario_fails_without_a_call(sipp_factory: SippFactory) -> None:
    registrar = await sipp_factory("standin/registrar", users=USERS, timeout=15)
    phone = await sipp_factory(
        "uas_register_answer", f"127.0.0.1:{registrar.local_port}", users=USERS, timeout=2
    )
    assert (await registrar.wait(10)).ok
    result = await phone.wait(10)
    assert not result.ok
    assert "timed out" in result.errors


async def test_baresip_registers_with_digest_auth(
    baresip_factory: BaresipFactory, sipp_factory: SippFactory
) -> None:
    registrar = await sipp_factory("standin/registrar", users=USERS, timeout=15)
    phone = await baresip_factory("reg")
    event = await phone.register("1001", USERS[0][1], f"127.0.0.1:{registrar.local_port}")
    assert event["type"] == "REGISTER_OK"
    result = await registrar.wait(10)
    assert result.ok, result.describe()  # <verifyauth> accepted baresip's MD5 digest
    assert "Authorization: Digest" in result.messages
    # baresip's Contact user is not the AOR user: "1001-0x55ab23095cc0"
    assert re.search(rf"Contact: <sip:1001[^@]*@127\.0\.0\.1:{phone.sip_port}[;>]", result.messages)


async def test_baresip_registration_failure_is_reported(
    baresip_factory: BaresipFactory, sipp_factory: SippFactory
) -> None:
    registrar = await sipp_factory("standin/registrar", users=USERS, timeout=15)
    phone = await baresip_factory("reg")
    event = await phone.register(
        "1001", "wrong-password", f"127.0.0.1:{registrar.local_port}", check=False
    )
    assert event["type"] == "REGISTER_FAIL"
    assert "403" in event.get("param", ""), event
    assert (await registrar.wait(10)).ok


async def test_sipp_builtin_uac_calls_baresip(baresip_factory: BaresipFactory) -> None:
    bob = await baresip_factory("bob", tone_hz=BOB_HZ)
    await bob.add_account()
    result = await run_scenario_async(
        "uac", f"127.0.0.1:{bob.sip_port}", service="bob", duration_ms=500, timeout=15
    )
    assert result.ok, result.describe()
    await bob.wait_event("CALL_ESTABLISHED", 5)
    await bob.wait_event("CALL_CLOSED", 5)
    # SIPp's built-in UAC offers PCMU only: baresip falls back from PCMA
    assert bob.audio_codecs_used()[:1] == ["PCMU"]
