"""B2BUA signalling benchmark: SIPp UAC -> Växla -> SIPp UAS, and the same load on sippy.

Usage::

    .venv/bin/python bench/bench_b2bua.py                    # 60 s per step (the issue's figure)
    .venv/bin/python bench/bench_b2bua.py --step-seconds 10  # quick run
    .venv/bin/python bench/bench_b2bua.py --rates 100,500 --systems vaxla

What it does (issue 2, "B2BUA signalling"):

* creates extension 3000 with ``vaxla extension add`` in a temporary data dir
  and starts ``vaxla serve`` on free loopback ports, pinned to one core
  (``taskset -c 0``), with ``VAXLA_SIP__TRUSTED_PEERS='["127.0.0.1"]'`` so the
  benchmark's INVITEs need no digest (a trunk-style peer; auth is benchmarked
  elsewhere);
* starts a SIPp UAS that REGISTERs as 3000 (digest auth) and then answers every
  call (180, 200, ACK, BYE -> 200): bench/scenarios/uas_bench_register.xml with
  the out-of-call scenario bench/scenarios/uas_bench_answer.xml;
* starts sippy's ``b2bua_simple`` (the ``sippy`` package in the venv), also
  pinned to the same core, routing every call to a second SIPp UAS
  (bench/scenarios/uas_bench_answer.xml in server mode; no registration);
* for every rate (calls/s), for each system in turn, runs a SIPp UAC
  (bench/scenarios/uac_bench.xml: INVITE with SDP, no RTP, ACK, pause, BYE)
  with ``-r RATE -m RATE*STEP_SECONDS`` and records successful / failed calls,
  retransmissions, the mean INVITE->200 time, and the CPU the B2BUA process used
  (utime+stime from /proc/PID/stat) as % of one core during the steady part of
  the step, and CPU ms per call over the whole step.  SIPp runs on the other
  core (``taskset -c 1``).

A step passes when every UAC call succeeded, no call failed at the UAC or the
UAS, and SIPp kept up the rate (it finished within STEP*1.05 + hold + 2 s).
(SIPp does not count out-of-call scenarios in its call statistics, so behind
Växla the UAS columns only show retransmissions and dead-call messages; Växla's
own ``vaxla_calls_total`` by result is recorded per step instead.)  A system stops
ramping after ``--max-failed-steps`` failing steps.  The summary gives, per
system, the highest rate passed before its first failing step, the CPU at that
rate, and the ratio Växla / sippy.  Results go to
bench/results/b2bua-<date>[-quick].json.

``--profile-rate R`` runs ``py-spy record`` (``pip install py-spy`` into the
venv) on the B2BUA during the step at rate R.  Per step the JSON also has the
CPU seconds of each B2BUA thread.

Only 127.0.0.1 is used; every process the script starts is stopped by its PID.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.peers.ports import LOOPBACK, free_port  # noqa: E402
from tests.peers.sipp import parse_stat_csv, write_injection_csv  # noqa: E402

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
RESULTS = Path(__file__).resolve().parent / "results"
VENV_BIN = REPO / ".venv" / "bin"
CALLEE = "3000"
CALLEE_PASSWORD = "benchpass"
CLK_TCK = os.sysconf("SC_CLK_TCK")
DEFAULT_RATES = "50,100,150,200,250,300,400,500,600,800,1000,1200,1500"

# cumulative SIPp -trace_stat columns kept per step
STAT_COLUMNS = {
    "successful": "SuccessfulCall(C)",
    "failed": "FailedCall(C)",
    "retransmissions": "Retransmissions(C)",
    "failed_max_udp_retrans": "FailedMaxUDPRetrans(C)",
    "failed_unexpected_msg": "FailedUnexpectedMessage(C)",
    "failed_call_rejected": "FailedCallRejected(C)",
    "failed_timeout_on_recv": "FailedTimeoutOnRecv(C)",
    "failed_timeout_on_send": "FailedTimeoutOnSend(C)",
    "failed_outbound_congestion": "FailedOutboundCongestion(C)",
    "out_of_call_msgs": "OutOfCallMsgs(C)",
    "dead_call_msgs": "DeadCallMsgs(C)",
    "created": "TotalCallCreated",
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- processes ------------------------------------------------------------------


class Procs:
    """Every process this script started, stopped by PID (SIGTERM/SIGINT, then SIGKILL)."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen[bytes], int]] = []

    def start(
        self,
        name: str,
        cmd: list[str],
        *,
        cwd: Path,
        out: Path,
        env: dict[str, str] | None = None,
        stop_signal: int = signal.SIGTERM,
    ) -> subprocess.Popen[bytes]:
        with out.open("ab") as fh:
            proc = subprocess.Popen(
                cmd,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append((name, proc, stop_signal))
        return proc

    def stop(self, proc: subprocess.Popen[bytes], grace: float = 5.0) -> int | None:
        sig = next((t[2] for t in self.procs if t[1] is proc), signal.SIGTERM)
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, sig)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
        self.procs = [t for t in self.procs if t[1] is not proc]
        return proc.returncode

    def stop_all(self) -> None:
        for _name, proc, _sig in list(reversed(self.procs)):
            self.stop(proc)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): utime is field 14, stime field 15
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def thread_cpu(pid: int) -> dict[str, tuple[str, float]]:
    """{tid: (thread name, utime+stime seconds)} of every thread of a process."""
    out: dict[str, tuple[str, float]] = {}
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError):
                text = (task / "stat").read_text()
                name = text[text.index("(") + 1 : text.rindex(")")]
                fields = text[text.rindex(")") + 2 :].split()
                out[task.name] = (name, (int(fields[11]) + int(fields[12])) / CLK_TCK)
    return out


