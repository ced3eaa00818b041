"""Forwarding in the live status: phone states follow a forwarded call, the
``forwarding.changed`` event is filtered by role, status entries hide external
numbers from those who may not see them."""

from __future__ import annotations

from vaxla.api.auth import Principal
from vaxla.events import BusEvent, EventBus
from vaxla.pbx.forwarding import ForwardingRule, ForwardKind
from vaxla.pbx.forwarding_api import may_manage, may_read, shown_status
from vaxla.web.events import visible
from vaxla.web.presence import PhoneStates


def test_phone_states_follow_a_call_forwarded_while_ringing() -> None:
    bus = EventBus()
    states = PhoneStates(bus, None, lambda: 0.0)
    ring = {"call_id": "c1", "caller": "1001", "state": "ringing"}
    states.on_event(BusEvent(1, "call.state", {**ring, "callee": "1002"}))
    assert states.snapshot(["1001", "1002", "1003"]) == {
        "1001": "busy",
        "1002": "ringing",
        "1003": "free",
    }
    # No answer: the call now rings 1003, and 1002 is free again at once.
    moved = {**ring, "callee": "1003", "forwarded_from": "1002", "forward_kind": "no-answer"}
    states.on_event(BusEvent(2, "call.state", moved))
    assert states.snapshot(["1002", "1003"]) == {"1002": "free", "1003": "ringing"}
    published = [(e.data["extension"], e.data["state"]) for e in bus.since(0)]
    assert ("1002", "free") in published and ("1003", "ringing") in published


def test_forwarding_events_by_role() -> None:
    event = BusEvent(
        1,
        "forwarding.changed",
        {
            "extension": "2010",
            "forwarding": [{"kind": "always", "target": "+46701112233", "external": True}],
            "no_answer_seconds": 20,
            "by": "karl",
        },
    )
    operator = Principal.of("tel", {"operator"}, extension="2001")
    owner = Principal.of("karl", {"employee"}, extension="2010")
    colleague = Principal.of("lisa", {"employee"}, extension="2011")
    assert visible(event, operator) == event.data
    assert visible(event, owner) == event.data
    assert visible(event, colleague) == {"extension": "2010"}


def test_who_may_read_and_change_and_see_external_numbers() -> None:
    owner = Principal.of("karl", {"employee"}, extension="2010")
    operator = Principal.of("tel", {"operator"})
    supervisor = Principal.of("chef", {"supervisor"})
    admin = Principal("api", "admin")
    other = Principal.of("lisa", {"employee"}, extension="2011")
    assert [may_manage(p, "2010") for p in (owner, operator, supervisor, admin, other)] == [
        True,
        True,
        False,
        True,
        False,
    ]
    assert [may_read(p, "2010") for p in (owner, operator, supervisor, admin, other)] == [
        True,
        True,
        True,
        True,
        False,
    ]
    rules = [
        ForwardingRule(ForwardKind.ALWAYS, "2011"),
        ForwardingRule(ForwardKind.BUSY, "+46701112233"),
    ]
    full = shown_status(supervisor, "2010", rules)
    assert full[1] == {"kind": "busy", "target": "+46701112233", "external": True}
    masked = shown_status(other, "2010", rules)
    assert masked == [
        {"kind": "always", "target": "2011", "external": False},
        {"kind": "busy", "target": None, "external": True},
    ]
    assert shown_status(owner, "2010", rules) == full
