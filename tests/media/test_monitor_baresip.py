"""Listen-in (9003) and whisper (9004) on an anchored call, three baresip phones.

A (1001, 440 Hz) calls B (1002, 1000 Hz). For whisper the node anchors
every call; for listen-in it anchors none, so the service has to put the
call's media through Växla (re-INVITEs) when C asks for it. C (1003,
1700 Hz), a supervisor (listen-in) or an operator (whisper), dials the
service number and keys ``1002#``. Who hears whom is read from each
phone's recording of what it received (FFT), in the stretch of time while
C was attached.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.peers.audio import FloatArray, read_wav, tone_snr_db
from tests.peers.baresip import BaresipPhone
from tests.peers.fixtures import BaresipFactory
from tests.support.phones import registered_phone
from tests.support.server import VaxlaProcess

pytestmark = [pytest.mark.slow, pytest.mark.peers]

A_HZ, B_HZ, C_HZ = 440.0, 1000.0, 1700.0
TONES = (A_HZ, B_HZ, C_HZ)


def _add_user(node: VaxlaProcess, username: str, role: str, extension: str) -> None:
    r = node.api(
        "POST",
        "/api/v1/users",
        json={
            "username": username,
            "password": f"{username}-password",
            "roles": [role],
            "extension": extension,
        },
    )
    assert r.status_code == 201, r.text


class Heard:
    """What a phone received, placed on the test's clock: the recording ends
    when the phone's call closed."""

    def __init__(self, samples: FloatArray, rate: int, closed_at: float) -> None:
        self.samples, self.rate, self.closed_at = samples, rate, closed_at

    @classmethod
    async def of(cls, phone: BaresipPhone, closed_at: float) -> Heard:
        samples, rate = read_wav(await phone.wait_recording("dec"))
        return cls(samples, rate, closed_at)

    def between(self, start: float, stop: float) -> tuple[FloatArray, int]:
        n = len(self.samples)
        lo = max(0, n - round((self.closed_at - start) * self.rate))
        hi = max(0, n - round((self.closed_at - stop) * self.rate))
        assert hi - lo > self.rate, (lo, hi)  # at least a second to analyse
        return self.samples[lo:hi], self.rate

    def snr(self, start: float, stop: float, hz: float) -> float:
        """How clearly the ``hz`` tone stands out (the other test tones excluded)."""
        others = [f for f in TONES if f != hz]
        return tone_snr_db(self.between(start, stop), hz, other_tones_hz=others)


