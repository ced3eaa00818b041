"""Playout buffer, player/sources and the conference mixer (sans-IO)."""

from __future__ import annotations

import numpy as np

from vaxla.media.jitter import JitterBuffer
from vaxla.media.mixer import ConferenceMixer
from vaxla.media.player import ComfortNoise, FifoSource, PcmSource, Player
from vaxla.media.ports import PortAllocator, PortsExhaustedError


def _frame(value: int, n: int = 160) -> np.ndarray:  # type: ignore[type-arg]
    return np.full(n, value, dtype=np.int16)


def test_jitter_buffer_reorders_conceals_and_drops_late() -> None:
    jb = JitterBuffer(delay=320)
    base = 0xFFFF_FF00  # wraps around 2**32 on the way
    order = [0, 2, 1, 4, 5]  # 3 lost, 1 and 2 swapped
    for k in order:
        assert jb.put((base + 160 * k) & 0xFFFF_FFFF, _frame(k + 1))
    out = np.concatenate([jb.read(160) for _ in range(8)])
    blocks = out.reshape(-1, 160)[:, 0].tolist()
    assert blocks == [0, 0, 1, 2, 3, 0, 5, 6]
    assert jb.concealed == 3 * 160
    assert not jb.put(base & 0xFFFF_FFFF, _frame(9))  # long played: late
    assert jb.late == 1


def test_jitter_buffer_resyncs_after_a_jump_and_any_block_size() -> None:
    jb = JitterBuffer(delay=160)
    jb.put(1000, _frame(1, 240))
    assert jb.read(100).tolist() == [0] * 100
    assert jb.read(100).tolist() == [0] * 60 + [1] * 40
    jb.put(1000 + 10**6, _frame(2))  # a new talk spurt far away
    assert jb.resyncs == 1
    assert jb.read(320)[160:].tolist() == [2] * 160


def test_player_queue_then_idle_never_silent() -> None:
    player = Player()
    done: list[str] = []
    player.enqueue(PcmSource(_frame(5, 200)), lambda: done.append("a"))
    player.enqueue(PcmSource(_frame(7, 50)), lambda: done.append("b"))
    out = player.read(300)
    assert out[:200].tolist() == [5] * 200 and out[200:250].tolist() == [7] * 50
    assert done == ["a", "b"]
    assert np.all(out[250:] != 0)  # comfort noise, not digital silence
    noise = np.concatenate([ComfortNoise().read(160) for _ in range(100)])
    rms = float(np.sqrt(np.mean(noise.astype(float) ** 2)))
    assert 10 < rms < 200 and np.all(noise != 0)  # soft, around -55 dBm0


def test_fifo_prebuffers_and_limits() -> None:
    fifo = FifoSource(prebuffer=320, limit=800)
    fifo.push(_frame(1))
    assert fifo.read(160).tolist() == [0] * 160  # not primed yet
    fifo.push(_frame(2))
    assert fifo.read(160).tolist() == [1] * 160
    for _ in range(10):
        fifo.push(_frame(3))
    assert fifo.read(160).tolist() == [3] * 160  # oldest dropped beyond the limit


def test_mixer_everyone_but_themself_with_tones() -> None:
    mixer = ConferenceMixer()
    for m in "abc":
        mixer.add(m, tone=False)
    out = mixer.mix({"a": _frame(100), "b": _frame(20), "c": _frame(3)})
    assert (int(out["a"][0]), int(out["b"][0]), int(out["c"][0])) == (23, 103, 120)
    loud = mixer.mix({"a": _frame(30000), "b": _frame(30000), "c": _frame(0)})
    assert int(loud["c"][0]) == 32767  # clipped, not wrapped
    mixer.add("d")  # join tone: everyone hears it, silence otherwise
    beep = mixer.mix({})
    assert all(np.abs(beep[m]).max() > 500 for m in "abcd")
    mixer.remove("d")
    assert mixer.members == ["a", "b", "c"]


def test_port_allocator_even_pairs_round_robin() -> None:
    ports = PortAllocator(30001, 30008)
    got = [ports.allocate() for _ in range(3)]
    assert got == [30002, 30004, 30006]
    try:
        ports.allocate()
        raise AssertionError("expected exhaustion")
    except PortsExhaustedError:
        pass
    ports.release(30004)
    assert ports.allocate() == 30004
