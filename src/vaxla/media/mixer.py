"""The conference mixer, sans-IO (numpy).

Every 20 ms each participant's frame goes in; everyone gets the sum of the
others' frames (the total minus their own, so the cost is one sum and one
subtraction per participant, whatever N). Join and leave tones are mixed
into everyone's output. Arithmetic is int32, clipped to int16 at the end.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import numpy.typing as npt

from vaxla.media.tones import sine

Pcm = npt.NDArray[np.int16]
FRAME = 160


def join_tone() -> Pcm:
    """Two rising beeps (600 then 900 Hz, 100 ms each)."""
    return np.concatenate(
        [sine((600.0,), 100, -20.0), np.zeros(400, np.int16), sine((900.0,), 100, -20.0)]
    )


def leave_tone() -> Pcm:
    """Two falling beeps (900 then 600 Hz)."""
    return np.concatenate(
        [sine((900.0,), 100, -20.0), np.zeros(400, np.int16), sine((600.0,), 100, -20.0)]
    )


class ConferenceMixer:
    def __init__(self, frame: int = FRAME) -> None:
        self.frame = frame
        self.members: list[Hashable] = []
        self._announce = np.zeros(0, dtype=np.int32)

    def add(self, member: Hashable, tone: bool = True) -> None:
        if member not in self.members:
            self.members.append(member)
            if tone:
                self.announce(join_tone())

    def remove(self, member: Hashable, tone: bool = True) -> None:
        if member in self.members:
            self.members.remove(member)
            if tone and self.members:
                self.announce(leave_tone())

    def announce(self, pcm: Pcm) -> None:
        """Mix ``pcm`` into what every member hears, from the next frame on."""
        pending = self._announce
        n = max(len(pending), len(pcm))
        out = np.zeros(n, dtype=np.int32)
        out[: len(pending)] += pending
        out[: len(pcm)] += pcm
        self._announce = out

    def mix(self, frames: dict[Hashable, Pcm]) -> dict[Hashable, Pcm]:
        """One frame per member in (missing ones count as silence), one out."""
        n = self.frame
        members = self.members
        if not members:
            return {}
        stack = np.zeros((len(members), n), dtype=np.int32)
        for i, m in enumerate(members):
            f = frames.get(m)
            if f is not None:
                stack[i, : len(f)] = f[:n]
        total = stack.sum(axis=0)
        if len(self._announce):
            extra = self._announce[:n]
            total[: len(extra)] += extra
            self._announce = self._announce[n:]
        out = np.clip(total[None, :] - stack, -32768, 32767).astype(np.int16)
        return {m: out[i] for i, m in enumerate(members)}
