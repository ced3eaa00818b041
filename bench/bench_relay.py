"""Relay cost: N anchored G.711 calls through Växla vs Debian's rtpengine.

    .venv/bin/python bench/bench_relay.py --calls 100,300,500,700 --seconds 20 \\
        --json bench/results/relay-2026-11-26.json

A load generator written in C (``LOADGEN_C`` below, compiled with gcc into
a temporary directory) plays both phones of N calls: 2N UDP sockets on
127.0.0.1, each sending a 172-byte PCMA packet every 20 ms to the relay
(the 2N streams evenly spread over the 20 ms, sent in 1 ms bursts) and
receiving what the relay sends back to it. Each packet carries its send
time (CLOCK_REALTIME); the transit of every packet sent in the measured
window is its kernel receive timestamp (SO_TIMESTAMPNS) minus that, so the
generator's own scheduling does not show up as relay jitter. It drives
1,200 calls (120,000 packets/s each way) on one core (70-90 % of it); its
CPU and its worst lateness against the send schedule are in each row.

The relay is, in turn (each for every N, in the same run):

* ``vaxla-fast``: a process running the media engine with N
  ``AnchoredCall``s (the code the node runs for media.anchor = always),
  SDP set up through ``offer_to_b``/``answer_to_a`` exactly as the B2BUA
  does, with ``media.fast_relay`` on: the RTP is relayed by the C thread of
  ``vaxla.media._fastrelay``;
* ``vaxla-python``: the same with ``media.fast_relay = false`` (the
  pure-Python relay, ``RelaySide.datagram_received``, on uvloop);
* ``rtpengine``: rtpengine (Debian's 10.5) in userspace mode
  (``--table=-1``, one worker thread), calls set up with the ng protocol
  (bencode over UDP: offer/answer, delete afterwards). ``bash
  scripts/setup.sh --bench`` installs it (Debian's ``rtpengine-daemon``).

With ``--pin`` (default) the relay runs on CPU 0 and the generator on
CPU 1. For each row, the relay process's CPU (utime + stime of all its
threads, from /proc) over the measured window gives CPU per relayed packet
and the calls one core would carry at 60 % CPU; transit p99 - p50 is the
jitter the relay adds (target: <= 5 ms). The summary gives, per N, the
ratio of Växla's fast path to rtpengine in CPU per packet (target <= 1.2)
and the load average of the machine before and after the run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HZ = os.sysconf("SC_CLK_TCK")
HOST = "127.0.0.1"
RELAYS = ("vaxla-fast", "vaxla-python", "rtpengine")

LOADGEN_C = r"""
/* Phones for bench_relay.py: loadgen CALLS SECONDS WARMUP SLOT_US.
 * Prints the 2*CALLS local ports, reads as many target ports, then sends a
 * 172-byte RTP packet per stream every 20 ms for WARMUP + SECONDS, the
 * streams evenly spread over the 20 ms (what is due within one SLOT_US is
 * sent together), and counts what comes back; prints one JSON line. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#define PKT 172
#define BIN_NS 10000 /* transit histogram: 10 us bins */
#define BINS 300000  /* up to 3 s */

static uint32_t hist[BINS + 1];

