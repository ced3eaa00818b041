"""Swedish call-progress tones and DTMF tones as 8 kHz int16 numpy audio.

Swedish tones (425 Hz family), from ITU-T E.180 Supplement 2 ("Various
tones used in national networks", entry for Sweden), as also tabulated in
Asterisk's ``indications.conf`` section ``[se]``:

==================  ===============  =========================================
tone                frequency        cadence
==================  ===============  =========================================
dial (kopplingston) 425 Hz           continuous
ringback (signal)   425 Hz           1 s on, 5 s off
busy (upptagetton)  425 Hz           250 ms on, 250 ms off
congestion          425 Hz           250 ms on, 750 ms off
call waiting        425 Hz           200 on, 500 off, 200 on, 9100 off (ms)
special dial        425 Hz           3 × (100 on, 100 off), then continuous
special information 950/1400/1800    332 ms each with 24 ms gaps, 2024 ms off
record warning      1400 Hz          500 ms on, 15 s off
==================  ===============  =========================================

Levels are in dBm0 where 0 dBm0 is a sine 3.14 dB below A-law full scale
(G.711: the A-law coder overloads at +3.14 dBm0). Tones default to
-10 dBm0 (E.180 recommends -10 ±5 dBm0 for the 425 Hz tones).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from vaxla.media.dtmf_inband import COL_FREQS, KEYPAD, ROW_FREQS

SAMPLE_RATE = 8000
#: Peak int16 amplitude of a 0 dBm0 sine (A-law overload is +3.14 dBm0).
DBM0_PEAK = 32768 * 10 ** (-3.14 / 20)

Pcm = npt.NDArray[np.int16]


def dbm0_amplitude(level_dbm0: float) -> float:
    """Peak int16 amplitude of a sine at ``level_dbm0``."""
    return DBM0_PEAK * 10 ** (level_dbm0 / 20)


@dataclass(frozen=True, slots=True)
class ToneSegment:
    """A stretch of a cadence: the frequencies sounding (none = silence)
    for ``duration_ms``; ``None`` means forever (last segment only)."""

    frequencies: tuple[float, ...]
    duration_ms: int | None


@dataclass(frozen=True, slots=True)
class ToneSpec:
    """A cadenced tone: play ``segments``, then loop back to ``loop_from``
    (``None``: stay silent after the last segment)."""

    name: str
    segments: tuple[ToneSegment, ...]
    loop_from: int | None = 0

    def __post_init__(self) -> None:
        for seg in self.segments[:-1]:
            if seg.duration_ms is None:
                raise ValueError("only the last segment may be continuous")


def _on(freq: float | tuple[float, ...], ms: int | None) -> ToneSegment:
    return ToneSegment(freq if isinstance(freq, tuple) else (freq,), ms)


def _off(ms: int) -> ToneSegment:
    return ToneSegment((), ms)


_SIT = (_on(950, 332), _off(24), _on(1400, 332), _off(24), _on(1800, 332), _off(2024))

SWEDISH_TONES: dict[str, ToneSpec] = {
    t.name: t
    for t in (
        ToneSpec("dial", (_on(425, None),)),
        ToneSpec("ringback", (_on(425, 1000), _off(5000))),
        ToneSpec("busy", (_on(425, 250), _off(250))),
        ToneSpec("congestion", (_on(425, 250), _off(750))),
        ToneSpec("call_waiting", (_on(425, 200), _off(500), _on(425, 200), _off(9100))),
        ToneSpec("special_dial", (*(_on(425, 100), _off(100)) * 3, _on(425, None)), None),
        ToneSpec("special_information", _SIT),
        ToneSpec("record_warning", (_on(1400, 500), _off(15000))),
        # Växla's own: three short beeps, a code dialled on the phone took effect.
        ToneSpec("confirmation", (*(_on(1400, 150), _off(125)) * 2, _on(1400, 150)), None),
    )
}

#: How long the confirmation beeps last.
CONFIRMATION_MS = 700


class ToneGenerator:
    """Renders a :class:`ToneSpec` frame by frame, phase-continuous.

    Pure: it only counts samples. ``read(160)`` gives the next 20 ms.
    """

    def __init__(
        self, spec: ToneSpec, level_dbm0: float = -10.0, sample_rate: int = SAMPLE_RATE
    ) -> None:
        self.spec = spec
        self.sample_rate = sample_rate
        self.amplitude = dbm0_amplitude(level_dbm0)
        self.position = 0
        lengths = [
            None if s.duration_ms is None else s.duration_ms * sample_rate // 1000
            for s in spec.segments
        ]
        finite = [n for n in lengths if n is not None]
        self._ends = np.cumsum(finite) if finite else np.zeros(0, dtype=np.int64)
        self._continuous = lengths[-1] is None
        loop = spec.loop_from
        self._prefix = int(sum(finite[:loop])) if loop is not None else 0
        total = int(sum(finite))
        self._cycle = total - self._prefix if loop is not None else 0
        self._total = total

    def _segment_index(self, t: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        if self._continuous or self._cycle <= 0:
            offset = t
        else:
            offset = np.where(t < self._prefix, t, self._prefix + (t - self._prefix) % self._cycle)
        # past every finite segment: the continuous one, or silence (-1)
        index = np.searchsorted(self._ends, offset, side="right")
        past = -1 if not self._continuous else len(self.spec.segments) - 1
        return np.where(index >= len(self._ends), past, index).astype(np.int64)

    def read(self, n: int) -> Pcm:
        """The next ``n`` samples."""
        t = np.arange(self.position, self.position + n, dtype=np.int64)
        self.position += n
        index = self._segment_index(t)
        seconds = t / self.sample_rate
        out = np.zeros(n, dtype=np.float64)
        for k, seg in enumerate(self.spec.segments):
            if not seg.frequencies:
                continue
            mask = index == k
            if not mask.any():
                continue
            for f in seg.frequencies:
                out[mask] += np.sin(2 * np.pi * f * seconds[mask])
        return np.clip(np.rint(out * self.amplitude), -32768, 32767).astype(np.int16)

    def frames(self, count: int, frame_samples: int = 160) -> list[Pcm]:
        return [self.read(frame_samples) for _ in range(count)]


def swedish_tone(name: str, level_dbm0: float = -10.0) -> ToneGenerator:
    """A generator for one of :data:`SWEDISH_TONES` (``"busy"``, ...)."""
    return ToneGenerator(SWEDISH_TONES[name], level_dbm0)


def sine(
    frequencies: tuple[float, ...],
    duration_ms: int,
    level_dbm0: float | tuple[float, ...] = -10.0,
    sample_rate: int = SAMPLE_RATE,
    start_sample: int = 0,
) -> Pcm:
    """Sum of sines, each at its own level (a single level applies to all)."""
    levels = level_dbm0 if isinstance(level_dbm0, tuple) else (level_dbm0,) * len(frequencies)
    n = duration_ms * sample_rate // 1000
    t = np.arange(start_sample, start_sample + n) / sample_rate
    out = np.zeros(n, dtype=np.float64)
    for f, level in zip(frequencies, levels, strict=True):
        out += dbm0_amplitude(level) * np.sin(2 * np.pi * f * t)
    return np.clip(np.rint(out), -32768, 32767).astype(np.int16)


def dtmf_frequencies(digit: str) -> tuple[float, float]:
    """(row, column) frequencies of a DTMF key."""
    key = digit.upper()
    for r, row in enumerate(KEYPAD):
        c = row.find(key)
        if c >= 0 and len(key) == 1:
            return ROW_FREQS[r], COL_FREQS[c]
    raise ValueError(f"not a DTMF digit: {digit!r}")


def dtmf_tone(
    digit: str, duration_ms: int = 100, low_dbm0: float = -8.0, high_dbm0: float = -6.0
) -> Pcm:
    """One DTMF key; the high group 2 dB above the low one, as phones send."""
    return sine(dtmf_frequencies(digit), duration_ms, (low_dbm0, high_dbm0))


def dtmf_sequence(
    digits: str,
    on_ms: int = 100,
    off_ms: int = 100,
    low_dbm0: float = -8.0,
    high_dbm0: float = -6.0,
    lead_ms: int = 0,
) -> Pcm:
    """Digits separated by silence, with ``lead_ms`` of silence first."""
    gap = np.zeros(off_ms * SAMPLE_RATE // 1000, dtype=np.int16)
    parts = [np.zeros(lead_ms * SAMPLE_RATE // 1000, dtype=np.int16)]
    for d in digits:
        parts += [dtmf_tone(d, on_ms, low_dbm0, high_dbm0), gap]
    return np.concatenate(parts)
