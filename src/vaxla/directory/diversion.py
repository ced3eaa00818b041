"""Diversion (hänvisning): a person's current absence, its history, group and schedule.

A person has at most one *current* diversion. Rows are never deleted:
clearing or replacing a diversion stamps ``cleared_at``. What is current at
a moment is decided by :func:`pick_current` from the open rows and the
absence rules, with the time passed in: a diversion set by hand (or for the
person's group) wins over one read from the calendar, which wins over the
weekly rules.
"""

from __future__ import annotations

import time as _time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import BindParameter, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from vaxla.directory import audit
from vaxla.directory.errors import (
    GroupNotFound,
    InvalidDirectoryInput,
    PersonNotFound,
    ReasonNotFound,
    RuleNotFound,
)
from vaxla.directory.models import (
    AbsenceRule,
    Diversion,
    DiversionReason,
    Group,
    GroupMember,
    Person,
)
from vaxla.directory.schedule import STOCKHOLM, HolidayTest, WeeklyRule, evaluate
from vaxla.directory.schedule import swedish_public_holiday as _holiday
from vaxla.directory.texts import Language, text

TargetKind = Literal["operator", "colleague", "voicemail", "mobile"]
TARGET_KINDS = ("operator", "colleague", "voicemail", "mobile")
SOURCE_PRIORITY = {"manual": 3, "group": 3, "calendar": 2, "schedule": 1}


@dataclass(frozen=True, slots=True)
class Reason:
    id: int
    code: str
    label_sv: str
    label_en: str
    position: int = 0
    active: bool = True


def numbered_reasons(reasons: Iterable[Reason]) -> list[Reason]:
    """The active reasons in the order users see them, numbered from 1: the number
    keyed in the phone code ``*23*<n>#`` is item ``n - 1``."""
    return sorted((r for r in reasons if r.active), key=lambda r: (r.position, r.id))


@dataclass(frozen=True, slots=True)
class DiversionRequest:
    """What a person or operator asks for."""

    reason: str  # a reason code
    return_at: datetime | None = None
    message: str = ""
    target_kind: str | None = None
    target_value: str | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class DiversionState:
    """A diversion in force (or in the history): from a row, or from a weekly rule."""

    person_id: int
    reason: Reason
    return_at: datetime | None
    message: str
    target_kind: str | None
    target_value: str | None
    source: str  # manual | group | calendar | schedule
    valid_from: datetime | None
    valid_until: datetime | None
    created_by: str
    created_at: datetime | None
    id: int | None = None
    group_id: int | None = None
    rule_id: int | None = None
    cleared_at: datetime | None = None
    cleared_by: str | None = None

    def summary(self, lang: Language = "sv", now: datetime | None = None) -> str:
        """``"Möte, tillbaka 13:00, hänvisas till växeln"`` (times in Stockholm)."""
        parts = [self.reason.label_sv if lang == "sv" else self.reason.label_en]
        if self.return_at is not None:
            local = self.return_at.astimezone(STOCKHOLM)
            same_day = now is not None and now.astimezone(STOCKHOLM).date() == local.date()
            if same_day:
                parts.append(text("back-at", lang, time=local.strftime("%H:%M")))
            else:
                parts.append(
                    text(
                        "back-on",
                        lang,
                        date=local.strftime("%Y-%m-%d"),
                        time=local.strftime("%H:%M"),
                    )
                )
        if self.message:
            parts.append(self.message)
        if self.target_kind:
            parts.append(text(f"target-{self.target_kind}", lang, value=self.target_value or ""))
        return ", ".join(parts)


def _effective(row: DiversionState, now: datetime) -> bool:
    if row.cleared_at is not None:
        return False
    if row.valid_from is not None and row.valid_from > now:
        return False
    return row.valid_until is None or row.valid_until > now


