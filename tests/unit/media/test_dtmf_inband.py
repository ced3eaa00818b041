"""In-band DTMF detection (Goertzel) on generated tones, noise and speech-like audio."""

from __future__ import annotations

import time

import numpy as np
import numpy.typing as npt
import pytest

from vaxla.media.dtmf import DigitEvent
from vaxla.media.dtmf_inband import (
    FREQS,
    DetectorSettings,
    DtmfDetector,
    goertzel_matrices,
)
from vaxla.media.g711 import alaw_decode, alaw_encode
from vaxla.media.tones import dtmf_sequence, dtmf_tone, sine, swedish_tone

ALL_DIGITS = "0123456789*#ABCD"


def detect(signal: npt.NDArray[np.int16], frame: int = 160) -> list[DigitEvent]:
    detector = DtmfDetector()
    events: list[DigitEvent] = []
    for i in range(0, signal.size, frame):
        events += detector.process(signal[i : i + frame])
    return events + detector.flush()


def with_noise(signal: npt.NDArray[np.int16], snr_db: float, seed: int) -> npt.NDArray[np.int16]:
    tone_power = np.mean(signal[signal != 0].astype(np.float64) ** 2)
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, np.sqrt(tone_power / 10 ** (snr_db / 10)), signal.size)
    return np.clip(np.rint(signal + noise), -32768, 32767).astype(np.int16)


def scalar_goertzel(x: list[float], freq: float, rate: int = 8000) -> float:
    coeff = 2 * np.cos(2 * np.pi * freq / rate)
    s1 = s2 = 0.0
    for sample in x:
        s1, s2 = sample + coeff * s1 - s2, s1
    return float(s1 * s1 + s2 * s2 - coeff * s1 * s2)


def test_matrix_form_equals_the_goertzel_recurrence() -> None:
    x = np.random.default_rng(1).normal(size=205)
    m1, m2, coeff = goertzel_matrices(FREQS, 205)
    s1, s2 = x @ m1, x @ m2
    power = s1 * s1 + s2 * s2 - coeff * s1 * s2
    expected = [scalar_goertzel(list(x), f) for f in FREQS]
    assert power == pytest.approx(expected, rel=1e-9)
    # and Goertzel power is |DFT|² at that frequency
    n = np.arange(205)
    dft = [abs(np.sum(x * np.exp(-2j * np.pi * f * n / 8000))) ** 2 for f in FREQS]
    assert power == pytest.approx(dft, rel=1e-9)


@pytest.mark.parametrize("digit", list(ALL_DIGITS))
def test_each_digit_alone(digit: str) -> None:
    signal = np.concatenate(
        [np.zeros(400, np.int16), dtmf_tone(digit, 100), np.zeros(800, np.int16)]
    )
    (event,) = detect(signal)
    assert event.digit == digit
    assert abs(event.start_timestamp - 400) <= 80  # within 10 ms
    assert abs(event.duration - 800) <= 160  # within 20 ms


def test_all_sixteen_digits_at_15_db_snr() -> None:
    signal = dtmf_sequence(ALL_DIGITS, on_ms=80, off_ms=80, lead_ms=100)
    for seed in range(5):
        events = detect(with_noise(signal, 15.0, seed))
        assert "".join(e.digit for e in events) == ALL_DIGITS, seed
        starts = [e.start_timestamp for e in events]
        for i, start in enumerate(starts):
            assert abs(start - (800 + i * 1280)) <= 120  # within 15 ms of the true start


def test_repeated_digit_with_short_gaps_reported_each_time() -> None:
    events = detect(dtmf_sequence("5555", on_ms=50, off_ms=50, lead_ms=20))
    assert [e.digit for e in events] == ["5"] * 4


def test_through_a_law_coding_and_odd_frame_sizes() -> None:
    signal = dtmf_sequence("147*2580369#", on_ms=70, off_ms=60, low_dbm0=-20, high_dbm0=-18)
    coded = alaw_decode(alaw_encode(signal))
    assert "".join(e.digit for e in detect(coded, frame=237)) == "147*2580369#"


