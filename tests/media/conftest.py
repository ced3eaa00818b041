"""Fixtures for media tests: real nodes (plain and anchoring), baresip phones."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.peers.audio import write_wav
from tests.peers.fixtures import baresip_factory  # noqa: F401
from tests.support.server import VaxlaProcess


@pytest.fixture
def anchoring_node(tmp_path: Path) -> Iterator[VaxlaProcess]:
    """A node that anchors every bridged call (media.anchor = always)."""
    proc = VaxlaProcess(tmp_path / "node", env={"VAXLA_MEDIA__ANCHOR": "always"})
    try:
        proc.start()
        yield proc
    finally:
        proc.stop()


def speechlike_wav(path: Path, seconds: float = 8.0, seed: int = 1) -> Path:
    """Noise bursts shaped like syllables: correlates only at the true lag."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 8000)
    noise = rng.standard_normal(n)
    # low-pass a little (phone band) and modulate with a 4 Hz syllable envelope
    noise = np.convolve(noise, np.ones(3) / 3, mode="same")
    t = np.arange(n) / 8000
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6) * np.sin(0.7 * t))
    signal = 0.25 * noise * envelope / np.max(np.abs(noise))
    return write_wav(path, np.clip(signal * 3, -0.9, 0.9))
