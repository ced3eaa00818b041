"""Import and export of directory data: CSV, XML and JSON (R86), and the import plan.

The formats are documented in ``docs/directory-formats.md``. A batch import
is planned first (pure: what is added, what changes and how, who is no
longer in the source) so a dry run can show the diff (R78); applying the
plan adds new people in bulk, changes the changed ones one by one with
their audit rows, and deactivates people missing from the source rather
than deleting them.
"""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from vaxla.directory import audit, index_log
from vaxla.directory.errors import InvalidImport
from vaxla.directory.fields import FieldDef
from vaxla.directory.models import (
    CustomValue,
    Group,
    GroupMember,
    Membership,
    NameKey,
    Person,
    PhoneNumber,
    SearchToken,
)
from vaxla.directory.people import PeopleDirectory, _folded_name, index_tuples
from vaxla.directory.records import PersonRecord

FORMATS = ("csv", "xml", "json")
ANALYZE_AFTER = 1000  # people added in one import
REBUILD_AFTER = 20_000  # people added at once on PostgreSQL: search indexes rebuilt, not updated
BULK_RELOAD = 1000  # people added in one import that make in-memory indexes reload all
XML_NS = "urn:vaxla:directory:1"
LIST_SEP = "|"
CSV_COLUMNS = [
    "external_id",
    "first_name",
    "last_name",
    "extension",
    "direct",
    "mobile",
    "email",
    "titles",
    "tasks",
    "keywords",
    "room",
    "location",
    "visit_address",
    "postal_address",
    "units",
    "groups",
    "is_external",
    "active",
    "username",
    "calendar_url",
    "calendar_opt_out",
]
_ADDRESS_COLUMNS = {"visit_address": "visit", "postal_address": "post"}


# ------------------------------------------------------------------ parsing


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(LIST_SEP) if v.strip()]


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    v = value.strip().lower()
    if v in ("1", "true", "ja", "yes", "j", "y"):
        return True
    if v in ("0", "false", "nej", "no", "n"):
        return False
    raise ValueError(f"{value!r} is not a yes/no value")


def _record(data: dict[str, Any], where: str) -> PersonRecord:
    try:
        return PersonRecord.model_validate(data)
    except ValidationError as e:
        problems = [
            {"field": ".".join(str(p) for p in err["loc"]), "problem": err["msg"]}
            for err in e.errors()
        ]
        raise InvalidImport(f"{where}: not a valid entry", errors=problems) from e


def parse_csv(text: str) -> list[PersonRecord]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    if reader.fieldnames is None or not {"first_name", "last_name"} <= set(reader.fieldnames):
        raise InvalidImport("a CSV import needs a header with first_name and last_name")
    out = []
    for line, row in enumerate(reader, start=2):
        try:
            data: dict[str, Any] = {
                "external_id": (row.get("external_id") or "").strip() or None,
                "first_name": (row.get("first_name") or "").strip(),
                "last_name": (row.get("last_name") or "").strip(),
                "phones": [
                    {"kind": kind, "number": n}
                    for kind in ("extension", "direct", "mobile")
                    for n in _split(row.get(kind))
                ],
                "email": (row.get("email") or "").strip() or None,
                "titles": _split(row.get("titles")),
                "tasks": _split(row.get("tasks")),
                "keywords": _split(row.get("keywords")),
                "room": (row.get("room") or "").strip() or None,
                "location": (row.get("location") or "").strip() or None,
                "addresses": [
                    {"kind": kind, "text": t}
                    for column, kind in _ADDRESS_COLUMNS.items()
                    for t in _split(row.get(column))
                ],
                "units": _split(row.get("units")),
                "groups": _split(row.get("groups")),
                "is_external": _bool(row.get("is_external"), False),
                "active": _bool(row.get("active"), True),
                "username": (row.get("username") or "").strip() or None,
                "calendar_url": (row.get("calendar_url") or "").strip() or None,
                "calendar_opt_out": _bool(row.get("calendar_opt_out"), False),
                "custom": {
                    k[len("custom.") :]: v.strip()
                    for k, v in row.items()
                    if k and k.startswith("custom.") and v and v.strip()
                },
            }
        except ValueError as e:
            raise InvalidImport(f"line {line}: {e}", line=line) from e
        out.append(_record(data, f"line {line}"))
    return out


def parse_json(text: str) -> list[PersonRecord]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidImport(f"not JSON: {e}") from e
    people = doc.get("people") if isinstance(doc, dict) else doc
    if not isinstance(people, list):
        raise InvalidImport('a JSON import is {"people": [...]} or a list of people')
    return [_record(p, f"person {i + 1}") for i, p in enumerate(people)]


