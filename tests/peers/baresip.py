"""A real SIP phone for tests: a private baresip 1.0.0 process driven over ctrl_tcp.

Each :class:`BaresipPhone` runs its own ``baresip -f CONFDIR`` with a
generated config in a short temp dir under /tmp (baresip truncates paths
longer than 128 bytes).  It listens for SIP on 127.0.0.1 only, uses a WAV
file as microphone (aufile), plays received audio to ALSA's ``null`` device
and records both directions with the sndfile filter:
``dump-<timestamp>-dec.wav`` is the audio received, ``-enc.wav`` the audio
sent.  Accounts are created after the control connection is up (``uanew``),
so registration and call events are never lost.

Typical use::

    async with BaresipPhone("alice", tone_hz=440) as phone:
        await phone.register("1001", "secret", "127.0.0.1:5060")
        await phone.dial("sip:1002@127.0.0.1:5060")
        await phone.wait_event("CALL_ESTABLISHED")
        await phone.send_dtmf("5")
        await phone.hangup()
        await phone.wait_event("CALL_CLOSED")
        wav = await phone.wait_recording("dec")

Events are dicts as baresip sends them, e.g.
``{"event": true, "type": "CALL_DTMF_START", "accountaor": "sip:...",
"direction": "incoming", "peeruri": "sip:...", "id": "...", "param": "5"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from .audio import write_tone_wav
from .ports import LOOPBACK, free_port

Event = dict[str, Any]

BARESIP_BIN = "baresip"
MODULE_PATH = "/usr/lib/baresip/modules"
# baresip silently truncates longer paths (config, snd_path, recordings)
_MAX_PATH = 128
_RECORDING_NAME_LEN = len("dump-2026-01-01-00-00-00-dec.wav")

__all__ = ["BaresipError", "BaresipPhone", "Event"]


class BaresipError(RuntimeError):
    """baresip failed to start, rejected a command, or an expected event never came."""


def _netstring(payload: bytes) -> bytes:
    return str(len(payload)).encode() + b":" + payload + b","


class BaresipPhone:
    """One baresip process with one control connection.

    :param name: label used in the temp dir name and in error messages.
    :param tone_hz: frequency of the generated microphone tone (ignored when
        ``source_wav`` is given).
    :param source_wav: 8 kHz mono 16-bit WAV to use as microphone.
    :param tone_seconds: length of the generated tone; aufile plays the file
        once, so make it longer than the longest call.
    :param sip_port: SIP port (baresip also binds TLS on ``sip_port + 1``);
        chosen free when omitted.
    :param audio_codecs: codec preference written into every account.
    :param account_params: more parameters for every account, e.g.
        ``["ptime=30"]`` (30 ms packets; baresip then puts ``a=ptime:30`` in
        its SDP).
    """

    def __init__(
        self,
        name: str = "phone",
        *,
        tone_hz: float = 440.0,
        source_wav: str | Path | None = None,
        tone_seconds: float = 60.0,
        sip_port: int | None = None,
        ctrl_port: int | None = None,
        audio_codecs: str = "PCMA,PCMU",
        account_params: Iterable[str] = (),
        extra_config: Iterable[str] = (),
        binary: str = BARESIP_BIN,
    ) -> None:
        self.name = name
        self.tone_hz = tone_hz
        self._source_wav = Path(source_wav) if source_wav is not None else None
        self._tone_seconds = tone_seconds
        self._fixed_sip_port = sip_port
        self._fixed_ctrl_port = ctrl_port
        self.audio_codecs = audio_codecs
        self.account_params = list(account_params)
        self._extra_config = list(extra_config)
        self._binary = binary

        self.sip_port = 0
        self.ctrl_port = 0
        self.dir: Path | None = None
        self.aor: str | None = None
        self.events: list[Event] = []
        """Every event received so far, in order (never consumed)."""

        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._read_task: asyncio.Task[None] | None = None
        self._pending: list[Event] = []
        self._event_cond: asyncio.Condition | None = None
        self._responses: dict[str, asyncio.Future[Event]] = {}
        self._token = 0
        self._closed_reason: str | None = None
        self._source_path: Path | None = None

    # ------------------------------------------------------------ lifecycle

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def contact_uri(self, user: str | None = None) -> str:
        """``sip:user@127.0.0.1:PORT``: where another peer can reach this phone directly."""
        user = user or self.name
        return f"sip:{user}@{LOOPBACK}:{self.sip_port}"

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self, timeout: float = 10.0, attempts: int = 3) -> None:
        """Start baresip and connect to ctrl_tcp (retries on a port race)."""
        if self._proc is not None:
            raise BaresipError(f"{self.name}: already started")
        self.dir = Path(tempfile.mkdtemp(prefix="bs-", dir="/tmp"))
        if len(str(self.dir)) + 1 + _RECORDING_NAME_LEN >= _MAX_PATH:
            raise BaresipError(f"{self.dir}: too long for baresip's 128-byte paths")
        wav = self._source_wav
        if wav is None:
            wav = write_tone_wav(self.dir / "tone.wav", self.tone_hz, self._tone_seconds)
        elif len(str(wav.resolve())) >= _MAX_PATH:
            wav = Path(shutil.copy(wav, self.dir / "source.wav"))
        self._source_path = wav.resolve()

        last_error = ""
        for _ in range(attempts):
            self.sip_port = self._fixed_sip_port or free_port(span=2)
            self.ctrl_port = self._fixed_ctrl_port or free_port()
            self._write_config()
            self._spawn()
            try:
                await self._connect(timeout)
                return
            except BaresipError as exc:
                last_error = str(exc)
                await self._kill()
                if self._fixed_sip_port and self._fixed_ctrl_port:
                    break
        await self.stop()
        raise BaresipError(f"{self.name}: baresip did not start: {last_error}")

    def _write_config(self) -> None:
        assert self.dir is not None
        lines = [
            "poll_method\tepoll",
            f"sip_listen\t{LOOPBACK}:{self.sip_port}",
            "call_local_timeout\t120",
            "call_max_calls\t4",
            "audio_player\talsa,null",
            f"audio_source\taufile,{self._source_path}",
            "audio_alert\talsa,null",
            "ausrc_srate\t8000",
            "auplay_srate\t8000",
            "ausrc_channels\t1",
            "auplay_channels\t1",
            "audio_level\tno",
            "rtcp_mux\tno",
            "jitter_buffer_delay\t5-10",
            f"net_interface\t{LOOPBACK}",
            f"dns_server\t{LOOPBACK}:53",
            f"module_path\t{MODULE_PATH}",
            # codecs: g711 registers PCMU and PCMA; accounts set the preference
            "module\tg711.so",
            "module\taufile.so",
            "module\talsa.so",
            "module\tsndfile.so",
            "module_tmp\taccount.so",
            "module_app\tmenu.so",
            "module_app\tctrl_tcp.so",
            f"ctrl_tcp_listen\t{LOOPBACK}:{self.ctrl_port}",
            f"snd_path\t{self.dir}",
            *self._extra_config,
        ]
        (self.dir / "config").write_text("\n".join(lines) + "\n")
        (self.dir / "accounts").write_text("")
        (self.dir / "contacts").write_text("")

    def _spawn(self) -> None:
        assert self.dir is not None
        if self._log_file is not None:
            self._log_file.close()
        self._log_file = (self.dir / "baresip.log").open("ab")
        self._proc = subprocess.Popen(
            [self._binary, "-f", str(self.dir)],
            cwd=self.dir,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    async def _connect(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                raise BaresipError(f"exited early:\n{self.log_text()}")
            try:
                self._reader, self._writer = await asyncio.open_connection(LOOPBACK, self.ctrl_port)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise BaresipError(f"ctrl_tcp not reachable:\n{self.log_text()}") from None
                await asyncio.sleep(0.05)
        self._event_cond = asyncio.Condition()
        self._closed_reason = None
        self._read_task = asyncio.create_task(self._read_loop(), name=f"baresip-{self.name}")
        # the SIP socket is bound before ctrl_tcp loads; still, make sure the
        # process survived its start (a SIP port race makes it exit)
        await asyncio.sleep(0.05)
        if not self.running:
            raise BaresipError(f"exited after start:\n{self.log_text()}")

    async def stop(self, timeout: float = 5.0, *, keep_dir: bool = False) -> None:
        """Quit baresip (SIGTERM twice, then SIGKILL after ``timeout``), remove the temp dir."""
        await self._disconnect()
        await self._kill(timeout)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if not keep_dir:
            self.cleanup()

    def cleanup(self) -> None:
        """Remove the temp dir (config, log, recordings) of a stopped phone."""
        if self.running:
            raise BaresipError(f"{self.name}: cleanup() while baresip runs")
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    async def _disconnect(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
            self._writer = None
        if self._read_task is not None:
            self._read_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._read_task
            self._read_task = None

    async def _kill(self, timeout: float = 5.0) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            # baresip's first SIGTERM stops the user agents gracefully, which
            # can wait for lingering SIP transactions; a second one exits
            # at once (after closing its modules, so recordings are complete)
            deadline = time.monotonic() + timeout
            for grace in (1.0, timeout):
                proc.send_signal(signal.SIGTERM)
                until = min(deadline, time.monotonic() + grace)
                while proc.poll() is None and time.monotonic() < until:
                    await asyncio.sleep(0.05)
                if proc.poll() is not None:
                    break
            if proc.poll() is None:
                proc.kill()
                await asyncio.to_thread(proc.wait)
        self._proc = None
        await self._disconnect()

    def log_text(self) -> str:
        """baresip's stdout/stderr so far (for failure messages)."""
        if self.dir is None:
            return ""
        log = self.dir / "baresip.log"
        try:
            return log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def audio_codecs_used(self) -> list[str]:
        """Encoders baresip selected so far, in order (from its log), e.g. ``["PCMA"]``."""
        return [
            line.split("Set audio encoder:", 1)[1].split()[0]
            for line in self.log_text().splitlines()
            if "Set audio encoder:" in line
        ]

    # -------------------------------------------------------------- protocol

    async def _read_loop(self) -> None:
        reader = self._reader
        assert reader is not None
        try:
            while True:
                length = await reader.readuntil(b":")
                size = int(length[:-1])
                payload = await reader.readexactly(size + 1)
                if payload[-1:] != b",":
                    raise BaresipError(f"bad netstring from baresip: {payload[-20:]!r}")
                message: Event = json.loads(payload[:-1])
                if message.get("response"):
                    future = self._responses.pop(str(message.get("token")), None)
                    if future is not None and not future.done():
                        future.set_result(message)
                elif message.get("event"):
                    assert self._event_cond is not None
                    async with self._event_cond:
                        self.events.append(message)
                        self._pending.append(message)
                        self._event_cond.notify_all()
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            self._closed_reason = f"control connection closed ({exc!r})"
        except asyncio.CancelledError:
            self._closed_reason = "control connection closed by the harness"
            raise
        except Exception as exc:
            self._closed_reason = f"control reader failed: {exc!r}"
        finally:
            for future in self._responses.values():
                if not future.done():
                    future.set_exception(BaresipError(f"{self.name}: {self._closed_reason}"))
            self._responses.clear()
            if self._event_cond is not None:
                async with self._event_cond:
                    self._event_cond.notify_all()

    async def command(
        self, command: str, params: str = "", *, timeout: float = 5.0, check: bool = True
    ) -> Event:
        """Send one ctrl_tcp command and return its response dict."""
        if self._writer is None:
            raise BaresipError(f"{self.name}: not started")
        self._token += 1
        token = str(self._token)
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._responses[token] = future
        body = json.dumps({"command": command, "params": params, "token": token})
        self._writer.write(_netstring(body.encode()))
        await self._writer.drain()
        try:
            response = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            self._responses.pop(token, None)
            raise BaresipError(f"{self.name}: no response to {command!r} in {timeout}s") from None
        if check and not response.get("ok"):
            raise BaresipError(f"{self.name}: {command} {params!r} failed: {response}")
        return response

    # ---------------------------------------------------------------- events

    async def wait_event(
        self,
        type: str | Iterable[str],
        timeout: float = 10.0,
        *,
        predicate: Callable[[Event], bool] | None = None,
    ) -> Event:
        """Return (and consume) the oldest not yet consumed event of ``type``.

        ``type`` may be a set of types.  Events of other types stay queued for
        later calls; :attr:`events` keeps the full history regardless.
        Raises :class:`BaresipError` on timeout, listing the events seen.
        """
        types = {type} if isinstance(type, str) else set(type)
        cond = self._event_cond
        if cond is None:
            raise BaresipError(f"{self.name}: not started")

        def find() -> Event | None:
            for i, event in enumerate(self._pending):
                if event.get("type") in types and (predicate is None or predicate(event)):
                    return self._pending.pop(i)
            return None

        async def waiter() -> Event:
            async with cond:
                while True:
                    found = find()
                    if found is not None:
                        return found
                    if self._read_task is None or self._read_task.done():
                        raise BaresipError(f"{self.name}: {self._closed_reason}")
                    await cond.wait()

        try:
            return await asyncio.wait_for(waiter(), timeout)
        except TimeoutError:
            seen = [e.get("type") for e in self.events if e.get("type") != "CALL_RTCP"]
            raise BaresipError(
                f"{self.name}: no {sorted(types)} event within {timeout}s; events so far: {seen}"
            ) from None

    def clear_events(self) -> None:
        """Forget queued, unconsumed events (history in :attr:`events` stays)."""
        self._pending.clear()

    # --------------------------------------------------------------- actions

    def _account_line(
        self,
        aor: str,
        *,
        password: str | None,
        regint: int,
        answermode: str,
        outbound: str | None,
        params: Iterable[str],
    ) -> str:
        parts = [f"<{aor}>"]
        if password is not None:
            parts.append(f"auth_pass={password}")
        parts.append(f"regint={regint}")
        parts.append(f"answermode={answermode}")
        parts.append(f"audio_codecs={self.audio_codecs}")
        if outbound:
            parts.append(f'outbound="{outbound}"')
        parts.extend(self.account_params)
        parts.extend(params)
        return ";".join(parts)

    async def add_account(
        self,
        aor: str | None = None,
        *,
        password: str | None = None,
        regint: int = 0,
        answermode: str = "auto",
        outbound: str | None = None,
        params: Iterable[str] = (),
    ) -> Event:
        """Create a user agent with ``uanew``.

        The default (``regint=0``) never registers: use it for direct
        peer-to-peer calls to :meth:`contact_uri`.  ``answermode`` is
        ``auto`` (answer at once) or ``manual`` (wait for :meth:`answer`).
        """
        aor = aor or self.contact_uri()
        line = self._account_line(
            aor,
            password=password,
            regint=regint,
            answermode=answermode,
            outbound=outbound,
            params=params,
        )
        response = await self.command("uanew", line)
        self.aor = aor
        return response

    async def register(
        self,
        aor: str,
        password: str,
        registrar: str = f"{LOOPBACK}:5060",
        *,
        regint: int = 600,
        answermode: str = "auto",
        timeout: float = 10.0,
        check: bool = True,
        params: Iterable[str] = (),
    ) -> Event:
        """Create an account that registers with digest auth; wait for the result.

        ``aor`` is either a user part (``"1001"`` gives
        ``sip:1001@<registrar>``) or a full SIP URI; with a full URI whose
        host differs from ``registrar`` the registrar is used as outbound
        proxy.  Returns the REGISTER_OK event; with ``check=False`` returns
        REGISTER_FAIL too instead of raising.
        """
        if aor.startswith(("sip:", "sips:")):
            full_aor = aor
            host = aor.split("@", 1)[-1].split(";", 1)[0]
            outbound = None if host == registrar else f"sip:{registrar}"
        else:
            full_aor = f"sip:{aor}@{registrar}"
            outbound = None
        await self.add_account(
            full_aor,
            password=password,
            regint=regint,
            answermode=answermode,
            outbound=outbound,
            params=params,
        )
        event = await self.wait_event({"REGISTER_OK", "REGISTER_FAIL"}, timeout)
        if check and event["type"] != "REGISTER_OK":
            raise BaresipError(f"{self.name}: registration of {full_aor} failed: {event}")
        return event

    async def unregister(self, aor: str | None = None) -> Event:
        """Delete the user agent (baresip sends REGISTER with Expires: 0)."""
        aor = aor or self.aor
        if aor is None:
            raise BaresipError(f"{self.name}: no account")
        return await self.command("uadel", aor)

    async def dial(self, uri: str) -> Event:
        """Start a call to ``uri`` (e.g. ``sip:1002@127.0.0.1:5060``)."""
        return await self.command("dial", uri)

    async def answer(self) -> Event:
        """Accept the ringing incoming call (accounts created with ``answermode='manual'``)."""
        return await self.command("accept")

    async def hangup(self) -> Event:
        """Hang up (or reject / cancel) the current call."""
        return await self.command("hangup")

    async def call_status(self) -> str:
        """baresip's ``callstat`` of the current call: both sides' SDP formats and
        attributes (e.g. ``ptime='30'`` under the remote attributes)."""
        return str((await self.command("callstat")).get("data", ""))

    async def send_dtmf(self, digits: str, interval: float = 0.25) -> None:
        """Send RFC 4733 DTMF, one ``sndcode`` per digit, ``interval`` seconds apart."""
        for i, digit in enumerate(digits):
            if digit not in "0123456789*#ABCD":
                raise ValueError(f"not a DTMF digit: {digit!r}")
            if i:
                await asyncio.sleep(interval)
            await self.command("sndcode", digit)

    # ------------------------------------------------------------ recordings

    def _recordings(self, kind: str) -> list[Path]:
        if self.dir is None:
            return []
        files = list(self.dir.glob(f"dump-*-{kind}.wav"))
        return sorted(files, key=lambda p: (p.stat().st_mtime, p.name))

    def received_wav_path(self) -> Path | None:
        """Newest recording of audio received from the remote side, if any.

        sndfile names files by the second the call's audio started, so two
        calls within one second share one file.  Its header is finalised when
        the call's audio stops: prefer :meth:`wait_recording` after CALL_CLOSED.
        """
        files = self._recordings("dec")
        return files[-1] if files else None

    def sent_wav_path(self) -> Path | None:
        """Newest recording of audio sent to the remote side, if any."""
        files = self._recordings("enc")
        return files[-1] if files else None

    async def wait_recording(
        self, kind: str = "dec", timeout: float = 5.0, min_seconds: float = 0.2
    ) -> Path:
        """Wait until the newest ``dec``/``enc`` recording is closed and return it.

        A recording counts as closed when its WAV header states a data size
        matching the file (libsndfile writes the sizes when it closes the
        file) holding at least ``min_seconds`` of 8 kHz audio.
        """
        deadline = time.monotonic() + timeout
        while True:
            files = self._recordings(kind)
            if files and _wav_finalised(files[-1], min_bytes=int(min_seconds * 16000)):
                return files[-1]
            if time.monotonic() > deadline:
                raise BaresipError(
                    f"{self.name}: no finished {kind} recording in {self.dir}: "
                    f"{[p.name for p in files]}"
                )
            await asyncio.sleep(0.05)


def _wav_finalised(path: Path, min_bytes: int) -> bool:
    try:
        with path.open("rb") as f:
            head = f.read(4096)
            size = os.fstat(f.fileno()).st_size
    except OSError:
        return False
    pos = head.find(b"data")
    if head[:4] != b"RIFF" or pos < 0 or pos + 8 > len(head):
        return False
    declared = int.from_bytes(head[pos + 4 : pos + 8], "little")
    return declared >= min_bytes and pos + 8 + declared <= size
