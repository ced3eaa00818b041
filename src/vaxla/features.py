"""Features plug into a node: they start with it, add API routes, and stop.

A feature is a folder under ``vaxla/`` (directory, contact, messaging, ...)
with its service logic, routes, schemas and models side by side. The core
knows only this interface. To add one, append its factory to ``FEATURES``.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import APIRouter

from vaxla.api.auth import Principal
from vaxla.config import Settings
from vaxla.events import EventBus
from vaxla.metrics import Metrics
from vaxla.store.db import Database


@dataclass
class NodeContext:
    """What a feature gets from the node it runs in."""

    settings: Settings
    db: Database
    bus: EventBus
    metrics: Metrics
    principal: Callable[..., Awaitable[Principal]]  # FastAPI dependency: who calls
    clock: Callable[[], float]
    services: dict[str, Any]  # shared services by name (e.g. "location", "extensions")


class Feature(Protocol):
    name: str

    async def start(self, ctx: NodeContext) -> None: ...

    def routers(self) -> list[APIRouter]: ...

    async def stop(self) -> None: ...


# "module:factory" of every feature a node runs, in start order.
FEATURES: list[str] = [
    "vaxla.directory.feature:DirectoryFeature",
    "vaxla.media.feature:MediaFeature",
]


def load_features() -> list[Feature]:
    out: list[Feature] = []
    for spec in FEATURES:
        module_name, _, attr = spec.partition(":")
        factory = getattr(importlib.import_module(module_name), attr)
        out.append(factory())
    return out
