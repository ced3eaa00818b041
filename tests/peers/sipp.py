"""Run SIPp 3.6.1 (Debian ``sip-tester``) scenarios against loopback targets.

:func:`run_scenario` runs one SIPp to completion and returns a
:class:`SippResult` (exit code, the last row of ``-trace_stat``, and the
error / message logs).  :func:`start_scenario` starts SIPp in the background
(e.g. a UAS waiting for a call) and returns a :class:`SippProcess` to
``wait()`` for or ``stop()``.

Scenarios are a built-in name (``uac``, ``uas``, ...), a file name in
``tests/peers/scenarios`` (``"uac_call"`` or ``"uac_call.xml"``), or a path.
Credentials go in an injection CSV that this module writes from ``users``:
``field0`` = user, ``field1`` = password, ``field2`` = the matching
``[authentication username=... password=...]`` keyword (SIPp 3.6.1 does not
expand ``[field0]`` inside ``[authentication ...]``).  SIPp's digest ``uri``
is ``sip:<remote ip>:<port>`` unless ``-auth_uri`` says otherwise, so
``auth_uri`` defaults to the Request-URI the scenario uses (see
:data:`SCENARIOS`).  Every SIPp binds to 127.0.0.1 only (``-i``,
``-bind_local``, ``-mi``) on free ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .ports import LOOPBACK, free_port

SIPP_BIN = "sipp"
SCENARIO_DIR = Path(__file__).parent / "scenarios"
BUILTIN_SCENARIOS = frozenset(
    {"uac", "uas", "regexp", "branchc", "branchs", "uac_pcap", "3pcc-C-A", "3pcc-C-B"}
    | {"3pcc-A", "3pcc-B", "ooc_default"}
)


@dataclass(frozen=True, slots=True)
class ScenarioInfo:
    """How a bundled scenario is driven."""

    auth: str
    """``register`` (digest uri = target), ``invite`` (uri = service@target) or ``none``."""
    ooc: str | None = None
    """Out-of-call scenario that must accompany it (``-oocsf``)."""


SCENARIOS: dict[str, ScenarioInfo] = {
    "register.xml": ScenarioInfo("register"),
    "register_wrong_password.xml": ScenarioInfo("register"),
    "uac_call.xml": ScenarioInfo("invite"),
    "uac_delayed_offer.xml": ScenarioInfo("invite"),
    "uac_delayed_offer_hungup.xml": ScenarioInfo("invite"),
    "uac_cancel.xml": ScenarioInfo("invite"),
    "uac_busy.xml": ScenarioInfo("invite"),
    "uac_noanswer.xml": ScenarioInfo("invite"),
    "uac_not_found.xml": ScenarioInfo("invite"),
    "uas_register_answer.xml": ScenarioInfo("register", ooc="uas_answer.xml"),
    "uas_register_busy.xml": ScenarioInfo("register", ooc="uas_busy.xml"),
    "uas_register_noanswer.xml": ScenarioInfo("register", ooc="uas_noanswer.xml"),
    "uas_answer.xml": ScenarioInfo("none"),
    "uas_busy.xml": ScenarioInfo("none"),
    "uas_noanswer.xml": ScenarioInfo("none"),
    "uas_slow_cancel.xml": ScenarioInfo("none"),
}

EXIT_CODES = {
    0: "all calls succeeded",
    1: "at least one call failed",
    97: "exit on internal command (calls may have been processed)",
    99: "normal exit without calls processed",
    -1: "fatal error",
    255: "fatal error",
    -2: "fatal error binding a socket",
    254: "fatal error binding a socket",
}


class SippError(RuntimeError):
    """SIPp could not be run (not a failed call: that is a SippResult)."""


def scenario_path(scenario: str | Path) -> Path | None:
    """Resolve a scenario to a file; ``None`` for SIPp's built-in ones."""
    if isinstance(scenario, str) and scenario in BUILTIN_SCENARIOS:
        return None
    path = Path(scenario)
    if path.is_file():
        return path.resolve()
    relative = path if path.suffix == ".xml" else path.with_name(f"{path.name}.xml")
    candidate = SCENARIO_DIR / relative
    if candidate.is_file():
        return candidate
    raise SippError(f"unknown SIPp scenario {scenario!r} (looked in {SCENARIO_DIR})")


