"""Fixtures for directory storage and service tests (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from vaxla.api.auth import Principal
from vaxla.directory.service import DirectoryService
from vaxla.events import EventBus
from vaxla.store.db import Database, migrate


@dataclass
class FakeClock:
    """Wall-clock seconds, moved by hand."""

    now: float = datetime(2026, 11, 25, 9, 0, tzinfo=UTC).timestamp()

    def __call__(self) -> float:
        return self.now

    def set(self, when: datetime) -> None:
        self.now = when.timestamp()


@dataclass
class FakeLocation:
    """Registered extensions, as the PBX location service would answer."""

    registered: set[str] = field(default_factory=set)

    def lookup(self, aor: str, now: float) -> Sequence[object]:
        return [aor] if aor in self.registered else []


@dataclass
class Directory:
    service: DirectoryService
    db: Database
    bus: EventBus
    clock: FakeClock
    location: FakeLocation


OPERATOR = Principal("operatör", "operator")
EMPLOYEE = Principal("anna", "employee")
EDITOR = Principal("redaktör", "directory-editor")
ADMIN = Principal("admin", "directory-admin")


@pytest.fixture
def search_source() -> str:
    """Where searches are answered: "memory" (the in-memory index, as in production) or "sql"."""
    return "memory"


@pytest.fixture
async def directory(database_url: str, search_source: str) -> AsyncIterator[Directory]:
    migrate(database_url)
    db = Database(database_url)
    bus = EventBus()
    clock = FakeClock()
    location = FakeLocation()
    service = DirectoryService(db, bus, clock, location, memory_index=search_source == "memory")
    if service.index is not None:
        service.index.background = False  # built at the first search: deterministic
    try:
        yield Directory(service, db, bus, clock, location)
    finally:
        await service.close()
        await db.close()
