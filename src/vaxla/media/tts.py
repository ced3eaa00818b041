"""Prompts: generated Swedish speech (espeak-ng) and imported WAV files.

Generated prompts are rendered once and cached in the data directory as
8 kHz mono 16-bit WAV, named by a hash of voice and text, so a restart or a
second node sharing the directory reuses them. espeak-ng writes 22,050 Hz;
:func:`resample` brings any rate to 8 kHz with a windowed-sinc filter
(numpy), which is also what WAV import uses.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import struct
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

from vaxla.media.errors import MediaError

Pcm = npt.NDArray[np.int16]
RATE = 8000


class PromptError(MediaError):
    """A prompt could not be rendered or imported."""


def resample(pcm: npt.ArrayLike, src_rate: int, dst_rate: int = RATE) -> Pcm:
    """Band-limited resampling by a Blackman-windowed sinc (any ratio)."""
    x = np.asarray(pcm, dtype=np.float64)
    if src_rate == dst_rate:
        return np.clip(np.rint(x), -32768, 32767).astype(np.int16)
    ratio = dst_rate / src_rate
    cutoff = min(1.0, ratio) * 0.92  # of the source Nyquist
    half = int(np.ceil(12 / cutoff))
    n_out = int(len(x) * ratio)
    padded = np.concatenate([np.zeros(half), x, np.zeros(half + 1)])
    out = np.empty(n_out)
    taps = np.arange(-half + 1, half + 1)
    for start in range(0, n_out, 4096):
        idx = np.arange(start, min(start + 4096, n_out))
        u = idx / ratio  # position in source samples
        base = np.floor(u).astype(np.int64)
        k = base[:, None] + taps[None, :]  # source indices
        d = u[:, None] - k
        window = 0.42 + 0.5 * np.cos(np.pi * d / half) + 0.08 * np.cos(2 * np.pi * d / half)
        h = cutoff * np.sinc(cutoff * d) * np.where(np.abs(d) < half, window, 0.0)
        out[idx - 0] = np.einsum("ij,ij->i", padded[k + half], h)
    return np.clip(np.rint(out), -32768, 32767).astype(np.int16)


def parse_wav(data: bytes) -> tuple[Pcm, int]:
    """PCM16 samples (mono; stereo is averaged) and rate of a RIFF/WAVE file.

    Tolerates the bogus sizes espeak-ng writes when streaming to stdout."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise PromptError("not a WAV file")
    pos = 12
    rate = channels = bits = 0
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = pos + 8
        if cid == b"fmt ":
            fmt, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
            if fmt != 1 or bits != 16:
                raise PromptError("only 16-bit PCM WAV is supported")
        elif cid == b"data":
            end = len(data) if size == 0 or body + size > len(data) else body + size
            raw = data[body:end]
            samples = np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<i2").astype(np.int16)
            if channels > 1:
                usable = len(samples) // channels * channels
                samples = (
                    samples[:usable].reshape(-1, channels).mean(axis=1).round().astype(np.int16)
                )
            return samples, rate
        pos = body + size + (size & 1)
    raise PromptError("WAV without data chunk")


def write_wav(path: Path, pcm: Pcm, rate: int = RATE) -> None:
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())
    tmp.replace(path)


def import_wav(data: bytes) -> Pcm:
    """A customer's WAV prompt (R97.6) at 8 kHz mono."""
    pcm, rate = parse_wav(data)
    return resample(pcm, rate)


class PromptCache:
    """Renders text with espeak-ng once; later calls read the cached file."""

    def __init__(self, directory: Path, voice: str = "sv", binary: str = "espeak-ng") -> None:
        self.directory = directory
        self.voice = voice
        self.binary = binary
        self._memory: dict[str, Pcm] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.renders = 0

    def path_for(self, text: str) -> Path:
        digest = hashlib.sha256(f"{self.voice}\0{text}".encode()).hexdigest()[:32]
        return self.directory / f"tts-{digest}.wav"

    async def render(self, text: str) -> Pcm:
        path = self.path_for(text)
        key = path.name
        cached = self._memory.get(key)
        if cached is not None:
            return cached
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._memory.get(key)
            if cached is not None:
                return cached
            if path.exists():
                pcm, _ = parse_wav(await asyncio.to_thread(path.read_bytes))
            else:
                pcm = await self._synthesise(text)
                self.directory.mkdir(parents=True, exist_ok=True)
                await asyncio.to_thread(write_wav, path, pcm)
            self._memory[key] = pcm
            return pcm

    async def _synthesise(self, text: str) -> Pcm:
        try:
            proc = await asyncio.create_subprocess_exec(
                self.binary,
                "-v",
                self.voice,
                "--stdout",
                text,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise PromptError(f"{self.binary} not available: {exc}") from exc
        out, err = await proc.communicate()
        if proc.returncode != 0 or not out:
            raise PromptError(f"{self.binary} failed: {err.decode(errors='replace')[:200]}")
        self.renders += 1
        pcm, rate = parse_wav(out)
        return await asyncio.to_thread(resample, pcm, rate)


def wav_bytes(pcm: Pcm, rate: int = RATE) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())
    return buf.getvalue()
