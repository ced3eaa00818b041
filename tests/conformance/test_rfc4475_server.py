"""The 49 RFC 4475 torture messages sent over UDP to a running ``vaxla serve``.

Each valid request gets an answer, each invalid one the status MANIFEST.md
gives (or silence where it says drop); responses are never answered; the
server survives all of them and keeps no call state.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conformance.rfc4475_expectations import CORPUS_DIR, EXPECTATIONS
from tests.support.server import VaxlaProcess

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def torture_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VaxlaProcess]:
    node = VaxlaProcess(tmp_path_factory.mktemp("rfc4475") / "node")
    try:
        node.start()
        yield node
    finally:
        assert node.stop() == 0
        assert "Traceback" not in node.logs()


def _exchange(node: VaxlaProcess, data: bytes, wait: float) -> list[bytes]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.1)
        sock.sendto(data, ("127.0.0.1", node.sip_port))
        replies: list[bytes] = []
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                replies.append(sock.recv(65535))
            except TimeoutError:
                continue
        return replies


def _status(reply: bytes) -> int:
    assert reply.startswith(b"SIP/2.0 "), reply[:80]
    return int(reply.split(b" ", 2)[1])


def _finals(replies: list[bytes]) -> list[int]:
    return [s for s in map(_status, replies) if s >= 200]


@pytest.mark.parametrize("name", sorted(EXPECTATIONS))
def test_torture_message_over_udp(torture_node: VaxlaProcess, name: str) -> None:
    exp = EXPECTATIONS[name]
    data = (CORPUS_DIR / name).read_bytes()
    replies = _exchange(torture_node, data, wait=0.8)
    if exp.kind == "response" or exp.outcome == "drop":
        assert replies == [], f"{name}: a response must not be answered"
    elif exp.outcome == "reject":
        finals = _finals(replies)
        assert finals, f"{name}: expected {exp.status}, got nothing"
        assert finals[0] == exp.status, f"{name}: expected {exp.status}, got {finals}"
        head = replies[-1].split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace").lower()
        for header in exp.extra_headers:
            assert f"\r\n{header.lower()}:" in head, f"{name}: {header} missing"
    else:
        method = data.lstrip(b"\r\n").split(b" ", 1)[0]
        if method == b"ACK":
            assert replies == []
            return
        finals = _finals(replies)
        assert len(set(finals)) == 1, f"{name}: expected one final answer, got {finals}"
        if exp.server_statuses is not None:
            assert finals[0] in exp.server_statuses, f"{name}: got {finals[0]}"
        assert finals[0] not in (400, 500), f"{name}: a valid request was refused"
    assert torture_node.proc is not None and torture_node.proc.poll() is None


def test_server_survives_and_keeps_no_state(torture_node: VaxlaProcess) -> None:
    for name in sorted(EXPECTATIONS):
        _exchange(torture_node, (CORPUS_DIR / name).read_bytes(), wait=0.0)
    time.sleep(1.0)
    r = torture_node.api("GET", "/healthz")
    assert r.status_code == 200
    assert torture_node.metric("vaxla_active_calls") == 0
    assert torture_node.metric("vaxla_registrations") == 0
    assert torture_node.metric("vaxla_sip_parse_errors_total") > 0
    assert "Traceback" not in torture_node.logs()
    assert Path(CORPUS_DIR).is_dir()
