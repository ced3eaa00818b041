"""Run a real ``vaxla serve`` process for integration tests.

The node listens on 127.0.0.1 on free ports, keeps its data in a temp dir,
and is stopped by its PID (SIGINT, as Ctrl-C would).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.peers.ports import free_port

VAXLA = [sys.executable, "-m", "vaxla.cli"]


def vaxla_cli(*args: str, data_dir: Path, database_url: str | None = None) -> str:
    cmd = [*VAXLA, *args, "--data-dir", str(data_dir)]
    if database_url:
        cmd += ["--database-url", database_url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({out.returncode}): {out.stderr}")
    return out.stdout


class VaxlaProcess:
    def __init__(
        self,
        data_dir: Path,
        *,
        demo: bool = False,
        database_url: str | None = None,
        env: dict[str, str] | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.data_dir = data_dir
        self.demo = demo
        self.database_url = database_url
        self.env = env or {}
        self.extra_args = extra_args
        self.sip_port = free_port()
        self.http_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / "vaxla.log"
        self.token: str | None = None

    @property
    def sip_addr(self) -> str:
        return f"127.0.0.1:{self.sip_port}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def cli(self, *args: str) -> str:
        return vaxla_cli(*args, data_dir=self.data_dir, database_url=self.database_url)

    def start(self, timeout: float = 30.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.token is None:
            self.token = self.cli("token", "create", "--name", "tests").strip()
        cmd = [
            *VAXLA,
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--sip-listen",
            self.sip_addr,
            "--http-listen",
            f"127.0.0.1:{self.http_port}",
            "--log-format",
            "json",
            *self.extra_args,
        ]
        if self.demo:
            cmd.append("--demo")
        if self.database_url:
            cmd += ["--database-url", self.database_url]
        env = {**os.environ, **self.env}
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed by the child's exit
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vaxla serve exited {self.proc.returncode}:\n{self.logs()}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"vaxla serve did not start:\n{self.logs()}")

    def stop(self, timeout: float = 15.0) -> int:
        """Ctrl-C the node (SIGINT) and return its exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        code = self.proc.returncode
        self.proc = None
        return code

    def restart(self) -> None:
        self.stop()
        self.start()

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.logs().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return httpx.request(
            method, f"{self.base_url}{path}", headers=headers, timeout=10, **kwargs
        )

    def add_extension(self, number: str, password: str, name: str = "Test", **extra: Any) -> None:
        r = self.api(
            "POST",
            "/api/v1/extensions",
            json={"number": number, "name": name, "password": password, **extra},
        )
        if r.status_code != 201:
            raise RuntimeError(f"adding {number} failed: {r.status_code} {r.text}")

    def add_person(self, first: str, last: str, extension: str) -> int:
        """A person in the directory with ``extension``; returns their id."""
        r = self.api(
            "POST",
            "/api/v1/directory/people",
            json={
                "first_name": first,
                "last_name": last,
                "phones": [{"kind": "extension", "number": extension}],
            },
        )
        if r.status_code != 201:
            raise RuntimeError(f"adding {first} {last} failed: {r.status_code} {r.text}")
        return int(r.json()["id"])

    def calls(self) -> list[dict[str, Any]]:
        r = self.api("GET", "/api/v1/calls")
        r.raise_for_status()
        result: list[dict[str, Any]] = r.json()
        return result

    def call_records(self, caller: str, n: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The caller's call records, every column (forwarding too), read from
        the node's SQLite database; waits up to ``timeout`` for ``n`` of them."""
        deadline = time.monotonic() + timeout
        while True:
            conn = sqlite3.connect(self.data_dir / "vaxla.db")
            conn.row_factory = sqlite3.Row
            try:
                rows = [
                    dict(r)
                    for r in conn.execute(
                        "SELECT * FROM call_records WHERE caller = ? ORDER BY id", (caller,)
                    )
                ]
            finally:
                conn.close()
            if len(rows) >= n or time.monotonic() > deadline:
                return rows
            time.sleep(0.1)

    def wait_for_calls(self, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        calls = self.calls()
        while len(calls) < n and time.monotonic() < deadline:
            time.sleep(0.1)
            calls = self.calls()
        return calls

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        text = httpx.get(f"{self.base_url}/metrics", timeout=5).text
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(name) or line.startswith("#"):
                continue
            head, _, value = line.rpartition(" ")
            metric_name = head.split("{", 1)[0]
            if metric_name != name:
                continue
            if labels and not all(f'{k}="{v}"' in head for k, v in labels.items()):
                continue
            total += float(value)
        return total