def pick_current(
    rows: Iterable[DiversionState],
    rules: Iterable[WeeklyRule],
    reasons: dict[str, Reason],
    person_id: int,
    now: datetime,
    is_holiday: HolidayTest = _holiday,
) -> DiversionState | None:
    """The diversion in force at ``now``: by hand > calendar > weekly rule; newest first."""
    live = [r for r in rows if _effective(r, now)]
    if live:
        return max(
            live,
            key=lambda r: (SOURCE_PRIORITY.get(r.source, 0), r.valid_from or now, r.id or 0),
        )
    absence = evaluate(rules, now, is_holiday)
    if absence is None or absence.rule.reason_code not in reasons:
        return None
    rule = absence.rule
    return DiversionState(
        person_id=person_id,
        reason=reasons[rule.reason_code],
        return_at=absence.until,
        message=rule.message,
        target_kind=None,
        target_value=None,
        source="schedule",
        valid_from=None,
        valid_until=absence.until,
        created_by="schedule",
        created_at=None,
        rule_id=rule.rule_id,
    )


def _state(row: Diversion, reason: Reason) -> DiversionState:
    return DiversionState(
        person_id=row.person_id,
        reason=reason,
        return_at=row.return_at,
        message=row.message,
        target_kind=row.target_kind,
        target_value=row.target_value,
        source=row.source,
        valid_from=row.valid_from,
        valid_until=row.valid_until,
        created_by=row.created_by,
        created_at=row.created_at,
        id=row.id,
        group_id=row.group_id,
        cleared_at=row.cleared_at,
        cleared_by=row.cleared_by,
    )


def audit_view(state: DiversionState | None) -> dict[str, Any] | None:
    if state is None:
        return None
    return {
        "reason": state.reason.code,
        "return_at": state.return_at.isoformat() if state.return_at else None,
        "message": state.message,
        "target_kind": state.target_kind,
        "target_value": state.target_value,
        "source": state.source,
        "valid_from": state.valid_from.isoformat() if state.valid_from else None,
        "valid_until": state.valid_until.isoformat() if state.valid_until else None,
    }


@dataclass(frozen=True, slots=True)
class RuleRequest:
    kind: str
    weekdays: Sequence[int]
    start: Any  # datetime.time
    end: Any
    reason: str
    message: str = ""
    person_id: int | None = None
    group_id: int | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None


# Built once (the ids are an expanding parameter): searches run these for every result page.
_PIDS: BindParameter[list[int]] = bindparam("pids", expanding=True)
_OPEN_DIVERSIONS = select(Diversion.__table__).where(
    Diversion.__table__.c.person_id.in_(_PIDS), Diversion.__table__.c.cleared_at.is_(None)
)
_RULES_FOR = select(AbsenceRule.__table__).where(
    or_(
        AbsenceRule.__table__.c.person_id.in_(_PIDS),
        AbsenceRule.__table__.c.group_id.in_(
            select(GroupMember.group_id).where(GroupMember.person_id.in_(_PIDS))
        ),
    )
)


def _with_via(view: dict[str, Any] | None, via: str | None) -> dict[str, Any] | None:
    """An audit view noting how the change was made (None: the usual way, said nowhere)."""
    if via is None:
        return view
    return {**(view or {}), "via": via}


