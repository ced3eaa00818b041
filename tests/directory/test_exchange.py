"""Import and export (CSV, XML, JSON) on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.directory.conftest import ADMIN, EDITOR, OPERATOR, Directory
from vaxla.directory import exchange
from vaxla.directory.errors import InvalidImport, NotAllowed
from vaxla.directory.records import PersonRecord
from vaxla.directory.search import SearchQuery

CSV = "\ufeff" + "\n".join(
    [
        "external_id,first_name,last_name,extension,mobile,email,titles,tasks,units,groups,"
        "room,visit_address",
        "e1,Åsa,Öberg,4001,070-111 11 11,asa.oberg@vaxjo.se,Handläggare,Bygglov|Strandskydd,"
        "Växjö kommun/Stadsbyggnad,Bygg,S12,Västra Esplanaden 18",
        'e2,Örjan,Ärlig,4002,,orjan@vaxjo.se,,,"Växjö kommun/Stadsbyggnad",,S13,',
        "e3,Ulla,Kvist,4003,,,,,Växjö kommun/Kultur,,,",
        "",
    ]
)


async def test_csv_import_dry_run_then_apply(directory: Directory) -> None:
    dry = await directory.service.import_text(
        "csv", CSV, ADMIN, dry_run=True, deactivate_missing=False
    )
    assert dry["added"] == ["e1", "e2", "e3"] and dry["dry_run"] is True
    assert (await directory.service.search(SearchQuery(text="Öberg"), OPERATOR))["items"] == []
    done = await directory.service.import_text(
        "csv", CSV, ADMIN, dry_run=False, deactivate_missing=False
    )
    assert done["added"] == ["e1", "e2", "e3"]
    found = (await directory.service.search(SearchQuery(text="strandskydd"), OPERATOR))["items"]
    assert [(i["first_name"], i["last_name"]) for i in found] == [("Åsa", "Öberg")]
    assert found[0]["phones"][1] == {"kind": "mobile", "number": "+46701111111"}
    assert found[0]["addresses"] == [{"kind": "visit", "text": "Västra Esplanaden 18"}]


async def test_second_import_shows_diff_and_deactivates_missing(directory: Directory) -> None:
    await directory.service.import_text("csv", CSV, ADMIN, dry_run=False, deactivate_missing=True)
    changed = CSV.replace("S13", "S99").replace(
        "e3,Ulla,Kvist,4003,,,,,Växjö kommun/Kultur,,,\n", ""
    )
    dry = await directory.service.import_text(
        "csv", changed, ADMIN, dry_run=True, deactivate_missing=True
    )
    assert dry["added"] == [] and dry["changed"] == {"e2": ["room"]}
    assert dry["deactivated"] == ["e3"] and dry["unchanged"] == 1
    await directory.service.import_text(
        "csv", changed, ADMIN, dry_run=False, deactivate_missing=True
    )
    ulla = (
        await directory.service.search(SearchQuery(text="Kvist", include_inactive=True), OPERATOR)
    )["items"]
    assert len(ulla) == 1 and ulla[0]["active"] is False  # kept, not deleted
    assert (await directory.service.search(SearchQuery(text="Kvist"), OPERATOR))["items"] == []


async def test_export_round_trips_in_every_format(directory: Directory) -> None:
    await directory.service.import_text("csv", CSV, ADMIN, dry_run=False, deactivate_missing=False)
    for fmt in exchange.FORMATS:
        text = await directory.service.export(fmt, EDITOR)
        records = exchange.parse(fmt, text)
        assert [r.external_id for r in records] == ["e1", "e2", "e3"], fmt
        again = await directory.service.import_text(
            fmt, text, ADMIN, dry_run=True, deactivate_missing=True
        )
        assert again["unchanged"] == 3 and not again["changed"], (fmt, again)


async def test_import_needs_admin_and_valid_input(directory: Directory) -> None:
    with pytest.raises(NotAllowed):
        await directory.service.import_text(
            "csv", CSV, EDITOR, dry_run=True, deactivate_missing=False
        )
    with pytest.raises(InvalidImport):
        exchange.parse("csv", "first_name,last_name\nAnna,\n")
    with pytest.raises(InvalidImport):
        exchange.parse("xml", "<people/>")
    with pytest.raises(InvalidImport):
        await directory.service.import_records(
            [PersonRecord(first_name="A", last_name="B")],
            ADMIN,
            dry_run=True,
            deactivate_missing=False,
        )


async def test_real_time_upsert_by_external_id(directory: Directory) -> None:
    record = PersonRecord(first_name="Per", last_name="Holm", tasks=["Färdtjänst"])
    view, created = await directory.service.upsert_external("hr-17", record, ADMIN)
    assert created and view["external_id"] == "hr-17"
    view, created = await directory.service.upsert_external(
        "hr-17", record.model_copy(update={"room": "A1"}), ADMIN
    )
    assert not created and view["room"] == "A1" and view["id"] is not None


async def test_large_import_refreshes_planner_statistics(
    directory: Directory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exchange, "ANALYZE_AFTER", 2)
    await directory.service.import_text("csv", CSV, ADMIN, dry_run=False, deactivate_missing=False)
    found = await directory.service.search(SearchQuery(text="Ärlig"), OPERATOR)
    assert [i["first_name"] for i in found["items"]] == ["Örjan"]
    async with directory.db.session() as s:
        if directory.db.engine.dialect.name == "sqlite":
            query = "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'dir_search_tokens'"
        else:
            query = "SELECT count(*) FROM pg_stats WHERE tablename = 'dir_search_tokens'"
        assert (await s.scalar(text(query))) > 0


async def test_large_import_rebuilds_search_indexes_once(
    directory: Directory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL a large load drops the search indexes and keys, then builds them again."""
    monkeypatch.setattr(exchange, "REBUILD_AFTER", 2)

    async def shape() -> set[str]:
        async with directory.db.session() as s:
            if directory.db.engine.dialect.name == "sqlite":
                rows = await s.execute(
                    text(
                        "SELECT name FROM sqlite_master WHERE type = 'index'"
                        " AND tbl_name IN ('dir_search_tokens', 'dir_name_keys')"
                        " AND name NOT LIKE 'sqlite_%'"
                    )
                )
            else:
                rows = await s.execute(
                    text(
                        "SELECT indexname FROM pg_indexes"
                        " WHERE tablename IN ('dir_search_tokens', 'dir_name_keys')"
                        " UNION ALL SELECT conname FROM pg_constraint WHERE contype = 'f'"
                        " AND conrelid IN ('dir_search_tokens'::regclass,"
                        " 'dir_name_keys'::regclass)"
                    )
                )
            return {r[0] for r in rows}

    before = await shape()
    assert {"ix_dir_search_tokens_token", "ix_dir_name_keys_key"} <= before
    await directory.service.import_text("csv", CSV, ADMIN, dry_run=False, deactivate_missing=False)
    assert await shape() == before  # every index (and foreign key) is back
    found = await directory.service.search(SearchQuery(text="Öberg"), OPERATOR)
    assert [i["first_name"] for i in found["items"]] == ["Åsa"]
    bad = CSV.replace("e3,Ulla,Kvist,4003", "e3,Ulla,,4003")  # no last name: the import fails
    await directory.service.import_text("csv", CSV, ADMIN, dry_run=False, deactivate_missing=False)
    with pytest.raises(InvalidImport):
        await directory.service.import_text(
            "csv",
            bad.replace("e1,", "x1,").replace("e2,", "x2,").replace("e3,", "x3,"),
            ADMIN,
            dry_run=False,
            deactivate_missing=False,
        )
    assert await shape() == before  # a failed load leaves them in place
