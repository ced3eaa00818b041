"""The pure call forwarding rules: which rule applies, loops, hops, targets, codes."""

from __future__ import annotations

import pytest

from vaxla.errors import InvalidInput
from vaxla.pbx.forwarding import (
    MAX_HOPS,
    CallPath,
    Diversion,
    ForwardingRule,
    ForwardingSettings,
    ForwardingTargetInvalid,
    ForwardingTargetUnknown,
    ForwardingToSelf,
    ForwardKind,
    Refusal,
    StarCode,
    check_rules,
    diversion_hops,
    kind_for_failure,
    next_step,
    normalise_target,
    parse_star_code,
    resolve,
)
from vaxla.sip.uri import NameAddr

ALWAYS, BUSY, NO_ANSWER, UNREACHABLE = (
    ForwardKind.ALWAYS,
    ForwardKind.BUSY,
    ForwardKind.NO_ANSWER,
    ForwardKind.UNREACHABLE,
)


def fwd(
    ext: str, *rules: tuple[ForwardKind, str] | tuple[ForwardKind, str, bool]
) -> ForwardingSettings:
    return ForwardingSettings(ext, tuple(ForwardingRule(*r) for r in rules))


def table(*settings: ForwardingSettings) -> dict[str, ForwardingSettings]:
    return {s.extension: s for s in settings}


def everyone_registered(_: str) -> bool:
    return True


# ---------------------------------------------------------------- which rule applies


def test_unconditional_forwarding_moves_the_call_before_anything_rings() -> None:
    found = resolve(table(fwd("1002", (ALWAYS, "1003"))), CallPath("1002"), everyone_registered)
    assert found.target == "1003"
    assert found.steps == (Diversion("1002", "1003", ALWAYS),)
    assert found.refused is None


def test_conditional_rules_do_not_apply_before_ringing() -> None:
    settings = fwd("1002", (BUSY, "1003"), (NO_ANSWER, "1004"))
    found = resolve(table(settings), CallPath("1002"), everyone_registered)
    assert found.target == "1002" and found.steps == ()


def test_not_reachable_applies_only_without_a_registered_phone() -> None:
    t = table(fwd("1002", (UNREACHABLE, "+46701234567")))
    assert resolve(t, CallPath("1002"), everyone_registered).target == "1002"
    found = resolve(t, CallPath("1002"), lambda ext: ext != "1002")
    assert found.target == "+46701234567"
    assert found.steps[0].kind is UNREACHABLE


def test_unconditional_wins_over_not_reachable() -> None:
    t = table(fwd("1002", (ALWAYS, "1003"), (UNREACHABLE, "1004")))
    assert resolve(t, CallPath("1002"), lambda _: False).target == "1003"


def test_disabled_rules_are_kept_but_do_nothing() -> None:
    settings = fwd("1002", (ALWAYS, "1003", False), (BUSY, "1004"))
    assert settings.rule(ALWAYS) is None
    assert [r.kind for r in settings.active()] == [BUSY]
    assert resolve(table(settings), CallPath("1002"), everyone_registered).target == "1002"


def test_chains_are_followed() -> None:
    t = table(fwd("1002", (ALWAYS, "1003")), fwd("1003", (ALWAYS, "1004")))
    found = resolve(t, CallPath("1002"), everyone_registered)
    assert found.target == "1004"
    assert [(d.diverter, d.target) for d in found.steps] == [("1002", "1003"), ("1003", "1004")]
    assert found.path.dialled == "1002" and found.path.hops == 2


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (486, BUSY),
        (600, BUSY),
        (603, BUSY),
        (408, NO_ANSWER),
        (480, NO_ANSWER),
        (404, None),
        (500, None),
        (488, None),
    ],
)
def test_which_failure_triggers_which_rule(status: int, kind: ForwardKind | None) -> None:
    assert kind_for_failure(status) is kind


def test_busy_and_no_answer_steps_while_ringing() -> None:
    settings = fwd("1002", (BUSY, "1003"), (NO_ANSWER, "1004"))
    path = CallPath("1002")
    assert next_step(settings, BUSY, path).diversion == Diversion("1002", "1003", BUSY)
    assert next_step(settings, NO_ANSWER, path).diversion == Diversion("1002", "1004", NO_ANSWER)
    assert next_step(settings, UNREACHABLE, path).diversion is None
    assert next_step(None, BUSY, path).diversion is None


# ---------------------------------------------------------------- loops and hops


def test_a_to_b_to_a_is_a_loop_and_rings_where_it_closed() -> None:
    t = table(fwd("1002", (ALWAYS, "1003")), fwd("1003", (ALWAYS, "1002")))
    found = resolve(t, CallPath("1002"), everyone_registered)
    assert found.target == "1003"
    assert found.refused is Refusal.LOOP
    assert len(found.steps) == 1


def test_a_longer_cycle_is_stopped_too() -> None:
    t = table(
        fwd("1001", (ALWAYS, "1002")),
        fwd("1002", (ALWAYS, "1003")),
        fwd("1003", (ALWAYS, "1001")),
    )
    found = resolve(t, CallPath("1001"), everyone_registered)
    assert (found.target, found.refused) == ("1003", Refusal.LOOP)


