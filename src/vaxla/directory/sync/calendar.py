"""Calendar-driven diversion (R41): meetings in a person's calendar become diversions.

A person's ``calendar_url`` is a CalDAV calendar collection or an iCalendar
(``.ics``) feed. Every sync reads the events from now to ``window_days``
ahead; each busy event (not ``TRANSP:TRANSPARENT``, not all-day unless
configured) becomes a diversion of source ``calendar`` valid for the
event's duration, with "tillbaka HH:MM" at its end. People who opted out
(``calendar_opt_out``) are skipped and their calendar diversions cleared.
A diversion set by hand always wins over one from the calendar.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from vaxla.directory.errors import SyncFailed


@dataclass(frozen=True, slots=True)
class BusyPeriod:
    uid: str
    start: datetime  # UTC
    end: datetime


@dataclass(frozen=True, slots=True)
class CalendarConfig:
    protocol: str = "caldav"  # caldav | ical
    username: str | None = None
    password: str | None = None
    window_days: int = 7
    reason: str = "meeting"
    include_all_day: bool = False
    timeout: float = 10.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CalendarConfig:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def _utc(value: date | datetime) -> datetime | None:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return None


def busy_periods(
    components: Iterable[Any], start: datetime, end: datetime, include_all_day: bool = False
) -> list[BusyPeriod]:
    """Busy periods from VEVENT components (icalendar), overlapping [start, end)."""
    from zoneinfo import ZoneInfo

    stockholm = ZoneInfo("Europe/Stockholm")
    out: list[BusyPeriod] = []
    for c in components:
        if getattr(c, "name", None) != "VEVENT":
            continue
        if str(c.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT":
            continue
        if str(c.get("STATUS", "")).upper() == "CANCELLED":
            continue
        dtstart = c.get("DTSTART")
        if dtstart is None:
            continue
        s_val = dtstart.dt
        dtend = c.get("DTEND")
        e_val = dtend.dt if dtend is not None else None
        if isinstance(s_val, datetime):
            s_utc = _utc(s_val)
            e_utc = _utc(e_val) if e_val is not None else None
            if e_utc is None and s_utc is not None:
                duration = c.get("DURATION")
                length: timedelta = duration.dt if duration is not None else timedelta(0)
                e_utc = s_utc + length
        else:
            if not include_all_day:
                continue
            s_utc = datetime.combine(s_val, datetime.min.time(), stockholm).astimezone(UTC)
            last = e_val if isinstance(e_val, date) else s_val + timedelta(days=1)
            e_utc = datetime.combine(last, datetime.min.time(), stockholm).astimezone(UTC)
        assert s_utc is not None and e_utc is not None
        if e_utc <= start or s_utc >= end or e_utc <= s_utc:
            continue
        uid = str(c.get("UID", "")) or f"{s_utc.isoformat()}"
        out.append(BusyPeriod(uid, s_utc, e_utc))
    return sorted(set(out), key=lambda b: (b.start, b.end, b.uid))


def read_busy(url: str, config: CalendarConfig, start: datetime, end: datetime) -> list[BusyPeriod]:
    """Blocking: read the calendar at ``url`` (the runner calls it in a thread)."""
    if config.protocol == "ical":
        return _read_ical(url, config, start, end)
    return _read_caldav(url, config, start, end)


def _read_caldav(
    url: str, config: CalendarConfig, start: datetime, end: datetime
) -> list[BusyPeriod]:
    import caldav

    try:
        with caldav.DAVClient(  # type: ignore[operator]
            url=url, username=config.username, password=config.password, timeout=int(config.timeout)
        ) as client:
            calendar = client.calendar(url=url)
            found = calendar.search(start=start, end=end, event=True, expand=True)
            components = [obj.icalendar_component for obj in found]
    except Exception as e:  # the library raises many kinds; all mean the same here
        raise SyncFailed(f"CalDAV {url}: {e}", url=url) from e
    return busy_periods(components, start, end, config.include_all_day)


def _read_ical(
    url: str, config: CalendarConfig, start: datetime, end: datetime
) -> list[BusyPeriod]:
    import httpx
    import icalendar
    import recurring_ical_events

    try:
        auth = (config.username, config.password or "") if config.username else None
        response = httpx.get(url, auth=auth, timeout=config.timeout)
        response.raise_for_status()
        cal = icalendar.Calendar.from_ical(response.text)
        components = recurring_ical_events.of(cal).between(start, end)
    except Exception as e:
        raise SyncFailed(f"iCalendar {url}: {e}", url=url) from e
    return busy_periods(components, start, end, config.include_all_day)
