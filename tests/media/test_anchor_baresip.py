"""Anchored calls between two baresip phones: relay, recording, MP3, listen-in."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from tests.peers.audio import read_wav, tone_present, tone_snr_db
from tests.peers.fixtures import BaresipFactory
from tests.support.phones import registered_phone
from tests.support.server import VaxlaProcess

pytestmark = [pytest.mark.slow, pytest.mark.peers]

ALICE_HZ = 440.0
BOB_HZ = 1000.0


def _stereo(path: Path) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[type-arg]
    import wave

    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getframerate()) == (2, 8000)
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
    return data[:, 0] / 32768.0, data[:, 1] / 32768.0


async def test_anchored_call_recorded_stereo_with_mp3(
    anchoring_node: VaxlaProcess, baresip_factory: BaresipFactory, tmp_path: Path
) -> None:
    node = anchoring_node
    alice = await registered_phone(node, baresip_factory, "1001", tone_hz=ALICE_HZ)
    bob = await registered_phone(node, baresip_factory, "1002", tone_hz=BOB_HZ)
    await alice.dial(f"sip:1002@{node.sip_addr}")
    await alice.wait_event("CALL_ESTABLISHED", 10)
    await bob.wait_event("CALL_ESTABLISHED", 10)
    await asyncio.sleep(1.0)

    calls = node.api("GET", "/api/v1/media/calls").json()
    assert len(calls) == 1 and (calls[0]["caller"], calls[0]["callee"]) == ("1001", "1002")
    call_id = calls[0]["call_id"]
    started = time.monotonic()
    r = node.api("POST", f"/api/v1/media/calls/{call_id}/recordings", json={"mode": "stereo"})
    start_latency = time.monotonic() - started
    assert r.status_code == 201, r.text
    rec_id = r.json()["id"]
    await asyncio.sleep(3.0)
    stop_sent = time.monotonic()
    r = node.api("DELETE", f"/api/v1/media/calls/{call_id}/recordings")
    stopped = time.monotonic()
    assert r.json()["stopped"] == [rec_id]
    await asyncio.sleep(0.5)
    await alice.hangup()
    await alice.wait_event("CALL_CLOSED", 5)
    await bob.wait_event("CALL_CLOSED", 5)

    # media went through Växla and both phones heard each other
    heard_by_alice = await alice.wait_recording("dec")
    heard_by_bob = await bob.wait_recording("dec")
    assert tone_present(heard_by_alice, BOB_HZ, min_snr_db=20)
    assert tone_present(heard_by_bob, ALICE_HZ, min_snr_db=20)
    assert "127.0.0.1" in alice.log_text()

    rows = node.api("GET", "/api/v1/media/recordings", params={"call_id": call_id}).json()
    assert len(rows) == 1 and rows[0]["mode"] == "stereo"
    duration = rows[0]["duration_s"]
    # The recording covers the time between the two API calls: at least from
    # the start's answer to the stop's request, at most from the start's
    # request to the stop's answer (plus one 20 ms packet either side).
    shortest = stop_sent - started - start_latency - 0.05
    longest = stopped - started + 0.05
    assert shortest < duration < longest, (shortest, duration, longest)
    wav = tmp_path / "rec.wav"
    wav.write_bytes(node.api("GET", f"/api/v1/media/recordings/{rec_id}/wav").content)
    left, right = _stereo(wav)
    assert tone_snr_db((left, 8000), ALICE_HZ) > 20  # caller on the left channel
    assert tone_snr_db((right, 8000), BOB_HZ) > 20  # callee on the right
    assert tone_snr_db((left, 8000), BOB_HZ) < -20
    assert tone_snr_db((right, 8000), ALICE_HZ) < -20

    mp3 = tmp_path / "rec.mp3"
    resp = node.api("GET", f"/api/v1/media/recordings/{rec_id}/mp3")
    assert resp.status_code == 200 and resp.headers["content-type"] == "audio/mpeg"
    mp3.write_bytes(resp.content)
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg is not None
    decoded = tmp_path / "decoded.wav"
    subprocess.run(
        [ffmpeg, "-loglevel", "error", "-i", str(mp3), "-ac", "1", str(decoded)],
        check=True,
        timeout=30,
    )
    samples, rate = read_wav(decoded)
    # the Info/LAME tag tells the decoder the encoder's delay and padding
    assert abs(len(samples) / rate - len(left) / 8000) <= 0.05

    quality = node.api("GET", f"/api/v1/media/quality/{call_id}").json()
    legs = {q["leg"]: q for q in quality}
    assert set(legs) == {"a", "b"}
    assert legs["a"]["packets_received"] > 100 and legs["b"]["packets_received"] > 100
    assert legs["a"]["loss_percent"] == 0.0


async def test_live_call_switched_to_anchored_and_back_by_reinvite(
    node: VaxlaProcess, baresip_factory: BaresipFactory, tmp_path: Path
) -> None:
    """media.anchor = never: the call starts direct, is anchored by re-INVITEs
    (recorded while anchored), then released to direct media again."""
    alice = await registered_phone(node, baresip_factory, "1001", tone_hz=ALICE_HZ)
    bob = await registered_phone(node, baresip_factory, "1002", tone_hz=BOB_HZ)
    await alice.dial(f"sip:1002@{node.sip_addr}")
    await alice.wait_event("CALL_ESTABLISHED", 10)
    await bob.wait_event("CALL_ESTABLISHED", 10)
    await asyncio.sleep(1.0)
    assert node.api("GET", "/api/v1/media/calls").json() == []  # direct media
    call_id = next(r["call_id"] for r in node.log_records() if r.get("msg") == "answered")

    r = node.api("PUT", f"/api/v1/media/calls/{call_id}/anchor", json={"anchored": True})
    assert r.status_code == 200 and r.json() == {"anchored": True}, r.text
    await asyncio.sleep(0.5)
    r = node.api("POST", f"/api/v1/media/calls/{call_id}/recordings", json={"mode": "mono"})
    assert r.status_code == 201, r.text
    await asyncio.sleep(2.0)
    calls = node.api("GET", "/api/v1/media/calls").json()
    assert calls[0]["quality"]["a"]["packets_received"] > 50
    assert calls[0]["quality"]["b"]["packets_received"] > 50

    r = node.api("PUT", f"/api/v1/media/calls/{call_id}/anchor", json={"anchored": False})
    assert r.status_code == 200 and r.json() == {"anchored": False}, r.text
    assert node.api("GET", "/api/v1/media/calls").json() == []
    await asyncio.sleep(1.5)
    await bob.hangup()
    await alice.wait_event("CALL_CLOSED", 5)
    await bob.wait_event("CALL_CLOSED", 5)

    # audio flowed both ways all along (direct, anchored, direct again)
    heard, rate = read_wav(await alice.wait_recording("dec"))
    tail = (heard[-8000:], rate)  # the last second, direct again
    assert tone_present(tail, BOB_HZ, min_snr_db=20)
    heard_b, _ = read_wav(await bob.wait_recording("dec"))
    assert tone_present((heard_b[-8000:], rate), ALICE_HZ, min_snr_db=20)
    rows = node.api("GET", "/api/v1/media/recordings", params={"call_id": call_id}).json()
    assert len(rows) == 1 and rows[0]["mode"] == "mono" and rows[0]["duration_s"] > 1.5
    wav = tmp_path / "mono.wav"
    wav.write_bytes(node.api("GET", f"/api/v1/media/recordings/{rows[0]['id']}/wav").content)
    mixed = read_wav(wav)
    assert tone_present(mixed, ALICE_HZ, min_snr_db=0, other_tones_hz=[BOB_HZ])
    assert tone_present(mixed, BOB_HZ, min_snr_db=0, other_tones_hz=[ALICE_HZ])
    assert node.wait_for_calls(1)[0]["result"] == "answered"
