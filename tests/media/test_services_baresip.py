"""The media services on demo numbers, called by real phones (baresip)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from tests.media.conftest import speechlike_wav
from tests.peers.audio import best_alignment, read_wav, tone_snr_db, write_wav
from tests.peers.fixtures import BaresipFactory
from tests.support.phones import registered_phone
from tests.support.server import VaxlaProcess
from vaxla.media.tones import dtmf_sequence

pytestmark = [pytest.mark.slow, pytest.mark.peers]


def _dtmf_records(node: VaxlaProcess) -> list[dict[str, object]]:
    return [r for r in node.log_records() if r.get("msg") == "dtmf"]


async def test_echo_returns_what_was_sent(
    node: VaxlaProcess, baresip_factory: BaresipFactory, tmp_path: Path
) -> None:
    source = speechlike_wav(tmp_path / "speech.wav", 10.0)
    phone = await registered_phone(node, baresip_factory, "1001", source_wav=source)
    await phone.dial(f"sip:9000@{node.sip_addr}")
    await phone.wait_event("CALL_ESTABLISHED", 10)
    await asyncio.sleep(4.0)
    await phone.hangup()
    await phone.wait_event("CALL_CLOSED", 5)
    sent = await phone.wait_recording("enc")
    heard = await phone.wait_recording("dec")
    sent_pcm, rate = read_wav(sent)
    heard_pcm, _ = read_wav(heard)
    # a 1.5 s stretch from the middle of what was sent is found in what came back
    ref = sent_pcm[8000:20000]
    match = best_alignment((ref, rate), (heard_pcm, rate))
    assert match.coefficient > 0.8, match
    delay = match.lag_seconds - 1.0
    assert 0.0 <= delay < 0.4, match  # the echo comes back within 400 ms
    assert phone.audio_codecs_used()[:1] == ["PCMA"]
    calls = node.wait_for_calls(1)
    assert calls[0]["callee"] == "9000" and calls[0]["result"] == "answered"


async def test_dtmf_rfc4733_and_inband_reach_the_service(
    node: VaxlaProcess, baresip_factory: BaresipFactory, tmp_path: Path
) -> None:
    # RFC 4733 from baresip's keypad
    phone = await registered_phone(node, baresip_factory, "1001", tone_hz=300.0)
    await phone.dial(f"sip:9000@{node.sip_addr}")
    await phone.wait_event("CALL_ESTABLISHED", 10)
    await asyncio.sleep(0.5)
    await phone.send_dtmf("159#", interval=0.3)
    await asyncio.sleep(1.0)
    await phone.hangup()
    await phone.wait_event("CALL_CLOSED", 5)
    got = [(r["digit"], r["dtmf_source"]) for r in _dtmf_records(node)]
    assert got == [(d, "rfc4733") for d in "159#"], got
    durations = [int(str(r["duration_ms"])) for r in _dtmf_records(node)]
    assert all(40 <= d <= 400 for d in durations), durations

    # in-band tones from a file used as the microphone
    tones = dtmf_sequence("2580*", on_ms=120, off_ms=120, lead_ms=800)
    wav = write_wav(tmp_path / "dtmf.wav", np.concatenate([tones, np.zeros(8000)]) / 32768)
    inband = await registered_phone(node, baresip_factory, "1002", source_wav=wav)
    await inband.dial(f"sip:9000@{node.sip_addr}")
    await inband.wait_event("CALL_ESTABLISHED", 10)
    await asyncio.sleep(3.0)
    await inband.hangup()
    await inband.wait_event("CALL_CLOSED", 5)
    later = [(r["digit"], r["dtmf_source"]) for r in _dtmf_records(node)][4:]
    assert later == [(d, "inband") for d in "2580*"], later


async def test_conference_each_hears_the_others_not_itself(
    node: VaxlaProcess, baresip_factory: BaresipFactory
) -> None:
    tones = {"1001": 500.0, "1002": 1100.0, "1003": 1700.0}
    phones = {
        ext: await registered_phone(node, baresip_factory, ext, tone_hz=hz)
        for ext, hz in tones.items()
    }
    for phone in phones.values():
        await phone.dial(f"sip:9002@{node.sip_addr}")
        await phone.wait_event("CALL_ESTABLISHED", 10)
    await asyncio.sleep(3.0)
    for phone in phones.values():
        await phone.hangup()
        await phone.wait_event("CALL_CLOSED", 5)
    for ext, phone in phones.items():
        heard = read_wav(await phone.wait_recording("dec"))
        # the last 2 s, when all three were in the room
        tail = (heard[0][-16000:], heard[1])
        others = [hz for e, hz in tones.items() if e != ext]
        for hz in others:
            other = [f for f in tones.values() if f != hz]
            snr = tone_snr_db(tail, hz, other_tones_hz=other)
            assert snr > 10, (ext, hz, snr)
        own = tone_snr_db(tail, tones[ext], other_tones_hz=others)
        assert own < -20, (ext, own)


async def test_readback_speaks_swedish(node: VaxlaProcess, baresip_factory: BaresipFactory) -> None:
    phone = await registered_phone(node, baresip_factory, "1001", tone_hz=300.0)
    await phone.dial(f"sip:9001@{node.sip_addr}")
    await phone.wait_event("CALL_ESTABLISHED", 10)
    await asyncio.sleep(6.0)
    await phone.hangup()
    await phone.wait_event("CALL_CLOSED", 5)
    heard, _rate = read_wav(await phone.wait_recording("dec"))
    frames = heard[: len(heard) // 160 * 160].reshape(-1, 160)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    assert (rms > 0.02).sum() > 50  # more than a second of speech
    # R98: after the first 300 ms, never a 20 ms frame of digital silence
    assert np.all(np.abs(frames[15:-5]).max(axis=1) > 0), "pure silence heard"
    prompts = list((node.data_dir / "prompts").glob("tts-*.wav"))
    assert prompts, "the prompt was not cached"
