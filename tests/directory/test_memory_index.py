"""The in-memory search index: same answers as SQL, and in step with every writer."""

from __future__ import annotations

import random
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.directory.conftest import ADMIN, OPERATOR, Directory, FakeClock, FakeLocation
from tests.directory.test_search import PEOPLE
from vaxla.directory.memory_index import ChangeFeed
from vaxla.directory.records import PersonRecord
from vaxla.directory.search import SearchQuery
from vaxla.directory.service import DirectoryService
from vaxla.events import EventBus
from vaxla.store.db import Database, migrate


async def _add(service: DirectoryService, first: str, last: str, ext: str, **more: Any) -> int:
    view = await service.create(
        PersonRecord(
            first_name=first,
            last_name=last,
            phones=[{"kind": "extension", "number": ext}],  # type: ignore[list-item]
            **more,
        ),
        ADMIN,
    )
    return int(view["id"])


async def _names(service: DirectoryService, **query: Any) -> list[str]:
    found = await service.search(SearchQuery(**query), OPERATOR)
    return [f"{i['first_name']} {i['last_name']}" for i in found["items"]]


async def test_another_writer_is_seen_at_the_next_search(
    directory: Directory, database_url: str
) -> None:
    """Two services on one database (two processes, or nodes): each sees the other's writes."""
    reader = directory.service
    assert reader.index is not None
    other = DirectoryService(Database(database_url), EventBus(), FakeClock(), FakeLocation())
    try:
        pid = await _add(other, "Åsa", "Öberg", "4001", units=["Växjö kommun/Kultur"])
        assert await _names(reader, text="Öberg") == ["Åsa Öberg"]
        builds = reader.index.builds
        await other.update(pid, {"last_name": "Lindqvist", "room": "B12"}, ADMIN)
        assert await _names(reader, text="Öberg") == []
        assert await _names(reader, text="Lindquist") == ["Åsa Lindqvist"]  # phonetic key too
        assert await _names(reader, room="b12") == ["Åsa Lindqvist"]
        await other.deactivate(pid, ADMIN)
        assert await _names(reader, text="Lindqvist") == []
        assert reader.index.builds == builds  # one person reloaded, not the whole index
        csv = "external_id,first_name,last_name,extension\nx1,Per,Ek,4100\nx2,Ulla,Ek,4101\n"
        await other.import_text("csv", csv, ADMIN, dry_run=False, deactivate_missing=False)
        assert sorted(await _names(reader, text="Ek")) == ["Per Ek", "Ulla Ek"]
    finally:
        await other.close()
        await other.db.close()


