"""In-band DTMF detection with the Goertzel algorithm (numpy, 8 kHz).

The detector takes int16 frames of any length and reports each digit once,
when it ends, as a :class:`~vaxla.media.dtmf.DigitEvent` whose start and
duration are counted in samples since the detector was created.

Analysis runs on 205-sample windows (the classic N for 8 kHz, bins within
a few Hz of the eight DTMF frequencies) every 80 samples (10 ms). For each
window the Goertzel resonator ``s[n] = x[n] + 2 cos(w) s[n-1] - s[n-2]`` is
evaluated at the eight frequencies; its final two states are linear in the
input, so they are computed for all eight at once as a matrix product with
the resonator's impulse response (identical to running the recurrence,
see the test against a scalar implementation). The power is then
Goertzel's ``s1² + s2² - 2 cos(w) s1 s2``.

A window is a *hit* for a digit when all of these hold:

* the strongest row and column tones are each above ``min_level``;
* twist: the column tone is at most ``max_col_over_row_db`` stronger and at
  most ``max_row_over_col_db`` weaker than the row tone;
* each is ``min_peak_ratio_db`` above the other tones of its group;
* together they hold at least ``min_tone_fraction`` of the window's energy
  (this is what rejects noise, dial tone and speech: their energy is not
  concentrated in exactly one row and one column frequency).

A digit starts after ``on_windows`` consecutive hits (≈ 35 ms of tone) and
ends after ``off_windows`` consecutive windows without it, or when another
digit is confirmed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from vaxla.media.dtmf import DigitEvent

SAMPLE_RATE = 8000
ROW_FREQS = (697.0, 770.0, 852.0, 941.0)
COL_FREQS = (1209.0, 1336.0, 1477.0, 1633.0)
KEYPAD = ("123A", "456B", "789C", "*0#D")
FREQS = np.array(ROW_FREQS + COL_FREQS)


def goertzel_matrices(
    freqs: npt.ArrayLike, n: int, sample_rate: int = SAMPLE_RATE
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Matrices giving the Goertzel states after ``n`` samples, and coefficients.

    With ``h[m] = sin((m + 1) w) / sin(w)`` the resonator's impulse response,
    ``s[n-1] = sum_k x[k] h[n-1-k]`` and ``s[n-2] = sum_k x[k] h[n-2-k]``.
    Returns ``(S1, S2, coeff)`` with ``x @ S1 == s[n-1]``, ``x @ S2 == s[n-2]``
    and ``coeff = 2 cos(w)`` for each frequency.
    """
    w = 2 * np.pi * np.asarray(freqs, dtype=np.float64) / sample_rate
    m = np.arange(n, dtype=np.float64)[:, None]
    h = np.sin((m + 1) * w) / np.sin(w)  # h[m] per frequency, shape (n, F)
    s1 = h[::-1]  # row k holds h[n-1-k]
    s2 = np.vstack([h[-2::-1], np.zeros((1, len(w)))])  # h[n-2-k], zero for k = n-1
    return np.ascontiguousarray(s1), np.ascontiguousarray(s2), 2 * np.cos(w)


