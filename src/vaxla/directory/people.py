"""People in the directory: create, change, deactivate, load; search rows kept in step.

Every change goes through here so the derived search rows (tokens, phonetic
keys) and the audit log are written in the same transaction as the entry.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    CompoundSelect,
    String,
    bindparam,
    cast,
    delete,
    insert,
    literal,
    literal_column,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from vaxla.directory import audit, index_log
from vaxla.directory.errors import DuplicateEntry, InvalidCustomValue, PersonNotFound
from vaxla.directory.fields import FieldCatalog, FieldDef
from vaxla.directory.indexing import fold, name_keys, search_tokens
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
from vaxla.directory.records import Address, PersonRecord, Phone
from vaxla.directory.units import UnitDirectory, UnitTree


@dataclass(slots=True)
class Entry:
    """A stored person: id, record and bookkeeping."""

    id: int
    record: PersonRecord
    created_at: datetime
    updated_at: datetime
    sync_source: str | None = None
    unit_ids: list[int] = field(default_factory=list)


def _folded_name(name: str) -> str:
    return fold(name)[:100]


class PeopleDirectory:
    def __init__(self, units: UnitDirectory, fields: FieldCatalog) -> None:
        self.units = units
        self.fields = fields

    # ---------------------------------------------------------------- reading

    async def load(self, s: AsyncSession, ids: Sequence[int]) -> dict[int, Entry]:
        """Entries by id (missing ids are left out), in a fixed number of queries."""
        return await s.run_sync(lambda ss: self.load_sync(ss, ids))

    def load_sync(self, s: Session, ids: Sequence[int]) -> dict[int, Entry]:
        """Entries by id (missing ids are left out), in two queries."""
        if not ids:
            return {}
        conn = s.connection()
        people = {r.id: r for r in conn.execute(_PEOPLE, {"pids": list(ids)})}
        if not people:
            return {}
        pids = list(people)
        phones: dict[int, list[Phone]] = defaultdict(list)
        unit_ids: dict[int, list[int]] = defaultdict(list)
        groups: dict[int, list[str]] = defaultdict(list)
        custom: dict[int, dict[str, Any]] = defaultdict(dict)
        defs = {f.id: f for f in self.fields.all_sync(s).values()}
        for pid, tag, a, b, _ in conn.execute(_CHILDREN, {"pids": pids}):
            if tag == "p":
                phones[pid].append(Phone.model_construct(kind=a, number=b))
            elif tag == "u":
                unit_ids[pid].append(int(b))
            elif tag == "g":
                groups[pid].append(b)
            elif (d := defs.get(int(a))) is not None:
                custom[pid][d.key] = d.from_text(b)
        for names in groups.values():
            names.sort()
        tree = self.units.tree_sync(s)
        out: dict[int, Entry] = {}
        for pid, p in people.items():
            record = PersonRecord.model_construct(
                first_name=p.first_name,
                last_name=p.last_name,
                phones=phones[pid],
                email=p.email,
                titles=list(p.titles or []),
                tasks=list(p.tasks or []),
                keywords=list(p.keywords or []),
                room=p.room,
                location=p.location,
                addresses=[Address.model_construct(**a) for a in (p.addresses or [])],
                units=[tree.name_path(u) for u in unit_ids[pid] if u in tree.nodes],
                groups=groups[pid],
                custom=custom[pid],
                is_external=p.is_external,
                active=p.active,
                username=p.username,
                external_id=p.external_id,
                calendar_url=p.calendar_url,
                calendar_opt_out=p.calendar_opt_out,
            )
            out[pid] = Entry(pid, record, p.created_at, p.updated_at, p.sync_source, unit_ids[pid])
        return out

    async def get(self, s: AsyncSession, person_id: int) -> Entry:
        found = await self.load(s, [person_id])
        if person_id not in found:
            raise PersonNotFound(f"no person {person_id}", id=person_id)
        return found[person_id]

    async def id_by_external_id(self, s: AsyncSession, external_id: str) -> int | None:
        return await s.scalar(select(Person.id).where(Person.external_id == external_id))

    # ---------------------------------------------------------------- writing

    async def create(
        self,
        s: AsyncSession,
        record: PersonRecord,
        *,
        actor: str,
        now: datetime,
        sync_source: str | None = None,
    ) -> Entry:
        record = record.normalised()
        await self._check_unique(s, record, None)
        person = Person(created_at=now, updated_at=now, sync_source=sync_source)
        self._apply_columns(person, record)
        s.add(person)
        await s.flush()
        await self._write_children(s, person.id, record, replace=False)
        audit.add(
            s,
            actor=actor,
            action="create",
            entity="person",
            entity_id=person.id,
            now=now,
            after=record.comparable(),
        )
        return await self.get(s, person.id)

    async def replace(
        self,
        s: AsyncSession,
        person_id: int,
        record: PersonRecord,
        *,
        actor: str,
        now: datetime,
        action: str = "update",
    ) -> tuple[Entry, dict[str, tuple[Any, Any]]]:
        """Store ``record`` as the whole entry; returns the new entry and what changed."""
        before = await self.get(s, person_id)
        record = record.normalised()
        changes = audit.diff(before.record.comparable(), record.comparable())
        if not changes:
            return before, {}
        await self._check_unique(s, record, person_id)
        person = await s.get(Person, person_id)
        assert person is not None
        self._apply_columns(person, record)
        person.updated_at = now
        await self._write_children(s, person_id, record, replace=True)
        audit.add(
            s,
            actor=actor,
            action=action,
            entity="person",
            entity_id=person_id,
            now=now,
            before={k: v[0] for k, v in changes.items()},
            after={k: v[1] for k, v in changes.items()},
        )
        await s.flush()
        return await self.get(s, person_id), changes

    async def reindex(self, s: AsyncSession, person_ids: Iterable[int]) -> None:
        """Rewrite the search rows of people (after a unit or field changed)."""
        ids = list(person_ids)
        for start in range(0, len(ids), 500):
            for entry in (await self.load(s, ids[start : start + 500])).values():
                await self._write_index(s, entry.id, entry.record, replace=True)

    def _apply_columns(self, person: Person, record: PersonRecord) -> None:
        person.first_name = record.first_name
        person.last_name = record.last_name
        person.first_folded = _folded_name(record.first_name)
        person.last_folded = _folded_name(record.last_name)
        person.email = record.email
        person.titles = list(record.titles)
        person.tasks = list(record.tasks)
        person.keywords = list(record.keywords)
        person.room = record.room
        person.location = record.location
        person.addresses = [a.model_dump() for a in record.addresses]
        person.is_external = record.is_external
        person.active = record.active
        person.username = record.username
        person.external_id = record.external_id
        person.calendar_url = record.calendar_url
        person.calendar_opt_out = record.calendar_opt_out

    async def _check_unique(
        self, s: AsyncSession, record: PersonRecord, person_id: int | None
    ) -> None:
        for column, value in (
            (Person.external_id, record.external_id),
            (Person.username, record.username),
        ):
            if value is None:
                continue
            other = await s.scalar(select(Person.id).where(column == value))
            if other is not None and other != person_id:
                raise DuplicateEntry(
                    f"{column.key} {value!r} belongs to person {other}",
                    field=column.key,
                    person_id=other,
                )

    async def _group_ids(self, s: AsyncSession, names: Sequence[str]) -> list[int]:
        if not names:
            return []
        found = {
            r[1]: r[0]
            for r in await s.execute(select(Group.id, Group.name).where(Group.name.in_(names)))
        }
        out: list[int] = []
        for name in names:
            if name not in found:
                group = Group(name=name, description="")
                s.add(group)
                await s.flush()
                found[name] = group.id
            out.append(found[name])
        return out

    async def _custom_rows(
        self, s: AsyncSession, person_id: int, custom: dict[str, Any]
    ) -> list[dict[str, Any]]:
        defs = await self.fields.all(s)
        rows = []
        for key, value in custom.items():
            d = defs.get(key)
            if d is None:
                raise InvalidCustomValue(f"no custom field {key!r}", field=key)
            text, number, day = d.coerce(value)
            if text is None:
                continue
            rows.append(
                {
                    "person_id": person_id,
                    "field_id": d.id,
                    "value_text": text,
                    "value_number": number,
                    "value_date": day,
                }
            )
        return rows

    async def _write_children(
        self, s: AsyncSession, person_id: int, record: PersonRecord, *, replace: bool
    ) -> None:
        if replace:
            for model in (PhoneNumber, Membership, GroupMember, CustomValue):
                await s.execute(delete(model).where(model.person_id == person_id))
        tree = await self.units.tree(s)
        unit_ids = [await self.units.ensure_path(s, u, tree) for u in record.units]
        if record.phones:
            await s.execute(
                insert(PhoneNumber),
                [
                    {"person_id": person_id, "kind": p.kind, "number": p.number}
                    for p in record.phones
                ],
            )
        if unit_ids:
            await s.execute(
                insert(Membership),
                [{"person_id": person_id, "unit_id": u} for u in dict.fromkeys(unit_ids)],
            )
        group_ids = await self._group_ids(s, record.groups)
        if group_ids:
            await s.execute(
                insert(GroupMember),
                [{"person_id": person_id, "group_id": g} for g in dict.fromkeys(group_ids)],
            )
        custom_rows = await self._custom_rows(s, person_id, record.custom)
        if custom_rows:
            await s.execute(insert(CustomValue), custom_rows)
        await self._write_index(s, person_id, record, replace=replace, tree=tree, unit_ids=unit_ids)

    async def _write_index(
        self,
        s: AsyncSession,
        person_id: int,
        record: PersonRecord,
        *,
        replace: bool,
        tree: UnitTree | None = None,
        unit_ids: list[int] | None = None,
    ) -> None:
        if replace:
            await s.execute(delete(SearchToken).where(SearchToken.person_id == person_id))
            await s.execute(delete(NameKey).where(NameKey.person_id == person_id))
        tree = tree or await self.units.tree(s)
        if unit_ids is None:
            unit_ids = [u for u in (tree.find(p) for p in record.units) if u is not None]
        token_rows, key_rows = index_rows(
            person_id, record, tree, unit_ids, await self.fields.all(s)
        )
        if token_rows:
            await s.execute(insert(SearchToken), token_rows)
        if key_rows:
            await s.execute(insert(NameKey), key_rows)
        await index_log.changed(s, [person_id])

    async def deactivate_many(
        self, s: AsyncSession, person_ids: Sequence[int], *, actor: str, now: datetime
    ) -> None:
        if not person_ids:
            return
        await s.execute(
            update(Person).where(Person.id.in_(person_ids)).values(active=False, updated_at=now)
        )
        await index_log.changed(s, person_ids, now)
        await audit.add_many(
            s,
            [
                {
                    "at": now,
                    "actor": actor,
                    "action": "deactivate",
                    "entity": "person",
                    "entity_id": str(pid),
                    "before": {"active": True},
                    "after": {"active": False},
                }
                for pid in person_ids
            ],
        )


def _children() -> CompoundSelect[Any]:
    """Phones, units, groups and custom values of people (``:pids``), one statement, in order.

    Built once: the ids are an expanding parameter, so each load only binds them.
    """
    pids: BindParameter[list[int]] = bindparam("pids", expanding=True)
    text = String(500)
    return union_all(  # type: ignore[return-value]
        select(
            PhoneNumber.person_id,
            literal("p", String(1)),
            cast(PhoneNumber.kind, text),
            cast(PhoneNumber.number, text),
            PhoneNumber.id,
        ).where(PhoneNumber.person_id.in_(pids)),
        select(
            Membership.person_id,
            literal("u", String(1)),
            null(),
            cast(Membership.unit_id, text),
            Membership.id,
        ).where(Membership.person_id.in_(pids)),
        select(
            GroupMember.person_id,
            literal("g", String(1)),
            null(),
            cast(Group.name, text),
            GroupMember.id,
        )
        .join(Group, Group.id == GroupMember.group_id)
        .where(GroupMember.person_id.in_(pids)),
        select(
            CustomValue.person_id,
            literal("c", String(1)),
            cast(CustomValue.field_id, text),
            CustomValue.value_text,
            CustomValue.id,
        ).where(CustomValue.person_id.in_(pids)),
    ).order_by(literal_column("5"))


_CHILDREN = _children()
_PEOPLE = select(Person.__table__).where(
    Person.__table__.c.id.in_(bindparam("pids", expanding=True))
)


def index_tuples(
    person_id: int,
    record: PersonRecord,
    tree: UnitTree,
    unit_ids: Sequence[int],
    defs: dict[str, FieldDef],
) -> tuple[list[tuple[int, str, str]], list[tuple[int, str, str, str]]]:
    """(person_id, field, token) and (person_id, field, kind, key) rows of one person."""
    searchable = {k: d.searchable for k, d in defs.items()}
    tokens = [
        (person_id, f, t)
        for f, t in search_tokens(record, tree.names_for_search(unit_ids), searchable)
    ]
    keys = [(person_id, f, k, key) for f, k, key in name_keys(record.first_name, record.last_name)]
    return tokens, keys


def index_rows(
    person_id: int,
    record: PersonRecord,
    tree: UnitTree,
    unit_ids: Sequence[int],
    defs: dict[str, FieldDef],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The same rows as dicts (for ``insert(Model)``)."""
    tokens, keys = index_tuples(person_id, record, tree, unit_ids, defs)
    return (
        [{"person_id": p, "field": f, "token": t} for p, f, t in tokens],
        [{"person_id": p, "field": f, "kind": k, "key": key} for p, f, k, key in keys],
    )


__all__ = ["Entry", "PeopleDirectory", "index_rows", "index_tuples"]
