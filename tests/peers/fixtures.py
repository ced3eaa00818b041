"""pytest fixtures for real peers.

Import the fixtures into a conftest.py (or a test module) to use them::

    from tests.peers.fixtures import baresip_factory, sipp_factory  # noqa: F401

and in a test::

    async def test_call(baresip_factory: BaresipFactory) -> None:
        alice = await baresip_factory("alice", tone_hz=440)
        ...

Every phone is stopped at teardown (SIGTERM, then SIGKILL, by PID).  Each
phone's config, log and recordings are first copied to the test's
``tmp_path`` (``baresip-<name>/``), so they survive for inspection (pytest
keeps the last three runs' tmp dirs).
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import pytest_asyncio

from .baresip import BaresipPhone
from .sipp import SippProcess, start_scenario

__all__ = ["BaresipFactory", "SippFactory", "baresip_factory", "sipp_factory"]


class BaresipFactory(Protocol):
    def __call__(self, name: str = "phone", **kwargs: Any) -> Awaitable[BaresipPhone]: ...


SippFactory = Callable[..., Awaitable[SippProcess]]


def _save_artifacts(phone: BaresipPhone, dest: Path) -> None:
    if phone.dir is None or not phone.dir.exists():
        return
    target = dest / f"baresip-{phone.name}"
    target.mkdir(parents=True, exist_ok=True)
    for item in phone.dir.iterdir():
        if item.name.startswith("dump-") or item.suffix == ".log" or item.name == "config":
            shutil.copy(item, target / item.name)


@pytest_asyncio.fixture
async def baresip_factory(tmp_path: Path) -> AsyncIterator[BaresipFactory]:
    """Start baresip phones on demand: ``await baresip_factory(name, **BaresipPhone kwargs)``."""
    phones: list[BaresipPhone] = []

    async def make(name: str = "phone", **kwargs: Any) -> BaresipPhone:
        phone = BaresipPhone(name, **kwargs)
        phones.append(phone)
        await phone.start()
        return phone

    try:
        yield make
    finally:
        for phone in phones:
            await phone.stop(keep_dir=True)
            _save_artifacts(phone, tmp_path)
            phone.cleanup()


@pytest_asyncio.fixture
async def sipp_factory() -> AsyncIterator[SippFactory]:
    """Start SIPp in the background: ``await sipp_factory(scenario, **start_scenario kwargs)``.

    Processes still running at teardown are stopped by PID.
    """
    procs: list[SippProcess] = []

    async def make(*args: Any, **kwargs: Any) -> SippProcess:
        proc = await start_scenario(*args, **kwargs)
        procs.append(proc)
        return proc

    try:
        yield make
    finally:
        for proc in procs:
            await proc.stop()
            proc.cleanup()
