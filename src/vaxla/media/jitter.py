"""A playout buffer for received audio, sans-IO.

Packets are put by RTP timestamp as they arrive (late, duplicated,
reordered); audio is read out at the pace of Växla's media clock in any
block size. Reading starts ``delay`` samples behind the first packet's
timestamp; gaps (lost packets) read as silence; packets arriving after
their audio was read are dropped. A timestamp far from the playout point
(a new talk spurt after a long pause, a source that restarted) resyncs
the buffer, and when the sender's clock runs fast the buffer skips ahead
rather than growing without bound.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from vaxla.media.rtp import ts_diff

Pcm = npt.NDArray[np.int16]


class JitterBuffer:
    def __init__(self, delay: int = 320, max_delay: int = 1600, resync_after: int = 16000) -> None:
        if not 0 <= delay < max_delay:
            raise ValueError("need 0 <= delay < max_delay")
        self.delay = delay
        self.max_delay = max_delay
        self.resync_after = resync_after
        self._frames: dict[int, Pcm] = {}
        self._pos: int | None = None  # extended timestamp of the next sample to read
        self._ref = 0  # last raw 32-bit timestamp seen, for unwrapping
        self._ext_ref = 0
        self.late = 0
        self.duplicates = 0
        self.resyncs = 0
        self.concealed = 0  # samples read as silence while the buffer was running

    def reset(self) -> None:
        """Forget everything (e.g. the stream's source changed)."""
        self._frames.clear()
        self._pos = None

    def _extend(self, timestamp: int) -> int:
        ext = self._ext_ref + ts_diff(timestamp, self._ref)
        return ext

    @property
    def started(self) -> bool:
        return self._pos is not None

    @property
    def buffered(self) -> int:
        """Samples between the playout point and the end of the newest packet."""
        if self._pos is None or not self._frames:
            return 0
        return max(ts + len(p) for ts, p in self._frames.items()) - self._pos

    def put(self, timestamp: int, pcm: Pcm) -> bool:
        """Store one packet's audio; False when it is late or a duplicate."""
        if self._pos is None:
            self._ref = timestamp
            self._ext_ref = 1 << 40
            self._pos = self._ext_ref - self.delay
            ext = self._ext_ref
        else:
            ext = self._extend(timestamp)
            if abs(ext - self._pos) > self.resync_after:
                self.resyncs += 1
                self._frames.clear()
                self._pos = ext - self.delay
            if ext > self._ext_ref:
                self._ref, self._ext_ref = timestamp, ext
        if ext + len(pcm) <= self._pos:
            self.late += 1
            return False
        if ext in self._frames:
            self.duplicates += 1
            return False
        self._frames[ext] = pcm
        end = ext + len(pcm)
        if end - self._pos > self.max_delay:
            self._pos = end - self.delay  # skip ahead: the sender runs fast
        return True

    def read(self, n: int) -> Pcm:
        """The next ``n`` samples of playout (silence where nothing arrived)."""
        out = np.zeros(n, dtype=np.int16)
        pos = self._pos
        if pos is None:
            return out
        end = pos + n
        covered = 0
        for ts in sorted(self._frames):
            pcm = self._frames[ts]
            stop = ts + len(pcm)
            if stop <= pos:
                del self._frames[ts]
                continue
            if ts >= end:
                break
            lo = max(ts, pos)
            hi = min(stop, end)
            out[lo - pos : hi - pos] = pcm[lo - ts : hi - ts]
            covered += hi - lo
            if stop <= end:
                del self._frames[ts]
        self.concealed += n - covered
        self._pos = end
        return out
