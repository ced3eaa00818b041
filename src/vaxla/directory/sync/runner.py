"""Sync sources: stored configurations run on demand and periodically.

A source of kind ``ldap`` imports people (R78); one of kind ``calendar``
turns everyone's calendar events into diversions (R41). Blocking clients
run in a worker thread (``asyncio.to_thread``), the database work on the
event loop. A source's last result is kept on its row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from vaxla.api.auth import Principal
from vaxla.directory import audit
from vaxla.directory.access import Level, level_of
from vaxla.directory.diversion import DiversionRequest
from vaxla.directory.errors import DuplicateEntry, InvalidImport, NotAllowed, SyncSourceNotFound
from vaxla.directory.models import Diversion, Person, SyncSource
from vaxla.directory.service import DirectoryService
from vaxla.directory.sync.calendar import BusyPeriod, CalendarConfig, read_busy
from vaxla.directory.sync.ldap import LdapConfig, read_people

log = logging.getLogger("vaxla.directory.sync")
SYSTEM = Principal("sync", "directory-admin")
SECRET_KEYS = ("password",)


def _view(row: SyncSource) -> dict[str, Any]:
    config = {k: ("***" if k in SECRET_KEYS and v else v) for k, v in row.config.items()}
    return {
        "id": row.id,
        "name": row.name,
        "kind": row.kind,
        "config": config,
        "interval_s": row.interval_s,
        "enabled": row.enabled,
        "last_run_at": row.last_run_at,
        "last_result": row.last_result,
    }


class SyncRunner:
    def __init__(self, service: DirectoryService) -> None:
        self.service = service
        self.db = service.db
        self._task: asyncio.Task[None] | None = None

    def _need_admin(self, principal: Principal) -> None:
        if level_of(principal) < Level.ADMIN:
            raise NotAllowed("sync sources need the directory-admin role")

    async def sources(self, principal: Principal) -> list[dict[str, Any]]:
        self._need_admin(principal)
        async with self.db.session() as s:
            return [_view(r) for r in await s.scalars(select(SyncSource).order_by(SyncSource.id))]

    async def add(self, data: dict[str, Any], principal: Principal) -> dict[str, Any]:
        self._need_admin(principal)
        if data["kind"] == "ldap":
            LdapConfig.from_dict(data["config"])
        elif data["kind"] == "calendar":
            CalendarConfig.from_dict(data["config"])
        else:
            raise InvalidImport(f"unknown sync kind {data['kind']!r}")
        now = self.service.now()
        async with self.db.transaction() as s:
            if await s.scalar(select(SyncSource.id).where(SyncSource.name == data["name"])):
                raise DuplicateEntry(f"a sync source {data['name']!r} exists")
            row = SyncSource(**data)
            s.add(row)
            await s.flush()
            view = _view(row)
            audit.add(
                s,
                actor=principal.subject,
                action="create",
                entity="sync-source",
                entity_id=row.id,
                now=now,
                after={k: v for k, v in view.items() if k not in ("last_run_at", "last_result")},
            )
        return view

    async def run(self, source_id: int, principal: Principal, dry_run: bool = False) -> Any:
        self._need_admin(principal)
        async with self.db.session() as s:
            row = await s.get(SyncSource, source_id)
            if row is None:
                raise SyncSourceNotFound(f"no sync source {source_id}", id=source_id)
            kind, name, config = row.kind, row.name, dict(row.config)
        if kind == "ldap":
            result = await self.run_ldap(name, LdapConfig.from_dict(config), principal, dry_run)
        else:
            result = await self.run_calendars(CalendarConfig.from_dict(config), principal, dry_run)
        if not dry_run:
            async with self.db.transaction() as s:
                await s.execute(
                    update(SyncSource)
                    .where(SyncSource.id == source_id)
                    .values(last_run_at=self.service.now(), last_result=_short(result))
                )
        return result

    async def run_ldap(
        self, name: str, config: LdapConfig, principal: Principal, dry_run: bool
    ) -> dict[str, Any]:
        records = await asyncio.to_thread(read_people, config)
        return await self.service.import_records(
            records,
            principal,
            dry_run=dry_run,
            deactivate_missing=config.deactivate_missing,
            sync_source=f"ldap:{name}",
        )

    async def run_calendars(
        self, config: CalendarConfig, principal: Principal, dry_run: bool
    ) -> dict[str, Any]:
        """Read every opted-in person's calendar and bring their calendar diversions in step."""
        now = self.service.now()
        end = now + timedelta(days=config.window_days)
        async with self.db.session() as s:
            people = (
                await s.execute(
                    select(Person.id, Person.calendar_url, Person.calendar_opt_out).where(
                        Person.calendar_url.is_not(None), Person.active.is_(True)
                    )
                )
            ).all()
        result: dict[str, Any] = {"dry_run": dry_run, "people": {}, "errors": {}}
        for pid, url, opted_out in people:
            busy: list[BusyPeriod] = []
            if not opted_out:
                try:
                    busy = await asyncio.to_thread(read_busy, str(url), config, now, end)
                except Exception as e:
                    result["errors"][str(pid)] = str(e)
                    continue
            change = await self.apply_calendar(pid, busy, config.reason, now, dry_run)
            result["people"][str(pid)] = change
        return result

    async def apply_calendar(
        self,
        person_id: int,
        busy: list[BusyPeriod],
        reason: str,
        now: datetime,
        dry_run: bool = False,
    ) -> dict[str, int]:
        """Make the person's open calendar diversions equal ``busy``; returns counts."""
        wanted = {(b.uid, b.start, b.end): b for b in busy}
        async with self.db.transaction() as s:
            rows = list(
                await s.scalars(
                    select(Diversion).where(
                        Diversion.person_id == person_id,
                        Diversion.source == "calendar",
                        Diversion.cleared_at.is_(None),
                    )
                )
            )
            have = {(r.calendar_uid or "", r.valid_from, r.valid_until): r for r in rows}
            stale = [r for key, r in have.items() if key not in wanted and _not_past(r, now)]
            new = [b for key, b in wanted.items() if key not in have]
            if dry_run:
                await s.rollback()
                return {"added": len(new), "removed": len(stale)}
            for r in stale:
                r.cleared_at = now
                r.cleared_by = "calendar"
            for b in new:
                await self.service.diversions.set(
                    s,
                    person_id,
                    DiversionRequest(
                        reason=reason, return_at=b.end, valid_from=b.start, valid_until=b.end
                    ),
                    actor="calendar",
                    now=now,
                    source="calendar",
                    calendar_uid=b.uid,
                )
        if new or stale:
            self.service.publish(
                "diversion.changed", {"person_id": person_id, "source": "calendar"}
            )
        return {"added": len(new), "removed": len(stale)}

    # ---------------------------------------------------------------- periodic

    def start(self, poll_s: float = 30.0) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(poll_s))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run_due(self) -> list[int]:
        """Run every enabled source whose interval has passed; returns their ids."""
        now = self.service.now()
        async with self.db.session() as s:
            rows = list(await s.scalars(select(SyncSource).where(SyncSource.enabled.is_(True))))
        ran = []
        for row in rows:
            if (
                row.last_run_at is None
                or row.last_run_at + timedelta(seconds=row.interval_s) <= now
            ):
                try:
                    await self.run(row.id, SYSTEM)
                except Exception:
                    log.exception("sync source %s failed", row.name)
                    async with self.db.transaction() as s:
                        await s.execute(
                            update(SyncSource)
                            .where(SyncSource.id == row.id)
                            .values(last_run_at=now, last_result={"error": "failed, see log"})
                        )
                ran.append(row.id)
        return ran

    async def _loop(self, poll_s: float) -> None:
        while True:
            try:
                await self.run_due()
            except Exception:
                log.exception("running due sync sources failed")
            await asyncio.sleep(poll_s)


def _not_past(row: Diversion, now: datetime) -> bool:
    return row.valid_until is None or row.valid_until > now


def _short(result: Any) -> dict[str, Any]:
    """A summary small enough to keep on the source row."""
    if not isinstance(result, dict):
        return {}
    out: dict[str, Any] = {}
    for k, v in result.items():
        out[k] = len(v) if isinstance(v, list | dict) else v
    return out