def thread_cpu_delta(
    before: dict[str, tuple[str, float]], after: dict[str, tuple[str, float]], main_tid: int
) -> dict[str, float]:
    """CPU seconds per thread over an interval; threads that ended are not counted."""
    out: dict[str, float] = {}
    for tid, (name, cpu) in after.items():
        label = "main" if tid == str(main_tid) else f"{name}[{tid}]"
        delta = cpu - before.get(tid, (name, 0.0))[1]
        if delta > 0:
            out[label] = round(delta, 2)
    return dict(sorted(out.items(), key=lambda kv: -kv[1])[:8])


def udp_bound(port: int) -> bool:
    needle = f":{port:04X}"
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
            if line.split()[1].endswith(needle):
                return True
    return False


def wait_until(pred: Any, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return bool(pred())


def pinned(cpu: str | None, cmd: list[str]) -> list[str]:
    return ["taskset", "-c", cpu, *cmd] if cpu is not None else cmd


# -- systems under test ------------------------------------------------------------


@dataclass
class System:
    name: str
    proc: subprocess.Popen[bytes]
    sip_port: int
    uas: subprocess.Popen[bytes]
    uas_stat: Path
    log_file: Path
    metrics_url: str | None = None
    start_uas: Callable[[], tuple[subprocess.Popen[bytes], Path]] | None = None
    uas_restarts: int = 0

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def target(self) -> str:
        return f"{LOOPBACK}:{self.sip_port}"


def sipp_common(port: int, workdir: Path, tag: str) -> list[str]:
    return [
        "-i", LOOPBACK, "-bind_local", "-p", str(port), "-t", "u1",
        "-mi", LOOPBACK, "-mp", str(free_port(span=4)),
        # a control socket of its own (default 8888 is shared by every SIPp on the machine)
        "-ci", LOOPBACK, "-cp", str(free_port()),
        "-nostdin",
        "-trace_stat", "-stf", str(workdir / f"{tag}-stat.csv"), "-fd", "1",
        "-trace_err", "-error_file", str(workdir / f"{tag}-errors.log"),
    ]  # fmt: skip


def fetch_metrics(url: str) -> dict[str, float]:
    """Prometheus text -> {'name{labels}': value}."""
    out: dict[str, float] = {}
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            text = resp.read().decode()
    except OSError:
        return out
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        with contextlib.suppress(ValueError):
            out[key] = float(value)
    return out


def start_vaxla(procs: Procs, work: Path, args: argparse.Namespace) -> System:
    data = work / "vaxla-data"
    data.mkdir()
    vaxla = str(VENV_BIN / "vaxla")
    add = subprocess.run(
        [vaxla, "extension", "add", CALLEE, "--name", "Bench", "--password", CALLEE_PASSWORD,
         "--data-dir", str(data)],
        capture_output=True, text=True, timeout=60, cwd=work,
    )  # fmt: skip
    if add.returncode != 0:
        raise RuntimeError(f"vaxla extension add failed: {add.stdout}{add.stderr}")
    sip_port, http_port = free_port(), free_port()
    env = dict(os.environ)
    env["VAXLA_SIP__TRUSTED_PEERS"] = '["127.0.0.1"]'
    log_file = work / "vaxla.log"
    cmd = [vaxla, "serve", "--data-dir", str(data), "--sip-listen", f"{LOOPBACK}:{sip_port}",
           "--http-listen", f"{LOOPBACK}:{http_port}",
           "--log-level", args.vaxla_log_level]  # fmt: skip
    proc = procs.start(
        "vaxla", pinned(args.b2bua_cpu, cmd), cwd=work, out=log_file, env=env,
        stop_signal=signal.SIGINT,
    )  # fmt: skip
    metrics_url = f"http://{LOOPBACK}:{http_port}/metrics"
    if not wait_until(lambda: proc.poll() is not None or udp_bound(sip_port), 30):
        raise RuntimeError("vaxla serve did not bind its SIP port in 30 s")
    if not wait_until(lambda: proc.poll() is not None or bool(fetch_metrics(metrics_url)), 30, 0.2):
        raise RuntimeError("vaxla serve's /metrics did not answer in 30 s")
    if proc.poll() is not None:
        raise RuntimeError(
            f"vaxla serve exited ({proc.returncode}): {log_file.read_text()[-3000:]}"
        )
    # the callee: a SIPp that registers as 3000, then answers every call (out-of-call scenario)
    users = write_injection_csv(work / "users.csv", [(CALLEE, CALLEE_PASSWORD)])
    target = f"{LOOPBACK}:{sip_port}"
    started = 0

    def start_uas() -> tuple[subprocess.Popen[bytes], Path]:
        nonlocal started
        started += 1
        tag = f"vaxla-uas{started}"
        uas_cmd = [
            "sipp", "-sf", str(SCENARIOS / "uas_bench_register.xml"),
            "-oocsf", str(SCENARIOS / "uas_bench_answer.xml"), target,
            "-m", "1", "-inf", str(users), "-auth_uri", target,
            "-recv_timeout", str(args.recv_timeout_ms),
            *sipp_common(free_port(), work, tag),
        ]  # fmt: skip
        out = work / f"{tag}.out"
        before = fetch_metrics(metrics_url).get('vaxla_register_requests_total{outcome="ok"}', 0)
        uas = procs.start(
            tag, pinned(args.sipp_cpu, uas_cmd), cwd=work, out=out, stop_signal=signal.SIGINT
        )

        def registered() -> bool:
            m = fetch_metrics(metrics_url)
            return m.get('vaxla_register_requests_total{outcome="ok"}', 0) > before or (
                before == 0 and m.get("vaxla_registrations", 0) >= 1
            )

        if not wait_until(lambda: uas.poll() is not None or registered(), 15, 0.2) or uas.poll():
            raise RuntimeError(
                f"the SIPp UAS did not register as {CALLEE}: {out.read_text()[-2000:]}"
            )
        return uas, work / f"{tag}-stat.csv"

    uas, uas_stat = start_uas()
    return System(
        "vaxla", proc, sip_port, uas, uas_stat, log_file, metrics_url, start_uas=start_uas
    )


def start_sippy(procs: Procs, work: Path, args: argparse.Namespace) -> System:
    uas_port = free_port()
    uas_cmd = [
        "sipp", "-sf", str(SCENARIOS / "uas_bench_answer.xml"),
        "-recv_timeout", str(args.recv_timeout_ms),
        *sipp_common(uas_port, work, "sippy-uas"),
    ]  # fmt: skip
    uas = procs.start(
        "sippy-uas", pinned(args.sipp_cpu, uas_cmd), cwd=work, out=work / "sippy-uas.out",
        stop_signal=signal.SIGINT,
    )  # fmt: skip
    if not wait_until(lambda: uas.poll() is not None or udp_bound(uas_port), 10) or uas.poll():
        raise RuntimeError(
            f"sippy's SIPp UAS did not start: {(work / 'sippy-uas.out').read_text()}"
        )
    sip_port = free_port()
    env = dict(os.environ)
    # sippy logs every SIP message at INFO: log warnings and up only, like vaxla's WARNING
    env.update(SIPLOG_LVL="WARN", SIPLOG_BEND="stderr")
    log_file = work / "sippy.log"
    cmd = [str(VENV_BIN / "b2bua_simple"), "-f", "-l", LOOPBACK, "-p", str(sip_port),
           "-n", f"{LOOPBACK}:{uas_port}"]  # fmt: skip
    proc = procs.start("sippy", pinned(args.b2bua_cpu, cmd), cwd=work, out=log_file, env=env)
    if not wait_until(lambda: proc.poll() is not None or udp_bound(sip_port), 30):
        raise RuntimeError("sippy b2bua_simple did not bind its SIP port in 30 s")
    if proc.poll() is not None:
        raise RuntimeError(f"b2bua_simple exited ({proc.returncode}): {log_file.read_text()}")
    return System("sippy", proc, sip_port, uas, work / "sippy-uas-stat.csv", log_file)


# -- one step -----------------------------------------------------------------------


@dataclass
class Step:
    system: str
    rate: int
    seconds: float
    calls: int
    successful: int = 0
    failed: int = 0
    retransmissions: int = 0
    uas_successful: int = 0
    uas_failed: int = 0
    uas_retransmissions: int = 0
    response_time_ms: float | None = None
    cpu_pct: float = 0.0
    cpu_ms_per_call: float = 0.0
    cpu_seconds_total: float = 0.0
    elapsed: float = 0.0
    sustained: bool = True
    sipp_exit: int | None = None
    timed_out: bool = False
    passed: bool = False
    details: dict[str, Any] = field(default_factory=dict)
    errors_tail: str = ""


def stat_int(stats: dict[str, str], key: str) -> int:
    try:
        return int(stats.get(key, "0") or 0)
    except ValueError:
        return 0


def response_time_ms(stats: dict[str, str]) -> float | None:
    """SIPp's ResponseTime1(C) is 'HH:MM:SS:uuuuuu' (or seconds in some builds)."""
    raw = stats.get("ResponseTime1(C)", "")
    parts = raw.split(":")
    try:
        if len(parts) == 4:
            h, m, s, us = (int(p) for p in parts)
            return round((h * 3600 + m * 60 + s) * 1000 + us / 1000, 3)
        if raw:
            return round(float(raw) * 1000, 3)
    except ValueError:
        pass
    return None


def uas_snapshot(system: System) -> dict[str, int]:
    stats = parse_stat_csv(system.uas_stat)
    return {k: stat_int(stats, v) for k, v in STAT_COLUMNS.items()}


def ensure_uas(procs: Procs, system: System) -> None:
    """Restart the SIPp UAS (and its registration) if it has exited."""
    if system.uas.poll() is None:
        return
    log(f"  {system.name}'s SIPp UAS exited (rc {system.uas.returncode}); restarting it")
    if system.start_uas is None:
        raise RuntimeError(f"{system.name}'s SIPp UAS exited and cannot be restarted")
    procs.stop(system.uas)
    system.uas, system.uas_stat = system.start_uas()
    system.uas_restarts += 1


def run_step(
    procs: Procs, system: System, rate: int, work: Path, args: argparse.Namespace, index: int
) -> Step:
    seconds = args.step_seconds
    calls = max(1, round(rate * seconds))
    hold_s = args.hold_ms / 1000
    step = Step(system.name, rate, seconds, calls)
    tag = f"{system.name}-uac-{rate}-{index}"
    limit = max(200, int(rate * (hold_s + 4)) + 100)
    recv_timeout_s = args.recv_timeout_ms / 1000
    budget = seconds + hold_s + recv_timeout_s + 30
    cmd = [
        "sipp", "-sf", str(SCENARIOS / "uac_bench.xml"), system.target,
        "-s", CALLEE, "-d", str(args.hold_ms),
        "-r", str(rate), "-rp", "1000", "-l", str(limit), "-m", str(calls),
        "-recv_timeout", str(args.recv_timeout_ms),
        "-timeout", f"{round(budget)}s", "-timeout_error",
        *sipp_common(free_port(), work, tag),
    ]  # fmt: skip
    if not args.strict:
        cmd += ["-default_behaviors", "all,-abortunexp"]
    uas_before = uas_snapshot(system)
    metrics_before = fetch_metrics(system.metrics_url) if system.metrics_url else {}
    warm = min(hold_s + 2.0, seconds / 3)
    t0 = time.monotonic()
    cpu0 = cpu_seconds(system.pid)
    threads0 = thread_cpu(system.pid)
    uac = procs.start(
        tag, pinned(args.sipp_cpu, cmd), cwd=work, out=work / f"{tag}.out",
        stop_signal=signal.SIGINT,
    )  # fmt: skip
    profiler = None
    if args.profile_rate == rate and system.name in args.profile_systems:
        # py-spy samples the B2BUA from the SIPp core during the whole load
        suffix = {"raw": "txt", "flamegraph": "svg", "speedscope": "json"}[args.profile_format]
        out = args.profile_dir / f"{system.name}-{rate}cps.{suffix}"
        args.profile_dir.mkdir(parents=True, exist_ok=True)
        py_spy = shutil.which("py-spy") or str(VENV_BIN / "py-spy")
        prof_cmd = [py_spy, "record", "--pid", str(system.pid), "--rate", "250",
                    "--duration", str(max(1, round(seconds))), "--format", args.profile_format,
                    "-o", str(out), "--nonblocking"]  # fmt: skip
        profiler = procs.start(
            f"py-spy-{tag}", pinned(args.sipp_cpu, prof_cmd), cwd=work,
            out=work / f"{tag}-py-spy.out", stop_signal=signal.SIGINT,
        )  # fmt: skip
        step.details["profile"] = str(out)
    samples: dict[str, tuple[float, float]] = {}
    deadline = t0 + budget + 10
    while uac.poll() is None and time.monotonic() < deadline:
        now = time.monotonic()
        if "warm" not in samples and now >= t0 + warm:
            samples["warm"] = (now, cpu_seconds(system.pid))
        if "end" not in samples and now >= t0 + seconds:
            samples["end"] = (now, cpu_seconds(system.pid))
        time.sleep(0.05)
    if uac.poll() is None:
        step.timed_out = True
        log(f"  {tag}: SIPp still running after {budget + 10:.0f} s, stopping it")
    step.sipp_exit = procs.stop(uac)
    t1 = time.monotonic()
    cpu1 = cpu_seconds(system.pid)
    threads1 = thread_cpu(system.pid)
    if profiler is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            profiler.wait(timeout=15)
        procs.stop(profiler)
    step.elapsed = round(t1 - t0, 2)
    # wait for the B2BUA and the UAS to finish the last calls, then for the UAS stats (-fd 1)
    if system.metrics_url:
        wait_until(
            lambda: fetch_metrics(system.metrics_url or "").get("vaxla_active_calls", 1) <= 0,
            recv_timeout_s + 5,
            0.25,
        )
    time.sleep(max(1.5, hold_s + 1.2))
    if "warm" in samples and "end" in samples and samples["end"][0] > samples["warm"][0]:
        (wa, ca), (wb, cb) = samples["warm"], samples["end"]
        step.cpu_pct = round((cb - ca) / (wb - wa) * 100, 1)
    else:
        step.cpu_pct = round((cpu1 - cpu0) / max(t1 - t0, 1e-3) * 100, 1)
    step.cpu_seconds_total = round(cpu1 - cpu0, 3)
    stats = parse_stat_csv(work / f"{tag}-stat.csv")
    values = {k: stat_int(stats, v) for k, v in STAT_COLUMNS.items()}
    step.successful = values["successful"]
    step.failed = values["failed"]
    step.retransmissions = values["retransmissions"]
    step.response_time_ms = response_time_ms(stats)
    step.cpu_ms_per_call = round(step.cpu_seconds_total * 1000 / max(step.successful, 1), 3)
    uas_after = uas_snapshot(system)
    uas_delta = {k: uas_after[k] - uas_before.get(k, 0) for k in uas_after}
    step.uas_successful = uas_delta["successful"]
    step.uas_failed = uas_delta["failed"]
    step.uas_retransmissions = uas_delta["retransmissions"]
    step.details = {
        "uac": {k: v for k, v in values.items() if v},
        "uas": {k: v for k, v in uas_delta.items() if v},
        "call_limit": limit,
        "thread_cpu_seconds": thread_cpu_delta(threads0, threads1, system.pid),
    }
    if system.uas.poll() is not None:
        step.details["uas_exited"] = True
    if system.metrics_url:
        after = fetch_metrics(system.metrics_url)
        calls_delta = {
            k: after[k] - metrics_before.get(k, 0.0)
            for k in after
            if k.startswith("vaxla_calls_total") and after[k] != metrics_before.get(k, 0.0)
        }
        step.details["vaxla_calls"] = calls_delta
        step.details["vaxla_active_calls_after"] = after.get("vaxla_active_calls")
    step.sustained = step.elapsed <= seconds * 1.05 + hold_s + 2.0
    step.passed = (
        not step.timed_out
        and not step.details.get("uas_exited")
        and step.sipp_exit == 0
        and step.failed == 0
        and step.successful == calls
        and step.uas_failed == 0
        and step.sustained
    )
    errors = work / f"{tag}-errors.log"
    if errors.exists() and errors.stat().st_size:
        with errors.open("rb") as fh:
            fh.seek(max(0, errors.stat().st_size - 1500))
            step.errors_tail = fh.read().decode(errors="replace")
    return step


# -- reporting ------------------------------------------------------------------------


def summarise(steps: list[Step], systems: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in systems:
        best: Step | None = None
        ceiling = True
        for s in (s for s in steps if s.system == name):
            if not s.passed:
                ceiling = False
                break
            best = s
        out[name] = {
            "max_rate_zero_failures": best.rate if best else 0,
            "cpu_pct_at_max_rate": best.cpu_pct if best else None,
            "cpu_ms_per_call_at_max_rate": best.cpu_ms_per_call if best else None,
            "limited_by_ramp_ceiling": ceiling and best is not None,
        }
    if "vaxla" in out and "sippy" in out:
        v, s = out["vaxla"]["max_rate_zero_failures"], out["sippy"]["max_rate_zero_failures"]
        out["ratio_vaxla_over_sippy"] = round(v / s, 2) if s else None
        cv, cs = out["vaxla"]["cpu_ms_per_call_at_max_rate"], None
        # CPU per call at the same (highest common passing) rate: a ratio that does not
        # depend on the ramp's granularity
        common = [
            (a, b)
            for a in steps
            for b in steps
            if a.system == "vaxla" and b.system == "sippy" and a.rate == b.rate
            and a.passed and b.passed
        ]  # fmt: skip
        if common:
            a, b = max(common, key=lambda ab: ab[0].rate)
            cv, cs = a.cpu_ms_per_call, b.cpu_ms_per_call
            out["cpu_per_call_at_common_rate"] = {
                "rate": a.rate,
                "vaxla_ms": cv,
                "sippy_ms": cs,
                "sippy_over_vaxla": round(cs / cv, 2) if cv else None,
            }
    return out


def print_table(steps: list[Step]) -> None:
    head = (
        f"{'system':<6} {'rate':>5} {'calls':>7} {'ok':>7} {'failed':>6} {'retr':>6} "
        f"{'uasfail':>7} {'uasretr':>7} {'rt ms':>7} {'cpu %':>6} {'cpu ms/call':>11} "
        f"{'elapsed':>7}  result"
    )
    print(head)
    print("-" * len(head))
    for s in steps:
        rt = f"{s.response_time_ms:.1f}" if s.response_time_ms is not None else "-"
        verdict = "PASS" if s.passed else "FAIL"
        if not s.sustained:
            verdict += " (rate not sustained)"
        if s.timed_out:
            verdict += " (timed out)"
        print(
            f"{s.system:<6} {s.rate:>5} {s.calls:>7} {s.successful:>7} {s.failed:>6} "
            f"{s.retransmissions:>6} {s.uas_failed:>7} {s.uas_retransmissions:>7} {rt:>7} "
            f"{s.cpu_pct:>6.1f} {s.cpu_ms_per_call:>11.3f} {s.elapsed:>7.1f}  {verdict}"
        )


def log_summary(path: Path, kind: str) -> dict[str, Any]:
    """Count a log's lines by level and keep a few distinct messages."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return {}
    levels: dict[str, int] = {}
    samples: list[str] = []
    seen: set[str] = set()
    counts: dict[str, int] = {}
    for line in lines:
        level = "other"
        if kind == "vaxla":
            try:
                rec = json.loads(line)
                level = str(rec.get("level", "other")).upper()
                key = str(rec.get("event") or rec.get("message") or rec.get("msg") or line)[:160]
                exc = str(rec.get("exc") or "").strip().splitlines()
                if exc:  # the exception itself: the traceback's last line
                    key = f"{key} | {exc[-1][:200]}"
                    line = f"{rec.get('ts', '')} {level} {rec.get('logger', '')}: {key}"
            except (ValueError, AttributeError):
                key = line[:160]
                m = re.search(r"\b(DEBUG|INFO|WARNING|ERROR|CRITICAL)\b", line)
                level = m.group(1) if m else "other"
        else:
            key = re.sub(r"^\S+ \S+ \S+", "", line)[:160]
        levels[level] = levels.get(level, 0) + 1
        counts[key] = counts.get(key, 0) + 1
        if key not in seen and len(samples) < 15:
            seen.add(key)
            samples.append(line[:400])
    top = dict(sorted(counts.items(), key=lambda kv: -kv[1])[:10])
    return {"lines": len(lines), "by_level": levels, "top_messages": top, "samples": samples}


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        info["sipp"] = (
            subprocess.run(["sipp", "-v"], capture_output=True, text=True, timeout=10)
            .stdout.strip()
            .splitlines()[0]
        )
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        info["git_commit"] = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, cwd=REPO
        ).stdout.strip()
    with contextlib.suppress(Exception):
        from importlib.metadata import version

        info["vaxla_version"] = version("vaxla")
        info["sippy_version"] = version("sippy")
    return info


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return "?"


# -- main -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="SIPp UAC -> B2BUA -> SIPp UAS calls without media, ramping the rate; "
        "Växla and sippy's b2bua_simple in the same run.",
        epilog="Example: .venv/bin/python bench/bench_b2bua.py --step-seconds 10",
    )
    p.add_argument(
        "--rates", default=DEFAULT_RATES, help=f"calls/s steps (default {DEFAULT_RATES})"
    )
    p.add_argument(
        "--step-seconds", type=float, default=60.0, help="seconds of load per step (default 60)"
    )
    p.add_argument("--hold-ms", type=int, default=500, help="ACK to BYE pause (default 500)")
    p.add_argument(
        "--systems", default="vaxla,sippy", help="comma list of vaxla, sippy (default both)"
    )
    p.add_argument(
        "--max-failed-steps",
        type=int,
        default=1,
        help="stop ramping a system after this many failing steps (default 1)",
    )
    p.add_argument("--b2bua-cpu", default="0", help="core for the B2BUA (taskset -c; default 0)")
    p.add_argument("--sipp-cpu", default="1", help="core(s) for SIPp (taskset -c; default 1)")
    p.add_argument(
        "--recv-timeout-ms",
        type=int,
        default=10000,
        help="a call fails when an expected message is this late (default 10000)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="the UAC aborts a call on any unexpected message (SIPp's default).  Off by "
        "default: a 180 that arrives after the 200 (sippy's threaded sender reorders them) "
        "is then ignored, as a real UA ignores it; a wrong or missing answer still fails "
        "the call through the receive timeout",
    )
    p.add_argument("--vaxla-log-level", default="WARNING")
    p.add_argument(
        "--idle-seconds", type=float, default=3.0, help="idle CPU measured before the ramp"
    )
    p.add_argument("--pause-between", type=float, default=2.0, help="idle seconds between steps")
    p.add_argument(
        "--profile-rate",
        type=int,
        metavar="RATE",
        help="run py-spy record on the B2BUA during the step at this rate "
        "(pip install py-spy; writes to --profile-dir)",
    )
    p.add_argument("--profile-systems", default="vaxla", help="comma list (default vaxla)")
    p.add_argument(
        "--profile-format",
        default="raw",
        choices=["raw", "flamegraph", "speedscope"],
        help="py-spy output: raw (collapsed stacks, .txt), flamegraph (.svg) or speedscope",
    )
    p.add_argument("--profile-dir", type=Path, default=RESULTS / "profiles")
    p.add_argument("--output", type=Path, help="JSON file (default bench/results/b2bua-DATE.json)")
    p.add_argument(
        "--keep-workdir", action="store_true", help="keep SIPp and B2BUA logs (printed path)"
    )
    p.add_argument(
        "--wait-before-ramp",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="after starting, idle this long before the first step (e.g. to attach py-spy)",
    )
    args = p.parse_args(argv)
    args.rate_list = [int(r) for r in args.rates.split(",") if r.strip()]
    args.system_list = [s.strip() for s in args.systems.split(",") if s.strip()]
    args.profile_systems = [s.strip() for s in args.profile_systems.split(",") if s.strip()]
    for s in args.system_list:
        if s not in ("vaxla", "sippy"):
            p.error(f"unknown system {s!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for tool in ("sipp", "taskset"):
        if shutil.which(tool) is None:
            print(f"{tool} not found (apt-get install sip-tester util-linux)", file=sys.stderr)
            return 2
    quick = args.step_seconds < 60
    started = dt.datetime.now()
    output = args.output or RESULTS / (f"b2bua-{started:%Y-%m-%d}{'-quick' if quick else ''}.json")
    work = Path(tempfile.mkdtemp(prefix="vaxla-bench-", dir="/tmp"))
    procs = Procs()
    steps: list[Step] = []
    systems: dict[str, System] = {}
    idle: dict[str, float] = {}
    load_before = loadavg()

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    interrupted = False
    try:
        log(f"work dir {work}; load average {load_before}")
        if "vaxla" in args.system_list:
            systems["vaxla"] = start_vaxla(procs, work, args)
            log(f"vaxla serve pid {systems['vaxla'].pid} on {systems['vaxla'].target}")
        if "sippy" in args.system_list:
            systems["sippy"] = start_sippy(procs, work, args)
            log(f"sippy b2bua_simple pid {systems['sippy'].pid} on {systems['sippy'].target}")
        if systems:
            # CPU of the idle B2BUAs (timers, housekeeping) before any call
            t_a = time.monotonic()
            before = {n: cpu_seconds(s.pid) for n, s in systems.items()}
            time.sleep(args.idle_seconds)
            span = time.monotonic() - t_a
            idle = {n: round((cpu_seconds(s.pid) - before[n]) / span * 100, 2)
                    for n, s in systems.items()}  # fmt: skip
            log(f"idle CPU % of one core: {idle}")
        if args.wait_before_ramp > 0:
            log(f"idling {args.wait_before_ramp:.0f} s before the first step")
            time.sleep(args.wait_before_ramp)
        failures = dict.fromkeys(systems, 0)
        for index, rate in enumerate(args.rate_list):
            active = [s for s in systems.values() if failures[s.name] < args.max_failed_steps]
            if not active:
                break
            for system in active:
                if system.proc.poll() is not None:
                    log(f"{system.name} exited ({system.proc.returncode}); not ramping it further")
                    failures[system.name] = args.max_failed_steps
                    continue
                for attempt in range(2):
                    ensure_uas(procs, system)
                    log(
                        f"{system.name}: {rate} calls/s for {args.step_seconds:g} s, "
                        f"load {loadavg()}"
                    )
                    step = run_step(procs, system, rate, work, args, index)
                    if not step.details.get("uas_exited") or attempt == 1:
                        break
                    log(f"  the SIPp UAS exited during the step (rc {system.uas.returncode}): "
                        "restarting it and running the step again")  # fmt: skip
                steps.append(step)
                log(
                    f"  {'PASS' if step.passed else 'FAIL'}: ok={step.successful}/{step.calls} "
                    f"failed={step.failed} retrans={step.retransmissions} "
                    f"uas_failed={step.uas_failed} cpu={step.cpu_pct}% "
                    f"({step.cpu_ms_per_call} ms/call) elapsed={step.elapsed}s"
                )
                if not step.passed:
                    failures[system.name] += 1
                time.sleep(args.pause_between)
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted; stopping what was started")
    finally:
        procs.stop_all()
    summary = summarise(steps, list(systems))
    result = {
        "benchmark": "b2bua-signalling",
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now().isoformat(timespec="seconds"),
        "interrupted": interrupted,
        "quick": quick,
        "settings": {
            "rates": args.rate_list,
            "step_seconds": args.step_seconds,
            "hold_ms": args.hold_ms,
            "b2bua_cpu": args.b2bua_cpu,
            "sipp_cpu": args.sipp_cpu,
            "recv_timeout_ms": args.recv_timeout_ms,
            "max_failed_steps": args.max_failed_steps,
            "vaxla_log_level": args.vaxla_log_level,
            "uac_strict": args.strict,
            "vaxla_env": {"VAXLA_SIP__TRUSTED_PEERS": '["127.0.0.1"]'},
        },
        "machine": {**machine_info(), "loadavg_before": load_before, "loadavg_after": loadavg()},
        "idle_cpu_pct": idle,
        "steps": [asdict(s) for s in steps],
        "summary": summary,
        "logs": {name: log_summary(sys_.log_file, name) for name, sys_ in systems.items()},
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print()
    print_table(steps)
    print()
    for name, s in summary.items():
        if name in ("vaxla", "sippy"):
            ceiling = " (ramp ceiling: add higher --rates)" if s["limited_by_ramp_ceiling"] else ""
            print(
                f"{name}: highest rate with zero failed calls: {s['max_rate_zero_failures']} "
                f"calls/s{ceiling}; CPU there {s['cpu_pct_at_max_rate']} % of one core "
                f"({s['cpu_ms_per_call_at_max_rate']} ms/call)"
            )
    if "ratio_vaxla_over_sippy" in summary:
        print(f"ratio Växla / sippy (max rate): {summary['ratio_vaxla_over_sippy']}")
    if "cpu_per_call_at_common_rate" in summary:
        c = summary["cpu_per_call_at_common_rate"]
        print(
            f"CPU per call at {c['rate']} calls/s: vaxla {c['vaxla_ms']} ms, sippy {c['sippy_ms']} "
            f"ms (sippy/vaxla {c['sippy_over_vaxla']})"
        )
    for name, info in result["logs"].items():
        if info:
            print(f"{name} log: {info['lines']} lines {info['by_level']}")
            for msg, n in list(info.get("top_messages", {}).items())[:5]:
                print(f"  {n:6d} x {msg[:200]}")
    print(f"load average before {load_before}, after {loadavg()}")
    print(f"results: {output}")
    if args.keep_workdir:
        print(f"logs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
