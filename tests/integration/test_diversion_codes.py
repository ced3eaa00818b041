"""Diversion (hänvisning) from the desk phone with keypad codes (R81, R40): a
registered baresip phone dials ``*23*1*1300#`` and ``#23#`` through a running
node and hears the spoken confirmation."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.peers.audio import dominant_frequencies, read_wav, rms_dbfs, trim_silence
from tests.peers.baresip import BaresipPhone
from tests.peers.fixtures import BaresipFactory
from tests.support.phones import registered_phone
from tests.support.server import VaxlaProcess
from vaxla.directory.schedule import STOCKHOLM

pytestmark = [pytest.mark.slow, pytest.mark.peers]


@pytest.fixture
def node(module_node: VaxlaProcess) -> VaxlaProcess:
    """The tests of this module share one node (each uses its own extensions)."""
    return module_node


def _diversion(node: VaxlaProcess, person_id: int) -> dict[str, Any] | None:
    r = node.api("GET", f"/api/v1/diversions/{person_id}")
    assert r.status_code == 200, r.text
    found: dict[str, Any] | None = r.json()["diversion"]
    return found


async def _dial_code(phone: BaresipPhone, node: VaxlaProcess, code: str) -> Path:
    """Dial a code (``#`` escaped in the URI), wait for Växla to hang up, and
    return the recording of what the phone heard."""
    before = phone.received_wav_path()
    await phone.dial(f"sip:{code.replace('#', '%23')}@{node.sip_addr}")
    await phone.wait_event("CALL_ESTABLISHED", 10)
    await phone.wait_event("CALL_CLOSED", 20)
    heard = await phone.wait_recording("dec", min_seconds=1.0)
    assert heard != before, "no new recording for this call"
    return heard


def _speech_heard(path: Path) -> float:
    """Seconds of sound (speech) in a recording, above comfort-noise level."""
    samples, rate = read_wav(path)
    frame = rate // 50  # 20 ms
    loud = 0
    for start in range(0, len(samples) - frame, frame):
        if rms_dbfs((samples[start : start + frame], rate)) > -40.0:
            loud += 1
    return loud / 50


async def test_diversion_codes_from_the_phone(
    node: VaxlaProcess, baresip_factory: BaresipFactory
) -> None:
    person_id = node.add_person("Dag", "Hänvisad", "3601")
    phone = await registered_phone(node, baresip_factory, "3601")

    # *23*1*1300#: reason 1 (lunch), back at 13:00
    heard = await _dial_code(phone, node, "*23*1*1300#")
    assert _speech_heard(heard) > 1.5, "no spoken confirmation"
    shown = _diversion(node, person_id)
    assert shown is not None and shown["reason"] == "lunch", shown
    back = datetime.fromisoformat(shown["return_at"]).astimezone(STOCKHOLM)
    assert (back.hour, back.minute) == (13, 0)
    now = datetime.now(STOCKHOLM)
    assert now < back <= now + timedelta(days=1)  # today, or tomorrow if 13:00 has passed
    assert shown["set_by"] == "3601"

    # reason 99 does not exist: special information tone, then the spoken reason
    await asyncio.sleep(1.1)  # baresip names recordings by the second
    heard = await _dial_code(phone, node, "*23*99#")
    samples, rate = read_wav(heard)
    sit = trim_silence(samples)[:rate]  # the first second: the tone
    found = dominant_frequencies((sit, rate), n=3)
    for tone in (950.0, 1400.0, 1800.0):
        assert any(abs(f - tone) < 15 for f in found), found
    assert _speech_heard(heard) > 2.0  # the tone and the words after it
    assert _diversion(node, person_id) == shown  # unchanged

    # #23#: cleared
    await asyncio.sleep(1.1)
    heard = await _dial_code(phone, node, "#23#")
    assert _speech_heard(heard) > 1.0
    assert _diversion(node, person_id) is None

    audit = node.api("GET", f"/api/v1/directory/audit?entity=diversion&entity_id={person_id}")
    assert audit.status_code == 200, audit.text
    rows = audit.json()
    assert [(e["action"], e["actor"]) for e in rows] == [("clear", "3601"), ("set", "3601")]
    assert all(e["after"]["via"] == "phone" for e in rows)


async def test_a_shared_extension_is_refused(
    node: VaxlaProcess, baresip_factory: BaresipFactory
) -> None:
    first = node.add_person("Eva", "Hänvisad", "3602")
    second = node.add_person("Fredrik", "Hänvisad", "3602")
    phone = await registered_phone(node, baresip_factory, "3602")
    heard = await _dial_code(phone, node, "*23*2#")
    samples, rate = read_wav(heard)
    found = dominant_frequencies((trim_silence(samples)[:rate], rate), n=3)
    assert any(abs(f - 950.0) < 15 for f in found), found
    assert _diversion(node, first) is None and _diversion(node, second) is None