async def test_bulk_load_rebuilds_the_index(
    directory: Directory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vaxla.directory import exchange

    service = directory.service
    assert service.index is not None
    await _add(service, "Eva", "Eriksson", "1005")
    assert await _names(service, text="Erixon") == ["Eva Eriksson"]
    builds = service.index.builds
    monkeypatch.setattr(exchange, "BULK_RELOAD", 1)  # logged as "everything changed"
    csv = "external_id,first_name,last_name,extension\nx1,Gun,Erixon,1007\n"
    await service.import_text("csv", csv, ADMIN, dry_run=False, deactivate_missing=False)
    assert sorted(await _names(service, text="Erixon")) == ["Eva Eriksson", "Gun Erixon"]
    assert service.index.builds == builds + 1


def test_change_feed_waits_for_a_gap_then_gives_up() -> None:
    """PostgreSQL can commit sequence number 3 before 2: 2 is read when it arrives."""
    engine = create_engine("sqlite://")
    now = [0.0]
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE dir_index_changes (seq INTEGER, person_id INTEGER)"))
        feed = ChangeFeed(clock=lambda: now[0])
        feed.start_at(conn)
        conn.execute(text("INSERT INTO dir_index_changes VALUES (1, 10), (3, 30)"))
        assert feed.poll(conn) == ({10, 30}, False)
        assert feed.gaps == {2: 0.0}
        assert feed.poll(conn) == (set(), False)  # nothing new, 1 and 3 not repeated
        conn.execute(text("INSERT INTO dir_index_changes VALUES (2, 20), (4, NULL)"))
        assert feed.poll(conn) == ({20}, True)
        assert feed.gaps == {}
        conn.execute(text("INSERT INTO dir_index_changes VALUES (6, 60)"))
        assert feed.poll(conn) == ({60}, False)
        now[0] = 31.0  # 5 never commits (a rolled-back transaction): forgotten
        assert feed.poll(conn) == (set(), False)
        assert feed.gaps == {}


@pytest.fixture
async def twins(database_url: str) -> Any:
    """The same directory searched through memory and through SQL."""
    migrate(database_url)
    memory = DirectoryService(Database(database_url), EventBus(), FakeClock(), FakeLocation())
    assert memory.index is not None
    memory.index.background = False
    sql = DirectoryService(
        Database(database_url), EventBus(), FakeClock(), FakeLocation(), memory_index=False
    )
    try:
        yield memory, sql
    finally:
        for s in (memory, sql):
            await s.close()
            await s.db.close()


async def test_memory_and_sql_give_the_same_answers(twins: Any) -> None:
    """Random queries (prefixes, variants, filters, units) over a generated directory."""
    memory, sql = twins
    rng = random.Random(11)
    firsts = ["Anna", "Anders", "Karl", "Karin", "Eva", "Erik", "Lars", "Lena", "Åsa", "Örjan"]
    units = ["Växjö kommun/Kultur", "Växjö kommun/Tekniska/Gata", "Växjö kommun/Social/IFO"]
    lasts = [p[1] for p in PEOPLE] + ["Andersson", "Berg", "Bergström", "Öberg", "Ek"]
    rows = []
    for i in range(160):
        rows.append(
            f"p{i},{rng.choice(firsts)},{rng.choice(lasts)},{2000 + i},"
            f"070-{rng.randrange(1000000, 9999999)},{rng.choice(units)},"
            f"{rng.choice(['A', 'B', 'C'])}{rng.randrange(1, 40)},"
            f"{rng.choice(['Bygglov', 'Snöröjning', 'Försörjningsstöd', 'Bibliotek'])}"
        )
    csv = "external_id,first_name,last_name,extension,mobile,units,room,tasks\n" + "\n".join(rows)
    await memory.import_text("csv", csv, ADMIN, dry_run=False, deactivate_missing=False)
    async with memory.db.session() as s:
        unit_ids = list((await memory.units.tree(s, fresh=True)).nodes)
    words = firsts + lasts + ["Carlson", "Lindquist", "Erixon", "Berk", "and", "ka", "b1", "070"]
    queries: list[SearchQuery] = [SearchQuery()]
    for _ in range(150):
        kind = rng.randrange(5)
        if kind == 0:
            queries.append(SearchQuery(text=rng.choice(words)))
        elif kind == 1:
            queries.append(SearchQuery(text=f"{rng.choice(firsts)} {rng.choice(words)[:3]}"))
        elif kind == 2:
            queries.append(SearchQuery(last_name=rng.choice(lasts), unit_id=rng.choice(unit_ids)))
        elif kind == 3:
            queries.append(SearchQuery(text=rng.choice(words)[:2], task="snö"))
        else:
            queries.append(SearchQuery(unit_id=rng.choice(unit_ids), limit=rng.randrange(1, 30)))
    for q in queries:
        a = await memory.search(q, OPERATOR)
        b = await sql.search(q, OPERATOR)
        assert memory.index.ready
        assert [(i["id"], i["match"]) for i in a["items"]] == [
            (i["id"], i["match"]) for i in b["items"]
        ], q
        assert a["candidates"] == b["candidates"], q


async def test_search_survives_the_server_dropping_its_connection(
    directory: Directory, database_url: str
) -> None:
    """The read pool has no ping per search; a dropped connection is retried once."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL: the server ends sessions (SQLite has none)")
    service = directory.service
    await _add(service, "Åsa", "Öberg", "4001")
    assert await _names(service, text="Öberg") == ["Åsa Öberg"]  # the pool is open now
    async with directory.db.session() as s:
        ended = await s.scalar(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    assert ended and ended >= 1
    assert await _names(service, text="Öberg") == ["Åsa Öberg"]
