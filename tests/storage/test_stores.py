"""Storage against both backends: SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from vaxla.api.tokens import TokenStore
from vaxla.errors import ExtensionExists, ExtensionNotFound, InvalidExtension
from vaxla.pbx.cdr import CallOutcome, CallRecordWriter
from vaxla.pbx.extensions import ExtensionStore
from vaxla.pbx.location import Contact, LocationService
from vaxla.sip.auth import compute_ha1
from vaxla.sip.transaction import Peer
from vaxla.store.db import Database, migrate
from vaxla.store.models import CallRecord, Extension


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    migrate(database_url)
    migrate(database_url)  # idempotent
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.close()


async def test_extension_lifecycle_keeps_no_plaintext(db: Database) -> None:
    store = ExtensionStore(db, "vaxla")
    info = await store.add("1234", "Åsa Öberg", "hemligt-lösen")
    assert info.number == "1234" and info.display_name == "Åsa Öberg"
    with pytest.raises(ExtensionExists):
        await store.add("1234", "Someone", "another-pw")
    with pytest.raises(InvalidExtension):
        await store.add("12a", "Bad", "password")
    with pytest.raises(InvalidExtension):
        await store.add("1235", "Short", "pw")
    secrets = await store.secrets("1234")
    assert secrets is not None
    assert secrets.ha1["MD5"] == compute_ha1("1234", "vaxla", "hemligt-lösen", "MD5")
    assert secrets.ha1["SHA-256"] == compute_ha1("1234", "vaxla", "hemligt-lösen", "SHA-256")
    async with db.session() as s:
        row = (await s.scalars(select(Extension))).one()
        stored = " ".join(str(v) for v in vars(row).values())
    assert "hemligt" not in stored
    assert [e.number for e in await store.list()] == ["1234"]
    await store.remove("1234")
    with pytest.raises(ExtensionNotFound):
        await store.remove("1234")
    assert await store.list() == []


async def test_bindings_survive_reload_and_expire(db: Database) -> None:
    await ExtensionStore(db, "vaxla").add("1000", "A", "password1")
    loc = LocationService(db)
    now = time.time()
    c1 = Contact("1000", "sip:1000@10.0.0.5:5062", now + 120, "cid-1", 1, None,
                 Peer("udp", "192.0.2.7", 40000), "baresip")
    c2 = Contact("1000", "sip:1000@10.0.0.6:5062", now + 5, "cid-2", 1, "0.5",
                 Peer("tcp", "192.0.2.8", 40001), "linphone")
    await loc.apply("1000", [c1, c2], [], now)
    assert {c.uri for c in loc.lookup("1000", now)} == {c1.uri, c2.uri}

    reloaded = LocationService(db)
    assert await reloaded.load(now) == 2
    got = {c.uri: c for c in reloaded.lookup("1000", now)}
    assert got[c1.uri].peer == Peer("udp", "192.0.2.7", 40000)
    assert got[c2.uri].q == "0.5"
    assert abs(got[c1.uri].expires_at - c1.expires_at) < 1.0

    later = now + 10
    assert [c.uri for c in reloaded.lookup("1000", later)] == [c1.uri]
    assert await reloaded.purge_expired(later) == 1
    again = LocationService(db)
    assert await again.load(later) == 1

    await again.apply("1000", [], [c1.uri], later)
    assert again.lookup("1000", later) == []
    assert await LocationService(db).load(later) == 0


async def test_call_records_are_written_in_batches(db: Database) -> None:
    writer = CallRecordWriter(db, batch=10, interval=0.05)
    writer.start()
    t = time.time()
    for i in range(25):
        writer.add(CallOutcome(f"call-{i}", "1000", "1001", t, t + 1, t + 5, "answered", 200,
                               "caller"))
    writer.add(CallOutcome("call-busy", "1000", "1002", t, None, t + 1, "busy", 486))
    await writer.close()
    async with db.session() as s:
        rows = list(await s.scalars(select(CallRecord).order_by(CallRecord.id)))
    assert len(rows) == 26
    assert rows[0].result == "answered" and rows[0].hangup_by == "caller"
    assert rows[0].answered_at is not None and rows[0].answered_at.tzinfo is not None
    assert rows[-1].result == "busy" and rows[-1].sip_status == 486
    assert rows[-1].answered_at is None


async def test_api_tokens_store_only_a_hash(db: Database) -> None:
    tokens = TokenStore(db)
    token = await tokens.create("ci")
    assert await tokens.verify(token) == "admin"
    assert await tokens.verify(token + "x") is None
    listed = await tokens.list()
    assert [t.name for t in listed] == ["ci"]
    await tokens.revoke(listed[0].id)
    assert await tokens.verify(token) is None