def test_twist_limits() -> None:
    # column 6 dB above row (reverse twist beyond 4 dB): rejected
    strong_col = sine((770.0, 1336.0), 120, (-12.0, -6.0))
    assert detect(strong_col) == []
    # row 6 dB above column: accepted (allowed up to 8 dB)
    strong_row = sine((770.0, 1336.0), 120, (-6.0, -12.0))
    assert [e.digit for e in detect(strong_row)] == ["5"]


def test_too_quiet_and_too_short_tones_rejected() -> None:
    assert detect(dtmf_tone("1", 100, low_dbm0=-45, high_dbm0=-43)) == []
    short = np.concatenate([np.zeros(400, np.int16), dtmf_tone("1", 20), np.zeros(400, np.int16)])
    assert detect(short) == []


def test_single_tone_is_not_a_digit() -> None:
    assert detect(sine((697.0,), 500, -6.0)) == []
    assert detect(sine((1209.0,), 500, -6.0)) == []


def test_no_false_digit_in_ten_seconds_of_white_noise() -> None:
    rng = np.random.default_rng(2024)
    for sigma in (300.0, 3000.0, 12000.0):
        noise = np.clip(rng.normal(0, sigma, 80_000), -32768, 32767).astype(np.int16)
        assert detect(noise) == [], sigma


def test_no_false_digit_in_ten_seconds_of_425_hz_tones() -> None:
    continuous = sine((425.0,), 10_000, 0.0)
    assert detect(continuous) == []
    busy = np.concatenate(swedish_tone("busy", level_dbm0=0.0).frames(500))
    assert detect(busy) == []


def speech_like(seconds: float, seed: int) -> npt.NDArray[np.int16]:
    """Voiced sounds: 15 harmonics of a gliding 90-260 Hz pitch under moving
    formant peaks, in syllables of 80-300 ms with pauses and some noise."""
    rng = np.random.default_rng(seed)
    rate = 8000
    out: list[npt.NDArray[np.float64]] = []
    total = 0
    while total < seconds * rate:
        n = int(rng.uniform(0.08, 0.3) * rate)
        f0 = np.linspace(rng.uniform(90, 260), rng.uniform(90, 260), n)
        phase = 2 * np.pi * np.cumsum(f0) / rate
        formants = rng.uniform([300, 900, 2200], [900, 2200, 3200])
        x = np.zeros(n)
        for h in range(1, 16):
            fh = f0 * h
            gain = sum(np.exp(-(((fh - f) / 150) ** 2)) for f in formants) + 0.05
            x += gain * np.sin(h * phase)
        x *= np.hanning(n) * rng.uniform(2000, 9000) / max(1e-9, np.max(np.abs(x)))
        x += rng.normal(0, 50, n)
        pause = np.zeros(int(rng.uniform(0.02, 0.2) * rate))
        out += [x, pause]
        total += n + pause.size
    return np.clip(np.concatenate(out)[: int(seconds * rate)], -32768, 32767).astype(np.int16)


def test_no_false_digit_in_speech_like_audio() -> None:
    for seed in range(3):
        assert detect(speech_like(10.0, seed)) == [], seed


def test_digit_detected_over_speech_like_background() -> None:
    speech = speech_like(1.0, 7).astype(np.int32) // 8  # speech 18 dB below the digit
    tone = np.zeros(8000, np.int32)
    tone[3000:3800] = dtmf_tone("8", 100)
    mixed = np.clip(speech + tone, -32768, 32767).astype(np.int16)
    assert [e.digit for e in detect(mixed)] == ["8"]


def test_settings_are_configurable() -> None:
    strict = DtmfDetector(DetectorSettings(on_windows=6))
    events = strict.process(dtmf_tone("3", 60)) + strict.flush()
    assert events == []


def test_speed() -> None:
    """Documents the µs per 160-sample frame (printed with pytest -s)."""
    signal = with_noise(dtmf_sequence(ALL_DIGITS, lead_ms=100), 15.0, 0)
    frames = [signal[i : i + 160] for i in range(0, signal.size - 159, 160)]
    detector = DtmfDetector()
    t0 = time.perf_counter()
    for f in frames:
        detector.process(f)
    per_frame = (time.perf_counter() - t0) / len(frames) * 1e6
    print(f"\nDTMF detector: {per_frame:.0f} µs per 160-sample frame")
    assert per_frame < 5000
