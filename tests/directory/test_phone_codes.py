"""Diversion set and cleared by keypad codes from the desk phone (R81, R40), on
SQLite and PostgreSQL: who the caller is, what is stored, audited, published and said."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.directory.conftest import ADMIN, OPERATOR, Directory
from vaxla.auth.models import User
from vaxla.directory import audit
from vaxla.directory.diversion import DiversionRequest
from vaxla.directory.phone_codes import DiversionCodeService
from vaxla.directory.records import PersonRecord
from vaxla.directory.schedule import STOCKHOLM
from vaxla.pbx.b2bua import B2BUA

WEDNESDAY_0900 = datetime(2026, 11, 25, 9, 0, tzinfo=STOCKHOLM)


async def person(d: Directory, first: str, extension: str, **extra: object) -> int:
    record = PersonRecord.model_validate(
        {
            "first_name": first,
            "last_name": "Ek",
            "phones": [{"kind": "extension", "number": extension}],
            **extra,
        }
    )
    return int((await d.service.create(record, ADMIN))["id"])


async def current(d: Directory, pid: int) -> dict[str, Any] | None:
    shown: dict[str, Any] | None = (await d.service.diversion(pid, OPERATOR))["diversion"]
    return shown


def changes(d: Directory) -> list[dict[str, Any]]:
    return [e.data for e in d.bus.since(0) if e.topic == "diversion.changed"]


@pytest.fixture
async def anna(directory: Directory) -> int:
    directory.clock.set(WEDNESDAY_0900)
    return await person(directory, "Anna", "5000", username="anna")


async def test_set_with_return_time_refuse_and_clear(directory: Directory, anna: int) -> None:
    codes = DiversionCodeService(directory.service)

    reply = await codes.apply("5000", "*23*1*1300#")
    assert reply.ok and reply.lang == "sv"
    assert reply.text == "Hänvisning: Lunch, tillbaka klockan tretton noll noll."
    shown = await current(directory, anna)
    assert shown is not None and shown["reason"] == "lunch" and shown["source"] == "manual"
    assert shown["return_at"] == datetime(2026, 11, 25, 12, 0, tzinfo=UTC).isoformat()
    assert shown["summary_sv"] == "Lunch, tillbaka 13:00" and shown["set_by"] == "5000"
    [event] = changes(directory)
    assert event["person_id"] == anna
    assert event["diversion"]["reason"] == "lunch"

    # a reason number that does not exist: refused, nothing changes
    reply = await codes.apply("5000", "*23*99#")
    assert not reply.ok and reply.text == "Det finns ingen orsak nummer nittionio."
    assert (await current(directory, anna) or {})["reason"] == "lunch"
    assert len(changes(directory)) == 1
    for bad in ("*23*1*2500#", "*23*1#5", "*23*0#"):
        assert not (await codes.apply("5000", bad)).ok
    assert (await current(directory, anna) or {})["return_at"] == shown["return_at"]

    # a new code replaces the diversion (one current diversion, R46)
    reply = await codes.apply("5000", "*23*2#")
    assert reply.ok and reply.text == "Hänvisning: Möte."
    assert (await current(directory, anna) or {})["reason"] == "meeting"

    reply = await codes.apply("5000", "#23#")
    assert reply.ok and reply.text == "Hänvisningen är borttagen."
    assert await current(directory, anna) is None
    assert changes(directory)[-1] == {"person_id": anna, "diversion": None}
    reply = await codes.apply("5000", "#23#")  # nothing left to clear
    assert reply.ok and reply.text == "Du har ingen hänvisning."
    assert len(changes(directory)) == 3

    async with directory.db.session() as s:
        rows = await audit.entries(s, "diversion", str(anna))
    assert [(r.action, r.actor) for r in rows] == [
        ("clear", "5000"),
        ("set", "5000"),
        ("set", "5000"),
    ]
    assert all((r.after or {}).get("via") == "phone" for r in rows)
    assert rows[-1].after is not None and rows[-1].after["reason"] == "lunch"
    history = await directory.service.diversion_history(anna, OPERATOR)
    assert [h["reason"] for h in history] == ["meeting", "lunch"]


async def test_a_return_time_already_past_means_tomorrow(directory: Directory, anna: int) -> None:
    directory.clock.set(datetime(2026, 11, 25, 17, 0, tzinfo=STOCKHOLM))
    reply = await DiversionCodeService(directory.service).apply("5000", "*23*6*0800#")
    assert reply.text == "Hänvisning: Gått för dagen, tillbaka i morgon klockan åtta noll noll."
    shown = await current(directory, anna) or {}
    assert shown["reason"] == "gone-for-the-day"
    assert shown["return_at"] == datetime(2026, 11, 26, 7, 0, tzinfo=UTC).isoformat()


async def test_who_dialled_must_be_one_person(directory: Directory, anna: int) -> None:
    codes = DiversionCodeService(directory.service)
    # nobody in the directory has 5200
    reply = await codes.apply("5200", "*23*1#")
    assert not reply.ok and reply.text == "Ingen person i katalogen har den här anknytningen."
    # two people share 5100 (R46): a code from it cannot say whose diversion it is
    bo = await person(directory, "Bo", "5100")
    cecilia = await person(directory, "Cecilia", "5100")
    reply = await codes.apply("5100", "*23*1#")
    assert not reply.ok and reply.text.startswith("Flera personer delar anknytningen.")
    assert not (await codes.apply("5100", "#23#")).ok
    assert await current(directory, bo) is None and await current(directory, cecilia) is None
    assert changes(directory) == []
    # once one of them has left (inactive) the extension is the other's
    await directory.service.deactivate(cecilia, ADMIN)
    assert (await codes.apply("5100", "*23*3#")).ok
    assert (await current(directory, bo) or {})["reason"] == "course"


async def test_the_clear_code_leaves_a_weekly_schedule(directory: Directory, anna: int) -> None:
    """A weekly rule is not cleared from the phone (nor the web); the phone says so."""
    from datetime import time

    from vaxla.directory.diversion import RuleRequest

    await directory.service.add_rule(
        RuleRequest("absence", [1, 2, 3, 4, 5], time(8, 0), time(10, 0), "course", person_id=anna),
        OPERATOR,
    )
    await directory.service.set_diversion(anna, DiversionRequest("lunch"), OPERATOR)
    reply = await DiversionCodeService(directory.service).apply("5000", "#23#")
    assert reply.text == "Hänvisningen är borttagen. Enligt schemat gäller fortfarande: Kurs."
    assert (await current(directory, anna) or {})["source"] == "schedule"


async def test_spoken_in_the_users_language(directory: Directory, anna: int) -> None:
    now = directory.service.now()
    async with directory.db.transaction() as s:
        s.add(
            User(
                username="anna",
                person_id=anna,
                extension="5000",
                language="en",
                created_at=now,
                updated_at=now,
            )
        )
    codes = DiversionCodeService(directory.service)
    reply = await codes.apply("5000", "*23*2*1415#")
    assert reply.ok and reply.lang == "en"
    assert reply.text == "Diversion: Meeting, back at 14 15."
    reply = await codes.apply("5000", "*23*42#")
    assert (reply.ok, reply.lang, reply.text) == (False, "en", "There is no reason number 42.")


def test_the_b2bua_asks_the_registered_code_matchers_in_order() -> None:
    b2bua = B2BUA(
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        no_answer_timeout=30,
        trusted_hosts=set(),
        forwarding=object(),  # type: ignore[arg-type]
    )
    asked: list[tuple[str, bool]] = []
    service = object()

    def matcher(dialled: str, trusted: bool) -> object | None:
        asked.append((dialled, trusted))
        return service if dialled == "*23*1#" else None

    b2bua.register_code(matcher)  # type: ignore[arg-type]
    assert b2bua.code_matchers[0] == b2bua._forwarding_code  # forwarding codes first
    assert b2bua._feature_code("*23*1#", trusted=False) is service
    assert b2bua._feature_code("#23#", trusted=True) is None
    assert b2bua._feature_code("1001", trusted=False) is None  # not a code: nobody asked
    assert asked == [("*23*1#", False), ("#23#", True)]
