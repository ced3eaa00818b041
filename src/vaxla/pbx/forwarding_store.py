"""Call forwarding settings in the database, and the snapshot routing reads.

Every change is written (with its audit row, in the same transaction) before
it is acknowledged, then published on the bus as ``forwarding.changed``.
Routing and status read a snapshot of the whole table, reloaded at most every
``ttl`` seconds: changes made through this store apply at once; changes made
elsewhere (another node, the ``vaxla`` command) within ``ttl``. Every writer in
a node (the REST routes, ``/api/v1/me/forwarding`` included, phone codes,
removing an extension) goes through the PBX's store.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from vaxla.auth import audit
from vaxla.auth.models import CallForwarding
from vaxla.events import EventBus
from vaxla.pbx.forwarding import (
    DEFAULT_NO_ANSWER_SECONDS,
    ForwardingRule,
    ForwardingSettings,
    ForwardKind,
    check_rules,
)
from vaxla.store.db import Database
from vaxla.store.forwarding_models import CallForwardingSettings

log = logging.getLogger("vaxla.forwarding")

TOPIC = "forwarding.changed"

#: The first store made on each database in this process: the PBX's, whose
#: snapshot routing reads (see :func:`serving`).
_SERVING: weakref.WeakKeyDictionary[Database, ForwardingStore] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, slots=True)
class StoredForwarding:
    settings: ForwardingSettings
    updated_at: datetime | None = None
    updated_by: str | None = None


def rule_json(rule: ForwardingRule) -> dict[str, Any]:
    return {
        "kind": rule.kind.value,
        "target": rule.target,
        "enabled": rule.enabled,
        "external": rule.external,
    }


def status_json(settings: ForwardingSettings | None) -> list[dict[str, Any]]:
    """The forwarding an extension's status shows: its enabled rules."""
    if settings is None:
        return []
    return [
        {"kind": r.kind.value, "target": r.target, "external": r.external}
        for r in settings.active()
    ]


def _settings_json(settings: ForwardingSettings) -> dict[str, Any]:
    return {
        "rules": [rule_json(r) for r in settings.rules],
        "no_answer_seconds": settings.no_answer_seconds,
    }


def _rules_from(rows: Sequence[CallForwarding]) -> tuple[ForwardingRule, ...]:
    by_kind: dict[ForwardKind, ForwardingRule] = {}
    for row in rows:
        try:
            kind = ForwardKind(row.kind)
        except ValueError:
            continue
        by_kind[kind] = ForwardingRule(kind, row.target, row.enabled)
    return tuple(by_kind[k] for k in ForwardKind if k in by_kind)


