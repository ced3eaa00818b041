"""Diversion codes dialled on a phone (R81, R40): the pure parts."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

import pytest

from vaxla.directory.diversion import DiversionState, Reason
from vaxla.directory.phone_codes import (
    CodeRefused,
    DiversionCode,
    DiversionCodes,
    clear_confirmation,
    is_diversion_code,
    parse_diversion_code,
    reason_by_number,
    refusal,
    return_at,
    set_confirmation,
    spoken_time,
)
from vaxla.directory.schedule import STOCKHOLM
from vaxla.directory.texts import DEFAULT_REASONS

REASONS = [Reason(i + 1, code, sv, en, i) for i, (code, sv, en) in enumerate(DEFAULT_REASONS)]


@pytest.mark.parametrize(
    ("dialled", "expected"),
    [
        ("*23*1#", DiversionCode("set", 1)),
        ("*23*2#", DiversionCode("set", 2)),
        ("*23*12#", DiversionCode("set", 12)),
        ("*23*1*1300#", DiversionCode("set", 1, time(13, 0))),
        ("*23*6*0800#", DiversionCode("set", 6, time(8, 0))),
        ("*23*3*0000#", DiversionCode("set", 3, time(0, 0))),
        ("*23*3*2359#", DiversionCode("set", 3, time(23, 59))),
        ("#23#", DiversionCode("clear")),
    ],
)
def test_valid_codes(dialled: str, expected: DiversionCode) -> None:
    assert is_diversion_code(dialled)
    assert parse_diversion_code(dialled) == expected


@pytest.mark.parametrize("dialled", ["1001", "9001", "*21*1003#", "#21#", "*23#", "#23", "##23#"])
def test_other_numbers_are_not_diversion_codes(dialled: str) -> None:
    assert not is_diversion_code(dialled)
    assert parse_diversion_code(dialled) is None


@pytest.mark.parametrize(
    ("dialled", "problem"),
    [
        ("*23*", "format"),
        ("*23*#", "format"),
        ("*23*1", "format"),  # no closing #
        ("*23*1**1300#", "format"),
        ("*23*1*130#", "format"),  # HHMM is four digits
        ("*23*1*13000#", "format"),
        ("*23*1234#", "format"),  # at most three digits of reason
        ("*23*1*1300*5#", "format"),
        ("*23*0#", "reason"),
        ("*23*1*2400#", "time"),
        ("*23*1*1260#", "time"),
        ("*23*1*9999#", "time"),
    ],
)
def test_malformed_codes_are_refused(dialled: str, problem: str) -> None:
    assert is_diversion_code(dialled)  # ours: refused out loud, not routed as a number
    with pytest.raises(CodeRefused) as caught:
        parse_diversion_code(dialled)
    assert caught.value.problem == problem


def test_reason_numbers_count_active_reasons_in_position_order() -> None:
    assert reason_by_number(REASONS, 1).code == "lunch"
    assert reason_by_number(REASONS, 2).code == "meeting"
    assert reason_by_number(REASONS, 8).code == "off"
    for number in (0, 9, 99):
        with pytest.raises(CodeRefused) as caught:
            reason_by_number(REASONS, number)
        assert caught.value.problem == "reason" and caught.value.params == {"number": number}
    # an administrator retires "lunch" and moves "sick" first: the numbers follow
    edited = [
        Reason(1, "lunch", "Lunch", "Lunch", 0, active=False),
        Reason(2, "meeting", "Möte", "Meeting", 5),
        Reason(7, "sick", "Sjuk", "Sick", -1),
        Reason(9, "parental", "Föräldraledig", "Parental leave", 5),
    ]
    assert [reason_by_number(edited, n).code for n in (1, 2, 3)] == ["sick", "meeting", "parental"]
    with pytest.raises(CodeRefused):
        reason_by_number(edited, 4)


def test_return_time_is_today_while_ahead_else_tomorrow() -> None:
    morning = datetime(2026, 11, 25, 9, 0, tzinfo=STOCKHOLM)
    assert return_at(time(13, 0), morning) == datetime(2026, 11, 25, 13, 0, tzinfo=STOCKHOLM)
    assert return_at(time(13, 0), morning).tzinfo == UTC
    evening = datetime(2026, 11, 25, 17, 0, tzinfo=STOCKHOLM)
    assert return_at(time(8, 0), evening) == datetime(2026, 11, 26, 8, 0, tzinfo=STOCKHOLM)
    assert return_at(time(17, 0), evening) == datetime(2026, 11, 26, 17, 0, tzinfo=STOCKHOLM)
    # Swedish time, whatever the zone of "now": 23:30 UTC is already 00:30 tomorrow in winter
    late = datetime(2026, 11, 25, 23, 30, tzinfo=UTC)
    assert return_at(time(8, 0), late) == datetime(2026, 11, 26, 8, 0, tzinfo=STOCKHOLM)
    # across the change to summer time (29 March 2026): still 08:00 on the wall
    saturday = datetime(2026, 3, 28, 20, 0, tzinfo=STOCKHOLM)
    back = return_at(time(8, 0), saturday)
    assert back.astimezone(STOCKHOLM).hour == 8 and back.hour == 6  # UTC+2


def test_times_are_spoken_in_words() -> None:
    assert spoken_time(time(13, 0), "sv") == "tretton noll noll"
    assert spoken_time(time(8, 5), "sv") == "åtta noll fem"
    assert spoken_time(time(9, 30), "sv") == "nio trettio"
    assert spoken_time(time(1, 45), "sv") == "ett fyrtiofem"
    assert spoken_time(time(13, 0), "en") == "13 hundred"
    assert spoken_time(time(8, 5), "en") == "8 oh 5"
    assert spoken_time(time(9, 30), "en") == "9 30"


def _state(reason: Reason, back: datetime | None = None) -> DiversionState:
    return DiversionState(
        person_id=1,
        reason=reason,
        return_at=back,
        message="",
        target_kind=None,
        target_value=None,
        source="manual",
        valid_from=None,
        valid_until=None,
        created_by="1001",
        created_at=None,
    )


def test_what_the_phone_says() -> None:
    now = datetime(2026, 11, 25, 9, 0, tzinfo=STOCKHOLM)
    lunch, meeting = REASONS[0], REASONS[1]
    back = return_at(time(13, 0), now)
    assert set_confirmation(_state(lunch, back), "sv", now) == (
        "Hänvisning: Lunch, tillbaka klockan tretton noll noll."
    )
    assert set_confirmation(_state(meeting), "sv", now) == "Hänvisning: Möte."
    assert set_confirmation(_state(meeting, back), "en", now) == (
        "Diversion: Meeting, back at 13 hundred."
    )
    tomorrow = return_at(time(8, 0), now)
    assert set_confirmation(_state(lunch, tomorrow), "sv", now) == (
        "Hänvisning: Lunch, tillbaka i morgon klockan åtta noll noll."
    )
    assert clear_confirmation(True, None, "sv") == "Hänvisningen är borttagen."
    assert clear_confirmation(False, None, "sv") == "Du har ingen hänvisning."
    assert clear_confirmation(True, _state(lunch), "sv") == (
        "Hänvisningen är borttagen. Enligt schemat gäller fortfarande: Lunch."
    )
    assert clear_confirmation(False, None, "en") == "You have no diversion."
    assert refusal(CodeRefused("reason", number=99), "sv") == (
        "Det finns ingen orsak nummer nittionio."
    )
    assert refusal(CodeRefused("reason", number=99), "en") == "There is no reason number 99."
    assert refusal(CodeRefused("shared", count=2), "sv").startswith("Flera personer delar")
    for problem in ("format", "time", "no-person", "failed"):
        for lang in ("sv", "en"):
            spoken = refusal(CodeRefused(problem), lang)
            assert spoken and "diversion-code" not in spoken  # a real text from i18n.toml


def test_the_matcher_claims_only_diversion_codes_from_authenticated_phones() -> None:
    engines: list[object] = []
    engine: Any = lambda: engines[0] if engines else None  # noqa: E731
    matcher = DiversionCodes(directory=object(), engine=engine)  # type: ignore[arg-type]
    assert matcher("*23*1#", False) is None  # no media engine yet: routed as a number
    engines.append(object())
    service = matcher("*23*1#", False)
    assert service is not None and matcher("#23#", False) is service
    assert matcher("*23*1#", True) is None  # a trusted peer: nobody authenticated
    assert matcher("*21*1003#", False) is None  # forwarding: not ours
    assert matcher("1001", False) is None