def write_injection_csv(path: Path, users: Sequence[Sequence[str]]) -> Path:
    """Write a SEQUENTIAL injection file: user;password;[authentication ...];extra..."""
    lines = ["SEQUENTIAL"]
    for row in users:
        if len(row) < 2:
            raise ValueError(f"need (user, password, ...), got {row!r}")
        user, password, *extra = (str(v) for v in row)
        for value in (user, password, *extra):
            if ";" in value or "\n" in value or "]" in value:
                raise ValueError(f"SIPp CSV values cannot contain ';', ']' or newlines: {value!r}")
        auth = f"[authentication username={user} password={password}]"
        lines.append(";".join([user, password, auth, *extra]) + ";")
    path.write_text("\n".join(lines) + "\n")
    return path


def parse_stat_csv(path: Path) -> dict[str, str]:
    """Last row of a ``-trace_stat`` file as {column: value}."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return {}
    rows = [row for row in csv.reader(text.splitlines(), delimiter=";") if row]
    if len(rows) < 2:
        return {}
    return {k: v for k, v in zip(rows[0], rows[-1], strict=False) if k}


def _int(stats: Mapping[str, str], key: str) -> int:
    try:
        return int(stats.get(key, "0") or 0)
    except ValueError:
        return 0


@dataclass(slots=True)
class SippResult:
    returncode: int
    command: list[str]
    workdir: Path
    stats: dict[str, str] = field(default_factory=dict)
    stdout: str = ""
    errors: str = ""
    messages: str = ""
    duration: float = 0.0
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    @property
    def successful_calls(self) -> int:
        return _int(self.stats, "SuccessfulCall(C)")

    @property
    def failed_calls(self) -> int:
        return _int(self.stats, "FailedCall(C)")

    def describe(self) -> str:
        """Multi-line summary for assertion messages: command, exit code, logs."""
        meaning = EXIT_CODES.get(self.returncode, "?")
        parts = [
            f"sipp exit {self.returncode} ({meaning}){' TIMED OUT' if self.timed_out else ''}",
            f"command: {' '.join(self.command)}",
            f"successful={self.successful_calls} failed={self.failed_calls}",
        ]
        if self.errors.strip():
            parts.append("--- error log ---\n" + self.errors[-6000:])
        if not self.ok and self.messages.strip():
            parts.append("--- message log (tail) ---\n" + self.messages[-6000:])
        if not self.ok and self.stdout.strip():
            parts.append("--- stdout (tail) ---\n" + self.stdout[-3000:])
        return "\n".join(parts)


@dataclass(slots=True)
class _Prepared:
    command: list[str]
    workdir: Path
    stat_file: Path
    error_file: Path
    message_file: Path
    stdout_file: Path
    local_port: int


def build_command(
    scenario: str | Path,
    target: str | None = None,
    *,
    local_port: int | None = None,
    calls: int | None = 1,
    service: str | None = None,
    users: Sequence[Sequence[str]] | None = None,
    inf: str | Path | None = None,
    auth_uri: str | None = None,
    ooc_scenario: str | Path | None = None,
    keys: Mapping[str, str] | None = None,
    variables: Mapping[str, str] | None = None,
    duration_ms: int | None = None,
    timeout: float | None = 30.0,
    transport: str = "u1",
    extra_args: Sequence[str] = (),
    workdir: Path | None = None,
) -> _Prepared:
    """Build the SIPp command line (and its work dir) without running it."""
    workdir = workdir or Path(tempfile.mkdtemp(prefix="sipp-", dir="/tmp"))
    port = local_port or free_port()
    path = scenario_path(scenario)
    cmd = [SIPP_BIN]
    if path is None:
        cmd += ["-sn", str(scenario)]
    else:
        cmd += ["-sf", str(path)]
    info = SCENARIOS.get(path.name) if path is not None else None
    ooc = ooc_scenario or (info.ooc if info else None)
    if ooc is not None:
        ooc_path = scenario_path(ooc)
        if ooc_path is None:
            cmd += ["-oocsn", str(ooc)]
        else:
            cmd += ["-oocsf", str(ooc_path)]
    if target is not None:
        cmd.append(target)
    media_port = free_port(span=4)
    cmd += ["-i", LOOPBACK, "-bind_local", "-p", str(port), "-t", transport]
    cmd += ["-mi", LOOPBACK, "-mp", str(media_port)]
    # default behaviours stay on: an unexpected message aborts the call (and
    # SIPp sends BYE/CANCEL to clean up the far end)
    cmd += ["-nostdin"]
    if calls is not None:
        cmd += ["-m", str(calls)]
    if service is not None:
        cmd += ["-s", service]
    if users is not None:
        inf = write_injection_csv(workdir / "users.csv", users)
    if inf is not None:
        cmd += ["-inf", str(inf)]
    if auth_uri is None and info is not None and target is not None:
        if info.auth == "register":
            auth_uri = target
        elif info.auth == "invite" and service is not None:
            auth_uri = f"{service}@{target}"
    if auth_uri is not None:
        cmd += ["-auth_uri", auth_uri]
    for key, value in (keys or {}).items():
        cmd += ["-key", key, str(value)]
    for key, value in (variables or {}).items():
        cmd += ["-set", key, str(value)]
    if duration_ms is not None:
        cmd += ["-d", str(duration_ms)]
    if timeout is not None:
        cmd += ["-timeout", f"{max(1, round(timeout))}s", "-timeout_error"]
    stat_file = workdir / "stat.csv"
    error_file = workdir / "errors.log"
    message_file = workdir / "messages.log"
    cmd += ["-trace_stat", "-stf", str(stat_file), "-fd", "1"]
    cmd += ["-trace_err", "-error_file", str(error_file)]
    cmd += ["-trace_msg", "-message_file", str(message_file)]
    cmd += list(extra_args)
    return _Prepared(
        cmd, workdir, stat_file, error_file, message_file, workdir / "stdout.log", port
    )


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _result(prep: _Prepared, returncode: int, duration: float, timed_out: bool) -> SippResult:
    return SippResult(
        returncode=returncode,
        command=prep.command,
        workdir=prep.workdir,
        stats=parse_stat_csv(prep.stat_file),
        stdout=_read(prep.stdout_file),
        errors=_read(prep.error_file),
        messages=_read(prep.message_file),
        duration=duration,
        timed_out=timed_out,
    )


class SippProcess:
    """A SIPp running in the background; stop it by PID."""

    def __init__(self, prep: _Prepared, timeout: float | None, keep_workdir: bool = False) -> None:
        self._prep = prep
        self._timeout = timeout
        self._keep_workdir = keep_workdir
        self._started = time.monotonic()
        self._stdout = prep.stdout_file.open("wb")
        self.proc = subprocess.Popen(
            prep.command,
            cwd=prep.workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._stdout,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.result: SippResult | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def local_port(self) -> int:
        return self._prep.local_port

    @property
    def workdir(self) -> Path:
        return self._prep.workdir

    @property
    def command(self) -> list[str]:
        return self._prep.command

    def _finish(self, timed_out: bool) -> SippResult:
        self._stdout.close()
        rc = self.proc.returncode
        self.result = _result(self._prep, rc, time.monotonic() - self._started, timed_out)
        if not self._keep_workdir:
            shutil.rmtree(self._prep.workdir, ignore_errors=True)
        return self.result

    async def wait(self, timeout: float | None = None) -> SippResult:
        """Wait for SIPp to exit; on ``timeout`` (default: SIPp's own + 10 s) kill it."""
        if self.result is not None:
            return self.result
        if timeout is None:
            timeout = self._timeout + 10 if self._timeout is not None else None
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.proc.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                await self._terminate()
                return self._finish(timed_out=True)
            await asyncio.sleep(0.05)
        return self._finish(timed_out=False)

    async def stop(self, grace: float = 3.0) -> SippResult:
        """Stop SIPp now (SIGINT lets it write its stats, then SIGKILL)."""
        if self.result is not None:
            return self.result
        if self.proc.poll() is None:
            await self._terminate(grace)
        return self._finish(timed_out=False)

    async def _terminate(self, grace: float = 3.0) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + grace
        while self.proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self.proc.poll() is None:
            self.proc.kill()
            await asyncio.to_thread(self.proc.wait)

    def cleanup(self) -> None:
        """Remove the work dir (logs included)."""
        if self.proc.poll() is None:
            raise SippError("cleanup() before the process ended")
        if not self._stdout.closed:
            self._stdout.close()
        shutil.rmtree(self._prep.workdir, ignore_errors=True)


async def start_scenario(
    scenario: str | Path,
    target: str | None = None,
    *,
    ready_timeout: float = 5.0,
    timeout: float | None = 30.0,
    keep_workdir: bool = False,
    **kwargs: object,
) -> SippProcess:
    """Start SIPp in the background and wait until its SIP port is bound.

    Takes :func:`build_command`'s arguments.  A UAS (``"uas"``,
    ``"uas_answer"``) needs no target; its address is
    ``127.0.0.1:<proc.local_port>``.  The work dir (CSV, logs) is removed
    once the result has been read, unless ``keep_workdir``.
    """
    prep = build_command(scenario, target, timeout=timeout, **kwargs)  # type: ignore[arg-type]
    proc = SippProcess(prep, timeout, keep_workdir)
    deadline = time.monotonic() + ready_timeout
    tcp = "-t" in prep.command and prep.command[prep.command.index("-t") + 1].startswith("t")
    while not _port_bound(prep.local_port, tcp=tcp):
        if proc.proc.poll() is not None:
            result = proc._finish(timed_out=False)
            raise SippError(f"sipp exited at start:\n{result.describe()}")
        if time.monotonic() > deadline:
            await proc.stop()
            raise SippError(f"sipp did not bind port {prep.local_port}: {prep.command}")
        await asyncio.sleep(0.02)
    return proc


def _port_bound(port: int, *, tcp: bool = False) -> bool:
    """True once some socket is bound to 127.0.0.1:port (or 0.0.0.0:port), UDP or TCP."""
    needle = f":{port:04X} "
    table = Path("/proc/net/tcp" if tcp else "/proc/net/udp")
    with contextlib.suppress(OSError):
        for line in table.read_text().splitlines()[1:]:
            local = line.split()[1] + " "
            if local.endswith(needle):
                return True
    return False


async def run_scenario_async(
    scenario: str | Path,
    target: str | None = None,
    *,
    timeout: float | None = 30.0,
    keep_workdir: bool = False,
    **kwargs: Any,
) -> SippResult:
    """Run SIPp to completion without blocking the event loop (see :func:`run_scenario`)."""
    proc = await start_scenario(
        scenario, target, timeout=timeout, keep_workdir=keep_workdir, **kwargs
    )
    return await proc.wait()


def run_scenario(
    scenario: str | Path,
    target: str | None = None,
    *,
    local_port: int | None = None,
    extra_args: Sequence[str] = (),
    timeout: float | None = 30.0,
    keep_workdir: bool = False,
    **kwargs: object,
) -> SippResult:
    """Run one SIPp scenario to completion (blocking) and return its result.

    :param scenario: built-in name, bundled file name, or path.
    :param target: ``host:port`` of the system under test (127.0.0.1 only).
    :param local_port: SIPp's own SIP port (free one by default).
    :param extra_args: appended verbatim to the command line.
    :param timeout: SIPp's global ``-timeout`` (with ``-timeout_error``); the
        process is killed 10 s after it.
    :param keep_workdir: keep the CSV and log files (the result already
        holds the logs' text); removed by default.
    Other keyword arguments as for :func:`build_command` (``calls``,
    ``service``, ``users``, ``auth_uri``, ``keys``, ``duration_ms``...).
    """
    prep = build_command(
        scenario,
        target,
        local_port=local_port,
        extra_args=extra_args,
        timeout=timeout,
        **kwargs,  # type: ignore[arg-type]
    )
    started = time.monotonic()
    timed_out = False
    with prep.stdout_file.open("wb") as out:
        proc = subprocess.Popen(
            prep.command,
            cwd=prep.workdir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            proc.wait(timeout=None if timeout is None else timeout + 10)
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    result = _result(prep, proc.returncode, time.monotonic() - started, timed_out)
    if not keep_workdir:
        shutil.rmtree(prep.workdir, ignore_errors=True)
    return result


def sipp_available() -> bool:
    return shutil.which(SIPP_BIN) is not None and os.access(shutil.which(SIPP_BIN) or "", os.X_OK)