class Diversions:
    def __init__(self, is_holiday: HolidayTest = _holiday, ttl: float = 5.0) -> None:
        self.is_holiday = is_holiday
        self.ttl = ttl
        self._reasons: dict[str, Reason] | None = None
        self._loaded = 0.0

    # ------------------------------------------------------------- reasons

    def invalidate(self) -> None:
        self._reasons = None

    async def reasons(self, s: AsyncSession) -> dict[str, Reason]:
        """Every reason by code (retired ones included, for history)."""
        return await s.run_sync(self.reasons_sync)

    async def reason(self, s: AsyncSession, code: str, *, usable: bool = True) -> Reason:
        found = (await self.reasons(s)).get(code)
        if found is None or (usable and not found.active):
            raise ReasonNotFound(f"no diversion reason {code!r}", code=code)
        return found

    async def _by_id(self, s: AsyncSession) -> dict[int, Reason]:
        return await s.run_sync(self._by_id_sync)

    async def current_for(
        self, s: AsyncSession, person_ids: Sequence[int], now: datetime
    ) -> dict[int, DiversionState]:
        """The diversion in force for each person that has one."""
        return await s.run_sync(lambda ss: self.current_for_sync(ss, person_ids, now))

    def reasons_sync(self, s: Session) -> dict[str, Reason]:
        """Every reason by code (retired ones included, for history)."""
        if self._reasons is None or _time.monotonic() - self._loaded > self.ttl:
            rows = s.scalars(select(DiversionReason).order_by(DiversionReason.position))
            self._reasons = {
                r.code: Reason(r.id, r.code, r.label_sv, r.label_en, r.position, r.active)
                for r in rows
            }
            self._loaded = _time.monotonic()
        return self._reasons

    def _by_id_sync(self, s: Session) -> dict[int, Reason]:
        return {r.id: r for r in (self.reasons_sync(s)).values()}

    # ------------------------------------------------------------- reading

    def current_for_sync(
        self, s: Session, person_ids: Sequence[int], now: datetime
    ) -> dict[int, DiversionState]:
        """The diversion in force for each person that has one."""
        if not person_ids:
            return {}
        by_id = self._by_id_sync(s)
        reasons = self.reasons_sync(s)
        rows: dict[int, list[DiversionState]] = defaultdict(list)
        for row in s.connection().execute(_OPEN_DIVERSIONS, {"pids": list(person_ids)}):
            rows[row.person_id].append(_state(row, by_id[row.reason_id]))  # type: ignore[arg-type]
        rules = self._rules_for_sync(s, person_ids, by_id)
        out: dict[int, DiversionState] = {}
        for pid in person_ids:
            found = pick_current(rows[pid], rules[pid], reasons, pid, now, self.is_holiday)
            if found is not None:
                out[pid] = found
        return out

    def _rules_for_sync(
        self, s: Session, person_ids: Sequence[int], by_id: dict[int, Reason]
    ) -> dict[int, list[WeeklyRule]]:
        found = list(s.connection().execute(_RULES_FOR, {"pids": list(person_ids)}))
        groups: dict[int, list[int]] = defaultdict(list)
        group_ids = {r.group_id for r in found if r.group_id is not None}
        if group_ids:
            for gid, pid in s.connection().execute(
                select(GroupMember.group_id, GroupMember.person_id).where(
                    GroupMember.person_id.in_(person_ids), GroupMember.group_id.in_(group_ids)
                )
            ):
                groups[gid].append(pid)
        out: dict[int, list[WeeklyRule]] = defaultdict(list)
        for rule in found:
            weekly = WeeklyRule(
                rule.id,
                rule.kind,
                frozenset(rule.weekdays),
                rule.start_time,
                rule.end_time,
                by_id[rule.reason_id].code,
                rule.message,
                rule.valid_from,
                rule.valid_until,
            )
            targets = [rule.person_id] if rule.person_id is not None else groups[rule.group_id or 0]
            for pid in targets:
                out[pid].append(weekly)
        return out

    async def history(
        self, s: AsyncSession, person_id: int, limit: int = 50
    ) -> list[DiversionState]:
        by_id = await self._by_id(s)
        rows = await s.scalars(
            select(Diversion)
            .where(Diversion.person_id == person_id)
            .order_by(Diversion.id.desc())
            .limit(limit)
        )
        return [_state(r, by_id[r.reason_id]) for r in rows]

    # ------------------------------------------------------------- writing

    async def _validate(self, s: AsyncSession, req: DiversionRequest, now: datetime) -> Reason:
        reason = await self.reason(s, req.reason)
        if req.target_kind is not None and req.target_kind not in TARGET_KINDS:
            raise InvalidDirectoryInput(
                f"unknown target {req.target_kind!r}", allowed=list(TARGET_KINDS)
            )
        if req.target_kind in ("colleague", "mobile") and not req.target_value:
            raise InvalidDirectoryInput(
                f"a {req.target_kind} target needs a value (a number or an extension)",
                target_kind=req.target_kind,
            )
        start = req.valid_from or now
        if req.valid_until is not None and req.valid_until <= start:
            raise InvalidDirectoryInput("valid_until is not after valid_from")
        return reason

    async def set(
        self,
        s: AsyncSession,
        person_id: int,
        req: DiversionRequest,
        *,
        actor: str,
        now: datetime,
        source: str = "manual",
        group_id: int | None = None,
        calendar_uid: str | None = None,
        via: str | None = None,
    ) -> DiversionState:
        """Set a person's diversion; one in force now replaces the one they had.

        ``via``: how it was set ("phone" ...), kept in the audit entry."""
        if await s.get(Person, person_id) is None:
            raise PersonNotFound(f"no person {person_id}", id=person_id)
        reason = await self._validate(s, req, now)
        before = (await self.current_for(s, [person_id], now)).get(person_id)
        start = req.valid_from or now
        if start <= now and source in ("manual", "group"):
            await self._close(s, person_id, actor, now, sources=("manual", "group"))
        row = Diversion(
            person_id=person_id,
            reason_id=reason.id,
            return_at=req.return_at,
            message=req.message,
            target_kind=req.target_kind,
            target_value=req.target_value,
            source=source,
            group_id=group_id,
            calendar_uid=calendar_uid,
            created_by=actor,
            created_at=now,
            valid_from=start,
            valid_until=req.valid_until,
        )
        s.add(row)
        await s.flush()
        state = _state(row, reason)
        audit.add(
            s,
            actor=actor,
            action="set",
            entity="diversion",
            entity_id=person_id,
            now=now,
            before=audit_view(before),
            after=_with_via(audit_view(state), via),
        )
        return state

    async def _close(
        self,
        s: AsyncSession,
        person_id: int,
        actor: str,
        now: datetime,
        sources: Sequence[str],
        group_id: int | None = None,
    ) -> int:
        """Clear the open rows in force now (future ones stay)."""
        query = (
            update(Diversion)
            .where(
                Diversion.person_id == person_id,
                Diversion.cleared_at.is_(None),
                Diversion.valid_from <= now,
                Diversion.source.in_(sources),
            )
            .values(cleared_at=now, cleared_by=actor)
        )
        if group_id is not None:
            query = query.where(Diversion.group_id == group_id)
        result = await s.execute(query)
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def clear(
        self,
        s: AsyncSession,
        person_id: int,
        *,
        actor: str,
        now: datetime,
        via: str | None = None,
    ) -> DiversionState | None:
        """Clear what is in force now (by hand, group or calendar); returns what was."""
        if await s.get(Person, person_id) is None:
            raise PersonNotFound(f"no person {person_id}", id=person_id)
        before = (await self.current_for(s, [person_id], now)).get(person_id)
        closed = await self._close(s, person_id, actor, now, ("manual", "group", "calendar"))
        if closed:
            audit.add(
                s,
                actor=actor,
                action="clear",
                entity="diversion",
                entity_id=person_id,
                now=now,
                before=audit_view(before),
                after=_with_via(None, via),
            )
        return before if closed else None

    async def members(self, s: AsyncSession, group_id: int) -> list[int]:
        if await s.get(Group, group_id) is None:
            raise GroupNotFound(f"no group {group_id}", id=group_id)
        rows = await s.scalars(
            select(GroupMember.person_id)
            .join(Person, Person.id == GroupMember.person_id)
            .where(GroupMember.group_id == group_id, Person.active.is_(True))
            .order_by(GroupMember.person_id)
        )
        return list(rows)

    async def set_group(
        self, s: AsyncSession, group_id: int, req: DiversionRequest, *, actor: str, now: datetime
    ) -> dict[int, DiversionState]:
        """A common diversion for every active member of a group, in one transaction."""
        out = {}
        for pid in await self.members(s, group_id):
            out[pid] = await self.set(
                s, pid, req, actor=actor, now=now, source="group", group_id=group_id
            )
        return out

    async def clear_group(
        self, s: AsyncSession, group_id: int, *, actor: str, now: datetime
    ) -> list[int]:
        """Clear the group's common diversion (what members set themselves stays)."""
        cleared = []
        for pid in await self.members(s, group_id):
            if await self._close(s, pid, actor, now, ("group",), group_id=group_id):
                cleared.append(pid)
                audit.add(
                    s,
                    actor=actor,
                    action="clear-group",
                    entity="diversion",
                    entity_id=pid,
                    now=now,
                    after={"group_id": group_id},
                )
        return cleared

    # ------------------------------------------------------------- weekly rules

    async def add_rule(
        self, s: AsyncSession, req: RuleRequest, *, actor: str, now: datetime
    ) -> AbsenceRule:
        if (req.person_id is None) == (req.group_id is None):
            raise InvalidDirectoryInput("a rule is for one person or one group")
        if req.kind not in ("absence", "working-hours"):
            raise InvalidDirectoryInput(f"unknown rule kind {req.kind!r}")
        days = sorted(set(req.weekdays))
        if not days or any(d < 1 or d > 7 for d in days):
            raise InvalidDirectoryInput("weekdays are ISO numbers 1 (Monday) to 7 (Sunday)")
        if req.start >= req.end:
            raise InvalidDirectoryInput("the window's start is not before its end")
        if req.person_id is not None and await s.get(Person, req.person_id) is None:
            raise PersonNotFound(f"no person {req.person_id}", id=req.person_id)
        if req.group_id is not None and await s.get(Group, req.group_id) is None:
            raise GroupNotFound(f"no group {req.group_id}", id=req.group_id)
        reason = await self.reason(s, req.reason)
        rule = AbsenceRule(
            person_id=req.person_id,
            group_id=req.group_id,
            kind=req.kind,
            weekdays=days,
            start_time=req.start,
            end_time=req.end,
            reason_id=reason.id,
            message=req.message,
            valid_from=req.valid_from or now,
            valid_until=req.valid_until,
            created_by=actor,
        )
        s.add(rule)
        await s.flush()
        audit.add(
            s,
            actor=actor,
            action="create",
            entity="absence-rule",
            entity_id=rule.id,
            now=now,
            after=rule_view(rule, reason.code),
        )
        return rule

    async def rules(
        self, s: AsyncSession, person_id: int | None = None, group_id: int | None = None
    ) -> list[tuple[AbsenceRule, str]]:
        by_id = await self._by_id(s)
        query = select(AbsenceRule).order_by(AbsenceRule.id)
        if person_id is not None:
            query = query.where(AbsenceRule.person_id == person_id)
        if group_id is not None:
            query = query.where(AbsenceRule.group_id == group_id)
        return [(r, by_id[r.reason_id].code) for r in await s.scalars(query)]

    async def end_rule(self, s: AsyncSession, rule_id: int, *, actor: str, now: datetime) -> None:
        """End a rule now (it stays in the history)."""
        rule = await s.get(AbsenceRule, rule_id)
        if rule is None:
            raise RuleNotFound(f"no absence rule {rule_id}", id=rule_id)
        before = rule_view(rule, "")
        rule.valid_until = now
        audit.add(
            s,
            actor=actor,
            action="end",
            entity="absence-rule",
            entity_id=rule_id,
            now=now,
            before=before,
            after=rule_view(rule, ""),
        )


def rule_view(rule: AbsenceRule, reason_code: str) -> dict[str, Any]:
    return {
        "person_id": rule.person_id,
        "group_id": rule.group_id,
        "kind": rule.kind,
        "weekdays": list(rule.weekdays),
        "start": rule.start_time.isoformat(),
        "end": rule.end_time.isoformat(),
        "reason": reason_code,
        "message": rule.message,
        "valid_until": rule.valid_until.isoformat() if rule.valid_until else None,
    }


__all__ = [
    "DiversionRequest",
    "DiversionState",
    "Diversions",
    "Reason",
    "RuleRequest",
    "pick_current",
]
