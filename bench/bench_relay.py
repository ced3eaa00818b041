"""Relay cost: N anchored G.711 calls through Växla vs Debian's rtpengine.

    .venv/bin/python bench/bench_relay.py --calls 50,100,200,400 --seconds 10

A load generator process (plain sockets + epoll) plays both phones of N
calls: 2N streams of 172-byte PCMA packets at 50 packets/s each, towards
the relay, and times what comes back (transit = receive - send, same clock).
The relay is, in turn:

* Växla: a process running the media engine with N ``AnchoredCall``s (the
  code the node runs for media.anchor = always), its SDP set up through
  ``offer_to_b``/``answer_to_a`` exactly as the B2BUA does;
* rtpengine 10.5 in userspace mode (``--table=-1``), calls set up with the
  ng protocol (bencode over UDP: offer/answer, delete afterwards).

For each, the relay process's CPU (utime + stime from /proc) over the
measured window gives CPU per relayed packet and the calls one core would
carry at 60 % CPU; the transit p50/p99 shows whether the relay adds jitter
(target: p99 - p50 <= 5 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HZ = os.sysconf("SC_CLK_TCK")
PAYLOAD = 160
HOST = "127.0.0.1"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


# --------------------------------------------------------------- load generator


def loadgen(n: int, seconds: float, warmup: float) -> None:
    """Child process: 2N sockets; prints ports, reads targets, runs, prints stats."""
    socks = []
    for _ in range(2 * n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((HOST, 0))
        s.setblocking(False)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        socks.append(s)
    print(json.dumps([s.getsockname()[1] for s in socks]), flush=True)
    targets = [tuple(t) for t in json.loads(sys.stdin.readline())]
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    header = struct.Struct("!BBHIId")
    seqs = [0] * len(socks)
    transits: list[float] = []
    received = 0
    sent = 0
    start = time.monotonic()
    measure_from = start + warmup
    end = measure_from + seconds
    tick = 0
    pad = bytes(PAYLOAD - 8)
    while True:
        now = time.monotonic()
        if now >= end:
            break
        due = start + tick * 0.02
        if now >= due:
            for i, s in enumerate(socks):
                seqs[i] = (seqs[i] + 1) & 0xFFFF
                pkt = header.pack(0x80, 8, seqs[i], tick * 160, i, time.monotonic()) + pad
                try:
                    s.sendto(pkt, targets[i])
                    sent += now >= measure_from
                except (BlockingIOError, OSError):
                    pass
            tick += 1
            due = start + tick * 0.02
        # always drain what arrived, even when behind schedule
        for key, _ in sel.select(max(0.0, due - time.monotonic())):
            s = key.fileobj
            assert isinstance(s, socket.socket)
            while True:
                try:
                    data = s.recv(2048)
                except (BlockingIOError, OSError):
                    break
                t = time.monotonic()
                if t >= measure_from and len(data) >= 20 and data[1] < 192:
                    received += 1
                    if received % 7 == 0:  # a sample is enough
                        transits.append(t - struct.unpack_from("!d", data, 12)[0])
    transits.sort()
    q = (lambda p: transits[int(p * (len(transits) - 1))] * 1000) if transits else (lambda p: 0.0)
    print(
        json.dumps(
            {
                "sent": sent,
                "received": received,
                "p50_ms": q(0.5),
                "p99_ms": q(0.99),
                "max_ms": q(1.0),
            }
        ),
        flush=True,
    )


# ------------------------------------------------------------------ Växla relay


async def vaxla_relay(n: int) -> None:
    """Child process: N anchored calls; reads phone ports, prints relay ports."""
    from vaxla.config import MediaSettings
    from vaxla.media.anchor import AnchoredCall
    from vaxla.media.engine import MediaEngine
    from vaxla.media.negotiation import make_answer, make_offer

    phones = json.loads(sys.stdin.readline())
    engine = MediaEngine(
        MediaSettings(port_min=20000, port_max=29999, rtcp_interval=5.0),
        Path(tempfile.mkdtemp(prefix="vaxla-bench-")),
    )
    targets = []
    calls = []
    for i in range(n):
        a_port, b_port = phones[2 * i], phones[2 * i + 1]
        call = AnchoredCall(engine, f"bench-{i}", f"a{i}", f"b{i}")
        await call.open()
        to_b = call.offer_to_b(bytes(make_offer(HOST, a_port, session_id=str(i))))
        answer, _ = make_answer(to_b, HOST, b_port, session_id=str(i + 1))
        call.answer_to_a(bytes(answer))
        targets += [(HOST, call.a.port), (HOST, call.b.port)]
        calls.append(call)
    print(json.dumps(targets), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for call in calls:
        await call.close()


def run_vaxla_child(n: int) -> None:
    try:
        import uvloop

        uvloop.run(vaxla_relay(n))
    except ImportError:
        asyncio.run(vaxla_relay(n))


# ------------------------------------------------------------------- rtpengine


def bencode(value: Any) -> bytes:
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, list):
        return b"l" + b"".join(bencode(v) for v in value) + b"e"
    if isinstance(value, dict):
        return b"d" + b"".join(bencode(k) + bencode(value[k]) for k in sorted(value)) + b"e"
    raise TypeError(type(value))


def bdecode(data: bytes, pos: int = 0) -> tuple[Any, int]:
    c = data[pos : pos + 1]
    if c == b"i":
        end = data.index(b"e", pos)
        return int(data[pos + 1 : end]), end + 1
    if c == b"l":
        out, pos = [], pos + 1
        while data[pos : pos + 1] != b"e":
            v, pos = bdecode(data, pos)
            out.append(v)
        return out, pos + 1
    if c == b"d":
        d, pos = {}, pos + 1
        while data[pos : pos + 1] != b"e":
            k, pos = bdecode(data, pos)
            v, pos = bdecode(data, pos)
            d[k.decode()] = v
        return d, pos + 1
    colon = data.index(b":", pos)
    length = int(data[pos:colon])
    return data[colon + 1 : colon + 1 + length], colon + 1 + length


class Ng:
    def __init__(self, port: int) -> None:
        self.addr = (HOST, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(2.0)
        self.cookie = 0

    def __call__(self, **command: Any) -> dict[str, Any]:
        self.cookie += 1
        cookie = f"c{self.cookie}".encode()
        self.sock.sendto(cookie + b" " + bencode(command), self.addr)
        while True:
            data = self.sock.recv(65536)
            if data.startswith(cookie + b" "):
                result, _ = bdecode(data[len(cookie) + 1 :])
                return result  # type: ignore[no-any-return]


def sdp(port: int, sid: int) -> str:
    return (
        f"v=0\r\no=- {sid} 1 IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n"
        f"a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
    )


def sdp_port(body: bytes) -> int:
    for line in body.decode().splitlines():
        if line.startswith("m=audio"):
            return int(line.split()[1])
    raise ValueError("no audio")


# ----------------------------------------------------------------------- runner


def run_one(kind: str, n: int, seconds: float, warmup: float) -> dict[str, Any]:
    gen = subprocess.Popen(
        [sys.executable, __file__, "--child", "loadgen", "--calls", str(n),
         "--seconds", str(seconds), "--warmup", str(warmup)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert gen.stdin is not None and gen.stdout is not None
    phones = json.loads(gen.stdout.readline())
    relay_pid: int
    child: subprocess.Popen[str] | None = None
    rtpengine: subprocess.Popen[bytes] | None = None
    ng_port = 0
    if kind == "vaxla":
        child = subprocess.Popen(
            [sys.executable, __file__, "--child", "vaxla", "--calls", str(n)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(json.dumps(phones) + "\n")
        child.stdin.flush()
        targets = json.loads(child.stdout.readline())
        relay_pid = child.pid
    else:
        ng_port = 22222 + os.getpid() % 1000
        rtpengine = subprocess.Popen(
            ["rtpengine", "--config-file=none", f"--interface={HOST}",
             f"--listen-ng={HOST}:{ng_port}", "--table=-1", "--foreground", "--log-stderr",
             "--log-level=3", "--port-min=40000", "--port-max=49999", "--num-threads=1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        relay_pid = rtpengine.pid
        ng = Ng(ng_port)
        for _ in range(50):
            try:
                if ng(command="ping").get("result") == b"pong":
                    break
            except (TimeoutError, OSError):
                time.sleep(0.1)
        targets = []
        for i in range(n):
            cid, ft, tt = f"bench-{i}", f"ft{i}", f"tt{i}"
            off = ng(command="offer", **{"call-id": cid, "from-tag": ft},
                     sdp=sdp(phones[2 * i], i))  # fmt: skip
            ans = ng(command="answer", **{"call-id": cid, "from-tag": ft, "to-tag": tt},
                     sdp=sdp(phones[2 * i + 1], i + 100000))  # fmt: skip
            # A sends to the port in the answer rtpengine gave A; B to the offer's port
            targets += [(HOST, sdp_port(ans["sdp"])), (HOST, sdp_port(off["sdp"]))]
    time.sleep(0.2)
    gen.stdin.write(json.dumps(targets) + "\n")
    gen.stdin.flush()
    time.sleep(warmup)
    cpu0, t0 = cpu_seconds(relay_pid), time.monotonic()
    time.sleep(seconds)
    cpu1, t1 = cpu_seconds(relay_pid), time.monotonic()
    result = json.loads(gen.stdout.readline())
    gen.wait(10)
    if child is not None:
        assert child.stdin is not None
        child.stdin.write("\n")
        child.stdin.flush()
        child.wait(30)
    if rtpengine is not None:
        ng = Ng(ng_port)
        for i in range(n):
            ng(command="delete", **{"call-id": f"bench-{i}", "from-tag": f"ft{i}"})
        rtpengine.send_signal(signal.SIGTERM)
        try:
            rtpengine.wait(10)
        except subprocess.TimeoutExpired:
            rtpengine.kill()
    cpu = (cpu1 - cpu0) / (t1 - t0)
    relayed = result["received"] / seconds
    per_packet_us = cpu / relayed * 1e6 if relayed else float("nan")
    calls_per_core = 0.6 / (per_packet_us * 1e-6 * 100) if relayed else 0.0
    return {
        "relay": kind,
        "calls": n,
        "cpu_percent": round(100 * cpu, 1),
        "offered_pps": 100 * n,
        "relayed_pps": round(relayed),
        "delivered_percent": round(100 * result["received"] / max(result["sent"], 1), 2),
        "cpu_per_packet_us": round(per_packet_us, 2),
        "calls_per_core_at_60pct": round(calls_per_core),
        "transit_p50_ms": round(result["p50_ms"], 2),
        "transit_p99_ms": round(result["p99_ms"], 2),
        "added_jitter_ms": round(result["p99_ms"] - result["p50_ms"], 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", default="50,100,200,400")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--relays", default="vaxla,rtpengine")
    ap.add_argument("--child", choices=["loadgen", "vaxla"])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.child == "loadgen":
        loadgen(int(args.calls), args.seconds, args.warmup)
        return
    if args.child == "vaxla":
        run_vaxla_child(int(args.calls))
        return
    relays = args.relays.split(",")
    if "rtpengine" in relays and shutil.which("rtpengine") is None:
        print("rtpengine not installed (apt-get install -y rtpengine-daemon): skipped")
        relays.remove("rtpengine")
    rows = []
    for n in [int(c) for c in args.calls.split(",")]:
        for kind in relays:
            row = run_one(kind, n, args.seconds, args.warmup)
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