async def _wait_log(node: VaxlaProcess, msg: str, timeout: float = 5.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [r for r in node.log_records() if r.get("msg") == msg]
        if found:
            return found[-1]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {msg!r} in the node's log")


async def _closed(phone: BaresipPhone) -> float:
    await phone.wait_event("CALL_CLOSED", 5)
    return time.monotonic()


@pytest.mark.parametrize(
    ("number", "node_fixture"),
    [("9003", "node"), ("9004", "anchoring_node")],
    ids=["listen-in-on-a-direct-call", "whisper-on-an-anchored-call"],
)
async def test_supervisor_listens_in_or_whispers(
    request: pytest.FixtureRequest,
    baresip_factory: BaresipFactory,
    number: str,
    node_fixture: str,
) -> None:
    node: VaxlaProcess = request.getfixturevalue(node_fixture)
    whisper = number == "9004"
    _add_user(node, "chef", "operator" if whisper else "supervisor", "1003")
    a = await registered_phone(node, baresip_factory, "1001", tone_hz=A_HZ)
    b = await registered_phone(node, baresip_factory, "1002", tone_hz=B_HZ)
    c = await registered_phone(node, baresip_factory, "1003", tone_hz=C_HZ)
    await a.dial(f"sip:1002@{node.sip_addr}")
    await a.wait_event("CALL_ESTABLISHED", 10)
    await b.wait_event("CALL_ESTABLISHED", 10)

    await c.dial(f"sip:{number}@{node.sip_addr}")
    await c.wait_event("CALL_ESTABLISHED", 10)
    await asyncio.sleep(0.5)
    await c.send_dtmf("1002#")
    started = await _wait_log(node, "monitor started")
    attached = time.monotonic()
    assert (started["caller"], started["callee"], started["target"]) == ("1001", "1002", "1002")
    await asyncio.sleep(3.0)
    detached = time.monotonic()
    await c.hangup()
    c_closed = await _closed(c)
    await asyncio.sleep(2.0)  # A and B alone again
    await a.hangup()
    a_closed, b_closed = await _closed(a), await _closed(b)

    by_c = await Heard.of(c, c_closed)
    by_a = await Heard.of(a, a_closed)
    by_b = await Heard.of(b, b_closed)
    during = (attached + 0.5, detached - 0.2)
    after = (c_closed + 0.5, a_closed - 0.3)
    # the supervisor hears both parties
    assert by_c.snr(*during, A_HZ) > 10, by_c.snr(*during, A_HZ)
    assert by_c.snr(*during, B_HZ) > 10, by_c.snr(*during, B_HZ)
    # the parties go on hearing each other
    assert by_a.snr(*during, B_HZ) > 10
    assert by_b.snr(*during, A_HZ) > 10
    # the caller's party never hears the supervisor
    assert by_a.snr(*during, C_HZ) < -20, by_a.snr(*during, C_HZ)
    if whisper:  # the whisper is heard by 1002 only
        assert by_b.snr(*during, C_HZ) > 10, by_b.snr(*during, C_HZ)
    else:
        assert by_b.snr(*during, C_HZ) < -20, by_b.snr(*during, C_HZ)
    # once the supervisor left, B hears A relayed as before, without the whisper
    assert by_b.snr(*after, A_HZ) > 10
    assert by_b.snr(*after, C_HZ) < -20
    # a call anchored only for the supervisor went direct again (the audio above
    # shows it kept working); one the node anchors anyway stays anchored
    released = [r for r in node.log_records() if r.get("msg") == "monitor: call media direct again"]
    assert len(released) == (0 if whisper else 1), released

    # the use is in the audit log: who, which call, when it started and ended
    mode = "whisper" if whisper else "listen-in"
    audit = node.api("GET", "/api/v1/directory/audit", params={"entity": "call"}).json()
    rows = {row["action"]: row for row in audit if row["actor"] == "chef"}
    assert {f"{mode}-start", f"{mode}-end"} <= set(rows), audit
    start = rows[f"{mode}-start"]
    assert start["entity_id"] == started["call_id"]
    assert (start["after"]["caller"], start["after"]["callee"]) == ("1001", "1002")
    assert start["after"]["by"] == "1003"
    assert 2.5 < rows[f"{mode}-end"]["after"]["seconds"] < 5.0


async def test_listen_in_and_whisper_refused_without_a_supervisor_role(
    node: VaxlaProcess, baresip_factory: BaresipFactory
) -> None:
    _add_user(node, "anna", "employee", "1004")
    phone = await registered_phone(node, baresip_factory, "1004")
    for number in ("9003", "9004"):
        await phone.dial(f"sip:{number}@{node.sip_addr}")
        closed = await phone.wait_event("CALL_CLOSED", 5)
        assert "403" in str(closed.get("param")), closed
        assert not any(e["type"] == "CALL_ESTABLISHED" for e in phone.events)
    audit = node.api("GET", "/api/v1/directory/audit", params={"entity": "extension"}).json()
    refused = [r["action"] for r in audit if r["actor"] == "extension:1004"]
    assert sorted(refused) == ["listen-in-refused", "whisper-refused"], audit
    calls = node.wait_for_calls(2)
    assert [c["sip_status"] for c in calls] == [403, 403], calls


async def test_monitor_roles_come_from_the_settings(
    tmp_path: Path, baresip_factory: BaresipFactory
) -> None:
    """With media.monitor_roles = ["supervisor"], an operator may no longer whisper."""
    node = VaxlaProcess(tmp_path / "node", env={"VAXLA_MEDIA__MONITOR_ROLES": '["supervisor"]'})
    node.start()
    try:
        _add_user(node, "tel", "operator", "1005")
        phone = await registered_phone(node, baresip_factory, "1005")
        await phone.dial(f"sip:9004@{node.sip_addr}")
        closed = await phone.wait_event("CALL_CLOSED", 5)
        assert "403" in str(closed.get("param")), closed
    finally:
        node.stop()
