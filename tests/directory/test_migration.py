"""The 0002 migration creates exactly the directory models, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from vaxla.store.all_models import Base
from vaxla.store.db import migrate, sync_url


def _directory_diffs(diffs: list[Any]) -> list[Any]:
    out = []
    for d in diffs:
        flat = d if isinstance(d, tuple) else d[0]
        names = " ".join(str(x) for x in flat)
        if "dir_" in names:
            out.append(d)
    return out


def test_models_match_migration_and_reasons_are_seeded(database_url: str) -> None:
    migrate(database_url)
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert _directory_diffs(compare_metadata(context, Base.metadata)) == []
            rows = conn.execute(
                text("SELECT code, label_sv, label_en FROM dir_diversion_reasons ORDER BY position")
            ).all()
    finally:
        engine.dispose()
    assert [r[0] for r in rows] == [
        "lunch",
        "meeting",
        "course",
        "vacation",
        "business-trip",
        "gone-for-the-day",
        "sick",
        "off",
    ]
    assert ("gone-for-the-day", "Gått för dagen", "Gone for the day") in [tuple(r) for r in rows]