def _q(tag: str) -> str:
    return f"{{{XML_NS}}}{tag}"


def parse_xml(text: str) -> list[PersonRecord]:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise InvalidImport(f"not well-formed XML: {e}") from e
    if root.tag != _q("directory"):
        raise InvalidImport(f'the root element is <directory xmlns="{XML_NS}">')
    out = []
    for i, el in enumerate(root.findall(_q("person")), start=1):

        def one(tag: str, el: ET.Element = el) -> str | None:
            found = el.find(_q(tag))
            return (found.text or "").strip() or None if found is not None else None

        def many(tag: str, el: ET.Element = el) -> list[str]:
            return [(c.text or "").strip() for c in el.findall(_q(tag)) if (c.text or "").strip()]

        try:
            data = {
                "external_id": el.get("external-id"),
                "first_name": one("first-name") or "",
                "last_name": one("last-name") or "",
                "phones": [
                    {"kind": p.get("kind", "extension"), "number": (p.text or "").strip()}
                    for p in el.findall(_q("phone"))
                ],
                "email": one("email"),
                "titles": many("title"),
                "tasks": many("task"),
                "keywords": many("keyword"),
                "room": one("room"),
                "location": one("location"),
                "addresses": [
                    {"kind": a.get("kind", "visit"), "text": (a.text or "").strip()}
                    for a in el.findall(_q("address"))
                ],
                "units": many("unit"),
                "groups": many("group"),
                "username": one("username"),
                "calendar_url": one("calendar-url"),
                "is_external": _bool(el.get("external"), False),
                "active": _bool(el.get("active"), True),
                "calendar_opt_out": _bool(el.get("calendar-opt-out"), False),
                "custom": {
                    c.get("key", ""): (c.text or "").strip()
                    for c in el.findall(_q("custom"))
                    if (c.text or "").strip()
                },
            }
        except ValueError as e:
            raise InvalidImport(f"person {i}: {e}") from e
        out.append(_record(data, f"person {i}"))
    return out


def parse(fmt: str, text: str) -> list[PersonRecord]:
    parsers = {"csv": parse_csv, "xml": parse_xml, "json": parse_json}
    if fmt not in parsers:
        raise InvalidImport(f"unknown format {fmt!r}", allowed=list(FORMATS))
    return parsers[fmt](text)


# ------------------------------------------------------------------ writing


def write_csv(records: Iterable[PersonRecord], custom_keys: Sequence[str] = ()) -> str:
    buf = io.StringIO()
    columns = CSV_COLUMNS + [f"custom.{k}" for k in custom_keys]
    writer = csv.DictWriter(buf, columns, lineterminator="\n")
    writer.writeheader()
    for r in records:
        row: dict[str, Any] = {
            "external_id": r.external_id or "",
            "first_name": r.first_name,
            "last_name": r.last_name,
            "email": r.email or "",
            "titles": LIST_SEP.join(r.titles),
            "tasks": LIST_SEP.join(r.tasks),
            "keywords": LIST_SEP.join(r.keywords),
            "room": r.room or "",
            "location": r.location or "",
            "units": LIST_SEP.join(r.units),
            "groups": LIST_SEP.join(r.groups),
            "is_external": "true" if r.is_external else "false",
            "active": "true" if r.active else "false",
            "username": r.username or "",
            "calendar_url": r.calendar_url or "",
            "calendar_opt_out": "true" if r.calendar_opt_out else "false",
        }
        for kind in ("extension", "direct", "mobile"):
            row[kind] = LIST_SEP.join(r.numbers(kind))
        for column, kind in _ADDRESS_COLUMNS.items():
            row[column] = LIST_SEP.join(a.text for a in r.addresses if a.kind == kind)
        for k in custom_keys:
            v = r.custom.get(k)
            row[f"custom.{k}"] = "" if v is None else str(v)
        writer.writerow(row)
    return buf.getvalue()


def write_json(records: Iterable[PersonRecord]) -> str:
    doc = {
        "format": "vaxla-directory",
        "version": 1,
        "people": [r.model_dump(mode="json") for r in records],
    }
    return json.dumps(doc, ensure_ascii=False, indent=1)


