"""The directory service: one façade over people, search, diversion and access.

It opens the transactions (every change and its audit rows commit together),
applies the caller's access level per field (R90) and publishes events on
the bus after a commit: ``directory.person.changed``, ``diversion.changed``
and ``message.left``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any, Protocol

from sqlalchemy import Engine, create_engine, event, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, sessionmaker

from vaxla.api.auth import Principal
from vaxla.directory import audit, exchange, messages
from vaxla.directory.access import (
    DIVERT_ANYONE_ROLES,
    PHONE_KINDS,
    FieldPolicy,
    Level,
    custom_field_name,
    level_of,
)
from vaxla.directory.diversion import (
    DiversionRequest,
    Diversions,
    DiversionState,
    RuleRequest,
    rule_view,
)
from vaxla.directory.errors import (
    FieldNotEditable,
    InvalidDirectoryInput,
    NotAllowed,
    PersonNotFound,
    RuleNotFound,
)
from vaxla.directory.fields import FieldCatalog
from vaxla.directory.memory_index import LiveIndex
from vaxla.directory.models import AbsenceRule, FieldAccess, Person, PhoneNumber
from vaxla.directory.people import Entry, PeopleDirectory
from vaxla.directory.records import PersonRecord
from vaxla.directory.search import DirectorySearch, SearchQuery
from vaxla.directory.units import UnitDirectory
from vaxla.events import EventBus
from vaxla.store.db import Database, sync_url


class PhoneStatus(Protocol):
    """Registered or not: the PBX location service (``services["location"]``)."""

    def lookup(self, aor: str, now: float) -> Sequence[object]: ...


def field_names_of_change(before: PersonRecord | None, after: PersonRecord) -> set[str]:
    """Access-table field names whose values differ between two records."""
    old = (
        before.model_dump(mode="json")
        if before
        else PersonRecord(first_name="-", last_name="-").model_dump(mode="json")
    )
    new = after.model_dump(mode="json")
    changed: set[str] = set()
    for name in new:
        if name in ("phones", "custom"):
            continue
        if old.get(name) != new.get(name):
            changed.add(name)
    if before is None:
        changed |= {"first_name", "last_name"}
    for kind in PHONE_KINDS:
        if (before.numbers(kind) if before else []) != after.numbers(kind):
            changed.add(kind)
    old_custom = before.custom if before else {}
    for key in set(old_custom) | set(after.custom):
        if str(old_custom.get(key)) != str(after.custom.get(key)):
            changed.add(custom_field_name(key))
    return changed


class DirectoryService:
    def __init__(
        self,
        db: Database,
        bus: EventBus | None = None,
        clock: Callable[[], float] | None = None,
        phone_status: PhoneStatus | None = None,
        diversions: Diversions | None = None,
        memory_index: bool = True,
    ) -> None:
        self.db = db
        self._policy: tuple[object, float, FieldPolicy] | None = None
        self._read_engine: Engine | None = None
        self._read_sessions: sessionmaker[Session] | None = None
        self.bus = bus
        self.clock = clock or time.time
        self.phone_status = phone_status
        self.units = UnitDirectory()
        self.fields = FieldCatalog()
        self.people = PeopleDirectory(self.units, self.fields)
        self.finder = DirectorySearch(self.units)
        self.diversions = diversions or Diversions()
        # Searches answered from memory once built (SQL until then, or if switched off).
        self.index = LiveIndex(lambda: self._reader()()) if memory_index else None

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def publish(self, topic: str, data: dict[str, Any]) -> None:
        if self.bus is not None:
            self.bus.publish(topic, data)

    # ------------------------------------------------------------- access

    async def policy(self, s: AsyncSession) -> FieldPolicy:
        return await s.run_sync(self.policy_sync)

    def policy_sync(self, s: Session) -> FieldPolicy:
        """The field levels; cached a few seconds like the other catalogues."""
        defs = self.fields.all_sync(s)
        cached = self._policy
        if cached is not None and cached[0] is defs and time.monotonic() - cached[1] < 5.0:
            return cached[2]
        overrides = [(r.field, r.view_level, r.edit_level) for r in s.scalars(select(FieldAccess))]
        custom = [(d.key, d.view_level, d.edit_level) for d in defs.values()]
        policy = FieldPolicy.build(overrides, custom)
        self._policy = (defs, time.monotonic(), policy)
        return policy

    async def set_field_access(
        self, field: str, view: int, edit: int, principal: Principal
    ) -> FieldPolicy:
        now = self.now()
        async with self.db.transaction() as s:
            policy = await self.policy(s)
            if field not in policy.levels or field.startswith("custom."):
                raise InvalidDirectoryInput(
                    f"no standard field {field!r} (custom fields carry their own levels)",
                    field=field,
                )
            self._policy = None
            row = await s.get(FieldAccess, field)
            before = {"view": policy.levels[field][0], "edit": policy.levels[field][1]}
            if row is None:
                s.add(FieldAccess(field=field, view_level=view, edit_level=edit))
            else:
                row.view_level, row.edit_level = view, edit
            audit.add(
                s,
                actor=principal.subject,
                action="set-access",
                entity="field",
                entity_id=field,
                now=now,
                before=before,
                after={"view": view, "edit": edit},
            )
            await s.flush()
            self._policy = None
            return await self.policy(s)

    def _check_edit(
        self, policy: FieldPolicy, level: int, before: PersonRecord | None, after: PersonRecord
    ) -> None:
        for name in sorted(field_names_of_change(before, after)):
            if not policy.can_edit(name, level):
                raise FieldNotEditable(
                    f"your access level may not change {name!r}", field=name, level=level
                )

    # ------------------------------------------------------------- views

    def render(
        self,
        entry: Entry,
        policy: FieldPolicy,
        level: int,
        diversion: DiversionState | None,
        now: datetime,
        match: str | None = None,
    ) -> dict[str, Any]:
        """The entry as the caller may see it: hidden fields are left out."""
        r = entry.record
        data = r.model_dump(mode="json")
        out: dict[str, Any] = {"id": entry.id}
        if match is not None:
            out["match"] = match
        for name, value in data.items():
            if name in ("phones", "custom", "units"):
                continue
            if policy.can_view(name, level):
                out[name] = value
        out["phones"] = [p.model_dump() for p in r.phones if policy.can_view(p.kind, level)]
        if policy.can_view("units", level):
            out["units"] = r.units
            out["unit_ids"] = entry.unit_ids
        out["custom"] = {
            k: (v.isoformat() if isinstance(v, date) else v)
            for k, v in r.custom.items()
            if policy.can_view(custom_field_name(k), level)
        }
        out["diversion"] = self.render_diversion(diversion, policy, level, now)
        if policy.can_view("extension", level):
            out["phone_status"] = self.phone_status_of(r.numbers("extension"))
        if level >= Level.ALL:
            out["updated_at"] = entry.updated_at.isoformat()
        return out

    def render_diversion(
        self, d: DiversionState | None, policy: FieldPolicy, level: int, now: datetime
    ) -> dict[str, Any] | None:
        if d is None:
            return None
        show_message = policy.can_view("diversion_message", level)
        shown = d if show_message else _without_message(d)
        return {
            "reason": d.reason.code,
            "label_sv": d.reason.label_sv,
            "label_en": d.reason.label_en,
            "return_at": d.return_at.isoformat() if d.return_at else None,
            "message": shown.message,
            "target_kind": d.target_kind,
            "target_value": d.target_value if show_message else None,
            "source": d.source,
            "valid_from": d.valid_from.isoformat() if d.valid_from else None,
            "valid_until": d.valid_until.isoformat() if d.valid_until else None,
            "set_by": d.created_by if level >= Level.ALL else None,
            "summary_sv": shown.summary("sv", now),
            "summary_en": shown.summary("en", now),
        }

    def phone_status_of(self, extensions: Sequence[str]) -> list[dict[str, Any]]:
        out = []
        for ext in extensions:
            registered = None
            if self.phone_status is not None:
                registered = bool(self.phone_status.lookup(ext, self.clock()))
            out.append({"extension": ext, "registered": registered})
        return out

    # ------------------------------------------------------------- people

    def _reader(self) -> sessionmaker[Session]:
        """Blocking sessions for search: one thread hop per search, not one per query."""
        if self._read_sessions is None:
            url = sync_url(self.db.url)
            if make_url(url).get_backend_name() == "sqlite":
                engine = create_engine(url, connect_args={"check_same_thread": False})

                @event.listens_for(engine, "connect")
                def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
                    cur = dbapi_conn.cursor()
                    cur.execute("PRAGMA busy_timeout=5000")
                    cur.close()

            else:
                # Searches only read: no transaction (no BEGIN/ROLLBACK round trips) and
                # no ping per checkout; a connection the server dropped is retried once.
                # They fetch a few rows by key from tables that stay in memory: with
                # PostgreSQL's disk-era page cost the planner scanned the custom values
                # (0.8 ms of a 5 ms search at 100,000 people) instead of using the index,
                # and JIT compiling a rare costly plan takes longer than running it.
                engine = create_engine(
                    url,
                    pool_size=4,
                    max_overflow=4,
                    isolation_level="AUTOCOMMIT",
                    connect_args={"options": "-c random_page_cost=1.1 -c jit=off"},
                )
            self._read_engine = engine
            self._read_sessions = sessionmaker(engine)
        return self._read_sessions

    async def close(self) -> None:
        if self.index is not None:
            await asyncio.to_thread(self.index.close)
        if self._read_engine is not None:
            await asyncio.to_thread(self._read_engine.dispose)
            self._read_engine = None
            self._read_sessions = None

    async def search(self, q: SearchQuery, principal: Principal) -> dict[str, Any]:
        return await asyncio.to_thread(self._search_blocking, q, principal)

    def _search_blocking(self, q: SearchQuery, principal: Principal) -> dict[str, Any]:
        try:
            return self._search_once(q, principal)
        except DBAPIError as e:
            if not e.connection_invalidated:
                raise
            return self._search_once(q, principal)  # the server restarted: a new connection

    def _search_once(self, q: SearchQuery, principal: Principal) -> dict[str, Any]:
        level = level_of(principal)
        if q.include_inactive and level < Level.ALL:
            q = replace(q, include_inactive=False)  # deactivated people: all-fields level
        now = self.now()
        with self._reader()() as s:
            policy = self.policy_sync(s)
            visible = policy.visible_fields(level)
            hidden = sorted(set(policy.levels) - visible)
            with self.index.source(s) if self.index else nullcontext() as source:
                result = self.finder.search_sync(s, q, visible, hidden, source)
            ids = [h.person_id for h in result.hits]
            entries = self.people.load_sync(s, ids)
            current = self.diversions.current_for_sync(s, ids, now)
        items = [
            self.render(entries[h.person_id], policy, level, current.get(h.person_id), now, h.match)
            for h in result.hits
            if h.person_id in entries
        ]
        return {"items": items, "candidates": result.candidates, "truncated": result.truncated}

    async def get(self, person_id: int, principal: Principal) -> dict[str, Any]:
        level = level_of(principal)
        now = self.now()
        async with self.db.session() as s:
            policy = await self.policy(s)
            entry = await self.people.get(s, person_id)
            current = await self.diversions.current_for(s, [person_id], now)
        return self.render(entry, policy, level, current.get(person_id), now)

    async def create(self, record: PersonRecord, principal: Principal) -> dict[str, Any]:
        level = level_of(principal)
        now = self.now()
        async with self.db.transaction() as s:
            policy = await self.policy(s)
            if level < Level.EDIT:
                raise NotAllowed("adding people needs the edit level", level=level)
            self._check_edit(policy, level, None, record.normalised())
            entry = await self.people.create(s, record, actor=principal.subject, now=now)
        self.publish("directory.person.changed", {"person_id": entry.id, "action": "created"})
        return self.render(entry, policy, level, None, now)

    async def update(
        self, person_id: int, changes: dict[str, Any], principal: Principal
    ) -> dict[str, Any]:
        """Change the given fields (a partial record)."""
        level = level_of(principal)
        now = self.now()
        async with self.db.transaction() as s:
            policy = await self.policy(s)
            before = await self.people.get(s, person_id)
            merged = PersonRecord.model_validate(
                {**before.record.model_dump(mode="python"), **changes}
            ).normalised()
            self._check_edit(policy, level, before.record, merged)
            entry, changed = await self.people.replace(
                s, person_id, merged, actor=principal.subject, now=now
            )
            current = await self.diversions.current_for(s, [person_id], now)
        if changed:
            self.publish(
                "directory.person.changed",
                {"person_id": person_id, "action": "updated", "fields": sorted(changed)},
            )
        return self.render(entry, policy, level, current.get(person_id), now)

    async def upsert_external(
        self, external_id: str, record: PersonRecord, principal: Principal
    ) -> tuple[dict[str, Any], bool]:
        """Real-time import of one entry by its external id (R86); True when created."""
        record = record.model_copy(update={"external_id": external_id})
        async with self.db.session() as s:
            found = await self.people.id_by_external_id(s, external_id)
        if found is None:
            return await self.create(record, principal), True
        data = record.model_dump(mode="python")
        return await self.update(found, data, principal), False

    async def deactivate(self, person_id: int, principal: Principal) -> dict[str, Any]:
        return await self.update(person_id, {"active": False}, principal)

    async def person_ids_for_username(self, username: str) -> int | None:
        async with self.db.session() as s:
            return await s.scalar(select(Person.id).where(Person.username == username))

    # ------------------------------------------------------------- diversion

    async def _may_divert(self, s: AsyncSession, person_id: int, principal: Principal) -> None:
        if principal.has(*DIVERT_ANYONE_ROLES):
            return
        username = await s.scalar(select(Person.username).where(Person.id == person_id))
        if username is None or username != principal.subject:
            raise NotAllowed(
                "you may set only your own diversion", person_id=person_id, role=principal.role
            )

    async def set_diversion(
        self, person_id: int, req: DiversionRequest, principal: Principal
    ) -> dict[str, Any]:
        now = self.now()
        level = level_of(principal)
        async with self.db.transaction() as s:
            if await s.get(Person, person_id) is None:
                raise PersonNotFound(f"no person {person_id}", id=person_id)
            await self._may_divert(s, person_id, principal)
            await self.diversions.set(s, person_id, req, actor=principal.subject, now=now)
            current = (await self.diversions.current_for(s, [person_id], now)).get(person_id)
            policy = await self.policy(s)
        view = self.render_diversion(current, policy, max(level, Level.ALL), now)
        self.publish("diversion.changed", {"person_id": person_id, "diversion": view})
        return {"person_id": person_id, "diversion": view}

    async def clear_diversion(self, person_id: int, principal: Principal) -> dict[str, Any]:
        now = self.now()
        async with self.db.transaction() as s:
            if await s.get(Person, person_id) is None:
                raise PersonNotFound(f"no person {person_id}", id=person_id)
            await self._may_divert(s, person_id, principal)
            await self.diversions.clear(s, person_id, actor=principal.subject, now=now)
            current = (await self.diversions.current_for(s, [person_id], now)).get(person_id)
            policy = await self.policy(s)
        view = self.render_diversion(current, policy, Level.ALL, now)
        self.publish("diversion.changed", {"person_id": person_id, "diversion": view})
        return {"person_id": person_id, "diversion": view}

    async def people_on_extension(self, number: str) -> list[int]:
        """The active people whose extension ``number`` is (several when it is shared)."""
        async with self.db.session() as s:
            rows = await s.scalars(
                select(PhoneNumber.person_id)
                .join(Person, Person.id == PhoneNumber.person_id)
                .where(
                    PhoneNumber.kind == "extension",
                    PhoneNumber.number == number,
                    Person.active.is_(True),
                )
                .distinct()
                .order_by(PhoneNumber.person_id)
            )
            return list(rows)

    async def divert_from_phone(
        self, person_id: int, req: DiversionRequest | None, *, extension: str
    ) -> tuple[bool, DiversionState | None]:
        """Set (``req``) or clear (None) a person's diversion by a code dialled on
        their own ``extension`` (R81): the actor is the extension and the audit
        row says ``via: phone``. Returns whether anything changed and the
        diversion in force afterwards."""
        now = self.now()
        async with self.db.transaction() as s:
            if req is None:
                cleared = await self.diversions.clear(
                    s, person_id, actor=extension, now=now, via="phone"
                )
                changed = cleared is not None
            else:
                await self.diversions.set(s, person_id, req, actor=extension, now=now, via="phone")
                changed = True
            current = (await self.diversions.current_for(s, [person_id], now)).get(person_id)
            policy = await self.policy(s)
        if changed:
            view = self.render_diversion(current, policy, Level.ALL, now)
            self.publish("diversion.changed", {"person_id": person_id, "diversion": view})
        return changed, current

    async def diversion(self, person_id: int, principal: Principal) -> dict[str, Any]:
        now = self.now()
        async with self.db.session() as s:
            if await s.get(Person, person_id) is None:
                raise PersonNotFound(f"no person {person_id}", id=person_id)
            current = (await self.diversions.current_for(s, [person_id], now)).get(person_id)
            policy = await self.policy(s)
        view = self.render_diversion(current, policy, level_of(principal), now)
        return {"person_id": person_id, "diversion": view}

    async def diversion_history(self, person_id: int, principal: Principal) -> list[dict[str, Any]]:
        now = self.now()
        async with self.db.session() as s:
            await self._may_view_all(principal, s, person_id)
            rows = await self.diversions.history(s, person_id)
            policy = await self.policy(s)
        out = []
        for d in rows:
            view = self.render_diversion(d, policy, Level.ALL, now) or {}
            view["id"] = d.id
            view["created_at"] = d.created_at.isoformat() if d.created_at else None
            view["cleared_at"] = d.cleared_at.isoformat() if d.cleared_at else None
            view["cleared_by"] = d.cleared_by
            out.append(view)
        return out

    async def _may_view_all(self, principal: Principal, s: AsyncSession, person_id: int) -> None:
        if level_of(principal) >= Level.ALL:
            return
        await self._may_divert(s, person_id, principal)

    async def set_group_diversion(
        self, group_id: int, req: DiversionRequest, principal: Principal
    ) -> dict[str, Any]:
        if not principal.has(*DIVERT_ANYONE_ROLES):
            raise NotAllowed("a group diversion needs the operator role or higher")
        now = self.now()
        async with self.db.transaction() as s:
            done = await self.diversions.set_group(
                s, group_id, req, actor=principal.subject, now=now
            )
            policy = await self.policy(s)
        for pid, state in done.items():
            view = self.render_diversion(state, policy, Level.ALL, now)
            self.publish("diversion.changed", {"person_id": pid, "diversion": view})
        return {"group_id": group_id, "person_ids": sorted(done)}

    async def clear_group_diversion(self, group_id: int, principal: Principal) -> dict[str, Any]:
        if not principal.has(*DIVERT_ANYONE_ROLES):
            raise NotAllowed("a group diversion needs the operator role or higher")
        now = self.now()
        async with self.db.transaction() as s:
            cleared = await self.diversions.clear_group(
                s, group_id, actor=principal.subject, now=now
            )
            current = await self.diversions.current_for(s, cleared, now)
            policy = await self.policy(s)
        for pid in cleared:
            view = self.render_diversion(current.get(pid), policy, Level.ALL, now)
            self.publish("diversion.changed", {"person_id": pid, "diversion": view})
        return {"group_id": group_id, "person_ids": cleared}

    async def add_rule(self, req: RuleRequest, principal: Principal) -> dict[str, Any]:
        now = self.now()
        async with self.db.transaction() as s:
            if req.person_id is not None:
                await self._may_divert(s, req.person_id, principal)
            elif not principal.has(*DIVERT_ANYONE_ROLES):
                raise NotAllowed("rules for a group need the operator role or higher")
            rule = await self.diversions.add_rule(s, req, actor=principal.subject, now=now)
            view = {"id": rule.id, **rule_view(rule, req.reason)}
        self.publish("diversion.changed", {"rule": view})
        return view

    async def end_rule(self, rule_id: int, principal: Principal) -> None:
        now = self.now()
        async with self.db.transaction() as s:
            rule = await s.get(AbsenceRule, rule_id)
            if rule is None:
                raise RuleNotFound(f"no absence rule {rule_id}", id=rule_id)
            if rule.person_id is not None:
                await self._may_divert(s, rule.person_id, principal)
            elif not principal.has(*DIVERT_ANYONE_ROLES):
                raise NotAllowed("rules for a group need the operator role or higher")
            await self.diversions.end_rule(s, rule_id, actor=principal.subject, now=now)
        self.publish("diversion.changed", {"rule": {"id": rule_id, "ended": True}})

    async def extension_status(self, number: str, principal: Principal) -> dict[str, Any]:
        """Everyone on an extension, their diversions, and whether it is closed (R83)."""
        now = self.now()
        level = level_of(principal)
        async with self.db.session() as s:
            ids = list(
                (
                    await s.scalars(
                        select(PhoneNumber.person_id).where(
                            PhoneNumber.kind == "extension", PhoneNumber.number == number
                        )
                    )
                ).all()
            )
            entries = await self.people.load(s, ids)
            current = await self.diversions.current_for(s, ids, now)
            policy = await self.policy(s)
        active = [e for e in entries.values() if e.record.active]
        people = [
            {
                "id": e.id,
                "first_name": e.record.first_name,
                "last_name": e.record.last_name,
                "diversion": self.render_diversion(current.get(e.id), policy, level, now),
            }
            for e in sorted(active, key=lambda e: e.id)
        ]
        diverted = bool(people) and all(p["diversion"] is not None for p in people)
        status = self.phone_status_of([number])[0]
        return {
            "extension": number,
            "registered": status["registered"],
            "people": people,
            "closed": diverted,
        }

    # ------------------------------------------------------------- messages

    async def leave_message(
        self, person_id: int, text: str, principal: Principal, **extra: str
    ) -> messages.MessageView:
        now = self.now()
        async with self.db.transaction() as s:
            m = await messages.leave(s, person_id, text, actor=principal.subject, now=now, **extra)
        self.publish("message.left", {"person_id": person_id, "message_id": m.id})
        return m

    async def messages_for(
        self, person_id: int, principal: Principal
    ) -> list[messages.MessageView]:
        async with self.db.session() as s:
            if await s.get(Person, person_id) is None:
                raise PersonNotFound(f"no person {person_id}", id=person_id)
            if level_of(principal) < Level.ALL:
                await self._may_divert(s, person_id, principal)
            return await messages.for_person(s, person_id)

    # ------------------------------------------------------------- import/export

    async def _vacuum(self) -> None:
        """After a large import on PostgreSQL: VACUUM so lookups are index-only scans."""
        if self.db.engine.dialect.name != "postgresql":
            return  # SQLite: the import's ANALYZE is enough
        async with self.db.engine.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            for table in ("dir_search_tokens", "dir_name_keys", "dir_people", "dir_memberships"):
                await auto.execute(text(f"VACUUM (ANALYZE) {table}"))

    async def import_records(
        self,
        records: Sequence[PersonRecord],
        principal: Principal,
        *,
        dry_run: bool,
        deactivate_missing: bool,
        sync_source: str | None = None,
    ) -> dict[str, Any]:
        """Plan (and unless ``dry_run``, apply) a batch import by external id."""
        if level_of(principal) < Level.ADMIN:
            raise NotAllowed("a batch import needs the directory-admin role")
        now = self.now()
        async with self.db.transaction() as s:
            existing = await exchange.existing_by_external_id(s, self.people, sync_source)
            the_plan = exchange.plan(records, existing, deactivate_missing=deactivate_missing)
            if not dry_run:
                await exchange.apply(
                    s,
                    self.people,
                    the_plan,
                    actor=principal.subject,
                    now=now,
                    sync_source=sync_source,
                )
        summary = the_plan.summary(dry_run)
        if not dry_run and len(the_plan.added) >= exchange.ANALYZE_AFTER:
            await self._vacuum()
        if not dry_run:
            self.units.invalidate()
            self.publish(
                "directory.person.changed",
                {
                    "action": "imported",
                    "added": len(the_plan.added),
                    "changed": len(the_plan.changed),
                    "deactivated": len(the_plan.deactivated),
                },
            )
        return summary

    async def import_text(
        self,
        fmt: str,
        text: str,
        principal: Principal,
        *,
        dry_run: bool,
        deactivate_missing: bool,
    ) -> dict[str, Any]:
        records = exchange.parse(fmt, text)
        return await self.import_records(
            records, principal, dry_run=dry_run, deactivate_missing=deactivate_missing
        )

    async def export(self, fmt: str, principal: Principal, include_inactive: bool = True) -> str:
        if level_of(principal) < Level.EDIT:
            raise NotAllowed("exporting the directory needs the edit level")
        async with self.db.session() as s:
            query = select(Person.id).order_by(Person.id)
            if not include_inactive:
                query = query.where(Person.active.is_(True))
            ids = list((await s.scalars(query)).all())
            records: list[PersonRecord] = []
            for start in range(0, len(ids), 2000):
                batch = await self.people.load(s, ids[start : start + 2000])
                records += [batch[i].record for i in ids[start : start + 2000] if i in batch]
            keys = list(await self.fields.all(s))
        return exchange.write(fmt, records, keys)


def _without_message(d: DiversionState) -> DiversionState:
    return replace(d, message="", target_value=None)
