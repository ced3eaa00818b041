"""Node behaviour: TCP, restart, Ctrl-C, password floods, demo, logs and metrics."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.peers.fixtures import BaresipFactory
from tests.peers.ports import free_port
from tests.peers.sipp import run_scenario_async, start_scenario
from tests.support.server import VaxlaProcess

pytestmark = [pytest.mark.slow, pytest.mark.peers]


def _registered(node: VaxlaProcess) -> set[str]:
    return {r["extension"] for r in node.api("GET", "/api/v1/registrations").json()}


async def test_call_over_tcp(node: VaxlaProcess) -> None:
    node.add_extension("3001", "tcp-caller")
    node.add_extension("3002", "tcp-callee")
    uas = await start_scenario(
        "uas_register_answer",
        node.sip_addr,
        users=[("3002", "tcp-callee")],
        transport="t1",
        timeout=20,
    )
    for _ in range(100):
        if "3002" in _registered(node):
            break
        await asyncio.sleep(0.05)
    regs = node.api("GET", "/api/v1/registrations").json()
    assert regs[0]["transport"] == "tcp"
    uac = await run_scenario_async(
        "uac_call",
        node.sip_addr,
        users=[("3001", "tcp-caller")],
        service="3002",
        transport="t1",
        timeout=15,
    )
    assert uac.ok, uac.describe()
    callee = await uas.wait(15)
    assert callee.ok, callee.describe()
    assert "SIP/2.0/TCP" in callee.messages
    call = node.wait_for_calls(1)[0]
    assert call["result"] == "answered"


async def test_restart_keeps_registrations(tmp_path: Path, baresip_factory: BaresipFactory) -> None:
    node = VaxlaProcess(tmp_path / "node")
    try:
        node.start()
        node.add_extension("1001", "alice-secret")
        node.add_extension("1002", "bob-secret")
        bob = await baresip_factory("bob", tone_hz=1000)
        await bob.register("1002", "bob-secret", node.sip_addr)
        assert _registered(node) == {"1002"}

        assert node.stop() == 0
        node.start()
        # Bob did not register again (regint 600 s): the binding came from storage.
        assert _registered(node) == {"1002"}
        alice = await baresip_factory("alice", tone_hz=440)
        await alice.register("1001", "alice-secret", node.sip_addr)
        await alice.dial(f"sip:1002@{node.sip_addr}")
        await bob.wait_event("CALL_ESTABLISHED", 10)
        await alice.wait_event("CALL_ESTABLISHED", 10)
        await alice.hangup()
        await bob.wait_event("CALL_CLOSED", 5)
    finally:
        node.stop()


def test_ctrl_c_shuts_down_cleanly(tmp_path: Path) -> None:
    node = VaxlaProcess(tmp_path / "node")
    node.start()
    sip_port, http_port = node.sip_port, node.http_port
    assert node.stop() == 0
    logs = node.logs()
    assert "Traceback" not in logs
    messages = [r["msg"] for r in node.log_records()]
    assert "Växla started" in messages and messages[-1] == "Växla stopped"
    # Every socket was closed: the ports can be bound again at once.
    for kind, port in (
        (socket.SOCK_DGRAM, sip_port),
        (socket.SOCK_STREAM, sip_port),
        (socket.SOCK_STREAM, http_port),
    ):
        with socket.socket(socket.AF_INET, kind) as s:
            if kind == socket.SOCK_STREAM:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))


async def test_password_flood_does_not_stop_a_good_phone(
    node: VaxlaProcess, baresip_factory: BaresipFactory, tmp_path: Path
) -> None:
    node.add_extension("1004", "not-in-any-list-4")
    node.add_extension("1005", "good-phone-secret")
    words = tmp_path / "words.txt"
    words.write_text("\n".join(f"guess{i}" for i in range(2000)) + "\n")
    attacker_port = free_port()
    # sipvicious' svcrack guesses passwords for 1004 as fast as it can.
    flood = subprocess.Popen(
        [
            "svcrack",
            "-u",
            "1004",
            "-d",
            str(words),
            "-b",
            "127.0.0.1",
            "-P",
            str(attacker_port),
            "--maximumtime",
            "4",
            "-p",
            str(node.sip_port),
            "127.0.0.1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    try:
        await asyncio.sleep(1.5)  # the flood is running
        assert flood.poll() is None
        phone = await baresip_factory("good")
        started = time.monotonic()
        await phone.register("1005", "good-phone-secret", node.sip_addr, timeout=10)
        assert time.monotonic() - started < 3
    finally:
        try:
            out, _ = flood.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            flood.kill()
            out, _ = flood.communicate()
    assert _registered(node) == {"1005"}
    text = out.decode(errors="replace")
    assert "not-in-any-list-4" not in text
    # The attacker's source was throttled after a few failures.
    assert node.metric("vaxla_register_requests_total", {"outcome": "throttled"}) > 0
    assert node.metric("vaxla_register_requests_total", {"outcome": "forbidden"}) <= 25


async def test_demo_municipality_and_logs(tmp_path: Path) -> None:
    node = VaxlaProcess(tmp_path / "demo", demo=True)
    try:
        node.start()
        extensions = node.api("GET", "/api/v1/extensions").json()
        numbers = [e["number"] for e in extensions]
        assert numbers == [str(n) for n in range(1000, 1050)]
        assert all(e["name"] for e in extensions)
        # The README's demo password works at once.
        result = await run_scenario_async("register", node.sip_addr, users=[("1000", "demo1000")])
        assert result.ok, result.describe()
        bad = await run_scenario_async(
            "register_wrong_password", node.sip_addr, users=[("1001", "demo1000")]
        )
        assert bad.ok, bad.describe()
        assert _registered(node) == {"1000"}
        metrics = node.metric("vaxla_sip_messages_received_total", {"method": "REGISTER"})
        assert metrics >= 4
        assert node.metric("vaxla_registrations") == 1
    finally:
        node.stop()
    records = node.log_records()
    outcomes = [r for r in records if r.get("msg") == "transaction"]
    assert any(r["method"] == "REGISTER" and r["status"] == 200 and r["call_id"] for r in outcomes)
    assert any(r["status"] == 403 for r in outcomes)
    # A restart does not load the demo twice.
    node.start()
    try:
        assert len(node.api("GET", "/api/v1/extensions").json()) == 50
    finally:
        node.stop()