def test_busy_forwarding_back_to_an_earlier_callee_is_refused() -> None:
    path = CallPath("1002").then(Diversion("1002", "1003", ALWAYS))
    step = next_step(fwd("1003", (BUSY, "1002")), BUSY, path)
    assert step.diversion is None and step.refused is Refusal.LOOP


def test_hops_are_limited() -> None:
    chain = [fwd(str(1000 + i), (ALWAYS, str(1001 + i))) for i in range(10)]
    found = resolve(table(*chain), CallPath("1000"), everyone_registered)
    assert found.refused is Refusal.MAX_HOPS
    assert len(found.steps) == MAX_HOPS and found.target == str(1000 + MAX_HOPS)


def test_hops_the_call_arrived_with_count() -> None:
    t = table(fwd("1002", (ALWAYS, "1003")))
    found = resolve(t, CallPath("1002", prior_hops=MAX_HOPS), everyone_registered)
    assert found.target == "1002" and found.refused is Refusal.MAX_HOPS
    # A diverter named in the received Diversion header closes a loop as well.
    came_from = CallPath("1002", prior_hops=1, prior_diverters=frozenset({"1003"}))
    assert resolve(t, came_from, everyone_registered).refused is Refusal.LOOP


def test_received_diversion_headers_are_counted() -> None:
    hops, users = diversion_hops(
        [
            "<sip:1003@pbx.example>;reason=user-busy;counter=2, <sip:1002@pbx.example>",
            "<tel:+46701234567>;reason=unconditional",
            "garbage <<<",
        ]
    )
    assert hops == 2 + 1 + 1 + 1
    assert users == {"1003", "1002"}
    assert diversion_hops([]) == (0, frozenset())
    assert diversion_hops(["<sip:1@h>;counter=999999"])[0] == MAX_HOPS


def test_the_diversion_header_follows_rfc_5806() -> None:
    value = Diversion("1002", "1003", BUSY).header("10.0.0.1")
    addr = NameAddr.parse(value)
    assert str(addr.uri) == "sip:1002@10.0.0.1"
    assert addr.params == {"reason": "user-busy", "counter": "1", "privacy": "off"}
    reasons = {
        k: Diversion("1", "2", k).header("h").split("reason=")[1].split(";")[0] for k in ForwardKind
    }
    assert reasons == {
        ALWAYS: "unconditional",
        BUSY: "user-busy",
        NO_ANSWER: "no-answer",
        UNREACHABLE: "unavailable",
    }


# ---------------------------------------------------------------- setting rules


def test_forwarding_to_oneself_is_refused() -> None:
    with pytest.raises(ForwardingToSelf) as caught:
        check_rules("1002", [ForwardingRule(BUSY, "1002")])
    assert caught.value.status == 400 and caught.value.error_id == "forwarding-to-self"


def test_one_rule_per_kind() -> None:
    with pytest.raises(InvalidInput):
        check_rules("1002", [ForwardingRule(BUSY, "1003"), ForwardingRule(BUSY, "1004")])
    check_rules("1002", [ForwardingRule(BUSY, "1003"), ForwardingRule(ALWAYS, "1004")])


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("1003", "1003"),
        ("070-123 45 67", "+46701234567"),
        ("0701234567", "+46701234567"),
        ("+46 8 123 456 78", "+46812345678"),
        ("0046701234567", "+46701234567"),
        ("+4581234567", "+4581234567"),
    ],
)
def test_targets_are_stored_as_extensions_or_e164(raw: str, stored: str) -> None:
    assert normalise_target(raw, lambda n: n == "1003") == stored


@pytest.mark.parametrize("raw", ["", "abc", "12a4", "+", "++4670"])
def test_nonsense_targets_are_refused(raw: str) -> None:
    with pytest.raises(ForwardingTargetInvalid):
        normalise_target(raw, lambda _: True)


@pytest.mark.parametrize("raw", ["1999", "99", "+123"])
def test_unknown_short_numbers_are_refused(raw: str) -> None:
    with pytest.raises(ForwardingTargetUnknown) as caught:
        normalise_target(raw, lambda _: False)
    assert caught.value.error_id == "forwarding-target-unknown"


# ---------------------------------------------------------------- star codes


@pytest.mark.parametrize(
    ("dialled", "code"),
    [
        ("*21*1003#", StarCode("set", ALWAYS, "1003")),
        ("*67*0701234567#", StarCode("set", BUSY, "0701234567")),
        ("*61*1004#", StarCode("set", NO_ANSWER, "1004")),
        ("*62*+46701234567#", StarCode("set", UNREACHABLE, "+46701234567")),
        ("*21#", StarCode("enable", ALWAYS)),
        ("#21#", StarCode("disable", ALWAYS)),
        ("##21#", StarCode("erase", ALWAYS)),
        ("#67#", StarCode("disable", BUSY)),
        ("#002#", StarCode("disable-all", None)),
        ("##002#", StarCode("erase-all", None)),
        ("1003", None),
        ("*21*1003", None),
        ("#21*1003#", None),
        ("*99*1003#", None),
        ("*21**#", None),
    ],
)
def test_star_codes(dialled: str, code: StarCode | None) -> None:
    assert parse_star_code(dialled) == code