def write_xml(records: Iterable[PersonRecord]) -> str:
    ET.register_namespace("", XML_NS)
    root = ET.Element(_q("directory"))
    for r in records:
        el = ET.SubElement(root, _q("person"))
        if r.external_id:
            el.set("external-id", r.external_id)
        el.set("active", "true" if r.active else "false")
        el.set("external", "true" if r.is_external else "false")
        if r.calendar_opt_out:
            el.set("calendar-opt-out", "true")

        def sub(tag: str, value: str | None, el: ET.Element = el, **attrs: str) -> None:
            if value:
                child = ET.SubElement(el, _q(tag), attrs)
                child.text = value

        sub("first-name", r.first_name)
        sub("last-name", r.last_name)
        for p in r.phones:
            sub("phone", p.number, kind=p.kind)
        sub("email", r.email)
        for t in r.titles:
            sub("title", t)
        for t in r.tasks:
            sub("task", t)
        for k in r.keywords:
            sub("keyword", k)
        sub("room", r.room)
        sub("location", r.location)
        for a in r.addresses:
            sub("address", a.text, kind=a.kind)
        for u in r.units:
            sub("unit", u)
        for g in r.groups:
            sub("group", g)
        sub("username", r.username)
        sub("calendar-url", r.calendar_url)
        for k, v in r.custom.items():
            if v is not None:
                sub("custom", str(v), key=k)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write(fmt: str, records: Sequence[PersonRecord], custom_keys: Sequence[str] = ()) -> str:
    if fmt == "csv":
        return write_csv(records, custom_keys)
    if fmt == "xml":
        return write_xml(records)
    if fmt == "json":
        return write_json(records)
    raise InvalidImport(f"unknown format {fmt!r}", allowed=list(FORMATS))


# ------------------------------------------------------------------ the plan


@dataclass(slots=True)
class ImportPlan:
    added: list[PersonRecord] = field(default_factory=list)
    changed: list[tuple[int, PersonRecord, list[str]]] = field(default_factory=list)
    deactivated: list[tuple[int, str]] = field(default_factory=list)
    unchanged: int = 0

    def summary(self, dry_run: bool) -> dict[str, Any]:
        return {
            "dry_run": dry_run,
            "added": [r.external_id or "" for r in self.added],
            "changed": {r.external_id or str(pid): f for pid, r, f in self.changed},
            "deactivated": [xid for _, xid in self.deactivated],
            "unchanged": self.unchanged,
        }


def plan(
    incoming: Sequence[PersonRecord],
    existing: dict[str, tuple[int, PersonRecord]],
    *,
    deactivate_missing: bool,
    keep_local: Sequence[str] = ("username", "calendar_url", "calendar_opt_out"),
) -> ImportPlan:
    """What importing ``incoming`` over ``existing`` (by external id) would do.

    ``keep_local`` fields are left as they are when the source does not set
    them (a person's own calendar opt-out is not the source's business).
    """
    result = ImportPlan()
    seen: set[str] = set()
    for raw in incoming:
        if not raw.external_id:
            raise InvalidImport(
                f"{raw.first_name} {raw.last_name}: a batch import needs external_id on every entry"
            )
        if raw.external_id in seen:
            raise InvalidImport(f"external_id {raw.external_id!r} appears twice")
        seen.add(raw.external_id)
        record = raw  # normalised when it was validated
        if raw.external_id not in existing:
            result.added.append(record)
            continue
        pid, old = existing[raw.external_id]
        keep = {
            k: getattr(old, k)
            for k in keep_local
            if k not in raw.model_fields_set or getattr(raw, k) in (None, False)
        }
        if not record.active and old.active is False:
            keep["active"] = False
        record = record.model_copy(update=keep)
        changes = audit.diff(old.comparable(), record.comparable())
        if changes:
            result.changed.append((pid, record, sorted(changes)))
        else:
            result.unchanged += 1
    if deactivate_missing:
        for xid, (pid, old) in sorted(existing.items()):
            if xid not in seen and old.active:
                result.deactivated.append((pid, xid))
    return result


async def existing_by_external_id(
    s: AsyncSession, people: PeopleDirectory, sync_source: str | None = None
) -> dict[str, tuple[int, PersonRecord]]:
    query = select(Person.id).where(Person.external_id.is_not(None))
    if sync_source is not None:
        query = query.where(Person.sync_source == sync_source)
    ids = list((await s.scalars(query)).all())
    out: dict[str, tuple[int, PersonRecord]] = {}
    for start in range(0, len(ids), 2000):
        for entry in (await people.load(s, ids[start : start + 2000])).values():
            assert entry.record.external_id is not None
            out[entry.record.external_id] = (entry.id, entry.record)
    return out


