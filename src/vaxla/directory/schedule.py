"""Weekly absence rules, evaluated sans-IO with the time passed in (R46.25, R80).

A rule of kind ``absence`` makes a person absent inside its window on its
weekdays ("lunch 12:00-13:00 every weekday"); a rule of kind
``working-hours`` makes them absent outside it, on the other weekdays and
on Swedish public holidays ("works Mon-Thu 08:00-16:30"). Rules hold until
changed, or until their ``valid_until``. Windows are local Stockholm time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

STOCKHOLM = ZoneInfo("Europe/Stockholm")


@dataclass(frozen=True, slots=True)
class WeeklyRule:
    rule_id: int
    kind: str  # "absence" | "working-hours"
    weekdays: frozenset[int]  # ISO 1 = Monday .. 7 = Sunday
    start: time
    end: time
    reason_code: str
    message: str = ""
    valid_from: datetime | None = None
    valid_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Absence:
    rule: WeeklyRule
    until: datetime | None  # UTC; None when no return is found within two weeks


HolidayTest = Callable[[date], bool]


@lru_cache(maxsize=16)
def _swedish_holidays(year: int) -> frozenset[date]:
    import holidays

    # Sundays are days off anyway (no rule needs them as holidays).
    return frozenset(holidays.country_holidays("SE", years=year, include_sundays=False).keys())


def swedish_public_holiday(day: date) -> bool:
    """True on Swedish public holidays (helgdagar) and midsummer, Christmas and New Year's eve."""
    if (day.month, day.day) in ((12, 24), (12, 31)):
        return True
    if day.month == 6 and 19 <= day.day <= 25 and day.isoweekday() == 5:
        return True  # midsommarafton
    return day in _swedish_holidays(day.year)


def _local(dt: datetime) -> datetime:
    return dt.astimezone(STOCKHOLM)


def _at(day: date, t: time) -> datetime:
    return datetime.combine(day, t, tzinfo=STOCKHOLM)


def _in_window(rule: WeeklyRule, local: datetime) -> bool:
    return (
        local.isoweekday() in rule.weekdays
        and rule.start <= local.time().replace(tzinfo=None) < rule.end
    )


def _working(rule: WeeklyRule, local: datetime, is_holiday: HolidayTest) -> bool:
    return _in_window(rule, local) and not is_holiday(local.date())


def _valid(rule: WeeklyRule, now: datetime) -> bool:
    if rule.valid_from is not None and now < rule.valid_from:
        return False
    return rule.valid_until is None or now < rule.valid_until


def evaluate(
    rules: Iterable[WeeklyRule],
    now: datetime,
    is_holiday: HolidayTest = swedish_public_holiday,
) -> Absence | None:
    """The absence in force at ``now`` (UTC-aware) from ``rules``, or None.

    When several rules make the person absent, the one whose absence ends
    last wins (the person is away until every rule lets them back).
    """
    local = _local(now)
    found: list[Absence] = []
    for rule in rules:
        if not _valid(rule, now):
            continue
        if rule.kind == "absence":
            if _in_window(rule, local):
                until = _at(local.date(), rule.end).astimezone(now.tzinfo)
                found.append(Absence(rule, until))
        elif rule.kind == "working-hours" and not _working(rule, local, is_holiday):
            found.append(Absence(rule, _next_start(rule, local, is_holiday, now)))
    if not found:
        return None
    return max(found, key=lambda a: a.until or datetime.max.replace(tzinfo=now.tzinfo))


def _next_start(
    rule: WeeklyRule, local: datetime, is_holiday: HolidayTest, now: datetime
) -> datetime | None:
    day = local.date()
    for offset in range(15):
        d = day + timedelta(days=offset)
        start = _at(d, rule.start)
        if start <= local:
            continue
        if d.isoweekday() in rule.weekdays and not is_holiday(d):
            return start.astimezone(now.tzinfo)
    return None
