"""Fixtures of the web tests: one node with users and people per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.peers.fixtures import baresip_factory  # noqa: F401
from tests.support.server import VaxlaProcess
from tests.web.support import setup_node

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Without this Chromium still sends DNS queries off the machine.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost",
]


@pytest.fixture(scope="module")
def web_node(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[VaxlaProcess, dict[str, int]]]:
    proc = VaxlaProcess(tmp_path_factory.mktemp("web") / "node")
    try:
        proc.start()
        ids = setup_node(proc)
        yield proc, ids
    finally:
        proc.stop()


def need_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (scripts/setup.sh --test)")