class ForwardingStore:
    def __init__(
        self,
        db: Database,
        *,
        ttl: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.db = db
        self.ttl = ttl
        self.monotonic = monotonic
        self.now = now
        self.bus: EventBus | None = None
        self._table: dict[str, ForwardingSettings] = {}
        self._fresh_until = -math.inf
        self._loading: asyncio.Future[None] | None = None
        self._generation = 0
        _SERVING.setdefault(db, self)

    # ------------------------------------------------------------ reading

    async def table(self) -> Mapping[str, ForwardingSettings]:
        """Every extension's settings, at most ``ttl`` seconds old.

        When the database cannot be read the last snapshot is used (calls
        still go through, perhaps without a forwarding set moments ago)."""
        if self.monotonic() < self._fresh_until:
            return self._table
        if self._loading is None:
            self._loading = asyncio.ensure_future(self._load())
        try:
            await asyncio.shield(self._loading)
        except Exception:
            log.exception("reading call forwarding failed; using the last snapshot")
        return self._table

    def cached(self, extension: str) -> ForwardingSettings | None:
        """The snapshot's settings of ``extension`` (None: no forwarding at all)."""
        return self._table.get(extension)

    async def _load(self) -> None:
        generation = self._generation
        try:
            async with self.db.session() as s:
                rows = list(await s.scalars(select(CallForwarding)))
                opts = list(await s.scalars(select(CallForwardingSettings)))
            grouped: dict[str, list[CallForwarding]] = {}
            for row in rows:
                grouped.setdefault(row.extension, []).append(row)
            seconds = {o.extension: o.no_answer_seconds for o in opts}
            table = {
                ext: ForwardingSettings(
                    ext,
                    _rules_from(grouped.get(ext, [])),
                    seconds.get(ext, DEFAULT_NO_ANSWER_SECONDS),
                )
                for ext in set(grouped) | set(seconds)
            }
            if generation == self._generation:  # no write of ours raced the read
                self._table = table
                self._fresh_until = self.monotonic() + self.ttl
        finally:
            self._loading = None

    async def get(self, extension: str) -> StoredForwarding:
        """The extension's settings as stored now (not the snapshot)."""
        async with self.db.session() as s:
            return await self._read(s, extension)

    async def _read(self, s: AsyncSession, extension: str) -> StoredForwarding:
        rows = list(
            await s.scalars(select(CallForwarding).where(CallForwarding.extension == extension))
        )
        opt = await s.get(CallForwardingSettings, extension)
        settings = ForwardingSettings(
            extension,
            _rules_from(rows),
            opt.no_answer_seconds if opt is not None else DEFAULT_NO_ANSWER_SECONDS,
        )
        stamps = [(r.updated_at, r.updated_by) for r in rows]
        if opt is not None:
            stamps.append((opt.updated_at, opt.updated_by))
        at, by = max(stamps, key=lambda x: x[0]) if stamps else (None, None)
        return StoredForwarding(settings, at, by)

    # ------------------------------------------------------------ changing

    async def replace(
        self,
        extension: str,
        rules: Sequence[ForwardingRule],
        no_answer_seconds: int | None = None,
        *,
        actor: str,
        via: str = "api",
    ) -> StoredForwarding:
        """Replace every rule (and the no-answer time, when given)."""

        def change(before: ForwardingSettings) -> ForwardingSettings:
            seconds = before.no_answer_seconds if no_answer_seconds is None else no_answer_seconds
            ordered = tuple(sorted(rules, key=lambda r: list(ForwardKind).index(r.kind)))
            return ForwardingSettings(extension, ordered, seconds)

        return await self._write(extension, change, actor=actor, action="set-forwarding", via=via)

    async def set_rule(
        self,
        extension: str,
        kind: ForwardKind,
        *,
        target: str | None = None,
        enabled: bool = True,
        actor: str,
        via: str = "api",
    ) -> StoredForwarding:
        """Set one rule; without ``target`` the stored one is kept (enable/disable).

        Raises :class:`LookupError` when there is no stored target to keep."""

        def change(before: ForwardingSettings) -> ForwardingSettings:
            old = next((r for r in before.rules if r.kind is kind), None)
            new_target = target if target is not None else (old.target if old else None)
            if new_target is None:
                raise LookupError(kind)
            others = [r for r in before.rules if r.kind is not kind]
            rules = [*others, ForwardingRule(kind, new_target, enabled)]
            rules.sort(key=lambda r: list(ForwardKind).index(r.kind))
            return replace(before, rules=tuple(rules))

        action = "set-forwarding" if enabled else "disable-forwarding"
        return await self._write(extension, change, actor=actor, action=action, via=via)

    async def remove_rule(
        self, extension: str, kind: ForwardKind | None, *, actor: str, via: str = "api"
    ) -> StoredForwarding:
        """Erase one rule, or every rule (``kind`` None; the no-answer time too)."""

        def change(before: ForwardingSettings) -> ForwardingSettings:
            if kind is None:
                return ForwardingSettings(extension)
            return replace(before, rules=tuple(r for r in before.rules if r.kind is not kind))

        return await self._write(extension, change, actor=actor, action="clear-forwarding", via=via)

    async def disable_all(
        self, extension: str, *, actor: str, via: str = "api"
    ) -> StoredForwarding:
        """Switch every rule off, keeping the targets (``#002#``)."""

        def change(before: ForwardingSettings) -> ForwardingSettings:
            return replace(before, rules=tuple(replace(r, enabled=False) for r in before.rules))

        return await self._write(
            extension, change, actor=actor, action="disable-forwarding", via=via
        )

    async def forget_extension(
        self, extension: str, *, actor: str, via: str = "extension-removed"
    ) -> list[str]:
        """Erase what forwarding knows of a removed extension; returns the
        extensions whose settings changed (the removed one first, if it had any).

        The removed extension's own rules and ring time go. Rules of OTHER
        extensions that forward to it are erased too (not kept as
        "target unknown"): a call that reaches a forwarding target that does
        not exist ends with 480, so a kept rule would make its owner
        unreachable (CFU) or turn a busy/no-answer call into a failure, and a
        number given out again later would receive calls meant for someone
        else. Each change is audited (``clear-forwarding``, ``via``
        ``extension-removed``, the old rules in ``before``, so they can be
        restored) and published as ``forwarding.changed`` like any other.
        """
        now = self.now()
        changes: list[ForwardingSettings] = []
        async with self.db.transaction() as s:
            own = await self._read(s, extension)
            if own.updated_at is not None:  # any rule or a ring time stored
                after = ForwardingSettings(extension)
                await self._store(s, own.settings, after, actor, "clear-forwarding", via, now)
                changes.append(after)
            pointing = await s.scalars(
                select(CallForwarding.extension)
                .where(CallForwarding.target == extension, CallForwarding.extension != extension)
                .distinct()
            )
            for other in sorted(set(pointing)):
                before = (await self._read(s, other)).settings
                after = replace(
                    before, rules=tuple(r for r in before.rules if r.target != extension)
                )
                await self._store(s, before, after, actor, "clear-forwarding", via, now)
                changes.append(after)
        for after in changes:
            self._applied(after, actor)
        return [c.extension for c in changes]

    async def _write(
        self,
        extension: str,
        change: Callable[[ForwardingSettings], ForwardingSettings],
        *,
        actor: str,
        action: str,
        via: str,
    ) -> StoredForwarding:
        now = self.now()
        async with self.db.transaction() as s:
            before = (await self._read(s, extension)).settings
            after = change(before)
            check_rules(extension, after.rules)
            await self._store(s, before, after, actor, action, via, now)
        self._applied(after, actor)
        return StoredForwarding(after, now, actor)

    async def _store(
        self,
        s: AsyncSession,
        before: ForwardingSettings,
        after: ForwardingSettings,
        actor: str,
        action: str,
        via: str,
        now: datetime,
    ) -> None:
        """Write ``after`` over the extension's rows, with its audit row."""
        extension = after.extension
        await s.execute(delete(CallForwarding).where(CallForwarding.extension == extension))
        s.add_all(
            CallForwarding(
                extension=extension,
                kind=r.kind.value,
                target=r.target,
                enabled=r.enabled,
                updated_at=now,
                updated_by=actor[:100],
            )
            for r in after.rules
        )
        opt = await s.get(CallForwardingSettings, extension)
        if not after.rules and after.no_answer_seconds == DEFAULT_NO_ANSWER_SECONDS:
            if opt is not None:
                await s.delete(opt)
        elif opt is None:
            s.add(
                CallForwardingSettings(
                    extension=extension,
                    no_answer_seconds=after.no_answer_seconds,
                    updated_at=now,
                    updated_by=actor[:100],
                )
            )
        else:
            opt.no_answer_seconds = after.no_answer_seconds
            opt.updated_at, opt.updated_by = now, actor[:100]
        audit.record(
            s,
            actor=actor,
            action=action,
            entity="extension",
            entity_id=extension,
            before=_settings_json(before),
            after={**_settings_json(after), "via": via},
            now=now,
        )

    def _applied(self, after: ForwardingSettings, actor: str) -> None:
        """A committed change: into the snapshot at once, onto the bus, into the log."""
        extension = after.extension
        self._generation += 1
        if after.rules or after.no_answer_seconds != DEFAULT_NO_ANSWER_SECONDS:
            self._table[extension] = after
        else:
            self._table.pop(extension, None)
        if self.bus is not None:
            self.bus.publish(
                TOPIC,
                {
                    "extension": extension,
                    "forwarding": status_json(after),
                    "no_answer_seconds": after.no_answer_seconds,
                    "by": actor,
                },
            )
        log.info(
            "call forwarding changed",
            extra={"extension": extension, "forwarding": status_json(after), "by": actor},
        )


def serving(db: Database, bus: EventBus | None = None) -> ForwardingStore:
    """The store that serves ``db`` in this process (the PBX's, so that a
    change made through it reaches routing at once), or a new one publishing
    on ``bus`` when there is none (e.g. the ``vaxla`` command)."""
    store = _SERVING.get(db)
    if store is None:
        store = ForwardingStore(db)
    if store.bus is None:
        store.bus = bus
    return store


async def active_forwarding(
    db: Database, extensions: Iterable[str]
) -> dict[str, tuple[ForwardingRule, ...]]:
    """The forwarding in force of each of ``extensions`` that has any, read now
    (for status views outside the PBX, e.g. directory search results)."""
    wanted = sorted({e for e in extensions if e})
    if not wanted:
        return {}
    async with db.session() as s:
        rows = list(
            await s.scalars(
                select(CallForwarding).where(
                    CallForwarding.extension.in_(wanted), CallForwarding.enabled.is_(True)
                )
            )
        )
    grouped: dict[str, list[CallForwarding]] = {}
    for row in rows:
        grouped.setdefault(row.extension, []).append(row)
    return {ext: _rules_from(found) for ext, found in grouped.items()}
