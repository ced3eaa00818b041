"""Mixer cost: one 20-party conference, per 20 ms frame and per second.

    .venv/bin/python bench/bench_mixer.py --parties 20 --seconds 10

Counts what the conference does every 20 ms for N parties: read each
party's frame from its input FIFO, mix (everyone hears all but themself),
push each output, and the G.711 decode + encode of every party's packet.
Reported as CPU µs per frame and CPU % of one core for the conference.
"""

from __future__ import annotations

import argparse
import json
import time

from vaxla.media.g711 import G711Codec
from vaxla.media.mixer import ConferenceMixer
from vaxla.media.player import FifoSource
from vaxla.media.tones import sine


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parties", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    n, frames = args.parties, int(args.seconds * 50)
    mixer = ConferenceMixer()
    inputs = [FifoSource(prebuffer=160) for _ in range(n)]
    outputs = [FifoSource(prebuffer=160) for _ in range(n)]
    for i in range(n):
        mixer.add(i, tone=False)
    codec = G711Codec.PCMA
    packets = [codec.encode(sine((300.0 + 50 * i,), 20, -15.0)) for i in range(n)]
    t_mix = t_codec = 0.0
    cpu0 = time.process_time()
    for _ in range(frames):
        c0 = time.perf_counter()
        for i in range(n):
            inputs[i].push(codec.decode(packets[i]))
        c1 = time.perf_counter()
        frame = {i: inputs[i].read(160) for i in range(n)}
        mixed = mixer.mix(frame)  # type: ignore[arg-type]
        for i in range(n):
            outputs[i].push(mixed[i])
        c2 = time.perf_counter()
        for i in range(n):
            out = outputs[i].read(160)
            assert out is not None
            codec.encode(out)
        c3 = time.perf_counter()
        t_codec += (c1 - c0) + (c3 - c2)
        t_mix += c2 - c1
    cpu = time.process_time() - cpu0
    result = {
        "parties": n,
        "frames": frames,
        "mix_us_per_frame": round(t_mix / frames * 1e6, 1),
        "codec_us_per_frame": round(t_codec / frames * 1e6, 1),
        "cpu_percent_of_core": round(100 * cpu / (frames * 0.02), 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
