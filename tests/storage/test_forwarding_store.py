"""Call forwarding storage on SQLite and PostgreSQL: durable, audited, published."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, select

from vaxla.directory.models import AuditEntry
from vaxla.events import EventBus
from vaxla.pbx.cdr import CallOutcome, CallRecordWriter
from vaxla.pbx.forwarding import (
    ForwardingRule,
    ForwardingToSelf,
    ForwardKind,
)
from vaxla.pbx.forwarding_store import ForwardingStore, active_forwarding
from vaxla.store.all_models import Base
from vaxla.store.db import Database, migrate, sync_url
from vaxla.store.models import CallRecord

ALWAYS, BUSY, NO_ANSWER = ForwardKind.ALWAYS, ForwardKind.BUSY, ForwardKind.NO_ANSWER


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    migrate(database_url)
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.close()


def _forwarding_diffs(diffs: list[Any]) -> list[Any]:
    out = []
    for d in diffs:
        flat = d if isinstance(d, tuple) else d[0]
        names = " ".join(str(x) for x in flat)
        if "forward" in names:
            out.append(d)
    return out


def test_models_match_the_0005_migration(database_url: str) -> None:
    migrate(database_url)
    migrate(database_url)  # idempotent
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert _forwarding_diffs(compare_metadata(context, Base.metadata)) == []
    finally:
        engine.dispose()


async def test_rules_are_stored_audited_published_and_survive_a_restart(db: Database) -> None:
    bus = EventBus()
    store = ForwardingStore(db)
    store.bus = bus
    stored = await store.replace(
        "1002",
        [ForwardingRule(BUSY, "+46701234567"), ForwardingRule(ALWAYS, "1003")],
        25,
        actor="telefonist",
    )
    assert [r.kind for r in stored.settings.rules] == [ALWAYS, BUSY]  # shown in order
    assert stored.updated_by == "telefonist"
    [event] = bus.since(0)
    assert event.topic == "forwarding.changed"
    assert event.data["extension"] == "1002"
    assert event.data["forwarding"][0] == {"kind": "always", "target": "1003", "external": False}
    assert event.data["forwarding"][1]["external"] is True

    # A new store (a restarted node) reads the same from the database.
    again = await ForwardingStore(db).get("1002")
    assert again.settings == stored.settings
    assert again.settings.no_answer_seconds == 25
    assert again.updated_by == "telefonist" and again.updated_at is not None
    snapshot = await ForwardingStore(db).table()
    assert snapshot["1002"] == stored.settings

    async with db.session() as s:
        audit = list(await s.scalars(select(AuditEntry).where(AuditEntry.entity == "extension")))
    [row] = audit
    assert (row.actor, row.action, row.entity_id) == ("telefonist", "set-forwarding", "1002")
    assert row.before is not None and row.before["rules"] == []
    assert row.after is not None and len(row.after["rules"]) == 2


async def test_forwarding_to_oneself_stores_nothing(db: Database) -> None:
    store = ForwardingStore(db)
    await store.replace("1002", [ForwardingRule(ALWAYS, "1003")], actor="a")
    with pytest.raises(ForwardingToSelf):
        await store.replace("1002", [ForwardingRule(NO_ANSWER, "1002")], actor="a")
    assert (await store.get("1002")).settings.rules == (ForwardingRule(ALWAYS, "1003"),)


async def test_single_rules_switch_on_and_off_keeping_their_target(db: Database) -> None:
    store = ForwardingStore(db)
    await store.set_rule("1002", ALWAYS, target="1003", actor="a")
    off = await store.set_rule("1002", ALWAYS, enabled=False, actor="a")
    assert off.settings.rules == (ForwardingRule(ALWAYS, "1003", False),)
    assert off.settings.active() == ()
    on = await store.set_rule("1002", ALWAYS, actor="a")
    assert on.settings.rule(ALWAYS) == ForwardingRule(ALWAYS, "1003")
    with pytest.raises(LookupError):
        await store.set_rule("1002", BUSY, actor="a")  # nothing stored to switch on
    await store.set_rule("1002", BUSY, target="1004", actor="a")
    disabled = await store.disable_all("1002", actor="a")
    assert [r.enabled for r in disabled.settings.rules] == [False, False]
    assert (await active_forwarding(db, ["1002"])) == {}
    cleared = await store.remove_rule("1002", BUSY, actor="a")
    assert [r.kind for r in cleared.settings.rules] == [ALWAYS]
    await store.remove_rule("1002", None, actor="a")
    assert (await store.get("1002")).settings.rules == ()
    assert "1002" not in await ForwardingStore(db).table()


async def test_the_snapshot_sees_own_writes_at_once_and_others_within_ttl(db: Database) -> None:
    clock = [1000.0]
    mine = ForwardingStore(db, ttl=2.0, monotonic=lambda: clock[0])
    other = ForwardingStore(db)  # another node
    assert await mine.table() == {}
    await mine.replace("1002", [ForwardingRule(ALWAYS, "1003")], actor="a")
    assert mine.cached("1002") is not None  # own write: at once
    await other.replace("1004", [ForwardingRule(BUSY, "1005")], actor="b")
    assert "1004" not in await mine.table()  # still within the TTL
    clock[0] += 2.5
    assert (await mine.table())["1004"].rule(BUSY) == ForwardingRule(BUSY, "1005")


async def test_status_reads_only_enabled_rules(db: Database) -> None:
    store = ForwardingStore(db)
    await store.replace(
        "2001",
        [ForwardingRule(ALWAYS, "2002", False), ForwardingRule(NO_ANSWER, "2003")],
        actor="a",
    )
    await store.replace("2004", [ForwardingRule(ALWAYS, "2005")], actor="a")
    found = await active_forwarding(db, ["2001", "2004", "2009", ""])
    assert found == {
        "2001": (ForwardingRule(NO_ANSWER, "2003"),),
        "2004": (ForwardingRule(ALWAYS, "2005"),),
    }


async def test_call_records_keep_the_forwarding(db: Database) -> None:
    writer = CallRecordWriter(db)
    now = time.time()
    outcome = CallOutcome("c1", "1001", "1003", now, now + 1, now + 5, "answered", 200)
    outcome.forwarded_from, outcome.forward_kind = "1002", "busy"
    writer.add(outcome)
    writer.add(CallOutcome("c2", "1001", "1002", now, None, now + 1, "busy", 486))
    await writer.flush()
    async with db.session() as s:
        rows = {r.call_id: r for r in await s.scalars(select(CallRecord))}
    assert (rows["c1"].callee, rows["c1"].forwarded_from, rows["c1"].forward_kind) == (
        "1003",
        "1002",
        "busy",
    )
    assert rows["c2"].forwarded_from is None and rows["c2"].forward_kind is None


async def test_forgetting_a_removed_extension(db: Database) -> None:
    bus = EventBus()
    store = ForwardingStore(db)
    store.bus = bus
    await store.replace("1002", [ForwardingRule(ALWAYS, "1003")], 30, actor="a")
    await store.replace(
        "1004", [ForwardingRule(BUSY, "1002"), ForwardingRule(NO_ANSWER, "1005")], 15, actor="a"
    )
    await store.replace("1006", [ForwardingRule(ALWAYS, "1002", False)], actor="a")
    await store.replace("1007", [ForwardingRule(ALWAYS, "+46701234567")], actor="a")
    start = bus.position

    changed = await store.forget_extension("1002", actor="admin")

    assert changed == ["1002", "1004", "1006"]  # the removed one first
    assert "1002" not in await ForwardingStore(db).table()  # rules and ring time gone
    assert store.cached("1002") is None
    kept = (await store.get("1004")).settings
    assert kept.rules == (ForwardingRule(NO_ANSWER, "1005"),) and kept.no_answer_seconds == 15
    assert store.cached("1004") == kept  # the snapshot changes at once
    assert (await store.get("1006")).settings.rules == ()
    assert (await store.get("1007")).settings.rules == (ForwardingRule(ALWAYS, "+46701234567"),)
    events = bus.since(start)
    assert [(e.topic, e.data["extension"]) for e in events] == [
        ("forwarding.changed", "1002"),
        ("forwarding.changed", "1004"),
        ("forwarding.changed", "1006"),
    ]
    assert events[1].data["forwarding"] == [
        {"kind": "no-answer", "target": "1005", "external": False}
    ]
    async with db.session() as s:
        audit = list(
            await s.scalars(
                select(AuditEntry).where(
                    AuditEntry.entity == "extension", AuditEntry.actor == "admin"
                )
            )
        )
    assert sorted(r.entity_id for r in audit) == ["1002", "1004", "1006"]
    assert {r.action for r in audit} == {"clear-forwarding"}
    assert all(r.after is not None and r.after["via"] == "extension-removed" for r in audit)
    # Nothing left to forget: nothing changes, nothing is published.
    assert await store.forget_extension("1002", actor="admin") == []
    assert bus.position == start + 3


async def test_forgetting_a_ring_time_alone(db: Database) -> None:
    store = ForwardingStore(db)
    await store.replace("1002", [], 45, actor="a")
    assert await store.forget_extension("1002", actor="admin") == ["1002"]
    assert "1002" not in await ForwardingStore(db).table()
