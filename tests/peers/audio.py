"""Audio helpers for real-peer tests: make test tones, analyse recordings.

All functions work on mono 16-bit PCM WAV files (what baresip's sndfile
module writes and what its aufile source reads).  Samples are returned as
float64 arrays scaled to [-1, 1].

The WAV reader tolerates a header whose sizes were never finalised (a
recorder still running, or killed): it then takes the rest of the file as
the data chunk.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

__all__ = [
    "Correlation",
    "FloatArray",
    "best_alignment",
    "dominant_frequencies",
    "read_wav",
    "rms_dbfs",
    "tone_present",
    "tone_snr_db",
    "trim_silence",
    "write_silence_wav",
    "write_tone_wav",
    "write_wav",
]


# --------------------------------------------------------------------------- I/O


def write_wav(path: str | Path, samples: npt.ArrayLike, rate: int = 8000) -> Path:
    """Write mono float samples in [-1, 1] as 16-bit PCM WAV."""
    path = Path(path)
    data = np.clip(np.asarray(samples, dtype=np.float64), -1.0, 1.0)
    pcm = np.round(data * 32767.0).astype("<i2").tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVE"
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    header += b"fmt " + struct.pack("<I", len(fmt)) + fmt
    header += b"data" + struct.pack("<I", len(pcm))
    path.write_bytes(header + pcm)
    return path


def write_tone_wav(
    path: str | Path,
    freq_hz: float | Sequence[float],
    seconds: float,
    rate: int = 8000,
    amplitude: float = 0.3,
) -> Path:
    """Write a sine tone (or the sum of several, sharing ``amplitude``) to ``path``.

    ``amplitude`` is the peak value as a fraction of full scale.  A 10 ms
    fade in/out avoids clicks that would smear the spectrum.
    """
    freqs = [float(freq_hz)] if isinstance(freq_hz, int | float) else [float(f) for f in freq_hz]
    if not freqs:
        raise ValueError("need at least one frequency")
    if any(f <= 0 or f >= rate / 2 for f in freqs):
        raise ValueError(f"frequencies must lie in (0, {rate / 2}) Hz: {freqs}")
    n = round(seconds * rate)
    t = np.arange(n, dtype=np.float64) / rate
    signal = sum(np.sin(2 * np.pi * f * t) for f in freqs) / len(freqs)
    signal = np.asarray(signal, dtype=np.float64) * amplitude
    fade = min(n // 2, round(0.01 * rate))
    if fade > 0:
        ramp = np.linspace(0.0, 1.0, fade)
        signal[:fade] *= ramp
        signal[n - fade :] *= ramp[::-1]
    return write_wav(path, signal, rate)


def write_silence_wav(path: str | Path, seconds: float, rate: int = 8000) -> Path:
    return write_wav(path, np.zeros(round(seconds * rate)), rate)


def read_wav(path: str | Path) -> tuple[FloatArray, int]:
    """Read a mono (or first channel of a multi-channel) 16-bit PCM WAV file."""
    raw = Path(path).read_bytes()
    if len(raw) < 12 or raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise ValueError(f"{path}: not a RIFF/WAVE file")
    pos = 12
    channels = rate = bits = 0
    data: bytes | None = None
    while pos + 8 <= len(raw):
        chunk_id = raw[pos : pos + 4]
        (size,) = struct.unpack("<I", raw[pos + 4 : pos + 8])
        body_start = pos + 8
        if chunk_id == b"data":
            end = body_start + size
            if size == 0 or end > len(raw):  # header never finalised
                end = len(raw)
            data = raw[body_start:end]
            break
        if chunk_id == b"fmt ":
            fmt_tag, channels, rate, _, _, bits = struct.unpack(
                "<HHIIHH", raw[body_start : body_start + 16]
            )
            if fmt_tag not in (1, 0xFFFE):
                raise ValueError(f"{path}: WAV format {fmt_tag} is not PCM")
        pos = body_start + size + (size & 1)
    if data is None or not rate:
        raise ValueError(f"{path}: missing fmt or data chunk")
    if bits != 16:
        raise ValueError(f"{path}: {bits}-bit samples, expected 16")
    usable = len(data) - len(data) % (2 * channels)
    pcm = np.frombuffer(data[:usable], dtype="<i2").reshape(-1, channels)[:, 0]
    return pcm.astype(np.float64) / 32768.0, rate


def _load(source: str | Path | tuple[FloatArray, int]) -> tuple[FloatArray, int]:
    if isinstance(source, tuple):
        return source
    return read_wav(source)


# ---------------------------------------------------------------------- analysis


def trim_silence(samples: FloatArray, threshold: float = 0.01) -> FloatArray:
    """Drop leading and trailing samples whose magnitude is below ``threshold``."""
    loud = np.flatnonzero(np.abs(samples) >= threshold)
    if loud.size == 0:
        return samples[:0]
    return samples[loud[0] : loud[-1] + 1]


def rms_dbfs(source: str | Path | tuple[FloatArray, int]) -> float:
    """RMS level in dB relative to full scale (-inf for digital silence)."""
    samples, _ = _load(source)
    if samples.size == 0:
        return float("-inf")
    rms = float(np.sqrt(np.mean(samples**2)))
    return 20 * np.log10(rms) if rms > 0 else float("-inf")


def _power_spectrum(samples: FloatArray, rate: int) -> tuple[FloatArray, FloatArray]:
    window = np.hanning(samples.size)
    spectrum = np.abs(np.fft.rfft(samples * window)) ** 2
    freqs = np.fft.rfftfreq(samples.size, d=1.0 / rate)
    return freqs.astype(np.float64), spectrum.astype(np.float64)


def dominant_frequencies(
    source: str | Path | tuple[FloatArray, int],
    n: int = 3,
    *,
    min_separation_hz: float = 30.0,
    min_hz: float = 50.0,
) -> list[float]:
    """The ``n`` strongest spectral peaks (Hz), strongest first.

    Peaks closer than ``min_separation_hz`` to a stronger one are skipped, so
    one tone yields one entry.  Content below ``min_hz`` (DC, hum) is ignored.
    Silence (or an empty file) gives an empty list.
    """
    samples, rate = _load(source)
    samples = trim_silence(samples)
    if samples.size < 64:
        return []
    freqs, power = _power_spectrum(samples - samples.mean(), rate)
    power = np.where(freqs >= min_hz, power, 0.0)
    result: list[float] = []
    for idx in np.argsort(power)[::-1]:
        if power[idx] <= 0:
            break
        f = float(freqs[idx])
        if all(abs(f - g) >= min_separation_hz for g in result):
            result.append(f)
            if len(result) == n:
                break
    return result


def tone_snr_db(
    source: str | Path | tuple[FloatArray, int],
    freq_hz: float,
    *,
    bandwidth_hz: float = 20.0,
    min_hz: float = 50.0,
    other_tones_hz: Sequence[float] = (),
) -> float:
    """Ratio of power within ``freq_hz ± bandwidth_hz`` to the power elsewhere, in dB.

    Computed over the non-silent part of the file.  Bands around
    ``other_tones_hz`` (tones known to be mixed in on purpose) count as
    neither signal nor noise.  Returns -inf when the file is silent.
    """
    samples, rate = _load(source)
    samples = trim_silence(samples)
    if samples.size < 64:
        return float("-inf")
    freqs, power = _power_spectrum(samples - samples.mean(), rate)
    usable = freqs >= min_hz
    band = usable & (np.abs(freqs - freq_hz) <= bandwidth_hz)
    for other in other_tones_hz:
        usable &= np.abs(freqs - other) > bandwidth_hz
    signal = float(power[band].sum())
    noise = float(power[usable & ~band].sum())
    if signal <= 0:
        return float("-inf")
    if noise <= 0:
        return float("inf")
    return float(10 * np.log10(signal / noise))


def tone_present(
    source: str | Path | tuple[FloatArray, int],
    freq_hz: float,
    min_snr_db: float = 10.0,
    *,
    bandwidth_hz: float = 20.0,
    min_level_dbfs: float = -50.0,
    other_tones_hz: Sequence[float] = (),
) -> bool:
    """True when the file holds a tone at ``freq_hz`` that clearly dominates.

    Requires the band around ``freq_hz`` to carry ``min_snr_db`` more power
    than the rest of the spectrum and the signal to be louder than
    ``min_level_dbfs`` (so near-silence with a faint tone does not count).
    """
    samples, rate = _load(source)
    if rms_dbfs((trim_silence(samples), rate)) < min_level_dbfs:
        return False
    snr = tone_snr_db(
        (samples, rate), freq_hz, bandwidth_hz=bandwidth_hz, other_tones_hz=other_tones_hz
    )
    return snr >= min_snr_db


# ------------------------------------------------------------------- correlation


@dataclass(frozen=True, slots=True)
class Correlation:
    """Result of aligning a reference signal inside a recording."""

    coefficient: float
    """Normalised correlation at the best lag, in [-1, 1]; ~1 means same waveform."""
    lag_samples: int
    """Where the reference starts in the recording (positive = later)."""
    rate: int

    @property
    def lag_seconds(self) -> float:
        return self.lag_samples / self.rate


def best_alignment(
    reference: str | Path | tuple[FloatArray, int],
    recording: str | Path | tuple[FloatArray, int],
    *,
    max_lag_seconds: float | None = None,
) -> Correlation:
    """Find where ``reference`` occurs in ``recording`` (echo / playback tests).

    Uses FFT cross-correlation and normalises each candidate window by its
    energy, so the coefficient is a true correlation coefficient of the
    reference against the matching stretch of the recording.  Both inputs
    must share a sample rate.  ``max_lag_seconds`` limits how late (or early)
    the reference may start.
    """
    ref, rate_a = _load(reference)
    rec, rate_b = _load(recording)
    if rate_a != rate_b:
        raise ValueError(f"sample rates differ: {rate_a} vs {rate_b}")
    ref = ref - ref.mean() if ref.size else ref
    if ref.size == 0 or rec.size == 0:
        return Correlation(0.0, 0, rate_a)
    ref_energy = float(np.sqrt(np.sum(ref**2)))
    if ref_energy == 0:
        return Correlation(0.0, 0, rate_a)
    size = 1 << int(np.ceil(np.log2(ref.size + rec.size)))
    corr = np.fft.irfft(np.fft.rfft(rec, size) * np.conj(np.fft.rfft(ref, size)), size)
    # corr[k] = sum_i rec[i + k] * ref[i], k in [-(len(ref)-1), len(rec)-1]
    lags = np.concatenate([np.arange(0, rec.size), np.arange(-(ref.size - 1), 0)])
    values = np.concatenate([corr[: rec.size], corr[size - (ref.size - 1) :]])
    # energy of the recording under the reference window at each lag
    csum = np.concatenate([[0.0], np.cumsum(rec**2)])
    starts = np.clip(lags, 0, rec.size)
    ends = np.clip(lags + ref.size, 0, rec.size)
    window_energy = np.sqrt(np.maximum(csum[ends] - csum[starts], 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        coeffs = np.where(window_energy > 1e-9, values / (ref_energy * window_energy), 0.0)
    # a sliver of overlap correlates well by chance: demand half the reference
    overlap = ends - starts
    coeffs = np.where(overlap >= min(ref.size, rec.size) / 2, coeffs, 0.0)
    if max_lag_seconds is not None:
        limit = round(max_lag_seconds * rate_a)
        coeffs = np.where(np.abs(lags) <= limit, coeffs, 0.0)
    best = int(np.argmax(coeffs))
    return Correlation(float(coeffs[best]), int(lags[best]), rate_a)
