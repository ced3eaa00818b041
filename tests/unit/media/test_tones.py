"""Swedish call-progress tones and the DTMF tone generator."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from vaxla.media.tones import (
    DBM0_PEAK,
    SWEDISH_TONES,
    ToneGenerator,
    ToneSegment,
    ToneSpec,
    dbm0_amplitude,
    dtmf_frequencies,
    dtmf_tone,
    sine,
    swedish_tone,
)


def on_off_runs(x: npt.NDArray[np.int16], ms: int = 10) -> list[tuple[bool, int]]:
    """(sounding, duration in ms) runs, measured in 10 ms blocks."""
    block = 8 * ms
    loud = [bool(np.max(np.abs(x[i : i + block])) > 100) for i in range(0, x.size, block)]
    runs: list[tuple[bool, int]] = []
    for state in loud:
        if runs and runs[-1][0] == state:
            runs[-1] = (state, runs[-1][1] + ms)
        else:
            runs.append((state, ms))
    return runs


def dominant_frequency(x: npt.NDArray[np.int16]) -> float:
    spectrum = np.abs(np.fft.rfft(x.astype(np.float64)))
    return float(np.argmax(spectrum) * 8000 / x.size)


@pytest.mark.parametrize(
    ("name", "cadence_ms"),
    [
        ("ringback", [1000, 5000]),
        ("busy", [250, 250]),
        ("congestion", [250, 750]),
        ("call_waiting", [200, 500, 200, 9100]),
    ],
)
def test_swedish_cadences(name: str, cadence_ms: list[int]) -> None:
    gen = swedish_tone(name)
    cycle = sum(cadence_ms)
    x = np.concatenate(gen.frames(2 * cycle // 20))
    runs = on_off_runs(x)
    expected = [(i % 2 == 0, ms) for i, ms in enumerate(cadence_ms)] * 2
    assert runs == expected
    assert dominant_frequency(x) == pytest.approx(425, abs=1)


def test_dial_tone_is_continuous_425() -> None:
    x = np.concatenate(swedish_tone("dial").frames(50))
    assert on_off_runs(x) == [(True, 1000)]
    assert dominant_frequency(x) == pytest.approx(425, abs=1)


def test_special_dial_tone_stutters_then_stays_on() -> None:
    x = np.concatenate(swedish_tone("special_dial").frames(50))
    assert on_off_runs(x) == [(True, 100), (False, 100)] * 3 + [(True, 400)]


def test_special_information_tone_sequence() -> None:
    gen = swedish_tone("special_information")
    x = gen.read(8 * (3 * 356 + 2000))
    for k, freq in enumerate((950, 1400, 1800)):
        start = 8 * k * 356
        assert dominant_frequency(x[start : start + 8 * 332]) == pytest.approx(freq, abs=4)
    assert np.all(x[8 * 332 : 8 * 356] == 0)
    assert np.all(x[8 * 1068 : 8 * 3000] == 0)


def test_level_and_phase_continuity_across_frames() -> None:
    gen = ToneGenerator(SWEDISH_TONES["dial"], level_dbm0=-10.0)
    x = np.concatenate(gen.frames(100, frame_samples=33))
    assert np.max(np.abs(x)) == pytest.approx(dbm0_amplitude(-10.0), rel=0.01)
    # frame-wise rendering equals one-shot rendering: no phase jumps at frame edges
    assert np.array_equal(x, sine((425.0,), 3300 // 8 + 1, -10.0)[: x.size])
    assert x.dtype == np.int16


def test_dbm0_reference() -> None:
    assert dbm0_amplitude(3.14) == pytest.approx(32768)
    assert dbm0_amplitude(0.0) == pytest.approx(DBM0_PEAK)


def test_play_once_spec_goes_silent() -> None:
    spec = ToneSpec("beep", (ToneSegment((1000.0,), 100),), loop_from=None)
    x = ToneGenerator(spec).read(1600)
    assert on_off_runs(x) == [(True, 100), (False, 100)]


def test_only_last_segment_may_be_continuous() -> None:
    with pytest.raises(ValueError):
        ToneSpec("bad", (ToneSegment((425.0,), None), ToneSegment((), 100)))


@pytest.mark.parametrize(
    ("digit", "freqs"),
    [
        ("1", (697, 1209)),
        ("5", (770, 1336)),
        ("9", (852, 1477)),
        ("#", (941, 1477)),
        ("*", (941, 1209)),
        ("0", (941, 1336)),
        ("D", (941, 1633)),
        ("a", (697, 1633)),
    ],
)
def test_dtmf_frequencies(digit: str, freqs: tuple[int, int]) -> None:
    assert dtmf_frequencies(digit) == freqs


def test_dtmf_tone_has_both_frequencies_with_twist() -> None:
    x = dtmf_tone("5", 1000, low_dbm0=-8.0, high_dbm0=-6.0)
    spectrum = np.abs(np.fft.rfft(x.astype(np.float64)))  # 1 Hz bins
    assert spectrum[1336] / spectrum[770] == pytest.approx(10 ** (2 / 20), rel=0.01)
    assert x.size == 8000


def test_bad_digit() -> None:
    with pytest.raises(ValueError):
        dtmf_frequencies("E")
    with pytest.raises(ValueError):
        dtmf_frequencies("12")