static int64_t now_ns(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static double pct(uint64_t total, double p) {
    if (!total)
        return 0.0;
    uint64_t want = (uint64_t)(p * (double)(total - 1)) + 1, seen = 0;
    for (int i = 0; i <= BINS; i++) {
        seen += hist[i];
        if (seen >= want)
            return (i + 0.5) * BIN_NS / 1e6;
    }
    return BINS * (BIN_NS / 1e6);
}

int main(int argc, char **argv) {
    if (argc != 5)
        return 2;
    int n = 2 * atoi(argv[1]);
    int64_t seconds = (int64_t)(atof(argv[2]) * 1e9), warmup = (int64_t)(atof(argv[3]) * 1e9);
    int64_t slot = (int64_t)(atof(argv[4]) * 1e3);
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0); /* wake on time, to the microsecond */
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    int *fds = calloc(n, sizeof *fds);
    struct sockaddr_in *to = calloc(n, sizeof *to);
    int ep = epoll_create1(0), on = 1;
    for (int i = 0; i < n; i++) {
        struct sockaddr_in a = {.sin_family = AF_INET};
        socklen_t alen = sizeof a;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fds[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        if (fds[i] < 0 || bind(fds[i], (void *)&a, sizeof a) < 0) {
            perror("loadgen socket");
            return 1;
        }
        setsockopt(fds[i], SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
        getsockname(fds[i], (void *)&a, &alen);
        printf("%d%c", ntohs(a.sin_port), i + 1 < n ? ' ' : '\n');
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
    }
    fflush(stdout);
    for (int i = 0; i < n; i++) {
        int port;
        if (scanf("%d", &port) != 1)
            return 1;
        to[i].sin_family = AF_INET;
        to[i].sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        to[i].sin_port = htons((uint16_t)port);
    }
    int64_t start = now_ns(CLOCK_MONOTONIC);
    int64_t from = start + warmup, end = from + seconds, stop = end + 300000000;
    double spacing = 20e6 / n; /* ns between two streams' packets */
    uint64_t j = 0, sent = 0, received = 0, send_errors = 0;
    int64_t late_max = 0;
    unsigned char pkt[PKT] = {0x80, 8};
    static unsigned char buf[8][2048];
    static char ctl[8][64];
    struct iovec iov[8];
    struct mmsghdr msgs[8];
    struct epoll_event evs[1024];
    for (;;) {
        int64_t t = now_ns(CLOCK_MONOTONIC);
        if (t >= stop)
            break;
        while (t < end) {
            int64_t due = start + (int64_t)(j * spacing);
            if (due > t)
                break;
            uint32_t i = (uint32_t)(j % n), k = (uint32_t)(j / n);
            uint32_t ts = htonl(k * 160), ssrc = htonl(i);
            pkt[2] = (unsigned char)(k >> 8); /* sequence number */
            pkt[3] = (unsigned char)k;
            memcpy(pkt + 4, &ts, 4);
            memcpy(pkt + 8, &ssrc, 4);
            pkt[20] = due >= from; /* counted: sent in the measured window */
            int64_t real = now_ns(CLOCK_REALTIME);
            memcpy(pkt + 12, &real, 8);
            if (sendto(fds[i], pkt, PKT, 0, (void *)&to[i], sizeof to[i]) == PKT)
                sent += pkt[20];
            else
                send_errors++;
            if (t - due > late_max && due >= from)
                late_max = t - due;
            j++;
        }
        /* sleep until the next packet is due, at least until the next slot */
        int64_t next = start + (int64_t)(j * spacing), wait;
        if (next < t + slot)
            next = t + slot;
        wait = t >= end ? 10000000 : next - now_ns(CLOCK_MONOTONIC);
        struct timespec timeout = {0, 0};
        if (wait > 0) {
            timeout.tv_sec = wait / 1000000000;
            timeout.tv_nsec = wait % 1000000000;
        }
        int ne = epoll_pwait2(ep, evs, 1024, &timeout, NULL);
        for (int e = 0; e < ne; e++) {
            int fd = fds[evs[e].data.u32];
            for (int m = 0; m < 8; m++) {
                iov[m].iov_base = buf[m];
                iov[m].iov_len = sizeof buf[m];
                memset(&msgs[m].msg_hdr, 0, sizeof msgs[m].msg_hdr);
                msgs[m].msg_hdr.msg_iov = &iov[m];
                msgs[m].msg_hdr.msg_iovlen = 1;
                msgs[m].msg_hdr.msg_control = ctl[m];
                msgs[m].msg_hdr.msg_controllen = sizeof ctl[m];
            }
            int got = recvmmsg(fd, msgs, 8, MSG_DONTWAIT, NULL);
            for (int m = 0; m < got; m++) {
                if (msgs[m].msg_len < 21 || !buf[m][20])
                    continue;
                int64_t rx = now_ns(CLOCK_REALTIME), tx;
                struct msghdr *h = &msgs[m].msg_hdr;
                for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c))
                    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
                        struct timespec k;
                        memcpy(&k, CMSG_DATA(c), sizeof k);
                        rx = (int64_t)k.tv_sec * 1000000000 + k.tv_nsec;
                    }
                memcpy(&tx, buf[m] + 12, 8);
                int64_t bin = (rx - tx) / BIN_NS;
                hist[bin < 0 ? 0 : bin > BINS ? BINS : bin]++;
                received++;
            }
        }
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
                 (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    printf("{\"sent\": %llu, \"received\": %llu, \"send_errors\": %llu, \"p50_ms\": %.3f, "
           "\"p99_ms\": %.3f, \"max_ms\": %.3f, \"late_max_ms\": %.3f, \"cpu_s\": %.3f}\n",
           (unsigned long long)sent, (unsigned long long)received,
           (unsigned long long)send_errors, pct(received, 0.5), pct(received, 0.99),
           pct(received, 1.0), late_max / 1e6, cpu);
    return 0;
}
"""


def build_loadgen(directory: Path) -> Path:
    source = directory / "loadgen.c"
    source.write_text(LOADGEN_C)
    binary = directory / "loadgen"
    subprocess.run(
        ["gcc", "-O2", "-Wall", "-Wextra", "-o", str(binary), str(source)],
        check=True,
    )
    return binary


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def pinned(cpu: int | None, cmd: list[str]) -> list[str]:
    return cmd if cpu is None else ["taskset", "-c", str(cpu), *cmd]


# ------------------------------------------------------------------ Växla relay


async def vaxla_relay(n: int, fast: bool) -> None:
    """Child process: N anchored calls; reads phone ports, prints relay ports."""
    from vaxla.config import MediaSettings
    from vaxla.media.anchor import AnchoredCall
    from vaxla.media.engine import MediaEngine
    from vaxla.media.negotiation import make_answer, make_offer

    phones = [int(p) for p in sys.stdin.readline().split()]
    engine = MediaEngine(
        MediaSettings(port_min=20000, port_max=29999, rtcp_interval=5.0, fast_relay=fast),
        Path(tempfile.mkdtemp(prefix="vaxla-bench-")),
    )
    if fast and engine.fast_relay() is None:
        raise SystemExit("vaxla-fast: vaxla.media._fastrelay is not built (pip install -e .)")
    targets = []
    calls = []
    for i in range(n):
        a_port, b_port = phones[2 * i], phones[2 * i + 1]
        call = AnchoredCall(engine, f"bench-{i}", f"a{i}", f"b{i}")
        await call.open()
        to_b = call.offer_to_b(bytes(make_offer(HOST, a_port, session_id=str(i))))
        answer, _ = make_answer(to_b, HOST, b_port, session_id=str(i + 1))
        call.answer_to_a(bytes(answer))
        targets += [call.a.port, call.b.port]
        calls.append(call)
    print(" ".join(map(str, targets)), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    relay = engine.fast_relay()
    counters = relay.counters() if relay is not None else {}
    for call in calls:
        await call.close()
    await engine.close()
    print(json.dumps(counters), flush=True)


def run_vaxla_child(n: int, fast: bool) -> None:
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop

        uvloop.run(vaxla_relay(n, fast))
    except ImportError:
        asyncio.run(vaxla_relay(n, fast))


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

    def close(self) -> None:
        self.sock.close()


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


def rtpengine_version() -> str:
    out = subprocess.run(["rtpengine", "--version"], capture_output=True, text=True)
    return (out.stdout or out.stderr).strip().splitlines()[-1] if out.returncode == 0 else "?"


# ----------------------------------------------------------------------- runner


def run_one(
    kind: str, n: int, seconds: float, warmup: float, loadgen: Path, pin: bool, slot_us: float
) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    gen = subprocess.Popen(
        pinned(1 if pin else None,
               [str(loadgen), str(n), str(seconds), str(warmup), str(slot_us)]),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert gen.stdin is not None and gen.stdout is not None
    phones = [int(p) for p in gen.stdout.readline().split()]
    relay_cpu = 0 if pin else None
    child: subprocess.Popen[str] | None = None
    rtpengine: subprocess.Popen[bytes] | None = None
    ng_port = 0
    if kind.startswith("vaxla"):
        fast = "1" if kind == "vaxla-fast" else "0"
        child = subprocess.Popen(
            pinned(relay_cpu, [sys.executable, __file__, "--child", "vaxla", "--calls", str(n),
                               "--fast", fast]),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(" ".join(map(str, phones)) + "\n")
        child.stdin.flush()
        line = child.stdout.readline()
        if not line:
            raise SystemExit(f"{kind}: the relay process failed")
        targets = [int(p) for p in line.split()]
        relay_pid = child.pid
    else:
        ng_port = 22222 + os.getpid() % 1000
        rtpengine = subprocess.Popen(
            pinned(relay_cpu, [
                "rtpengine", "--config-file=none", f"--interface={HOST}",
                f"--listen-ng={HOST}:{ng_port}", "--table=-1", "--foreground", "--log-stderr",
                "--log-level=3", "--port-min=40000", "--port-max=49999", "--num-threads=1"]),
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
            targets += [sdp_port(ans["sdp"]), sdp_port(off["sdp"])]
        ng.close()
    time.sleep(0.2)
    gen.stdin.write(" ".join(map(str, targets)) + "\n")
    gen.stdin.flush()
    time.sleep(warmup)
    cpu0, gen0, t0 = cpu_seconds(relay_pid), cpu_seconds(gen.pid), time.monotonic()
    time.sleep(seconds)
    cpu1, gen1, t1 = cpu_seconds(relay_pid), cpu_seconds(gen.pid), time.monotonic()
    result = json.loads(gen.stdout.readline())
    gen.wait(10)
    counters: dict[str, int] = {}
    if child is not None:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write("\n")
        child.stdin.flush()
        counters = json.loads(child.stdout.readline() or "{}")
        child.wait(60)
    if rtpengine is not None:
        ng = Ng(ng_port)
        for i in range(n):
            ng(command="delete", **{"call-id": f"bench-{i}", "from-tag": f"ft{i}"})
        ng.close()
        rtpengine.send_signal(signal.SIGTERM)
        try:
            rtpengine.wait(10)
        except subprocess.TimeoutExpired:
            rtpengine.kill()
            rtpengine.wait(10)
    cpu = (cpu1 - cpu0) / (t1 - t0)
    relayed = result["received"] / seconds
    per_packet_us = cpu / relayed * 1e6 if relayed else float("nan")
    calls_per_core = 0.6 / (per_packet_us * 1e-6 * 100) if relayed else 0.0
    row = {
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
        "transit_max_ms": round(result["max_ms"], 2),
        "added_jitter_ms": round(result["p99_ms"] - result["p50_ms"], 2),
        "loadgen_cpu_percent": round(100 * (gen1 - gen0) / (t1 - t0), 1),
        "loadgen_late_max_ms": round(result["late_max_ms"], 2),
        "load_avg_1m_before": round(load_before, 2),
        "load_avg_1m_after": round(os.getloadavg()[0], 2),
    }
    if counters.get("wakeups"):
        row["packets_per_wakeup"] = round(counters["forwarded"] / counters["wakeups"], 1)
    return row


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per N: each relay's median (over --repeat runs) CPU per packet, calls
    per core at 60 % and added jitter; the fast path's ratio to rtpengine."""
    out = []
    for n in sorted({r["calls"] for r in rows}):
        entry: dict[str, Any] = {"calls": n}
        medians: dict[str, float] = {}
        for kind in RELAYS:
            runs = [r for r in rows if r["calls"] == n and r["relay"] == kind]
            if not runs:
                continue
            us = statistics.median(r["cpu_per_packet_us"] for r in runs)
            medians[kind] = us
            entry[f"{kind}_us_per_packet"] = round(us, 2)
            entry[f"{kind}_calls_per_core_at_60pct"] = round(0.6 / (us * 1e-4)) if us else 0
            entry[f"{kind}_added_jitter_ms"] = round(
                statistics.median(r["added_jitter_ms"] for r in runs), 2
            )
            entry[f"{kind}_delivered_percent"] = min(r["delivered_percent"] for r in runs)
        if medians.get("rtpengine") and "vaxla-fast" in medians:
            entry["ratio_fast_to_rtpengine"] = round(
                medians["vaxla-fast"] / medians["rtpengine"], 2
            )
        out.append(entry)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", default="100,300,500,700")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--relays", default=",".join(RELAYS))
    ap.add_argument("--repeat", type=int, default=1, help="runs of each row (interleaved)")
    ap.add_argument("--no-pin", dest="pin", action="store_false")
    ap.add_argument(
        "--send-slot-us",
        type=float,
        default=100.0,
        help="the generator sends what is due within this many microseconds together",
    )
    ap.add_argument("--child", choices=["vaxla"])
    ap.add_argument("--fast", default="1")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.child == "vaxla":
        run_vaxla_child(int(args.calls), args.fast == "1")
        return
    relays = args.relays.split(",")
    if "rtpengine" in relays and shutil.which("rtpengine") is None:
        print("rtpengine not installed (apt-get install -y rtpengine-daemon): skipped")
        relays.remove("rtpengine")
    if args.pin and (os.cpu_count() or 1) < 2:
        args.pin = False
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    load_start = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-relay-") as tmp:
        loadgen = build_loadgen(Path(tmp))
        for _ in range(args.repeat):
            for n in [int(c) for c in args.calls.split(",")]:
                for kind in relays:
                    row = run_one(
                        kind, n, args.seconds, args.warmup, loadgen, args.pin, args.send_slot_us
                    )
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    load_end = os.getloadavg()
    summary = summarize(rows)
    for entry in summary:
        print(json.dumps(entry), flush=True)
    if args.json:
        report = {
            "benchmark": "relay",
            "started": started,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": {"cpus": os.cpu_count(), "kernel": os.uname().release},
            "load_average_start": [round(x, 2) for x in load_start],
            "load_average_end": [round(x, 2) for x in load_end],
            "rtpengine": rtpengine_version() if "rtpengine" in relays else None,
            "seconds": args.seconds,
            "warmup": args.warmup,
            "pinned": args.pin,
            "send_slot_us": args.send_slot_us,
            "repeat": args.repeat,
            "summary": summary,
            "rows": rows,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
