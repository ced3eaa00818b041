"""Directory search from the keypad with transfer (R40, R46): a registered
baresip phone dials the search number, keys the start of a name, hears the
matches and is connected to the one it picks."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.peers.audio import dominant_frequencies, read_wav, rms_dbfs, tone_present
from tests.peers.fixtures import BaresipFactory
from tests.support.phones import registered_phone
from tests.support.server import VaxlaProcess

pytestmark = [pytest.mark.slow, pytest.mark.peers]

SEARCH = "9005"


@pytest.fixture
def node(module_node: VaxlaProcess) -> VaxlaProcess:
    """The tests of this module share one node (each uses its own extensions)."""
    return module_node


def _logged(node: VaxlaProcess, msg: str, caller: str | None = None) -> list[dict[str, Any]]:
    """Log records with message ``msg`` (of ``caller``'s calls only, if given)."""
    return [
        r for r in node.log_records() if r.get("msg") == msg and caller in (None, r.get("caller"))
    ]


async def _until_logged(
    node: VaxlaProcess, msg: str, n: int, timeout: float, caller: str | None = None
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while len(found := _logged(node, msg, caller)) < n:
        assert time.monotonic() < deadline, f"no {n} x {msg!r} in the log"
        await asyncio.sleep(0.1)
    return found


async def test_search_by_keypad_and_be_connected(
    node: VaxlaProcess, baresip_factory: BaresipFactory
) -> None:
    karin = node.add_person("Karin", "Lindqvist", "3702")
    node.add_person("Lina", "Öberg", "3703")
    r = node.api(
        "PUT", f"/api/v1/diversions/{karin}", json={"reason": "meeting", "message": "Rum 4"}
    )
    assert r.status_code == 200, r.text
    caller = await registered_phone(node, baresip_factory, "3701", tone_hz=440.0)
    callee = await registered_phone(node, baresip_factory, "3702", tone_hz=1600.0)

    await caller.dial(f"sip:{SEARCH}@{node.sip_addr}")
    await caller.wait_event("CALL_ESTABLISHED", 10)
    await asyncio.sleep(1.0)  # the welcome starts; keys interrupt it
    await caller.send_dtmf("546#")  # L-I-N: Karin Lindqvist (last name), Lina Öberg (first)
    [search] = await _until_logged(node, "keypad search", 1, 10, caller="3701")
    assert (search["caller"], search["digits"], search["found"]) == ("3701", "546", 2)
    await asyncio.sleep(1.5)  # the matches being read out: Karin first, with her meeting
    await caller.send_dtmf("1")

    await callee.wait_event("CALL_ESTABLISHED", 15)
    await asyncio.sleep(2.0)  # the caller and Karin talk, media directly between them
    await callee.hangup()
    await caller.wait_event("CALL_CLOSED", 10)
    assert tone_present(await callee.wait_recording("dec"), 440.0, min_snr_db=15)
    heard = await caller.wait_recording("dec", min_seconds=3.0)
    samples, rate = read_wav(heard)
    assert rms_dbfs((samples[: 3 * rate], rate)) > -40, "the search said nothing"
    tail = (samples[-int(1.5 * rate) :], rate)  # and then Karin was heard
    assert tone_present(tail, 1600.0, min_snr_db=10), [
        dominant_frequencies((samples[i : i + rate], rate), n=2)
        for i in range(0, len(samples), rate)
    ]

    [transfer] = _logged(node, "keypad search transfer", caller="3701")
    assert (transfer["to"], transfer["status"]) == ("3702", 200)
    service, talk = node.call_records("3701", 2)
    assert (service["callee"], service["result"]) == (SEARCH, "transferred")
    assert (talk["callee"], talk["result"]) == ("3702", "answered")


async def test_nobody_answers_and_the_caller_searches_again(
    node: VaxlaProcess, baresip_factory: BaresipFactory
) -> None:
    node.add_person("Ture", "Zetterström", "3712")  # no phone registered on 3712
    caller = await registered_phone(node, baresip_factory, "3711")

    await caller.dial(f"sip:{SEARCH}@{node.sip_addr}")
    await caller.wait_event("CALL_ESTABLISHED", 10)
    await caller.send_dtmf("9388#")  # Z-E-T-T
    await asyncio.sleep(1.0)
    await caller.send_dtmf("1")
    [failed] = await _until_logged(node, "keypad search transfer", 1, 10, caller="3711")
    assert (failed["to"], failed["status"]) == ("3712", 480)
    await caller.send_dtmf("999#")  # still in the search: nothing found this time
    searches = await _until_logged(node, "keypad search", 2, 15, caller="3711")
    assert [r["found"] for r in searches] == [1, 0]
    await caller.hangup()
    [record] = node.call_records("3711", 1)
    assert (record["callee"], record["result"], record["hangup_by"]) == (
        SEARCH,
        "answered",
        "caller",
    )


async def test_the_phone_stops_ringing_when_the_caller_gives_up(
    node: VaxlaProcess, baresip_factory: BaresipFactory
) -> None:
    node.add_person("Vera", "Wikström", "3722")
    caller = await registered_phone(node, baresip_factory, "3721")
    node.add_extension("3722", "pw-3722")
    target = await baresip_factory("p3722")
    await target.register("3722", "pw-3722", node.sip_addr, answermode="manual")

    await caller.dial(f"sip:{SEARCH}@{node.sip_addr}")
    await caller.wait_event("CALL_ESTABLISHED", 10)
    await caller.send_dtmf("945#1")  # W-I-K, then the first match
    await target.wait_event("CALL_INCOMING", 15)  # Vera's phone rings...
    await caller.hangup()  # ...and the caller gives up
    await target.wait_event("CALL_CLOSED", 5)
    mine = await _until_logged(node, "keypad search transfer", 1, 5, caller="3721")
    assert [(r["to"], r["status"]) for r in mine] == [("3722", 487)]
