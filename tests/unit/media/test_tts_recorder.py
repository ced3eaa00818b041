"""Prompts (espeak-ng, resampling, cache) and recordings (WAV, MP3)."""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from vaxla.media.recorder import WavRecorder, export_mp3
from vaxla.media.tones import sine
from vaxla.media.tts import PromptCache, import_wav, parse_wav, resample, wav_bytes


def _peak_hz(pcm: np.ndarray, rate: int) -> float:  # type: ignore[type-arg]
    spectrum = np.abs(np.fft.rfft(pcm.astype(float)))
    return float(np.fft.rfftfreq(len(pcm), 1 / rate)[np.argmax(spectrum)])


def test_resample_keeps_in_band_tones_and_removes_aliases() -> None:
    rate = 22050
    t = np.arange(rate) / rate
    tone = (8000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    out = resample(tone, rate)
    assert len(out) == 8000
    assert abs(_peak_hz(out, 8000) - 1000) < 2
    high = (8000 * np.sin(2 * np.pi * 6000 * t)).astype(np.int16)  # above 4 kHz
    assert np.abs(resample(high, rate)[200:-200]).max() < 400  # filtered, not aliased


def test_import_wav_any_rate_stereo() -> None:
    stereo = np.repeat(sine((440.0,), 500, -10.0), 2)
    data = wav_bytes(stereo.astype(np.int16), 16000)  # header says mono 16 kHz
    pcm = import_wav(data)
    assert len(pcm) == 4000  # 8000 samples "at 16 kHz" -> 4000 at 8 kHz
    pcm2, rate = parse_wav(wav_bytes(sine((440.0,), 100, -10.0)))
    assert rate == 8000 and len(pcm2) == 800


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")
async def test_espeak_prompt_rendered_once_and_cached(tmp_path: Path) -> None:
    cache = PromptCache(tmp_path)
    pcm = await cache.render("Du är nummer ett i kön.")
    assert len(pcm) > 8000 * 0.8 and np.abs(pcm).max() > 1000
    assert cache.renders == 1
    again = await PromptCache(tmp_path).render("Du är nummer ett i kön.")  # a restart
    assert np.array_equal(pcm, again)
    assert len(list(tmp_path.glob("tts-*.wav"))) == 1


@pytest.mark.parametrize("mode", ["stereo", "mono"])
def test_recording_and_mp3_length(tmp_path: Path, mode: str) -> None:
    rec = WavRecorder(tmp_path / "r.wav", mode)
    left, right = sine((500.0,), 20, -10.0), sine((1200.0,), 20, -10.0)
    for _ in range(110):  # 2.2 s
        rec.write(left, right)
    assert rec.close() == pytest.approx(2.2)
    with wave.open(str(tmp_path / "r.wav"), "rb") as w:
        assert w.getnchannels() == (2 if mode == "stereo" else 1)
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    if mode == "stereo":
        assert abs(_peak_hz(data[0::2], 8000) - 500) < 5
        assert abs(_peak_hz(data[1::2], 8000) - 1200) < 5
    mp3 = export_mp3(tmp_path / "r.wav")
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("ffmpeg missing")
    out = tmp_path / "d.wav"
    subprocess.run([ffmpeg, "-loglevel", "error", "-i", str(mp3), str(out)], check=True)
    with wave.open(str(out), "rb") as w:
        assert abs(w.getnframes() / w.getframerate() - 2.2) <= 0.05
