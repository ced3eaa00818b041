"""Audio sources and the player that feeds a leg, sans-IO.

A source is anything with ``read(n) -> Pcm | None``: it returns up to ``n``
int16 samples at 8 kHz, and fewer (or None) once it is finished. The
:class:`Player` plays queued sources one after the other and, when nothing
is queued, its *idle* source: comfort noise by default, so that a waiting
caller never hears pure silence (R98), or e.g. the echo or a conference mix.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable
from typing import Protocol

import numpy as np
import numpy.typing as npt

from vaxla.media.tones import ToneGenerator, dbm0_amplitude

Pcm = npt.NDArray[np.int16]


class AudioSource(Protocol):
    def read(self, n: int) -> Pcm | None: ...


class PcmSource:
    """A finite piece of audio (a prompt)."""

    def __init__(self, pcm: Pcm) -> None:
        self.pcm = pcm
        self.position = 0

    def read(self, n: int) -> Pcm | None:
        chunk = self.pcm[self.position : self.position + n]
        self.position += len(chunk)
        return chunk


class SilenceSource:
    def __init__(self, ms: int) -> None:
        self.left = ms * 8

    def read(self, n: int) -> Pcm | None:
        take = min(n, self.left)
        self.left -= take
        return np.zeros(take, dtype=np.int16)


class ToneSource:
    """A tone generator, for ``duration_ms`` or for ever (None)."""

    def __init__(self, generator: ToneGenerator, duration_ms: int | None = None) -> None:
        self.generator = generator
        self.left = None if duration_ms is None else duration_ms * 8

    def read(self, n: int) -> Pcm | None:
        take = n if self.left is None else min(n, self.left)
        if self.left is not None:
            self.left -= take
        return self.generator.read(take)


class ComfortNoise:
    """Low, soft noise (default -55 dBm0 RMS, gently low-passed): never silence."""

    def __init__(self, level_dbm0: float = -55.0, seed: int = 0) -> None:
        self.rms = dbm0_amplitude(level_dbm0) / math.sqrt(2)
        self._rng = np.random.default_rng(seed)
        self._tail = np.zeros(3)

    def read(self, n: int) -> Pcm | None:
        white = self._rng.standard_normal(n + 3)
        white[:3] = self._tail
        self._tail = white[-3:].copy()
        # 4-tap moving average: softer than white noise; rescale to the RMS
        soft = np.convolve(white, np.full(4, 0.5), mode="valid")[:n]
        out = np.clip(np.rint(soft * self.rms), -32768, 32767).astype(np.int16)
        out[out == 0] = 1  # not even one frame of digital silence
        return out


class FifoSource:
    """Audio pushed by someone else (echo, a mix); never finishes.

    Starts giving audio once ``prebuffer`` samples are queued and reads as
    silence on underrun (then waits for ``prebuffer`` again). Keeps at most
    ``limit`` samples (oldest dropped), so a producer running ahead cannot
    add delay without bound.
    """

    def __init__(self, prebuffer: int = 160, limit: int = 1600) -> None:
        self.prebuffer = prebuffer
        self.limit = limit
        self._chunks: deque[Pcm] = deque()
        self._size = 0
        self._primed = False
        self.underruns = 0

    def push(self, pcm: Pcm) -> None:
        self._chunks.append(pcm)
        self._size += len(pcm)
        while self._size > self.limit and self._chunks:
            self._size -= len(self._chunks.popleft())

    def read(self, n: int) -> Pcm | None:
        if not self._primed:
            if self._size < self.prebuffer:
                return np.zeros(n, dtype=np.int16)
            self._primed = True
        if self._size < n:
            self.underruns += 1
            self._primed = False
        out = np.zeros(n, dtype=np.int16)
        filled = 0
        while filled < n and self._chunks:
            chunk = self._chunks[0]
            take = min(len(chunk), n - filled)
            out[filled : filled + take] = chunk[:take]
            filled += take
            if take == len(chunk):
                self._chunks.popleft()
            else:
                self._chunks[0] = chunk[take:]
        self._size -= filled
        return out


Done = Callable[[], None]


class Player:
    """Queued sources, then the idle source."""

    def __init__(self, idle: AudioSource | None = None) -> None:
        self.idle: AudioSource | None = (
            idle if idle is not None else ComfortNoise(seed=random.getrandbits(32))
        )
        self._queue: deque[tuple[AudioSource, Done | None]] = deque()
        self._current: tuple[AudioSource, Done | None] | None = None

    @property
    def playing(self) -> bool:
        return self._current is not None or bool(self._queue)

    def enqueue(self, source: AudioSource, done: Done | None = None) -> None:
        self._queue.append((source, done))

    def stop(self) -> None:
        """Drop what is playing and queued (their ``done`` still runs)."""
        pending = ([self._current] if self._current else []) + list(self._queue)
        self._current = None
        self._queue.clear()
        for _, done in pending:
            if done is not None:
                done()

    def read(self, n: int) -> Pcm:
        out = np.zeros(n, dtype=np.int16)
        filled = 0
        while filled < n:
            if self._current is None:
                if not self._queue:
                    break
                self._current = self._queue.popleft()
            source, done = self._current
            want = n - filled
            chunk = source.read(want)
            got = 0 if chunk is None else len(chunk)
            if got:
                assert chunk is not None
                out[filled : filled + got] = chunk
                filled += got
            if got < want:
                self._current = None
                if done is not None:
                    done()
        if filled < n and self.idle is not None:
            rest = self.idle.read(n - filled)
            if rest is not None:
                out[filled : filled + len(rest)] = rest
        return out
