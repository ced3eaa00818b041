"""Edges of the media services in one process: a delayed offer whose ACK
brings no usable answer (or never comes), 30 ms answers, and listen-in
refused without a supervisor. The media engine runs on real loopback
sockets; only the SIP dialog is a stand-in (:class:`ServiceCall` callbacks)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.peers.ports import free_port
from vaxla.config import MediaSettings
from vaxla.media import services
from vaxla.media.engine import MediaEngine
from vaxla.media.negotiation import PCMU, make_answer
from vaxla.media.services import EchoService, MonitorService
from vaxla.pbx.services import ServiceCall
from vaxla.sip.sdp import SessionDescription


def _engine(tmp_path: Path) -> MediaEngine:
    low = free_port(span=20) // 2 * 2
    return MediaEngine(MediaSettings(port_min=low, port_max=low + 19), tmp_path)


class Dialog:
    """What the service did to the caller's dialog."""

    def __init__(self, offer: bytes = b"", number: str = "9000") -> None:
        self.answers: list[bytes] = []
        self.rejected: list[int] = []
        self.hung_up = asyncio.Event()
        noop: Callable[[], None] = lambda: None  # noqa: E731
        self.call = ServiceCall(
            "edge-1", "1003", number, offer, None,
            noop, self.answers.append, self.rejected.append, self.hung_up.set,
        )  # fmt: skip

    async def offer(self) -> SessionDescription:
        while not self.answers:
            await asyncio.sleep(0.01)
        return SessionDescription.parse(self.answers[0])


async def test_delayed_offer_hung_up_when_the_ack_has_no_answer(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    dialog = Dialog()
    task = asyncio.create_task(EchoService(engine).handle(dialog.call))
    offer = await dialog.offer()
    assert [m.formats for m in offer.media] == [["8", "0", "101"]]
    assert dialog.call.on_ack is not None
    dialog.call.on_ack(b"")  # RFC 3264: the answer must be in the ACK
    await asyncio.wait_for(dialog.hung_up.wait(), 2)
    await asyncio.wait_for(task, 2)
    assert engine.ports.in_use == 0  # the RTP ports went back
    await engine.close()


async def test_delayed_offer_hung_up_when_no_ack_comes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services, "ACK_WAIT", 0.2)
    engine = _engine(tmp_path)
    dialog = Dialog()
    task = asyncio.create_task(EchoService(engine).handle(dialog.call))
    await asyncio.wait_for(dialog.hung_up.wait(), 2)
    await asyncio.wait_for(task, 2)
    await engine.close()


async def test_delayed_offer_takes_codec_and_ptime_from_the_ack(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    dialog = Dialog()
    seen: list[Any] = []
    real = engine.close_leg

    def close_leg(leg: Any, call_id: str, name: str = "service") -> None:
        seen.append(leg.endpoint.params)
        real(leg, call_id, name)

    engine.close_leg = close_leg  # type: ignore[method-assign]
    task = asyncio.create_task(EchoService(engine).handle(dialog.call))
    offer = await dialog.offer()
    answer, _ = make_answer(
        offer, "127.0.0.1", free_port(), session_id="7", preference=[PCMU], ptime=30
    )
    assert dialog.call.on_ack is not None
    dialog.call.on_ack(bytes(answer).replace(b"a=ptime:20", b"a=ptime:30"))
    await asyncio.sleep(0.1)
    dialog.call.ended.set()
    await asyncio.wait_for(task, 2)
    assert not dialog.hung_up.is_set()
    (params,) = seen
    assert (params.codec, params.ptime, params.telephone_event_pt) == (PCMU, 30, 101)
    await engine.close()


class Policy:
    def __init__(self, user: str | None) -> None:
        self.user = user
        self.rows: list[dict[str, Any]] = []

    async def authorise(self, extension: str) -> str | None:
        return self.user

    async def audit(
        self, *, actor: str, action: str, entity: str, entity_id: str, after: dict[str, Any]
    ) -> None:
        self.rows.append({"actor": actor, "action": action, "entity_id": entity_id})


@pytest.mark.parametrize("whisper", [False, True])
async def test_monitor_refused_without_a_supervisor(tmp_path: Path, whisper: bool) -> None:
    engine = _engine(tmp_path)
    policy = Policy(None)
    dialog = Dialog(number="9004" if whisper else "9003")
    await MonitorService(engine, whisper=whisper, policy=policy).handle(dialog.call)
    assert dialog.rejected == [403] and dialog.answers == []
    mode = "whisper" if whisper else "listen-in"
    assert policy.rows == [
        {"actor": "extension:1003", "action": f"{mode}-refused", "entity_id": "1003"}
    ]
    await engine.close()
