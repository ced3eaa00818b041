"""Pure parts of import and sync: import plan, LDAP mapping, calendar periods, current diversion."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import icalendar
import pytest

from vaxla.directory import exchange
from vaxla.directory.diversion import DiversionState, Reason, pick_current
from vaxla.directory.errors import InvalidImport
from vaxla.directory.records import PersonRecord
from vaxla.directory.schedule import WeeklyRule
from vaxla.directory.sync.calendar import busy_periods
from vaxla.directory.sync.ldap import LdapConfig, entry_to_record

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def rec(xid: str, **extra: object) -> PersonRecord:
    return PersonRecord.model_validate(
        {"external_id": xid, "first_name": "A", "last_name": xid, **extra}
    )


def test_plan_adds_changes_keeps_and_deactivates() -> None:
    existing = {
        "a": (1, rec("a").normalised()),
        "b": (2, rec("b", room="R1", username="bee", calendar_opt_out=True).normalised()),
        "c": (3, rec("c").normalised()),
    }
    incoming = [rec("a"), rec("b", room="R2"), rec("d")]
    plan = exchange.plan(incoming, existing, deactivate_missing=True)
    assert [r.external_id for r in plan.added] == ["d"]
    assert [(pid, fields) for pid, _, fields in plan.changed] == [(2, ["room"])]
    # The person's own settings survive a source that does not carry them.
    assert plan.changed[0][1].username == "bee" and plan.changed[0][1].calendar_opt_out is True
    assert plan.deactivated == [(3, "c")] and plan.unchanged == 1
    assert exchange.plan(incoming, existing, deactivate_missing=False).deactivated == []


def test_plan_refuses_missing_or_duplicate_ids() -> None:
    with pytest.raises(InvalidImport):
        exchange.plan([PersonRecord(first_name="A", last_name="B")], {}, deactivate_missing=False)
    with pytest.raises(InvalidImport):
        exchange.plan([rec("a"), rec("a")], {}, deactivate_missing=False)


def test_ldap_entry_mapping() -> None:
    config = LdapConfig.from_dict(
        {
            "url": "ldap://127.0.0.1:1",
            "base_dn": "ou=people,dc=x",
            "id_attribute": "entryUUID",
            "unit_prefix": "Växjö kommun",
            "mapping": {
                "username": "sAMAccountName",
                "units": "department",
                "custom.nr": "employeeID",
            },
        }
    )
    record = entry_to_record(
        {
            "entryUUID": ["0f3c"],
            "givenName": ["Åsa"],
            "sn": ["Öberg"],
            "sAMAccountName": ["asaob"],
            "department": ["IT"],
            "telephoneNumber": ["4001"],
            "mobile": ["070-1234567"],
            "employeeID": "777",
        },
        config,
    )
    assert record is not None
    assert record.external_id == "0f3c" and record.username == "asaob"
    assert record.units == ["Växjö kommun/IT"] and record.custom == {"nr": "777"}
    assert [p.kind for p in record.phones] == ["extension", "mobile"]
    assert entry_to_record({"givenName": ["X"], "sn": ["Y"]}, config) is None  # no id
    assert entry_to_record({"entryUUID": ["1"], "sn": ["Y"]}, config) is None  # no first name
    with pytest.raises(InvalidImport):
        LdapConfig.from_dict({"url": "ldap://x", "base_dn": "dc=x", "pasword": "typo"})


def _event(uid: str, start: datetime, end: datetime, **props: str) -> icalendar.Event:
    e = icalendar.Event()
    e.add("uid", uid)
    e.add("dtstart", start)
    e.add("dtend", end)
    for k, v in props.items():
        e.add(k, v)
    return e


def test_busy_periods_skip_free_cancelled_and_out_of_window() -> None:
    window_end = NOW + timedelta(days=7)
    events = [
        _event("m", NOW + timedelta(hours=1), NOW + timedelta(hours=2)),
        _event("free", NOW + timedelta(hours=1), NOW + timedelta(hours=2), transp="TRANSPARENT"),
        _event("gone", NOW + timedelta(hours=3), NOW + timedelta(hours=4), status="CANCELLED"),
        _event("old", NOW - timedelta(days=2), NOW - timedelta(days=2, hours=-1)),
        _event("far", NOW + timedelta(days=9), NOW + timedelta(days=9, hours=1)),
    ]
    periods = busy_periods(events, NOW, window_end)
    assert [(p.uid, p.start, p.end) for p in periods] == [
        ("m", NOW + timedelta(hours=1), NOW + timedelta(hours=2))
    ]


def _state(source: str, reason: Reason, **kw: object) -> DiversionState:
    base: dict[str, object] = {
        "person_id": 1,
        "reason": reason,
        "return_at": None,
        "message": "",
        "target_kind": None,
        "target_value": None,
        "source": source,
        "valid_from": NOW - timedelta(hours=1),
        "valid_until": None,
        "created_by": "x",
        "created_at": NOW,
    }
    base.update(kw)
    return DiversionState(**base)  # type: ignore[arg-type]


def test_pick_current_by_hand_beats_calendar_beats_rule() -> None:
    lunch, meeting, off = (
        Reason(1, "lunch", "Lunch", "Lunch"),
        Reason(2, "meeting", "Möte", "Meeting"),
        Reason(3, "off", "Ledig", "Off"),
    )
    reasons = {r.code: r for r in (lunch, meeting, off)}
    rule = WeeklyRule(9, "absence", frozenset(range(1, 8)), time(0), time(23, 59), "off")
    cal = _state("calendar", meeting, valid_until=NOW + timedelta(hours=1))
    manual = _state("manual", lunch)
    assert pick_current([cal, manual], [rule], reasons, 1, NOW).reason.code == "lunch"  # type: ignore[union-attr]
    assert pick_current([cal], [rule], reasons, 1, NOW).reason.code == "meeting"  # type: ignore[union-attr]
    found = pick_current([], [rule], reasons, 1, NOW)
    assert found is not None and found.source == "schedule" and found.reason.code == "off"
    cleared = _state("manual", lunch, cleared_at=NOW)
    assert pick_current([cleared], [], reasons, 1, NOW) is None
