"""The directory feature: people, search, diversion; started with the node.

It also gives the PBX the diversion codes dialled on a phone (``*23*1#``,
``#23#``, :mod:`vaxla.directory.phone_codes`): a matcher registered with the
B2BUA, answered through the media engine once the media feature runs; and
the keypad search number (:mod:`vaxla.directory.keypad_search`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from vaxla.directory.api import build_router
from vaxla.directory.keypad_search import KeypadSearchNumber
from vaxla.directory.phone_codes import DiversionCodes
from vaxla.directory.service import DirectoryService
from vaxla.directory.sync.runner import SyncRunner
from vaxla.features import NodeContext


class DirectoryFeature:
    name = "directory"

    def __init__(self) -> None:
        self.service: DirectoryService | None = None
        self.sync: SyncRunner | None = None
        self._routers: list[APIRouter] = []
        self._search_number: tuple[Any, str] | None = None

    async def start(self, ctx: NodeContext) -> None:
        self.service = DirectoryService(
            ctx.db,
            ctx.bus,
            ctx.clock,
            phone_status=ctx.services.get("location"),
            memory_index=ctx.settings.directory.memory_index,
        )
        self.sync = SyncRunner(self.service)
        self._routers = [build_router(self.service, ctx.principal, self.sync)]
        ctx.services["directory"] = self.service
        b2bua = ctx.services.get("b2bua")
        if b2bua is not None:
            media = lambda: ctx.services.get("media")  # noqa: E731 - started after this feature
            b2bua.register_code(DiversionCodes(self.service, media))
            number = ctx.settings.directory.keypad_search_number
            if number:
                b2bua.services[number] = KeypadSearchNumber(self.service, media)
                self._search_number = (b2bua, number)
        if self.service.index is not None:
            self.service.index.start()  # in the background; searches use SQL until it is built
        self.sync.start()

    def routers(self) -> list[APIRouter]:
        return self._routers

    async def stop(self) -> None:
        if self._search_number is not None:
            b2bua, number = self._search_number
            b2bua.services.pop(number, None)
        if self.sync is not None:
            await self.sync.stop()
        if self.service is not None:
            await self.service.close()
