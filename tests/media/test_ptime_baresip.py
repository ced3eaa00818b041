"""30 ms packetisation: a baresip phone with ptime=30 calls the echo test."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.media.conftest import speechlike_wav
from tests.peers.audio import best_alignment, read_wav
from tests.peers.fixtures import BaresipFactory
from tests.support.phones import registered_phone
from tests.support.server import VaxlaProcess

pytestmark = [pytest.mark.slow, pytest.mark.peers]


def _remote_media_attributes(callstat: str) -> str:
    """The remote (Växla's) attributes of the audio stream in baresip's ``callstat``."""
    media = callstat.split("session media:", 1)[1]
    return media.split("remote attributes:", 1)[1].split("local media:", 1)[0]


async def test_echo_with_ptime_30(
    node: VaxlaProcess, baresip_factory: BaresipFactory, tmp_path: Path
) -> None:
    source = speechlike_wav(tmp_path / "speech.wav", 10.0, seed=3)
    phone = await registered_phone(
        node, baresip_factory, "1001", source_wav=source, account_params=["ptime=30"]
    )
    await phone.dial(f"sip:9000@{node.sip_addr}")
    established = await phone.wait_event("CALL_ESTABLISHED", 10)
    started = time.monotonic()
    await asyncio.sleep(4.0)
    # the phone offered 30 ms; Växla's answer says 30 ms too (so the phone keeps it)
    status = await phone.call_status()
    assert "ptime='30'" in _remote_media_attributes(status), status
    await phone.hangup()
    await phone.wait_event("CALL_CLOSED", 5)
    duration = time.monotonic() - started
    assert "peer changed ptime" not in phone.log_text()

    # what was sent comes back (30 ms in, 30 ms out, 20 ms inside the engine)
    sent, rate = read_wav(await phone.wait_recording("enc"))
    heard = read_wav(await phone.wait_recording("dec"))
    match = best_alignment((sent[8000:20000], rate), heard)
    assert match.coefficient > 0.8, match
    assert 0.0 <= match.lag_seconds - 1.0 < 0.4, match

    # Växla sent one packet per 30 ms (240 samples), not one per 20 ms
    call_id = established["id"]
    deadline = time.monotonic() + 5
    rows: list[dict[str, object]] = []
    while not rows and time.monotonic() < deadline:
        rows = node.api("GET", f"/api/v1/media/quality/{call_id}").json()
        await asyncio.sleep(0.1)
    assert [r["leg"] for r in rows] == ["service"], rows
    sent_packets = int(str(rows[0]["packets_sent"]))
    packets_per_second = sent_packets / duration
    assert 30.0 <= packets_per_second <= 35.5, (sent_packets, duration)