async def apply(
    s: AsyncSession,
    people: PeopleDirectory,
    the_plan: ImportPlan,
    *,
    actor: str,
    now: datetime,
    sync_source: str | None = None,
) -> None:
    await bulk_create(s, people, the_plan.added, actor=actor, now=now, sync_source=sync_source)
    for pid, record, _ in the_plan.changed:  # few: one by one, with their audit diff
        await people.replace(s, pid, record, actor=actor, now=now, action="import")
    await people.deactivate_many(s, [pid for pid, _ in the_plan.deactivated], actor=actor, now=now)
    if len(the_plan.added) >= ANALYZE_AFTER:
        # Fresh statistics, or the query planner guesses (PostgreSQL has none for
        # freshly loaded tables until autovacuum comes round).
        for table in (Person, SearchToken, NameKey, PhoneNumber, Membership, GroupMember):
            await s.execute(text(f"ANALYZE {_table(table).name}"))


async def _reserve_ids(s: AsyncSession, n: int) -> list[int]:
    """``n`` new person ids, so a batch is one multi-row INSERT (no RETURNING per row).

    PostgreSQL hands them out from the table's sequence. SQLite has one writer
    at a time: the ids follow the largest one in the transaction's snapshot (a
    writer that committed in between makes this transaction fail, not collide).
    """
    if (await s.connection()).dialect.name == "postgresql":
        rows = await s.execute(
            text(
                "SELECT nextval(pg_get_serial_sequence('dir_people', 'id'))"
                " FROM generate_series(1, :n)"
            ),
            {"n": n},
        )
        return [int(r[0]) for r in rows]
    top = await s.scalar(select(func.coalesce(func.max(Person.id), 0)))
    return list(range(int(top or 0) + 1, int(top or 0) + 1 + n))


async def _plain_insert(
    conn: AsyncConnection, model: type[Any], columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """executemany straight to the driver, for tables of plain ints and strings only.

    The search tables get millions of rows in a full import; SQLAlchemy's
    per-row parameter processing would be most of the import's time.
    """
    quote = conn.dialect.identifier_preparer.quote
    if conn.dialect.name == "postgresql":
        # COPY: an order of magnitude faster than row-by-row INSERT for millions of rows.
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        sql = (
            f"COPY {quote(_table(model).name)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
        )
        async with driver.cursor() as cur, cur.copy(sql) as copy:
            lines = ["\t".join([_copy_text(v) for v in r]) + "\n" for r in rows]
            await copy.write("".join(lines))
        return
    mark = "?"
    sql = (
        f"INSERT INTO {quote(_table(model).name)} ({', '.join(quote(c) for c in columns)}) "
        f"VALUES ({', '.join([mark] * len(columns))})"
    )
    await conn.exec_driver_sql(sql, rows)


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: object) -> str:
    """A value in PostgreSQL's COPY text format (``\\N`` for NULL)."""
    if value is None:
        return "\\N"
    return str(value).translate(_COPY_ESCAPES)


def _table(model: type[Any]) -> Table:
    return cast(Table, model.__table__)


async def _suspend_search_indexes(s: AsyncSession) -> list[str]:
    """PostgreSQL: drop the search tables' indexes and foreign keys for a large load.

    Building an index once over millions of rows is several times faster
    than updating it row by row, and so is checking a foreign key once.
    Returns the statements that put them back, to run after the load. DDL is
    transactional on PostgreSQL: a failed import restores them too. (Other
    databases: nothing is dropped.)
    """
    conn = await s.connection()
    if conn.dialect.name != "postgresql":
        return []
    restore: list[str] = []
    for model in (SearchToken, NameKey):
        name = _table(model).name
        rows = await s.execute(
            text(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
                " WHERE conrelid = CAST(:t AS regclass) AND contype = 'f'"
            ),
            {"t": name},
        )
        for con, definition in rows.all():
            await s.execute(text(f'ALTER TABLE {name} DROP CONSTRAINT "{con}"'))
            restore.append(f'ALTER TABLE {name} ADD CONSTRAINT "{con}" {definition}')
        rows = await s.execute(
            text(
                "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x"
                " JOIN pg_class i ON i.oid = x.indexrelid"
                " WHERE x.indrelid = CAST(:t AS regclass) AND NOT x.indisprimary"
            ),
            {"t": name},
        )
        for index, definition in rows.all():
            await s.execute(text(f'DROP INDEX "{index}"'))
            restore.append(definition)
    return restore