def goertzel_power(
    block: npt.NDArray[np.float64],
    s1m: npt.NDArray[np.float64],
    s2m: npt.NDArray[np.float64],
    coeff: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """Goertzel power ``|X(f)|²`` at each frequency for one block."""
    s1 = block @ s1m
    s2 = block @ s2m
    return np.asarray(s1 * s1 + s2 * s2 - coeff * s1 * s2, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    """Thresholds of :class:`DtmfDetector` (defaults suit G.711 phone audio)."""

    window: int = 205
    hop: int = 80
    #: minimum amplitude of each tone, int16 units (≈ -38 dBm0 for 300)
    min_level: float = 300.0
    max_row_over_col_db: float = 8.0
    max_col_over_row_db: float = 4.0
    min_peak_ratio_db: float = 6.0
    min_tone_fraction: float = 0.7
    on_windows: int = 2
    off_windows: int = 2


class DtmfDetector:
    """Streaming in-band DTMF detector; feed frames, collect DigitEvents."""

    def __init__(self, settings: DetectorSettings | None = None) -> None:
        self.settings = s = settings or DetectorSettings()
        self._s1, self._s2, self._coeff = goertzel_matrices(FREQS, s.window)
        self._s12 = np.hstack([self._s1, self._s2])  # both states in one product
        self._row_limit = 10 ** (s.max_col_over_row_db / 10)
        self._col_limit = 10 ** (s.max_row_over_col_db / 10)
        self._peak = 10 ** (s.min_peak_ratio_db / 10)
        self._buffer = np.zeros(0, dtype=np.float64)
        self._buffer_start = 0  # sample index of _buffer[0]
        self._candidate: str | None = None
        self._candidate_hits = 0
        self._candidate_start = 0
        self._active: str | None = None
        self._active_start = 0
        self._active_end = 0
        self._misses = 0
        # a hit window holds at least min_tone_fraction of tone: the tone's
        # edges lie, on average, this far inside the first and last hit windows
        self._margin = int(s.window * (1 - s.min_tone_fraction) / 2)
        # amplitude A of a tone gives Goertzel power (A * N / 2)²
        self._min_power = (s.min_level * s.window / 2) ** 2

    def classify(self, block: npt.NDArray[np.float64]) -> str | None:
        """The digit a single analysis window holds, or None."""
        return self._classify_windows(block[None, :])[0]

    def _classify_windows(self, windows: npt.NDArray[np.float64]) -> list[str | None]:
        """Classify each row of ``windows`` (shape ``(k, window)``) at once."""
        s = self.settings
        states = windows @ self._s12
        s1, s2 = states[:, :8], states[:, 8:]
        power = s1 * s1 + s2 * s2 - self._coeff * s1 * s2
        rows, cols = power[:, :4], power[:, 4:]
        r = np.argmax(rows, axis=1)
        c = np.argmax(cols, axis=1)
        idx = np.arange(len(windows))
        row_p = rows[idx, r]
        col_p = cols[idx, c]
        ok = (row_p >= self._min_power) & (col_p >= self._min_power)
        ok &= col_p <= row_p * self._row_limit
        ok &= row_p <= col_p * self._col_limit
        peak = self._peak
        # the second strongest of each group must be peak times weaker
        row_second = np.sort(rows, axis=1)[:, -2]
        col_second = np.sort(cols, axis=1)[:, -2]
        ok &= (row_second * peak <= row_p) & (col_second * peak <= col_p)
        energy = np.einsum("ij,ij->i", windows, windows)
        # a tone of amplitude A holds N A² / 2 of the energy and (A N / 2)² of power
        ok &= (row_p + col_p) * 2 / s.window >= s.min_tone_fraction * energy
        return [KEYPAD[ri][ci] if good else None for ri, ci, good in zip(r, c, ok, strict=True)]

    def process(self, samples: npt.ArrayLike) -> list[DigitEvent]:
        """Feed the next int16 frame; return the digits that ended in it."""
        s = self.settings
        frame = np.asarray(samples, dtype=np.float64)
        buffer = np.concatenate([self._buffer, frame]) if self._buffer.size else frame
        out: list[DigitEvent] = []
        count = 0 if buffer.size < s.window else (buffer.size - s.window) // s.hop + 1
        if count:
            windows = np.lib.stride_tricks.sliding_window_view(buffer, s.window)[:: s.hop][:count]
            for k, digit in enumerate(self._classify_windows(windows)):
                out.extend(self._step(digit, self._buffer_start + k * s.hop))
        consumed = count * s.hop
        self._buffer = buffer[consumed:].copy()
        self._buffer_start += consumed
        return out

    def flush(self) -> list[DigitEvent]:
        """End of stream: report a digit still sounding."""
        return self._end()

    def _step(self, digit: str | None, start: int) -> list[DigitEvent]:
        s = self.settings
        out: list[DigitEvent] = []
        end = start + s.window - self._margin
        if digit is not None and digit == self._active:
            self._active_end = end
            self._misses = 0
            self._candidate = None
            return out
        if digit is None:
            self._candidate = None
            if self._active is not None:
                self._misses += 1
                if self._misses >= s.off_windows:
                    out.extend(self._end())
            return out
        # a hit for a digit that is not the active one
        if digit != self._candidate:
            self._candidate = digit
            self._candidate_hits = 0
            self._candidate_start = start
        self._candidate_hits += 1
        if self._active is not None:
            self._misses += 1
        if self._candidate_hits >= s.on_windows:
            out.extend(self._end())
            self._active = digit
            self._active_start = self._candidate_start + self._margin
            self._active_end = end
            self._misses = 0
            self._candidate = None
        elif self._active is not None and self._misses >= s.off_windows:
            out.extend(self._end())
        return out

    def _end(self) -> list[DigitEvent]:
        if self._active is None:
            return []
        event = DigitEvent(self._active, self._active_start, self._active_end - self._active_start)
        self._active = None
        self._misses = 0
        return [event]
