"""Diversion on SQLite and PostgreSQL: current and history, groups, rules, calendar, messages."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from tests.directory.conftest import ADMIN, EMPLOYEE, OPERATOR, Directory
from vaxla.directory import audit
from vaxla.directory.diversion import DiversionRequest, RuleRequest
from vaxla.directory.errors import InvalidDirectoryInput, NotAllowed, ReasonNotFound
from vaxla.directory.records import PersonRecord
from vaxla.directory.schedule import STOCKHOLM
from vaxla.directory.sync.calendar import BusyPeriod
from vaxla.directory.sync.runner import SyncRunner

WEDNESDAY_0900 = datetime(2026, 11, 25, 9, 0, tzinfo=STOCKHOLM)


async def person(d: Directory, first: str, last: str, **extra: object) -> int:
    record = PersonRecord.model_validate({"first_name": first, "last_name": last, **extra})
    return int((await d.service.create(record, ADMIN))["id"])


@pytest.fixture
async def anna(directory: Directory) -> int:
    directory.clock.set(WEDNESDAY_0900)
    return await person(
        directory,
        "Anna",
        "Ek",
        username="anna",
        groups=["Bygglov"],
        phones=[{"kind": "extension", "number": "5000"}],
    )


async def current(d: Directory, pid: int) -> dict[str, object] | None:
    return (await d.service.diversion(pid, OPERATOR))["diversion"]


async def test_one_current_diversion_and_history(directory: Directory, anna: int) -> None:
    back = datetime(2026, 11, 25, 13, 0, tzinfo=STOCKHOLM)
    await directory.service.set_diversion(anna, DiversionRequest("lunch", return_at=back), EMPLOYEE)
    shown = await current(directory, anna)
    assert shown is not None and shown["summary_sv"] == "Lunch, tillbaka 13:00"
    assert shown["summary_en"] == "Lunch, back at 13:00"
    await directory.service.set_diversion(
        anna, DiversionRequest("meeting", target_kind="operator"), OPERATOR
    )
    shown = await current(directory, anna)
    assert shown is not None and shown["reason"] == "meeting"
    assert shown["summary_sv"] == "Möte, hänvisas till växeln"
    history = await directory.service.diversion_history(anna, OPERATOR)
    assert [h["reason"] for h in history] == ["meeting", "lunch"]
    assert history[1]["cleared_at"] is not None and history[0]["cleared_at"] is None
    topics = [e.topic for e in directory.bus.since(0)]
    assert topics.count("diversion.changed") == 2


async def test_expiry_and_future_diversions(directory: Directory, anna: int) -> None:
    now = WEDNESDAY_0900.astimezone(UTC)
    await directory.service.set_diversion(
        anna,
        DiversionRequest(
            "vacation", valid_from=now + timedelta(days=1), valid_until=now + timedelta(days=8)
        ),
        OPERATOR,
    )
    await directory.service.set_diversion(
        anna, DiversionRequest("meeting", valid_until=now + timedelta(hours=1)), OPERATOR
    )
    assert (await current(directory, anna) or {})["reason"] == "meeting"
    directory.clock.set(now + timedelta(hours=2))
    assert await current(directory, anna) is None
    directory.clock.set(now + timedelta(days=2))
    assert (await current(directory, anna) or {})["reason"] == "vacation"
    directory.clock.set(now + timedelta(days=9))
    assert await current(directory, anna) is None


async def test_only_self_or_operator(directory: Directory, anna: int) -> None:
    other = await person(directory, "Bo", "Ek")
    with pytest.raises(NotAllowed):
        await directory.service.set_diversion(other, DiversionRequest("lunch"), EMPLOYEE)
    with pytest.raises(ReasonNotFound):
        await directory.service.set_diversion(anna, DiversionRequest("nap"), EMPLOYEE)
    with pytest.raises(InvalidDirectoryInput):
        await directory.service.set_diversion(
            anna, DiversionRequest("lunch", target_kind="colleague"), EMPLOYEE
        )


async def test_audit_before_and_after(directory: Directory, anna: int) -> None:
    await directory.service.set_diversion(anna, DiversionRequest("lunch"), EMPLOYEE)
    await directory.service.clear_diversion(anna, OPERATOR)
    async with directory.db.session() as s:
        rows = await audit.entries(s, "diversion", str(anna))
    assert [(r.action, r.actor) for r in rows] == [("clear", "operatör"), ("set", "anna")]
    assert rows[1].before is None and rows[1].after is not None
    assert rows[1].after["reason"] == "lunch"
    assert rows[0].before is not None and rows[0].before["reason"] == "lunch"


async def test_group_diversion_leaves_own_diversions_after_clear(
    directory: Directory, anna: int
) -> None:
    bo = await person(directory, "Bo", "Ek", groups=["Bygglov"])
    groups = {g.name: g.id for g in await _groups(directory)}
    done = await directory.service.set_group_diversion(
        groups["Bygglov"], DiversionRequest("meeting", message="APT"), OPERATOR
    )
    assert done["person_ids"] == sorted([anna, bo])
    assert (await current(directory, bo) or {})["source"] == "group"
    await directory.service.clear_group_diversion(groups["Bygglov"], OPERATOR)
    assert await current(directory, anna) is None and await current(directory, bo) is None


async def _groups(d: Directory) -> list[object]:
    from sqlalchemy import select

    from vaxla.directory.models import Group

    async with d.db.session() as s:
        return list(await s.scalars(select(Group)))


async def test_weekly_rules_for_person_and_group(directory: Directory, anna: int) -> None:
    await directory.service.add_rule(
        RuleRequest("absence", [1, 2, 3, 4, 5], time(12), time(13), "lunch", person_id=anna),
        EMPLOYEE,
    )
    groups = {g.name: g.id for g in await _groups(directory)}  # type: ignore[attr-defined]
    rule = await directory.service.add_rule(
        RuleRequest(
            "working-hours",
            [1, 2, 3, 4, 5],
            time(8),
            time(17),
            "gone-for-the-day",
            group_id=groups["Bygglov"],
        ),
        OPERATOR,
    )
    assert await current(directory, anna) is None  # 09:00 Wednesday: working
    directory.clock.set(datetime(2026, 11, 25, 12, 30, tzinfo=STOCKHOLM))
    lunch = await current(directory, anna)
    assert lunch is not None and lunch["source"] == "schedule" and lunch["reason"] == "lunch"
    directory.clock.set(datetime(2026, 11, 27, 18, 0, tzinfo=STOCKHOLM))  # Friday evening
    evening = await current(directory, anna)
    assert evening is not None and evening["reason"] == "gone-for-the-day"
    assert (
        evening["return_at"]
        == datetime(2026, 11, 30, 8, tzinfo=STOCKHOLM).astimezone(UTC).isoformat()
    )
    # A diversion by hand wins over the rule; the rule holds until it is ended.
    await directory.service.set_diversion(anna, DiversionRequest("sick"), EMPLOYEE)
    assert (await current(directory, anna) or {})["reason"] == "sick"
    await directory.service.clear_diversion(anna, EMPLOYEE)
    assert (await current(directory, anna) or {})["reason"] == "gone-for-the-day"
    await directory.service.end_rule(int(rule["id"]), OPERATOR)
    assert await current(directory, anna) is None


async def test_calendar_periods_become_diversions(directory: Directory, anna: int) -> None:
    runner = SyncRunner(directory.service)
    now = WEDNESDAY_0900.astimezone(UTC)
    meeting = BusyPeriod("m1", now + timedelta(hours=1), now + timedelta(hours=2))
    later = BusyPeriod("m2", now + timedelta(days=1), now + timedelta(days=1, hours=1))
    assert await runner.apply_calendar(anna, [meeting, later], "meeting", now) == {
        "added": 2,
        "removed": 0,
    }
    assert await runner.apply_calendar(anna, [meeting, later], "meeting", now) == {
        "added": 0,
        "removed": 0,
    }
    assert await current(directory, anna) is None
    directory.clock.set(now + timedelta(hours=1, minutes=5))
    shown = await current(directory, anna)
    assert shown is not None and shown["source"] == "calendar"
    assert shown["summary_sv"] == "Möte, tillbaka 11:00"
    # A cancelled meeting disappears at the next sync; manual diversion wins meanwhile.
    await directory.service.set_diversion(anna, DiversionRequest("lunch"), EMPLOYEE)
    assert (await current(directory, anna) or {})["reason"] == "lunch"
    assert await runner.apply_calendar(anna, [meeting], "meeting", now) == {
        "added": 0,
        "removed": 1,
    }


async def test_messages_are_kept_pending(directory: Directory, anna: int) -> None:
    m = await directory.service.leave_message(anna, "Ring Kalle", OPERATOR, caller_number="0470-1")
    assert m.status == "pending" and m.left_by == "operatör"
    listed = await directory.service.messages_for(anna, EMPLOYEE)  # her own
    assert [x.text for x in listed] == ["Ring Kalle"]
    other = await person(directory, "Bo", "Ek")
    with pytest.raises(NotAllowed):
        await directory.service.messages_for(other, EMPLOYEE)
    assert directory.bus.since(0)[-2].topic == "message.left"


async def test_extension_status_shows_registration(directory: Directory, anna: int) -> None:
    await person(directory, "Bo", "Ek", phones=[{"kind": "extension", "number": "5000"}])
    status = await directory.service.extension_status("5000", OPERATOR)
    assert status["registered"] is False and status["closed"] is False
    directory.location.registered.add("5000")
    await directory.service.set_diversion(anna, DiversionRequest("lunch"), EMPLOYEE)
    status = await directory.service.extension_status("5000", OPERATOR)
    assert status["registered"] is True and status["closed"] is False
    assert [p["diversion"] is not None for p in status["people"]] == [True, False]
