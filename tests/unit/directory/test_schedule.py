"""Weekly absence rules evaluated with the time passed in (sans-IO)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from vaxla.directory.schedule import (
    STOCKHOLM,
    WeeklyRule,
    evaluate,
    swedish_public_holiday,
)

WEEKDAYS = frozenset({1, 2, 3, 4, 5})


def local(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=STOCKHOLM).astimezone(UTC)


LUNCH = WeeklyRule(1, "absence", WEEKDAYS, time(12), time(13), "lunch")
WORK = WeeklyRule(2, "working-hours", frozenset({1, 2, 3, 4}), time(8), time(16, 30), "off")


def test_absence_inside_window_until_its_end() -> None:
    found = evaluate([LUNCH], local(2026, 11, 25, 12, 15))  # a Wednesday
    assert found is not None and found.rule is LUNCH
    assert found.until == local(2026, 11, 25, 13)


def test_absence_outside_window_or_day() -> None:
    assert evaluate([LUNCH], local(2026, 11, 25, 13, 0)) is None
    assert evaluate([LUNCH], local(2026, 11, 25, 11, 59)) is None
    assert evaluate([LUNCH], local(2026, 11, 28, 12, 15)) is None  # Saturday


def test_working_hours_absent_outside_until_next_start() -> None:
    thursday_evening = local(2026, 11, 26, 17)
    found = evaluate([WORK], thursday_evening)
    assert found is not None
    assert found.until == local(2026, 11, 30, 8)  # Friday is not a working day: Monday 08:00
    assert evaluate([WORK], local(2026, 11, 26, 10)) is None


def test_working_hours_skip_public_holidays() -> None:
    # 2026-12-24 (Thursday, julafton) and 2026-12-25 (Friday, juldagen) are days off.
    found = evaluate([WORK], local(2026, 12, 24, 10))
    assert found is not None and found.until == local(2026, 12, 28, 8)
    assert swedish_public_holiday(date(2026, 6, 19))  # midsommarafton
    assert swedish_public_holiday(date(2026, 1, 6))  # trettondedag jul
    assert not swedish_public_holiday(date(2026, 11, 25))


def test_time_zone_change_is_respected() -> None:
    # Lunch 12-13 local is 11-12 UTC in winter and 10-11 UTC in summer.
    assert evaluate([LUNCH], datetime(2026, 1, 14, 11, 30, tzinfo=UTC)) is not None
    assert evaluate([LUNCH], datetime(2026, 7, 15, 10, 30, tzinfo=UTC)) is not None
    assert evaluate([LUNCH], datetime(2026, 7, 15, 11, 30, tzinfo=UTC)) is None


def test_rule_validity_and_latest_return_wins() -> None:
    ended = WeeklyRule(
        3, "absence", WEEKDAYS, time(12), time(13), "lunch", valid_until=local(2026, 11, 1, 0)
    )
    assert evaluate([ended], local(2026, 11, 25, 12, 15)) is None
    long_meeting = WeeklyRule(4, "absence", WEEKDAYS, time(11), time(15), "meeting")
    found = evaluate([LUNCH, long_meeting], local(2026, 11, 25, 12, 15))
    assert found is not None and found.rule is long_meeting


def test_injected_holiday_calendar() -> None:
    found = evaluate([WORK], local(2026, 11, 25, 10), is_holiday=lambda d: d == date(2026, 11, 25))
    assert found is not None and found.until == local(2026, 11, 26, 8)