async def bulk_create(
    s: AsyncSession,
    people: PeopleDirectory,
    records: Sequence[PersonRecord],
    *,
    actor: str,
    now: datetime,
    sync_source: str | None = None,
    batch: int = 2000,
) -> list[int]:
    """Insert many new (normalised) people with a fixed number of statements per batch."""
    if not records:
        return []
    tree = await people.units.tree(s, fresh=True)
    defs: dict[str, FieldDef] = await people.fields.all(s)
    unit_cache: dict[str, int] = {}
    group_cache: dict[str, int] = {
        name: gid for gid, name in await s.execute(select(Group.id, Group.name))
    }
    ids: list[int] = []
    suspended = await _suspend_search_indexes(s) if len(records) >= REBUILD_AFTER else []
    for start in range(0, len(records), batch):
        chunk = list(records[start : start + batch])  # normalised by the plan
        for r in chunk:
            for u in r.units:
                if u not in unit_cache:
                    unit_cache[u] = await people.units.ensure_path(s, u, tree)
            for g in r.groups:
                if g not in group_cache:
                    group = Group(name=g, description="")
                    s.add(group)
                    await s.flush()
                    group_cache[g] = group.id
        rows: list[dict[str, Any]] = [
            {
                "first_name": r.first_name,
                "last_name": r.last_name,
                "first_folded": _folded_name(r.first_name),
                "last_folded": _folded_name(r.last_name),
                "email": r.email,
                "titles": list(r.titles),
                "tasks": list(r.tasks),
                "keywords": list(r.keywords),
                "room": r.room,
                "location": r.location,
                "addresses": [a.model_dump() for a in r.addresses],
                "is_external": r.is_external,
                "active": r.active,
                "username": r.username,
                "external_id": r.external_id,
                "sync_source": sync_source,
                "calendar_url": r.calendar_url,
                "calendar_opt_out": r.calendar_opt_out,
                "created_at": now,
                "updated_at": now,
            }
            for r in chunk
        ]
        conn = await s.connection()
        chunk_ids = await _reserve_ids(s, len(rows))
        for row, pid in zip(rows, chunk_ids, strict=True):
            row["id"] = pid
        await conn.execute(insert(_table(Person)), rows)
        ids.extend(chunk_ids)
        phones: list[tuple[Any, ...]] = []
        members: list[tuple[Any, ...]] = []
        groups: list[tuple[Any, ...]] = []
        tokens: list[tuple[Any, ...]] = []
        keys: list[tuple[Any, ...]] = []
        custom: list[dict[str, Any]] = []
        audits: list[dict[str, Any]] = []
        for pid, r in zip(chunk_ids, chunk, strict=True):
            phones += [(pid, p.kind, p.number) for p in r.phones]
            unit_ids = list(dict.fromkeys(unit_cache[u] for u in r.units))
            members += [(pid, u) for u in unit_ids]
            groups += [(pid, g) for g in dict.fromkeys(group_cache[n] for n in r.groups)]
            for key, value in r.custom.items():
                d = defs.get(key)
                if d is None:
                    raise InvalidImport(f"no custom field {key!r}", field=key)
                as_text, number, day = d.coerce(value)
                if as_text is not None:
                    custom.append(
                        {
                            "person_id": pid,
                            "field_id": d.id,
                            "value_text": as_text,
                            "value_number": number,
                            "value_date": day,
                        }
                    )
            t, k = index_tuples(pid, r, tree, unit_ids, defs)
            tokens += t
            keys += k
            audits.append(
                {
                    "at": now,
                    "actor": actor,
                    "action": "import",
                    "entity": "person",
                    "entity_id": str(pid),
                    "before": None,
                    "after": r.comparable(),
                }
            )
        plain: list[tuple[type[Any], tuple[str, ...], list[tuple[Any, ...]]]] = [
            (PhoneNumber, ("person_id", "kind", "number"), phones),
            (Membership, ("person_id", "unit_id"), members),
            (GroupMember, ("person_id", "group_id"), groups),
            (SearchToken, ("person_id", "field", "token"), tokens),
            (NameKey, ("person_id", "field", "kind", "key"), keys),
        ]
        for model, columns, values in plain:
            if values:
                await _plain_insert(conn, model, columns, values)
        if custom:
            await conn.execute(insert(_table(CustomValue)), custom)
        await audit.add_many(s, audits)
    for statement in suspended:
        await s.execute(text(statement))
    # Many people: in-memory indexes reload everything (cheaper than one by one).
    await index_log.changed(s, None if len(ids) >= BULK_RELOAD else ids, now)
    return ids
